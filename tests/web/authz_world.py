"""One call with everything the authorization matrix needs (tests/web/test_authz_matrix.py): one user per
role, proposals of the same coordinator in several states, reviews, eligibility checks, a document, a
receipt, the funding decision approved with confirmations, a letter export job.

Every protected thing of the coordinator's proposals carries a marker (MARKERS) that no refused answer may
contain."""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from pypdf import PdfWriter
from sqlalchemy import select

from reviews.models import Conflict, Review
from tests import factories as f
from tests.unit.reviews_helpers import ALL_SCORES, assign, make_reviewer
from workflow import people
from workflow.accounts import grant_role
from workflow.calls import load_call
from workflow.console_models import RoleInvitation
from workflow.documents import store_bytes
from workflow.eligibility import close_eligibility_step
from workflow.funding_models import FundingConfirmation
from workflow.letter_models import DecisionLetter, LetterExportJob
from workflow.models import (
    Document,
    EligibilityCheck,
    OutboxMessage,
    Partner,
    Proposal,
    ProposalInvitation,
    ProposalMember,
    RoleGrant,
    Submission,
)
from workflow.proposals import PartnerData, add_partner, remove_partner, update_proposal
from workflow.submission import submit

UTC = dt.UTC
PASSWORD = "correct horse battery"

ACRONYM = "ZEBRAFISH-XQ"
TITLE = "Quokka-lit zebrafish hearts"
ABSTRACT = "Xanthophore regeneration under glimmering lamplight"
PI_NAME = "Quentin Zyx"
PI_EMAIL = "quentin.zyx@zyxwvut.example.org"
ORGANISATION = "Zyxwvut Institute"
AMOUNT = 271_828
REVIEW_COMMENT = "Grumpulous methodology, frabjous outlook"

# What a refused answer must never contain. "ZEBRAFISH" covers the acronyms of all the coordinator's proposals.
MARKERS = ("ZEBRAFISH", "Quokka-lit", "Xanthophore", PI_NAME, PI_EMAIL, ORGANISATION, "271,828", "271 828",
           "271828", "Grumpulous")

ROLES = ("anonymous", "outsider", "coordinator", "member", "officer", "other_officer", "reviewer",
         "conflicted_reviewer", "unassigned_reviewer", "secretariat", "other_secretariat", "admin")


@dataclass
class World:
    call: object
    other_call: object
    users: dict
    p: dict  # name -> Proposal
    ids: dict = field(default_factory=dict)


def tiny_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def _marked_partners(session, proposal, coordinator):
    add_partner(session, coordinator, proposal, PartnerData(
        organisation=ORGANISATION, country="DE", pi_name=PI_NAME, pi_email=PI_EMAIL,
        funder_id=f.funder(session, "DFG-T").id, budget={"personnel": AMOUNT}))


def _rows_proposal(session, call, coordinator, acronym: str, state: str, n: int, partners) -> Proposal:
    """A proposal made as rows (for the states after the evaluation), marked like the others."""
    p = Proposal(call_id=call.id, reference=f"ZQ-{n:04d}", acronym=acronym, title=TITLE, abstract=ABSTRACT,
                 keywords="zebrafish; heart", duration_months=36, state=state, coordinator_id=coordinator.id)
    session.add(p)
    session.flush()
    for pos, (org, country, fund, amount, name, email) in enumerate(partners, start=1):
        session.add(Partner(proposal_id=p.id, position=pos, organisation=org, country=country,
                            funder_id=f.funder(session, fund).id, pi_name=name, pi_email=email,
                            requested_amount=amount, budget={"personnel": amount}))
    session.flush()
    session.refresh(p)
    return p


MAIN_PARTNERS = (
    (ORGANISATION, "DE", "DFG-T", AMOUNT, PI_NAME, PI_EMAIL),
    ("Yonder Lab Lyon", "FR", "ANR-T", 150_000, "Paul Yonder", "paul@yonder.example.net"),
    ("Hospital Zyx Madrid", "ES", "ISCIII-T", 120_000, "Ana Ruiz", "ana@hzm.example.net"),
)


