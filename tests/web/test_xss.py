"""Stored XSS and formula injection (issue 8, item 2), checked where the text is shown.

One world with every kind of object (tests/web/authz_world.py) gets hostile text in every free-text field:
proposal acronym, title and abstract, partner organisations and PI names, user names, review comments,
eligibility and conflict reasons, the rebuttal, the panel's consensus. Then every GET page of the URL map is
fetched as each role: no HTML page may carry the markup unescaped, every CSV/XLSX export keeps
formula-looking text as text, every PDF renders. The e-mails and the receipt PDF are checked through the
applicant's own journey: plain text mail, the literal text in the PDF.
"""

from __future__ import annotations

import csv
import io
import re

import openpyxl
import pytest
from pypdf import PdfReader
from sqlalchemy import select

from reviews.models import Conflict, PanelConsensus, Review
from tests import factories as f
from tests.conftest import body_of
from tests.unit.reviews_helpers import ALL_SCORES
from tests.web import authz_world as aw
from tests.web.test_authz_matrix import url_args
from webapp.mail import deliver_pending
from workflow.db import Base
from workflow.models import EligibilityCheck, Proposal, Rebuttal, Submission, User

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
FORMULA = "=cmd|' /C calc'!A0"
FORMULAS = (FORMULA, "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0")
RAW_MARKUP = ("<script>alert", "<img src=x", "onerror=alert(1)>")
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"
TRIGGERS = ("=", "+", "-", "@")


@pytest.fixture(autouse=True)
def all_tables(engine):
    from reviews import plugin

    Base.metadata.create_all(engine, checkfirst=True)
    plugin.install()


def poison(session, w) -> None:
    """Hostile text in every free-text field of the world."""
    main, funded = w.p["main"], w.p["funded"]
    main.acronym, main.title = "ZQ" + SCRIPT, SCRIPT + " " + IMG
    main.abstract = f"{SCRIPT}\n{IMG}\n{FORMULA}"
    funded.acronym, funded.title = "ZQ" + IMG, FORMULA
    for partner, org, name in zip(main.partners, (FORMULA, IMG, FORMULAS[2]), (SCRIPT, FORMULAS[3], IMG),
                                  strict=False):
        partner.organisation, partner.pi_name = org, name
    for partner in funded.partners:
        partner.organisation, partner.pi_name = FORMULAS[1], SCRIPT
    w.users["coordinator"].name = "Cora " + SCRIPT
    w.users["reviewer"].name = "Rita " + IMG
    w.users["member"].name = FORMULA
    for review in session.scalars(select(Review)):
        review.comments = {k: FORMULA + " " + SCRIPT + IMG for k in ALL_SCORES}
    for check in session.scalars(select(EligibilityCheck)):
        check.reason = FORMULAS[1] + SCRIPT + IMG
    for conflict in session.scalars(select(Conflict)):
        conflict.reason = FORMULA + SCRIPT + IMG
    session.add(Rebuttal(proposal_id=main.id, text=FORMULA + SCRIPT + IMG, submitted_at=f.PRE_OPEN,
                         submitted_by_id=w.users["coordinator"].id))
    session.add(PanelConsensus(call_id=w.call.id, proposal_id=main.id, stage="full", scores=dict(ALL_SCORES),
                               weighted_total=11.5, recommendation="recommended",
                               summary=FORMULA + SCRIPT + IMG, entered_by_id=w.users["secretariat"].id))
    session.commit()


def variants(rule, args: dict) -> list[dict]:
    """The URL arguments to fetch: every export format and every export of the reviews."""
    out = [args]
    if "fmt" in args:
        fmts = {"funding.letter_preview": ("html", "pdf")}.get(rule.endpoint, ("csv", "xlsx"))
        out = [{**args, "fmt": fmt} for fmt in fmts]
    if rule.endpoint == "secretariat.reviews_export":
        out = [{**a, "what": what} for a in out for what in ("reviews", "scores", "ranking")]
        out.append({**args, "what": "ranking", "fmt": "pdf"})
    return out


def csv_problems(body: bytes) -> list[str]:
    problems = []
    for row in csv.reader(io.StringIO(body.decode("utf-8-sig"))):
        for cell in row:
            if cell.startswith(TRIGGERS):
                try:
                    float(cell)
                except ValueError:
                    problems.append(f"formula-like CSV cell {cell!r}")
    return problems


def xlsx_problems(body: bytes) -> list[str]:
    problems = []
    for sheet in openpyxl.load_workbook(io.BytesIO(body)).worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if cell.data_type == "f":
                    problems.append(f"formula cell {cell.coordinate}={cell.value!r}")
                elif isinstance(cell.value, str) and cell.value.startswith(TRIGGERS):
                    problems.append(f"formula-like text cell {cell.coordinate}={cell.value!r}")
    return problems


