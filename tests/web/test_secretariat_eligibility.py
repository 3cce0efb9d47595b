"""The secretariat's eligibility pages: closing submission (refused before the deadline), the formal check
with the rules engine's findings, the proposals × funders matrix and its exports (agreeing with the
database), reminders that reach the officers' real mailboxes once a day, and closing the step."""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser

import openpyxl
import pytest
from sqlalchemy import func, select

from tests import factories as f
from tests.conftest import body_of
from tests.web.test_funder import build_world, login, text_of, unquote
from webapp.mail import deliver_pending
from workflow import guards
from workflow.eligibility import blocking_ineligible_checks
from workflow.models import AuditEvent, CallStage, EligibilityCheck, OutboxMessage, Proposal
from workflow.operations import sign_off


def matrix_url(w, suffix: str = "") -> str:
    return f"/secretariat/calls/{w.call.id}/eligibility/pre{suffix}"


def close_url(w) -> str:
    return f"/secretariat/calls/{w.call.id}/stages/pre/close"


class _Cells(HTMLParser):
    """{(row id, data-funder): text} of the matrix table."""

    def __init__(self):
        super().__init__()
        self.cells, self.row, self.col, self.buf = {}, None, None, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            self.row = attrs.get("id")
        elif tag == "td" and "data-funder" in attrs:
            self.col, self.buf = attrs["data-funder"], []
        elif self.col is not None:
            self.buf.append(" ")

    def handle_endtag(self, tag):
        if tag == "td" and self.col is not None:
            self.cells[(self.row, self.col)] = re.sub(r"\s+", " ", "".join(self.buf)).strip()
            self.col = None

    def handle_data(self, data):
        if self.col is not None:
            self.buf.append(data)


def cells_of(html: str) -> dict:
    parser = _Cells()
    parser.feed(html)
    return parser.cells


LABEL = {"pending": "Pending", "eligible": "Eligible", "ineligible": "Not eligible"}


def expected_cells(session, w) -> dict:
    """What the matrix must show, computed from the database."""
    session.expire_all()
    out = {}
    for p in w.proposals:
        checks = session.scalars(select(EligibilityCheck).where(EligibilityCheck.proposal_id == p.id)).all()
        formal = next(c for c in checks if c.partner_id is None)
        out[(f"proposal-{p.id}", "formal")] = LABEL[formal.status] + (f" {formal.reason}" if formal.reason else "")
        for acronym in ("ANR-T", "DFG-T", "ISCIII-T"):
            mine = sorted((c for c in checks if c.funder_id == f.funder(session, acronym).id),
                          key=lambda c: c.partner.position)
            parts = []
            for c in mine:
                text = (f"{c.partner.organisation}: " if len(mine) > 1 else "") + LABEL[c.status]
                if c.status == "ineligible":
                    text += f" {c.reason}"
                parts.append(text)
            out[(f"proposal-{p.id}", acronym)] = " ".join(parts)
    return out


@pytest.fixture
def world(session, frozen):
    return build_world(session, frozen)


# ---------------------------------------------------------------------------------------------------------
# Closing submission


def test_close_page_before_the_deadline_shows_it_and_refuses(client, session, frozen):
    w = build_world(session, frozen, close=False)
    frozen(f.PRE_OPEN)
    login(client, w.sec)
    page = text_of(client.get(close_url(w)))
    assert "5 March 2030, 17:00 CET" in page and "not passed yet" in page
    assert "Submission cannot be closed before the deadline" in page
    assert re.search(r'id="submitted-count">3<', page) and re.search(r'id="draft-count">1<', page)
    assert "Close submission</button>" not in page

    refused = client.post(close_url(w))
    assert refused.status_code == 422
    assert "submission cannot be closed before it" in text_of(refused)
    session.expire_all()
    assert {p.state for p in session.scalars(select(Proposal))} == {"submitted", "draft"}
    assert session.scalar(select(CallStage.closed_at).where(CallStage.kind == "pre")) is None


def test_close_page_after_the_deadline_says_what_will_happen_and_does_it(client, session, frozen):
    w = build_world(session, frozen, close=False)
    login(client, w.sec)
    page = text_of(client.get(close_url(w)))
    assert "passed" in page
    assert "3 submitted proposals go to the eligibility check; 1 draft will be marked not submitted." in page
    response = client.post(close_url(w), follow_redirects=True)
    assert response.status_code == 200
    assert "3 proposals went to the eligibility check; 1 draft was marked not submitted." in text_of(response)
    session.expire_all()
    states = sorted(p.state for p in session.scalars(select(Proposal)))
    assert states == ["eligibility_check"] * 3 + ["not_submitted"]
    assert session.scalar(select(func.count(EligibilityCheck.id))) == 3 * 5
    assert session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "stage.closed")) == 1
    # the matrix is where the redirect lands
    assert "Eligibility check: pre-proposal stage" in text_of(response)