def build(session, storage_dir: str, frozen) -> World:
    frozen(f.PRE_OPEN)
    # Officers read only their own partners' proposals here, so "an officer of another funder" means something.
    call = load_call(session, None, f.definition().model_copy(update={"officers_read_all_proposals": False})).call
    other_call = f.make_call(session, code="other-call")
    u = {}
    u["outsider"] = f.make_user(session, "Olaf Outsider", email="olaf@outside.example.net")
    u["coordinator"] = f.make_user(session, "Cora Coordinator", email="cora@coord.example.net")
    u["member"] = f.make_user(session, "Mia Member", email="mia@member.example.net")
    u["officer"] = f.officer(session, call, "DFG-T")
    u["other_officer"] = f.officer(session, call, "MOH-T")
    u["secretariat"] = f.secretariat(session, call)
    u["other_secretariat"] = f.secretariat(session, other_call)
    u["admin"] = f.make_user(session, "Ada Admin", email="ada@admin.example.net", is_admin=True)
    u["reviewer"] = make_reviewer(session, call, "Rita Reviewer", email="rita@rev.example.se")
    # His organisation is a partner's of ZEBRAFISH-XQ (a detected conflict); he declared one too.
    u["conflicted_reviewer"] = make_reviewer(session, call, "Carl Conflicted", email="carl@yonder.example.net",
                                             organisation="Yonder Lab Lyon", country="FR")
    u["unassigned_reviewer"] = make_reviewer(session, call, "Una Unassigned", email="una@rev.example.no",
                                             organisation="Universitetet i Oslo", country="NO")
    helpers = [make_reviewer(session, call, name, email=f"{name.split()[0].lower()}@panel.example.nl",
                             organisation=f"University of {name.split()[1]}", country="NL")
               for name in ("Otto Utrecht", "Olga Leiden")]
    coordinator = u["coordinator"]

    # A draft of the pre-proposal stage (the editor's pages) and a submitted one (receipts, reopen).
    draft = f.valid_proposal(session, call, coordinator, acronym="ZEBRAFISH-DR")
    update_proposal(session, coordinator, draft, abstract=ABSTRACT)
    sent = f.valid_proposal(session, call, coordinator, acronym="ZEBRAFISH-SB")
    update_proposal(session, coordinator, sent, abstract=ABSTRACT)
    remove_partner(session, coordinator, sent.partners[-1])
    _marked_partners(session, sent, coordinator)
    session.flush()
    submission = submit(session, coordinator, sent.id, expected_version=None)

    # Under review at the full stage, with reviews; and two recommended ones for the funding decision. These are
    # rows, as in tests/unit/reviews_helpers.py and test_funding_pages.py: the states after the evaluation.
    main = _rows_proposal(session, call, coordinator, ACRONYM, "under_review", 1, MAIN_PARTNERS)
    funded = _rows_proposal(session, call, coordinator, "ZEBRAFISH-FN", "recommended", 2, MAIN_PARTNERS[:2])
    selected = _rows_proposal(session, call, coordinator, "ZEBRAFISH-SL", "recommended", 3, MAIN_PARTNERS[:2])
    for p in (draft, sent, main, funded, selected):
        session.add(ProposalMember(proposal_id=p.id, user_id=u["member"].id, can_edit=True))
    for partner in main.partners:
        session.add(EligibilityCheck(proposal_id=main.id, stage="full", partner_id=partner.id,
                                     funder_id=partner.funder_id, status="pending"))
    session.add(EligibilityCheck(proposal_id=main.id, stage="full", status="eligible",
                                 decided_by_id=u["secretariat"].id, decided_at=f.PRE_OPEN))
    # Officers read submitted proposals only: the full proposal as it was submitted.
    session.add(Submission(proposal_id=main.id, stage="full", number=1, submitted_at=f.PRE_OPEN,
                           submitted_by_id=coordinator.id, content={}, sha256="0" * 64))
    session.flush()

    a = assign(session, main, u["reviewer"], stage="full")
    conflicted = assign(session, main, u["conflicted_reviewer"], stage="full")
    session.add(Conflict(call_id=call.id, reviewer_id=u["conflicted_reviewer"].id, proposal_id=main.id,
                         source="declared", rule="declared", reason="I co-authored with the coordinator"))
    reviews = []
    for who in [a] + [assign(session, main, h, stage="full") for h in helpers]:
        r = Review(assignment_id=who.id, proposal_id=main.id, reviewer_id=who.reviewer_id, stage="full",
                   scores=dict(ALL_SCORES), comments={k: REVIEW_COMMENT for k in ALL_SCORES},
                   recommendation="recommended", status="submitted", submitted_at=f.PRE_OPEN)
        session.add(r)
        reviews.append(r)
    # One the secretariat may remove without touching the roles above.
    spare = assign(session, funded, helpers[0], stage="full")
    session.flush()

    # Objects that the secretariat's POSTs may consume without changing the roles.
    spare_user = f.make_user(session, "Spare Officer", email="spare@officer.example.net")
    grant_role(session, None, spare_user, "officer", call.id, f.funder(session, "CIHR-T").id)
    session.flush()
    grant = session.scalar(select(RoleGrant).where(RoleGrant.user_id == spare_user.id))

    sha, key = store_bytes(storage_dir, tiny_pdf())
    document = Document(proposal_id=main.id, stage="full", kind="proposal", filename="zebrafish-xq.pdf",
                        size_bytes=len(tiny_pdf()), page_count=1, sha256=sha, storage_key=key,
                        uploaded_by_id=coordinator.id)
    session.add(document)
    zip_key = "letters/authz-matrix.zip"
    (Path(storage_dir) / "letters").mkdir(parents=True, exist_ok=True)
    (Path(storage_dir) / zip_key).write_bytes(b"PK\x05\x06" + b"\0" * 18)
    job = LetterExportJob(call_id=call.id, stage="full", status="done", file_key=zip_key, total=1, done=1,
                          created_by_id=u["secretariat"].id)
    session.add(job)
    people.invite(session, u["secretariat"], call, email="new.officer@cihr.example.ca", role="officer",
                  funder_id=f.funder(session, "CIHR-T").id, link=lambda token: f"http://jointcall.test/{token}")
    session.flush()
    role_invitation = session.scalar(select(RoleInvitation.id).where(RoleInvitation.call_id == call.id))
    failed = session.scalar(select(OutboxMessage).where(OutboxMessage.call_id == call.id).order_by(OutboxMessage.id))
    failed.status, failed.last_error = "failed", "550 mailbox unavailable"
    proposal_invitation = ProposalInvitation(proposal_id=draft.id, email="pending@partner.example.net",
                                             token_sha256="0" * 64, invited_by_id=coordinator.id,
                                             expires_at=f.PRE_OPEN + dt.timedelta(days=14))
    session.add(proposal_invitation)
    session.commit()

    session.commit()
    w = World(call, other_call, u, {"draft": draft, "sent": sent, "main": main, "funded": funded,
                                    "selected": selected})
    w.ids.update(
        submission=submission.id, document=document.id, job=job.id, grant=grant.id, spare_assignment=spare.id,
        review=reviews[0].id, conflicted_assignment=conflicted.id,
        check=session.scalar(select(EligibilityCheck.id).where(
            EligibilityCheck.proposal_id == main.id, EligibilityCheck.funder_id == f.funder(session, "DFG-T").id)),
        message=failed.id, proposal_invitation=proposal_invitation.id,
        event=close_eligibility_step(session, u["secretariat"], call, "full").event_id,
        invitation=role_invitation, dfg=f.funder(session, "DFG-T").id, anr=f.funder(session, "ANR-T").id,
        anr_check=session.scalar(select(EligibilityCheck.id).where(
            EligibilityCheck.proposal_id == main.id, EligibilityCheck.funder_id == f.funder(session, "ANR-T").id)),
    )
    session.commit()
    return w