def test_hostile_text_is_never_markup_or_a_formula_anywhere(app, session, frozen, settings_overrides):
    w = aw.build(session, settings_overrides["storage_dir"], frozen)
    w.ids["dfg"] = f.funder(session, "DFG-T").id
    aw.approve_and_confirm(app, w, session)
    poison(session, w)
    roles = ("coordinator", "member", "officer", "reviewer", "secretariat", "admin")
    clients = {}
    for role in roles:
        clients[role] = app.test_client()
        aw.login(clients[role], w.users[role])

    problems, escaped_on, quoted_in, pdfs = [], set(), set(), 0
    adapter = app.url_map.bind("jointcall.test")
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint in ("static", "auth.logout") or "GET" not in rule.methods:
            continue
        for args in variants(rule, url_args(w, rule)):
            url = adapter.build(rule.endpoint, args)
            for role in roles:
                response = clients[role].get(url)
                where = f"{url} as {role}"
                if response.status_code >= 500:
                    problems.append(f"{where}: {response.status_code}")
                if response.status_code != 200:
                    continue
                body = response.get_data()
                if response.mimetype == "text/html":
                    text = body.decode("utf-8")
                    problems += [f"{where}: unescaped {m!r}" for m in RAW_MARKUP if m in text]
                    if ESCAPED_SCRIPT in text:
                        escaped_on.add(rule.endpoint)
                elif response.mimetype == "text/csv":
                    problems += [f"{where}: {p}" for p in csv_problems(body)]
                    if "'" + FORMULA in body.decode("utf-8-sig"):
                        quoted_in.add(rule.endpoint)
                elif response.mimetype.endswith("spreadsheetml.sheet"):
                    problems += [f"{where}: {p}" for p in xlsx_problems(body)]
                elif response.mimetype == "application/pdf":
                    PdfReader(io.BytesIO(body)).pages[0].extract_text()
                    pdfs += 1
    assert problems == [], "\n".join(problems)
    # The hostile text was really shown (escaped) on the pages that show it, and exported as quoted text.
    assert {"applicant.proposal", "applicant.dashboard", "applicant.rebuttal", "secretariat.proposal_list",
            "secretariat.matrix", "secretariat.reviews_panel", "secretariat.reviews_consensus", "funder.dashboard",
            "funder.partner", "reviewer.proposal", "reviewer.reviews", "reviewer.conflicts"} <= escaped_on, sorted(escaped_on)
    assert {"secretariat.proposal_export", "funder.export"} <= quoted_in, sorted(quoted_in)
    assert pdfs >= 1


def login(client, user):
    client.post("/logout")
    assert client.post("/login", data={"email": user.email, "password": aw.PASSWORD}).status_code == 302


def test_hostile_text_stays_literal_in_the_mail_and_the_receipt_pdf(app, client, session, frozen, mailbox):
    frozen(f.PRE_OPEN)
    call = f.make_call(session)
    coordinator = f.make_user(session, "Cora " + SCRIPT, email="cora@example.org")
    proposal = f.valid_proposal(session, call, coordinator, acronym="ZQ" + SCRIPT)
    proposal.title = IMG + " " + FORMULA
    session.commit()
    login(client, coordinator)
    page = client.get(f"/my/proposals/{proposal.id}")
    assert ESCAPED_SCRIPT in page.get_data(as_text=True)
    assert SCRIPT not in page.get_data(as_text=True)
    response = client.post(f"/my/proposals/{proposal.id}/submit",
                           data={"version": str(session.get(Proposal, proposal.id).version), "confirm": "y"})
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():  # as `jointcall outbox send` runs it
        deliver_pending(app.extensions["jointcall.sessions"], app.config["JOINTCALL"])
    mailbox.wait_for(1)
    (message,) = mailbox.to(coordinator.email)
    assert [part.get_content_type() for part in message.walk() if part.get_content_maintype() == "text"] \
        == ["text/plain"]  # no HTML part a mail reader could run
    (attachment,) = list(message.iter_attachments())
    attached = re.sub(r"\s+", "", "".join(p.extract_text() for p in PdfReader(io.BytesIO(attachment.get_content())).pages))
    assert re.sub(r"\s+", "", "ZQ" + SCRIPT) in attached
    assert "ZQ" + SCRIPT in body_of(message)  # plain text shows the literal text
    assert "\n" not in str(message["Subject"]) and "ZQ" + SCRIPT in str(message["Subject"])

    session.expire_all()
    submission = session.scalar(select(Submission).where(Submission.proposal_id == proposal.id))
    pdf = client.get(f"/my/proposals/{proposal.id}/receipts/{submission.id}.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.data)).pages)
    flat = re.sub(r"\s+", "", text)
    assert re.sub(r"\s+", "", "ZQ" + SCRIPT) in flat
    assert re.sub(r"\s+", "", IMG) in flat


def test_a_user_name_with_markup_is_escaped_in_the_navigation(client, session):
    user = f.make_user(session, SCRIPT + IMG, email="evil@example.org")
    session.commit()
    login(client, user)
    page = client.get("/").get_data(as_text=True)
    assert ESCAPED_SCRIPT in page
    assert not any(m in page for m in RAW_MARKUP)
    assert session.scalar(select(User).where(User.email == "evil@example.org")).name == SCRIPT + IMG


def test_flash_messages_repeat_hostile_names_escaped(app, client, session, frozen):
    from tests.unit.test_documents import make_pdf
    from tests.web.test_editor import partner_form

    frozen(f.PRE_OPEN)
    call = f.make_call(session)
    coordinator = f.make_user(session, "Cora", email="cora@example.org")
    proposal = f.valid_proposal(session, call, coordinator)
    session.commit()
    login(client, coordinator)
    added = client.post(f"/my/proposals/{proposal.id}/partners/new", data=partner_form(
        session, organisation=SCRIPT + IMG, pi_name=IMG, pi_email="x@example.org"), follow_redirects=True)
    assert added.status_code == 200
    page = added.get_data(as_text=True)
    assert ESCAPED_SCRIPT in page and not any(m in page for m in RAW_MARKUP)
    uploaded = client.post(f"/my/proposals/{proposal.id}/documents", data={
        "kind": "project_description", "partner": "", "file": (io.BytesIO(make_pdf(1)), SCRIPT + IMG + ".pdf")},
        content_type="multipart/form-data", follow_redirects=True)
    assert uploaded.status_code == 200
    page = uploaded.get_data(as_text=True)
    assert "uploaded" in page and not any(m in page for m in RAW_MARKUP)