def test_only_the_secretariat_reaches_its_pages(client, session, world):
    check = session.scalars(select(EligibilityCheck)).first()
    urls = [("GET", close_url(world)), ("POST", close_url(world)), ("GET", matrix_url(world)),
            ("GET", matrix_url(world, "/matrix.csv")), ("GET", matrix_url(world, "/matrix.xlsx")),
            ("POST", matrix_url(world, "/remind")), ("POST", matrix_url(world, "/close")),
            ("GET", f"/secretariat/proposals/{check.proposal_id}/eligibility/pre"),
            ("POST", f"/secretariat/proposals/{check.proposal_id}/eligibility/pre"),
            ("GET", "/secretariat/eligibility")]
    for who in (world.dfg, world.proposals[0].coordinator):
        login(client, who)
        for method, url in urls:
            response = client.open(url, method=method, data={"verdict": "eligible"})
            assert response.status_code == 403, (who, method, url)
            assert "only" in text_of(response) and "secretariat" in text_of(response)
    session.expire_all()
    assert {c.status for c in session.scalars(select(EligibilityCheck))} == {"pending"}
    assert session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.kind != "submission_receipt")) == 0


# ---------------------------------------------------------------------------------------------------------
# The formal check


def test_formal_check_shows_the_rules_engines_findings_and_prefills_them(client, session, world):
    p = world.proposals[0]
    url = f"/secretariat/proposals/{p.id}/eligibility/pre"
    login(client, world.sec)
    page = text_of(client.get(url))
    assert "The rules engine finds nothing against the call rules" in page
    assert "Institut Curie" in page and "Hospital Clínic" in page  # every funder's partners, read-only

    # the call's rules change after submission (say the secretariat corrected the limit): findings appear
    call = world.call
    definition = dict(call.definition)
    definition["consortium"] = {**definition["consortium"], "max_partners": 3}
    call.definition = definition
    session.commit()
    response = client.get(url)
    page = text_of(response)
    assert "at most 3 partners are allowed; you have 4" in page
    body = response.get_data(as_text=True)
    assert 'value="ineligible" checked' in body
    assert re.search(r"<textarea[^>]*>The call rules are not met: at most 3 partners are allowed; you have 4\.</textarea>",
                     body)


def test_formal_sign_off_saves_audits_and_reports_a_concurrent_change(app, session, world):
    p = world.proposals[0]
    url = f"/secretariat/proposals/{p.id}/eligibility/pre"
    first, second = app.test_client(), app.test_client()
    other = f.secretariat(session, world.call)
    session.commit()
    login(first, world.sec)
    login(second, other)
    refused = first.post(url, data={"verdict": "ineligible", "reason": "", "version": "1"})
    assert refused.status_code == 422 and 'id="reason-error"' in refused.get_data(as_text=True)
    saved = first.post(url, data={"verdict": "ineligible", "reason": "outside the call's scope", "version": "1"},
                       follow_redirects=True)
    assert "Formal check saved: ALPHA is not eligible under the call rules." in text_of(saved)
    lost = second.post(url, data={"verdict": "eligible", "version": "1"})
    assert lost.status_code == 422
    assert "was changed by someone else meanwhile" in text_of(lost)
    session.expire_all()
    formal = session.scalar(select(EligibilityCheck).where(EligibilityCheck.proposal_id == p.id,
                                                          EligibilityCheck.partner_id.is_(None)))
    assert (formal.status, formal.reason, formal.decided_by_id) == ("ineligible", "outside the call's scope",
                                                                    world.sec.id)
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "eligibility.signed_off")).one()
    assert event.object_id == formal.id and event.after["reason"] == "outside the call's scope"


# ---------------------------------------------------------------------------------------------------------
# The matrix and its exports


def _some_verdicts(session, w):
    a, b, c = w.proposals
    checks = {(x.proposal_id, x.funder_id, x.partner_id): x for x in session.scalars(select(EligibilityCheck))}
    dfg, anr = f.funder(session, "DFG-T").id, f.funder(session, "ANR-T").id
    heidelberg_b = b.partners[3].id
    sign_off(session, w.dfg, checks[(b.id, dfg, heidelberg_b)].id, "ineligible", "=not a university")
    sign_off(session, w.anr, checks[(a.id, anr, a.partners[1].id)].id, "eligible")
    sign_off(session, w.sec, checks[(c.id, None, None)].id, "eligible")
    session.commit()