def approve_and_confirm(app, w: World, session) -> None:
    """The steering committee approves the funding list; DFG-T and ANR-T confirm ZEBRAFISH-FN (funded);
    ZEBRAFISH-SL stays selected with its confirmations open."""
    client = app.test_client()
    login(client, w.users["secretariat"])
    page = client.get(f"/funding/calls/{w.call.id}/approve").get_data(as_text=True)
    fingerprint = re.search(r'name="fingerprint" type="hidden" value="([0-9a-f]+)"', page)
    assert fingerprint, page
    r = client.post(f"/funding/calls/{w.call.id}/approve", data={"note": "CSC 1", "fingerprint": fingerprint.group(1)})
    assert r.status_code == 302, r.get_data(as_text=True)
    session.expire_all()
    officers = {"DFG-T": w.users["officer"]}
    anr = f.officer(session, w.call, "ANR-T")
    session.commit()
    officers["ANR-T"] = anr
    for acronym in ("DFG-T", "ANR-T"):
        c = session.scalar(select(FundingConfirmation).where(
            FundingConfirmation.proposal_id == w.p["funded"].id,
            FundingConfirmation.funder_id == f.funder(session, acronym).id))
        login(client, officers[acronym])
        r = client.post(f"/funding/confirmations/{c.id}", data={
            f"c{c.id}-decision": "confirm", f"c{c.id}-reason": "", f"c{c.id}-version": str(c.version)})
        assert r.status_code == 302, r.get_data(as_text=True)
    pdf = tiny_pdf()
    session.add(DecisionLetter(call_id=w.call.id, proposal_id=w.p["funded"].id, stage="full", outcome="funded",
                               coordinator_id=w.users["coordinator"].id, recipient=w.users["coordinator"].email,
                               pdf=pdf, sha256="0" * 64, size_bytes=len(pdf), template_sha256="0" * 64,
                               generated_by_id=w.users["secretariat"].id, sent_at=f.PRE_OPEN,
                               sent_by_id=w.users["secretariat"].id))
    session.commit()
    session.expire_all()
    for key, acronym in (("confirmation", "DFG-T"), ("anr_confirmation", "ANR-T")):
        w.ids[key] = session.scalar(select(FundingConfirmation.id).where(
            FundingConfirmation.proposal_id == w.p["selected"].id,
            FundingConfirmation.funder_id == f.funder(session, acronym).id))
        assert w.ids[key] is not None, acronym


def login(client, user) -> None:
    client.post("/logout")
    r = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert r.status_code == 302, r.get_data(as_text=True)


def intact(session, w: World) -> list[str]:
    """What the secretariat's empty or cross-call POSTs must not have changed."""
    from reviews.models import ReviewAssignment

    session.expire_all()
    problems = []
    if session.get(RoleGrant, w.ids["grant"]) is None:
        problems.append("the spare officer's role was revoked")
    if session.get(RoleInvitation, w.ids["invitation"]).revoked_at is not None:
        problems.append("the role invitation was cancelled")
    if session.get(OutboxMessage, w.ids["message"]).status != "failed":
        problems.append("the failed message was queued again")
    if session.get(ReviewAssignment, w.ids["spare_assignment"]) is None:
        problems.append("the spare review assignment was removed")
    return problems
