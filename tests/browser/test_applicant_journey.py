"""The applicant's whole journey in Chromium: register, confirm by the mailed link, build a consortium of
four partners from three countries while the rule violations go away, upload a PDF, submit, get the
receipt by e-mail, download the receipt PDF and read it back, resubmit; then, after the secretariat's
steps (done here through the operations), submit the full proposal and the rebuttal."""

from __future__ import annotations

import datetime as dt
import io
import re
from urllib.parse import urlsplit

from playwright.sync_api import Page, expect
from pypdf import PdfReader, PdfWriter
from sqlalchemy import select

from reviews.aggregation import enter_consensus
from reviews.models import Review, ReviewAssignment
from reviews.ranking import approve_ranking, build_ranking
from reviews.release import open_rebuttal
from tests import factories as f
from tests.conftest import body_of
from workflow.models import EligibilityCheck, Proposal, Submission, User
from workflow.operations import close_stage, decide_eligibility, sign_off, transition

EMAIL = "zoe.garcia@example.org"
PASSWORD = "a long and secret passphrase"
MISSING_COUNTRY = "partners from at least 3 participating countries are needed; you have 2"


def pdf_file(tmp_path, pages: int = 2):
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    path = tmp_path / "project-description.pdf"
    with path.open("wb") as fh:
        writer.write(fh)
    return path


def link_in(message, live_server: str) -> str:
    url = re.search(r"https?://\S+", body_of(message)).group(0)
    return live_server + urlsplit(url).path


def add_partner(page: Page, org: str, country: str, funder: str, pi: str, email: str, personnel: int):
    page.get_by_label("Organisation", exact=True).fill(org)
    page.get_by_label("Country", exact=True).select_option(country)
    page.get_by_label("Funder", exact=True).select_option(label=funder)
    page.get_by_label("PI name").fill(pi)
    page.get_by_label("PI e-mail").fill(email)
    page.get_by_label("Personnel").fill(str(personnel))
    page.get_by_role("button", name="Save partner").click()
    expect(page.get_by_role("status").first).to_contain_text(f"{org}")


def submit(page: Page, button: str):
    page.locator("#submit-button").click()
    page.get_by_label(re.compile("I confirm that the consortium agrees")).check()
    page.get_by_role("button", name=button).click()


def secretariat_closes_and_invites(session_factory, proposal_id: int, stage: str):
    """What the secretariat and the funders do between the stages, through the same operations."""
    with session_factory() as s:
        proposal = s.get(Proposal, proposal_id)
        call = proposal.call
        sec = f.secretariat(s, call)
        officers = {a: f.officer(s, call, a) for a in ("DFG-T", "ANR-T", "ISCIII-T")}
        s.commit()
        close_stage(s, sec, call, stage)
        s.commit()
        for check in s.scalars(select(EligibilityCheck).where(EligibilityCheck.proposal_id == proposal_id,
                                                              EligibilityCheck.stage == stage)).all():
            who = sec if check.funder_id is None else next(
                o for a, o in officers.items() if f.funder(s, a).id == check.funder_id)
            sign_off(s, who, check.id, "eligible")
        decide_eligibility(s, sec, proposal_id)
        if stage == "pre":
            pre_stage_ranking_is_approved(s, sec, proposal_id)
            transition(s, sec, proposal_id, "invite", reason="CSC decision: invited")
        s.commit()
        return sec


def pre_stage_ranking_is_approved(s, sec, proposal_id: int):
    """Invitations follow the approved pre-stage ranking: three reviews, the panel's consensus, the list."""
    proposal = s.get(Proposal, proposal_id)
    for n in range(3):
        reviewer = f.make_user(s, f"Pre Reviewer {n}", email=f"pre.reviewer{n}@reviews.example.net")
        assignment = ReviewAssignment(call_id=proposal.call_id, proposal_id=proposal_id, reviewer_id=reviewer.id,
                                      stage="pre")
        s.add(assignment)
        s.flush()
        s.add(Review(assignment_id=assignment.id, proposal_id=proposal_id, reviewer_id=reviewer.id, stage="pre",
                     scores={"excellence": 4.0, "impact": 4.0, "implementation": 3.5},
                     comments={"excellence": "Original.", "impact": "Clear impact.", "implementation": "Feasible."},
                     recommendation="recommended", status="submitted", submitted_at=f.PRE_CLOSED))
    s.flush()
    enter_consensus(s, sec, proposal, scores={"excellence": 4.0, "impact": 4.0, "implementation": 3.5},
                    recommendation="recommended", summary="A strong pre-proposal.")
    approve_ranking(s, sec, build_ranking(s, sec, proposal.call, "pre"))