def test_matrix_agrees_with_the_database(client, session, world):
    _some_verdicts(session, world)
    login(client, world.sec)
    response = client.get(matrix_url(world))
    html = response.get_data(as_text=True)
    cells = cells_of(html)
    expected = expected_cells(session, world)
    assert {k: v for k, v in cells.items() if k in expected} == expected
    assert "MOH-T" not in html  # a funder without partners in this stage has no column
    # pending per funder: DFG-T 6 - 1 decided, ANR-T 3 - 1, ISCIII-T 3, formal 3 - 1
    assert cells[("pending-row", "DFG-T")] == "5"
    assert cells[("pending-row", "ANR-T")] == "2"
    assert cells[("pending-row", "ISCIII-T")] == "3"
    assert "2 formal checks pending; ANR-T: 2 pending; DFG-T: 5 pending; ISCIII-T: 3 pending." in text_of(response)


def test_matrix_exports_agree_with_the_database(client, session, world):
    _some_verdicts(session, world)
    login(client, world.sec)
    expected = expected_cells(session, world)

    def check(rows):
        header = rows[0]
        assert header[:4] == ["Reference", "Acronym", "Proposal state", "Formal check"]
        assert header[4:7] == ["ANR-T", "DFG-T", "ISCIII-T"]
        by_ref = {r[0]: [unquote(v) for v in r] for r in rows[1:]}
        assert len(by_ref) == 3
        for p in world.proposals:
            row = by_ref[p.reference]
            assert row[1] == p.acronym and row[2] == "Eligibility check"
            got = {"formal": row[3], "ANR-T": row[4], "DFG-T": row[5], "ISCIII-T": row[6]}
            for col, text in got.items():
                want = expected[(f"proposal-{p.id}", col)]
                assert re.sub(r"[():;]", "", text).split() == re.sub(r"[():;]", "", want).split(), (col, text, want)
            session.expire_all()
            pending = session.scalar(select(func.count(EligibilityCheck.id)).where(
                EligibilityCheck.proposal_id == p.id, EligibilityCheck.status == "pending"))
            assert int(row[7]) == pending

    body = client.get(matrix_url(world, "/matrix.csv")).get_data().decode("utf-8-sig")
    check(list(csv.reader(io.StringIO(body))))
    xlsx = client.get(matrix_url(world, "/matrix.xlsx")).get_data()
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx)).active
    check([list(r) for r in sheet.iter_rows(values_only=True)])
    assert not any(cell.data_type == "f" for row in sheet.iter_rows() for cell in row)


# ---------------------------------------------------------------------------------------------------------
# Reminders


def test_reminders_queue_one_mail_per_officer_once_a_day_and_arrive(app, client, session, world, mailbox, frozen):
    for c in session.scalars(select(EligibilityCheck).where(
            EligibilityCheck.funder_id == f.funder(session, "ISCIII-T").id)):
        sign_off(session, world.isciii, c.id, "eligible")  # ISCIII-T is done: its officer is not reminded
    session.commit()
    login(client, world.sec)
    response = client.post(matrix_url(world, "/remind"), follow_redirects=True)
    assert "3 reminders queued for funder officers with pending checks." in text_of(response)
    messages = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "eligibility_reminder")).all()
    assert sorted(m.to_address for m in messages) == sorted([world.dfg.email, world.dfg2.email, world.anr.email])

    deliver_pending(app.extensions["jointcall.sessions"], app.config["JOINTCALL"])
    mailbox.wait_for(6)  # the three submission receipts of the set-up, and the three reminders
    reminders = [m for m in mailbox.messages if "Reminder:" in m["Subject"]]
    assert sorted(m["To"] for m in reminders) == sorted([world.dfg.email, world.dfg2.email, world.anr.email])
    [dfg_mail] = mailbox.to(world.dfg.email)
    body = body_of(dfg_mail)
    assert "6 partners" in dfg_mail["Subject"]
    for p in world.proposals:
        assert f"{p.reference} {p.acronym}: Charité Berlin" in body
    assert "Institut Curie" not in body and "Hospital Clínic" not in body
    assert f"http://jointcall.test/funder/calls/{world.call.id}/pre" in body
    [anr_mail] = mailbox.to(world.anr.email)
    assert "Institut Curie" in body_of(anr_mail) and "Charité" not in body_of(anr_mail)

    again = client.post(matrix_url(world, "/remind"), follow_redirects=True)
    assert "3 officers already reminded today." in text_of(again)
    session.expire_all()
    assert session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == "eligibility_reminder")) == 3
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "eligibility.reminded")).all()
    assert len(events) == 1 and sorted(events[0].after["officers"]) == sorted(
        [world.dfg.email, world.dfg2.email, world.anr.email])

    frozen(f.PRE_CLOSED.replace(day=f.PRE_CLOSED.day + 1))  # the next day: reminded again
    client.post(matrix_url(world, "/remind"))
    session.expire_all()
    assert session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == "eligibility_reminder")) == 6


# ---------------------------------------------------------------------------------------------------------
# Closing the eligibility step


def _decide(session, w, proposal, verdicts: dict):
    """verdicts: {"formal" | partner position: (status, reason)}; unlisted checks are left as they are."""
    session.expire_all()
    for c in session.scalars(select(EligibilityCheck).where(EligibilityCheck.proposal_id == proposal.id)):
        key = "formal" if c.partner_id is None else c.partner.position
        if key in verdicts:
            status, reason = verdicts[key]
            actor = w.sec if key == "formal" else {
                "DFG-T": w.dfg, "ANR-T": w.anr, "ISCIII-T": w.isciii}[c.partner.funder.acronym]
            sign_off(session, actor, c.id, status, reason)
    session.commit()


ALL_ELIGIBLE = {"formal": ("eligible", None), 1: ("eligible", None), 2: ("eligible", None),
                3: ("eligible", None), 4: ("eligible", None)}


def test_closing_the_step_moves_proposals_and_keeps_those_pending(client, session, frozen):
    w = build_world(session, frozen, allow_replacing_ineligible_partner=False)
    a, b, c = w.proposals
    _decide(session, w, a, ALL_ELIGIBLE)
    _decide(session, w, b, {**ALL_ELIGIBLE, 2: ("ineligible", "the institute is not a registered research body")})
    _decide(session, w, c, {"formal": ("eligible", None), 1: ("eligible", None)})
    login(client, w.sec)
    matrix = text_of(client.get(matrix_url(w)))
    assert "1 goes on, 1 becomes ineligible, 1 waits for pending checks." in matrix

    response = client.post(matrix_url(w, "/close"))
    assert response.status_code == 302 and "/closings/" in response.headers["Location"]
    page = text_of(client.get(response.headers["Location"]))
    assert "1 proposal went on; 1 was found ineligible; 1 stays in the eligibility check." in page
    assert f"{a.reference} ALPHA → Pre-proposal review" in page
    assert "Institut Curie (ANR-T) — the institute is not a registered research body" in page
    assert f"{c.reference} GAMMA: 3 checks pending" in page

    session.expire_all()
    assert [session.get(Proposal, p.id).state for p in (a, b, c)] == ["pre_review", "ineligible", "eligibility_check"]
    # the reasons are recorded for the coordinator: on the check, in the transition's audit event, in a mail
    declared = session.scalars(select(AuditEvent).where(AuditEvent.action == "proposal.declare_ineligible")).one()
    assert declared.object_id == b.id and "the institute is not a registered research body" in declared.reason
    [mail] = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "decision")).all()
    assert mail.to_address == b.coordinator.email
    closed = session.scalars(select(AuditEvent).where(AuditEvent.action == "eligibility.step_closed")).one()
    assert [e["reference"] for e in closed.after["pending"]] == [c.reference]

    # a pending proposal can still be signed off and closed later
    _decide(session, w, c, ALL_ELIGIBLE)
    page = text_of(client.get(client.post(matrix_url(w, "/close")).headers["Location"]))
    assert "1 proposal went on; 0 were found ineligible; 0 stay in the eligibility check." in page
    session.expire_all()
    assert session.get(Proposal, c.id).state == "pre_review"
    matrix = text_of(client.get(matrix_url(w)))
    assert "Pre-proposal review" in matrix and "Ineligible" in matrix


def test_replacing_an_ineligible_partner_lets_the_proposal_go_on_once_the_guards_use_it(
        client, session, world, monkeypatch):
    """The call allows replacing a partner its own funder found ineligible (the default). With the guard
    change proposed for workflow/guards.py, the proposal goes on to pre-review and the coordinator is told."""
    def all_eligible(proposal, ctx):
        checks = guards._checks(proposal, ctx)
        if not checks:
            return "no eligibility checks have been opened for this proposal"
        if any(c.status == "pending" for c in checks):
            return "checks pending"
        if blocking_ineligible_checks(proposal, checks):
            return "a check found the proposal or a partner ineligible"
        return None

    monkeypatch.setitem(guards._GUARDS, "checks_all_eligible", all_eligible)
    a = world.proposals[0]
    _decide(session, world, a, {**ALL_ELIGIBLE, 4: ("ineligible", "Heidelberg is not eligible for DFG-T funding")})
    login(client, world.sec)
    assert "(1 with a partner to replace)" in text_of(client.get(matrix_url(world)))
    page = text_of(client.get(client.post(matrix_url(world, "/close")).headers["Location"]))
    assert "Going on, with a partner to replace at the full stage" in page
    assert "Universität Heidelberg (DFG-T: Heidelberg is not eligible for DFG-T funding)" in page
    session.expire_all()
    assert session.get(Proposal, a.id).state == "pre_review"
    [mail] = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "eligible_replace_partner")).all()
    assert mail.to_address == a.coordinator.email and "replace or remove that partner" in mail.body_text