def reviews_are_written(session_factory, proposal_id: int):
    with session_factory() as s:
        proposal = s.get(Proposal, proposal_id)
        for n, (name, score) in enumerate((("Rita Reviewer", 4.5), ("Rolf Reviewer", 3.5), ("Rosa Reviewer", 4.0))):
            reviewer = f.make_user(s, name, email=f"reviewer{n}@example.org")
            assignment = ReviewAssignment(call_id=proposal.call_id, proposal_id=proposal_id, reviewer_id=reviewer.id,
                                          stage="full")
            s.add(assignment)
            s.flush()
            s.add(Review(assignment_id=assignment.id, proposal_id=proposal_id, reviewer_id=reviewer.id, stage="full",
                         scores={"excellence": score, "impact": 4.0, "implementation": 3.5},
                         comments={"excellence": f"Comment {n} on excellence", "impact": "Clear impact.",
                                   "implementation": "Feasible plan."},
                         recommendation="fund", status="submitted", submitted_at=f.FULL_CLOSED))
        s.commit()


def test_applicant_journey(page: Page, live_server, session_factory, frozen, mailbox, shot, tmp_path, mail):
    frozen(f.PRE_OPEN)
    with session_factory() as s:
        f.make_call(s)
        s.commit()

    # Register and confirm by the mailed link.
    page.goto(live_server + "/register")
    page.get_by_label("Name").fill("Zoë García")
    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your mailbox")).to_be_visible()
    (confirmation,) = mail.wait(to=EMAIL)
    assert confirmation["Subject"] == "Confirm your e-mail address for Jointcall"
    page.goto(link_in(confirmation, live_server))
    expect(page.get_by_role("status").first).to_contain_text("is confirmed and you are logged in")

    # Start a proposal in the open call.
    page.get_by_role("link", name="My proposals").click()
    page.get_by_role("link", name=re.compile("Start a proposal")).click()
    page.get_by_label("Acronym").fill("PRECISE-PGX")
    page.get_by_label(re.compile("^Title")).fill("Pharmacogenomics for precise dosing")
    page.get_by_role("button", name="Create proposal").click()
    expect(page.get_by_role("status").first).to_contain_text("Proposal PRECISE-PGX created")

    # Four partners from three countries; the violation about countries goes away with the third country.
    page.get_by_role("link", name="Add partner 1 (your organisation)").click()
    add_partner(page, "Charité – Universitätsmedizin Berlin", "DE", "DFG-T — German Test Funder", "Zoë García",
                EMAIL, 250000)
    expect(page.locator("#violations-blocking")).to_contain_text("you have 1")
    page.get_by_role("link", name="Add a partner").click()
    add_partner(page, "Institut Curie", "FR", "ANR-T — French Test Funder", "Élise Durand",
                "elise.durand@example.org", 300000)
    expect(page.locator("#violations-blocking")).to_contain_text(MISSING_COUNTRY)
    shot("applicant-1-two-countries")
    page.get_by_role("link", name="Add a partner").click()
    add_partner(page, "Hospital Clínic de Barcelona", "ES", "ISCIII-T — Spanish Test Funder", "Jordi Puig",
                "jordi.puig@example.org", 200000)
    expect(page.locator("#violations")).not_to_contain_text(MISSING_COUNTRY)
    page.get_by_role("link", name="Add a partner").click()
    add_partner(page, "Universität Heidelberg", "DE", "DFG-T — German Test Funder", "Jürgen Müller",
                "juergen.mueller@example.org", 150000)

    # The texts, then the document.
    page.get_by_role("link", name="Edit texts").click()
    page.get_by_label("Abstract").fill("Genotype-guided dosing of common drugs in four European hospitals.")
    page.get_by_label("Keywords").fill("pharmacogenomics; dosing")
    page.get_by_label("Duration (months)").fill("36")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status").first).to_contain_text("Draft saved.")
    page.get_by_role("link", name="Back to the overview").click()
    expect(page.locator("#no-problems")).to_be_visible()
    page.get_by_role("link", name="Upload and manage documents").click()
    page.get_by_label("Document type").select_option("project_description")
    page.get_by_label("PDF file").set_input_files(str(pdf_file(tmp_path)))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("status").first).to_contain_text("Project description uploaded")
    page.goto(live_server + urlsplit(page.url).path.rsplit("/documents", 1)[0])
    shot("applicant-2-ready-to-submit")

    # Submit; the receipt arrives by e-mail with the PDF; the receipt PDF downloads and reads back.
    submit(page, "Submit the pre-proposal")
    expect(page.get_by_role("status").first).to_contain_text("Your pre-proposal was submitted (submission no. 1)")
    shot("applicant-3-submitted")
    receipt_mail = mail.wait(subject="receipt of your pre-proposal")[0]
    with session_factory() as s:
        proposal = s.scalar(select(Proposal).where(Proposal.acronym == "PRECISE-PGX"))
        first = s.scalars(select(Submission).where(Submission.proposal_id == proposal.id)).one()
        proposal_id = proposal.id
    assert first.sha256 in body_of(receipt_mail)
    attached = next(receipt_mail.iter_attachments()).get_content()
    assert "PRECISE-PGX" in PdfReader(io.BytesIO(attached)).pages[0].extract_text()
    page.get_by_role("link", name=re.compile(r"Submissions and receipts \(1\)")).click()
    href = page.get_by_role("link", name="Receipt (PDF)").first.get_attribute("href")
    download = page.request.get(live_server + href)
    assert download.ok and download.headers["content-type"].startswith("application/pdf")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(download.body())).pages).replace("\n", "")
    assert "PRECISE-PGX" in text and first.sha256 in text and "Charité" in text

    # Resubmit before the deadline: reopen, change the title, submit again; both submissions are kept.
    page.goto(f"{live_server}/my/proposals/{proposal_id}")
    page.get_by_role("button", name="Reopen to make changes").click()
    page.get_by_role("link", name="Edit texts").click()
    page.get_by_label("Title").fill("Pharmacogenomics for precise dosing in Europe")
    page.get_by_role("button", name="Save draft").click()
    page.get_by_role("link", name="Back to the overview").click()
    submit(page, "Submit the pre-proposal")
    expect(page.get_by_role("status").first).to_contain_text("submission no. 2")

    # The secretariat closes the stage, the funders sign off, the steering committee invites.
    frozen(f.PRE_CLOSED)
    secretariat_closes_and_invites(session_factory, proposal_id, "pre")
    frozen(f.FULL_OPEN)
    page.goto(f"{live_server}/my/proposals/{proposal_id}")
    page.get_by_role("button", name="Start the full proposal").click()
    page.get_by_role("link", name="Edit texts").click()
    page.get_by_label("Abstract").fill("Genotype-guided dosing of common drugs: the full work plan.")
    page.get_by_role("button", name="Save draft").click()
    page.get_by_role("link", name="Back to the overview").click()
    submit(page, "Submit the full proposal")
    expect(page.get_by_role("status").first).to_contain_text("full proposal was submitted")
    shot("applicant-4-full-submitted")

    # Full-stage eligibility, three reviews, the rebuttal window opens.
    frozen(f.FULL_CLOSED)
    sec = secretariat_closes_and_invites(session_factory, proposal_id, "full")
    reviews_are_written(session_factory, proposal_id)
    opened = f.FULL_CLOSED + dt.timedelta(days=2)
    frozen(opened)
    with session_factory() as s:
        open_rebuttal(s, s.get(User, sec.id), s.get(Proposal, proposal_id).call)
        s.commit()

    page.goto(f"{live_server}/my/proposals/{proposal_id}")
    page.get_by_role("link", name="Read the reviews and write the rebuttal").click()
    expect(page.locator("main")).to_contain_text("Reviewer 1")
    expect(page.locator("main")).to_contain_text("Comment 0 on excellence")
    expect(page.locator("main")).not_to_contain_text("Rita Reviewer")
    page.get_by_role("textbox", name="Your rebuttal").fill("We thank the reviewers. The dosing algorithm is validated in cohort B.")
    shot("applicant-5-rebuttal")
    page.get_by_role("button", name="Submit the rebuttal").click()
    expect(page.get_by_role("status").first).to_contain_text("rebuttal")
    with session_factory() as s:
        assert s.get(Proposal, proposal_id).state == "rebuttal"
        assert len(s.scalars(select(Submission).where(Submission.proposal_id == proposal_id)).all()) == 3
    page.goto(f"{live_server}/my/proposals/{proposal_id}")
    page.get_by_role("link", name="Decisions and decision letters").click()
    expect(page.locator("#letter-status")).to_contain_text("once the secretariat releases it")
    shot("applicant-6-decisions")
