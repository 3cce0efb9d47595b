"""The funding decision in the browser (Flask test client): budgets and increases, the scenario in rank order
with reasons and budget bars, what-if without saving, the steering committee's approval after a
confirmation page, funders confirming or declining their own partners (a decline recomputes the list),
"changed meanwhile", the per-funder funding lists, and who may see what.

The world is the hand-checked scenario of tests/unit/test_funding_ops.py, with one coordinator per proposal:

    ONE    DFG 300,000  ANR 700,000  ISCIII 300,000  selected
    TWO    DFG 250,000  ANR 600,000  ISCIII 300,000  selected
    THREE  DFG 200,000  ANR 400,000                  blocked: ANR-T short €200,000 (a gap)
    FOUR   DFG 200,000               ISCIII 150,000  selected
    FIVE                ANR 150,000  ISCIII 400,000  reserve: ISCIII-T short €350,000

No approved ranking list exists in these tests (except where one is built), so the pages use the fallback
order: by proposal reference, which is the rank order above.
"""

from __future__ import annotations

import csv
import html
import io
import re
from dataclasses import dataclass

import openpyxl
import pytest
from sqlalchemy import func, select

from tests import factories as f
from workflow.funding_models import BudgetIncrease, FundingConfirmation, FundingLine, FundingScenario
from workflow.models import AuditEvent, Partner, Proposal, User

PASSWORD = "correct horse battery"
PROPOSALS = (
    ("ONE", {"DFG-T": 300_000, "ANR-T": 700_000, "ISCIII-T": 300_000}, "Zoë García"),
    ("TWO", {"DFG-T": 250_000, "ANR-T": 600_000, "ISCIII-T": 300_000}, "Łucja Wójcik"),
    ("THREE", {"DFG-T": 200_000, "ANR-T": 400_000}, "Søren Ødegård"),
    ("FOUR", {"DFG-T": 200_000, "ISCIII-T": 150_000}, "Jürgen Groß"),
    ("FIVE", {"ANR-T": 150_000, "ISCIII-T": 400_000}, "Éloïse Lefèvre"),
)
COUNTRY = {"DFG-T": "DE", "ANR-T": "FR", "ISCIII-T": "ES"}
ORGANISATION = {"DFG-T": "Charité Berlin", "ANR-T": "Institut Curie", "ISCIII-T": "Hospital Clínic"}


def words(response) -> str:
    """The page's text as a person reads it."""
    text = response.get_data(as_text=True)
    text = re.sub(r"</?(strong|span|em|a|code|b|i|small)\b[^>]*>", "", text)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


def login(client, user: User) -> None:
    client.post("/logout")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)


def row_of(response, reference: str) -> str:
    match = re.search(rf'<tr id="row-{reference}"(.*?)</tr>', response.get_data(as_text=True), re.S)
    assert match, f"no row for {reference}"
    return match.group(0)


@dataclass
class World:
    session: object
    call: object
    sec: User
    officers: dict
    fid: dict
    p: dict

    @property
    def ranking(self) -> list[int]:
        return [self.p[a].id for a, _, _ in PROPOSALS]

    def states(self) -> dict[str, str]:
        self.session.expire_all()
        return {a: self.session.get(Proposal, p.id).state for a, p in self.p.items()}

    def confirmation(self, acronym: str, funder: str) -> FundingConfirmation:
        self.session.expire_all()
        return self.session.scalar(select(FundingConfirmation).where(
            FundingConfirmation.proposal_id == self.p[acronym].id, FundingConfirmation.funder_id == self.fid[funder]))


def build_world(session, *, code: str = "test-call") -> World:
    """The five recommended proposals above (as if they went through review), the secretariat and officers
    of DFG-T, ANR-T, ISCIII-T and CIHR-T (which funds nobody here)."""
    call = f.make_call(session, code=code)
    sec = f.secretariat(session, call)
    officers = {a: f.officer(session, call, a) for a in ("DFG-T", "ANR-T", "ISCIII-T", "CIHR-T")}
    fid = {a: f.funder(session, a).id for a in ("DFG-T", "ANR-T", "ISCIII-T", "MOH-T", "CIHR-T")}
    proposals = {}
    for n, (acronym, asks, coordinator_name) in enumerate(PROPOSALS, start=1):
        slug = acronym.lower()
        coordinator = f.make_user(session, coordinator_name, email=f"coordinator.{slug}@example.org")
        p = Proposal(call=call, reference=f"TEST-{n:04d}", acronym=acronym, title=f"{acronym}: precision medicine",
                     coordinator=coordinator, state="recommended")
        for position, (acr, amount) in enumerate(asks.items(), start=1):
            p.partners.append(Partner(
                position=position, organisation=f"{ORGANISATION[acr]} ({acronym})", country=COUNTRY[acr],
                funder_id=fid[acr], pi_name=coordinator_name if position == 1 else f"PI {acronym} {position}",
                pi_email=f"{slug}.{position}@example.org", requested_amount=amount, budget={"personnel": amount}))
        session.add(p)
        session.flush()
        proposals[acronym] = p
    session.commit()
    return World(session, call, sec, officers, fid, proposals)


@pytest.fixture
def world(session) -> World:
    return build_world(session)


def approve(client, w: World, note: str = "CSC meeting of 30 September 2030, item 4"):
    login(client, w.sec)
    page = client.get(f"/funding/calls/{w.call.id}/approve")
    fingerprint = re.search(r'name="fingerprint" type="hidden" value="([0-9a-f]+)"', page.get_data(as_text=True))
    assert fingerprint, page.get_data(as_text=True)
    return client.post(f"/funding/calls/{w.call.id}/approve", data={"note": note, "fingerprint": fingerprint.group(1)})


def confirm(client, w: World, acronym: str, funder: str, decision: str = "confirm", reason: str = "", version=None):
    c = w.confirmation(acronym, funder)
    login(client, w.officers[funder])
    return client.post(f"/funding/confirmations/{c.id}", data={
        f"c{c.id}-decision": decision, f"c{c.id}-reason": reason,
        f"c{c.id}-version": str(c.version if version is None else version)})


# ---------------------------------------------------------------------------------------------------------
# The scenario


def test_the_scenario_shows_the_rank_order_the_reasons_and_the_budget_bars(client, world):
    login(client, world.sec)
    response = client.get(f"/funding/calls/{world.call.id}/scenario")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    order = re.findall(r'<tr id="row-(TEST-\d+)" data-status="(\w+)"', page)
    assert order == [("TEST-0001", "selected"), ("TEST-0002", "selected"), ("TEST-0003", "blocked"),
                     ("TEST-0004", "selected"), ("TEST-0005", "reserve")]
    text = words(response)
    assert "blocked by ANR-T (short €200,000)" in text and "blocked by ISCIII-T (short €350,000)" in text
    three = row_of(response, "TEST-0003")
    assert 'data-funder="ANR-T">€400,000<br><small class="text-danger">short €200,000</small>' in three
    assert "a gap in the ranking" in three
    # Nothing is decided yet, and the order's origin is said.
    assert "Draft" in text and "No approved full-stage ranking list was found" in text
    # Bars: ANR-T allocated 700k + 600k of 1.5M; drawn as SVG, no script.
    bar = re.search(r'<tr id="bar-ANR-T">(.*?)</tr>', page, re.S).group(1)
    assert 'aria-label="ANR-T: €1,300,000 allocated of €1,500,000, €200,000 left"' in bar
    assert re.search(r'class="bar-allocated" x="0" y="0" width="86.67"', bar)
    assert "<script" not in page and "style=" not in page
    # CIHR-T and MOH-T fund nobody here: no column, no bar.
    assert 'id="bar-CIHR-T"' not in page and 'data-funder="MOH-T"' not in page


def test_who_may_see_and_do_what(client, world, session):
    call = world.call.id
    assert client.get(f"/funding/calls/{call}/scenario").status_code == 302  # to the login
    login(client, world.officers["CIHR-T"])
    response = client.get(f"/funding/calls/{call}/scenario")
    assert response.status_code == 200 and "TEST-0003" in response.get_data(as_text=True)
    assert "Record the steering committee" not in words(response) and "what-if" not in words(response)
    for url, reason in ((f"/funding/calls/{call}/what-if", "only the call secretariat can try budget increases"),
                        (f"/funding/calls/{call}/approve", "only the call secretariat can record the steering"),
                        (f"/funding/calls/{call}/letters", "only the call secretariat can manage this call")):
        response = client.get(url)
        assert response.status_code == 403 and reason in words(response)
    coordinator = world.p["ONE"].coordinator
    login(client, coordinator)
    response = client.get(f"/funding/calls/{call}/scenario")
    assert response.status_code == 403
    assert "only the call secretariat and the funders' officers can see the funding scenario" in words(response)
    assert client.get("/funding/").status_code == 403


# ---------------------------------------------------------------------------------------------------------
# Budgets


def test_an_officer_sees_and_raises_only_their_own_funders_budget(client, world, session):
    login(client, world.officers["ANR-T"])
    response = client.get(f"/funding/calls/{world.call.id}/budgets")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'id="budget-ANR-T"' in page and 'id="budget-DFG-T"' not in page and "Gap pot" not in page
    assert "€1,500,000" in row_of_id(page, "budget-ANR-T")
    assert client.get(f"/funding/calls/{world.call.id}/budgets/{world.fid['DFG-T']}").status_code == 403

    response = client.post(f"/funding/calls/{world.call.id}/budgets/{world.fid['ANR-T']}",
                           data={"amount": "200,000", "reason": "board decision of 20 September"})
    assert response.status_code == 302
    page = client.get(response.headers["Location"])
    assert "Budget increase of €200,000 recorded for ANR-T." in words(page)
    assert "€1,700,000" in words(page) and "board decision of 20 September" in words(page)
    [row] = session.scalars(select(BudgetIncrease)).all()
    assert (row.amount, row.funder_id, row.recorded_by_id) == (200_000, world.fid["ANR-T"], world.officers["ANR-T"].id)
    # The scenario follows: THREE now fits ANR-T's 400,000 left.
    login(client, world.sec)
    scenario = client.get(f"/funding/calls/{world.call.id}/scenario")
    assert 'data-status="selected"' in row_of(scenario, "TEST-0003")
    # The secretariat sees every funder and the gap pot.
    page = client.get(f"/funding/calls/{world.call.id}/budgets").get_data(as_text=True)
    assert all(f'id="budget-{a}"' in page for a in ("DFG-T", "ANR-T", "ISCIII-T", "MOH-T", "CIHR-T"))
    assert "none in this call" in page


def row_of_id(page: str, row_id: str) -> str:
    return re.search(rf'<tr id="{row_id}">(.*?)</tr>', page, re.S).group(1)


@pytest.mark.parametrize("amount, message", [
    ("abc", "give a whole number of euros, without separators"),
    ("12.5", "give a whole number of euros, without separators"),
    ("0", "an increase must be more than €0"),
    ("", "give the increase in whole euros"),
])
def test_a_refused_increase_says_why_next_to_the_field_and_keeps_the_input(client, world, session, amount, message):
    login(client, world.officers["ANR-T"])
    response = client.post(f"/funding/calls/{world.call.id}/budgets/{world.fid['ANR-T']}",
                           data={"amount": amount, "reason": "my typed reason"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert re.search(rf'<div class="field-error" id="amount-error">{re.escape(html.escape(message, quote=False))}', page)
    assert 'aria-describedby="amount-error"' in page
    assert "my typed reason" in page and f'value="{amount}"' in page if amount else True
    assert session.scalar(select(func.count()).select_from(BudgetIncrease)) == 0


# ---------------------------------------------------------------------------------------------------------
# What-if


def test_what_if_recomputes_highlights_the_changes_and_saves_nothing(client, world, session):
    login(client, world.sec)
    events = session.scalar(select(func.count()).select_from(AuditEvent))
    response = client.get(f"/funding/calls/{world.call.id}/what-if", query_string={
        f"extra_{world.fid['ANR-T']}": "200000"})
    assert response.status_code == 200
    text = words(response)
    assert "TEST-0003 THREE (rank 3): blocked → selected" in text
    three = row_of(response, "TEST-0003")
    assert 'class="table-warning"' in three and "was blocked" in words_of(three)
    assert 'class="table-warning"' not in row_of(response, "TEST-0001")
    assert "tried +€200,000" in words(response)
    assert session.scalar(select(func.count()).select_from(BudgetIncrease)) == 0
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == events
    # Without increases the plain list is shown; nothing changes.
    assert 'data-status="blocked"' in row_of(client.get(f"/funding/calls/{world.call.id}/scenario"), "TEST-0003")
    bad = client.get(f"/funding/calls/{world.call.id}/what-if", query_string={f"extra_{world.fid['ANR-T']}": "-5"})
    assert bad.status_code == 422 and "give 0 or more whole euros" in words(bad)


def words_of(fragment: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()


# ---------------------------------------------------------------------------------------------------------
# Approval


def test_the_approval_page_says_what_will_happen_and_the_approval_freezes_the_list(client, world, session):
    login(client, world.sec)
    page = client.get(f"/funding/calls/{world.call.id}/approve")
    assert page.status_code == 200
    text = words(page)
    assert "3 proposals become selected: ONE, TWO, FOUR." in text
    assert "2 go to the reserve list: THREE, FIVE." in text
    assert "ANR-T is asked to confirm 2 proposals (€1,300,000)." in text
    assert "DFG-T is asked to confirm 3 proposals (€750,000)." in text
    fingerprint = re.search(r'name="fingerprint" type="hidden" value="([0-9a-f]+)"', page.get_data(as_text=True)).group(1)

    response = client.post(f"/funding/calls/{world.call.id}/approve", data={"note": "  ", "fingerprint": fingerprint})
    assert response.status_code == 422
    assert re.search(r'id="note-error">say where the steering committee approved the list', response.get_data(as_text=True))
    assert world.states()["ONE"] == "recommended"

    response = approve(client, world)
    assert response.status_code == 302
    shown = client.get(response.headers["Location"])
    assert "The steering committee's approval is recorded: 3 proposals selected, 2 on the reserve list." in words(shown)
    assert "Approved by the steering committee" in words(shown) and "CSC meeting of 30 September 2030" in words(shown)
    assert world.states() == {"ONE": "selected", "TWO": "selected", "THREE": "reserve", "FOUR": "selected",
                              "FIVE": "reserve"}
    assert "ANR-T Pending" in words_of(row_of(shown, "TEST-0001"))
    # Frozen: no approval twice, no what-if, no increase.
    assert "Record the steering committee" not in words(shown)
    again = client.get(f"/funding/calls/{world.call.id}/approve", follow_redirects=True)
    assert "approved already" in words(again)
    login(client, world.officers["ANR-T"])
    refused = client.post(f"/funding/calls/{world.call.id}/budgets/{world.fid['ANR-T']}", data={"amount": "1000"})
    assert refused.status_code == 422 and "budgets and the list are frozen" in words(refused)


def test_an_approval_of_a_list_that_changed_meanwhile_is_refused(client, world, session):
    login(client, world.sec)
    page = client.get(f"/funding/calls/{world.call.id}/approve").get_data(as_text=True)
    fingerprint = re.search(r'name="fingerprint" type="hidden" value="([0-9a-f]+)"', page).group(1)
    # Meanwhile ANR-T raises its budget: THREE would now be selected.
    from workflow.funding_ops import record_budget_increase

    record_budget_increase(session, world.officers["ANR-T"], world.call, world.fid["ANR-T"], 200_000)
    session.commit()
    response = client.post(f"/funding/calls/{world.call.id}/approve",
                           data={"note": "CSC meeting", "fingerprint": fingerprint})
    assert response.status_code == 409
    assert "changed since this page was shown" in words(response) and "Nothing was recorded" in words(response)
    assert session.scalar(select(func.count()).select_from(FundingScenario)) == 0
    assert world.states()["THREE"] == "recommended"


# ---------------------------------------------------------------------------------------------------------
# Confirmations


def test_officers_confirm_their_own_partners_and_the_proposal_is_funded(client, world, session):
    approve(client, world)
    login(client, world.officers["ISCIII-T"])
    page = client.get(f"/funding/calls/{world.call.id}/confirmations")
    cards = re.findall(r'<section class="card mb-3" aria-labelledby="confirmation-\d+-heading" id="confirmation-\d+"',
                       page.get_data(as_text=True))
    assert len(cards) == 3  # ONE, TWO, FOUR: ISCIII-T's partners only
    text = words(page)
    assert "TEST-0001 ONE — ISCIII-T" in text and "Hospital Clínic (ONE)" in text and "Institut Curie" not in text

    # Another funder's confirmation: 403 with the reason, nothing changes.
    anr_on_one = world.confirmation("ONE", "ANR-T")
    refused = client.post(f"/funding/confirmations/{anr_on_one.id}",
                          data={f"c{anr_on_one.id}-decision": "confirm", f"c{anr_on_one.id}-version": "1"})
    assert refused.status_code == 403 and "this funding is for another organisation to confirm" in words(refused)

    for funder in ("DFG-T", "ISCIII-T"):
        response = confirm(client, world, "ONE", funder)
        assert response.status_code == 302
    assert world.states()["ONE"] == "selected"
    response = confirm(client, world, "ONE", "ANR-T")
    done = client.get(response.headers["Location"])
    assert "ANR-T confirmed the funding of its partners in TEST-0001 ONE. Every funder has confirmed: the " \
           "proposal is funded." in words(done)
    assert world.states()["ONE"] == "funded"
    # The secretariat's overview and the scenario show it.
    login(client, world.sec)
    overview = words(client.get(f"/funding/calls/{world.call.id}/confirmations"))
    assert "TEST-0001 ONE ANR-T €700,000 Confirmed" in overview


def test_a_decline_needs_a_reason_and_recomputes_the_list(client, world, session):
    approve(client, world)
    response = confirm(client, world, "TWO", "ANR-T", "decline", "")
    assert response.status_code == 422
    c = world.confirmation("TWO", "ANR-T")
    assert re.search(rf'id="c{c.id}-reason-error">give the reason why your organisation declines this funding',
                     response.get_data(as_text=True))
    assert c.status == "pending"

    response = confirm(client, world, "TWO", "ANR-T", "decline", "the French partner lost its accreditation")
    assert response.status_code == 302
    text = words(client.get(response.headers["Location"]))
    assert "ANR-T declined the funding of TEST-0002 TWO; the proposal is not funded." in text
    assert "The funding list was recomputed (revision 2)." in text
    assert "TEST-0003 THREE: blocked → selected" in text and "TEST-0002 TWO left the list" in text
    assert world.states() == {"ONE": "selected", "TWO": "not_funded", "THREE": "selected", "FOUR": "selected",
                              "FIVE": "reserve"}
    # ANR-T is now asked about THREE.
    page = client.get(f"/funding/calls/{world.call.id}/confirmations")
    assert "TEST-0003 THREE — ANR-T" in words(page)
    login(client, world.sec)
    scenario = client.get(f"/funding/calls/{world.call.id}/scenario")
    assert "revision 2" in words(scenario) and "After a decline" in words(scenario)
    assert 'id="row-TEST-0002"' not in scenario.get_data(as_text=True)


def test_a_confirmation_changed_meanwhile_is_not_overwritten(client, world, session):
    approve(client, world)
    seen = world.confirmation("FOUR", "DFG-T").version
    # Someone else (another DFG-T officer) confirms first.
    other = f.officer(session, world.call, "DFG-T")
    session.commit()
    from workflow.funding_ops import confirm_funding

    confirm_funding(session, other, world.confirmation("FOUR", "DFG-T").id, "confirm")
    session.commit()
    response = confirm(client, world, "FOUR", "DFG-T", "decline", "no money", version=seen)
    assert response.status_code == 409
    assert "was changed by someone else meanwhile" in words(response)
    assert world.confirmation("FOUR", "DFG-T").status == "confirmed"


def test_the_secretariat_recomputes_after_a_withdrawal(client, world, session):
    approve(client, world)
    from workflow.operations import transition

    transition(session, world.p["FOUR"].coordinator, world.p["FOUR"].id, "withdraw", reason="PI moved abroad")
    session.commit()
    login(client, world.sec)
    refused = client.post(f"/funding/calls/{world.call.id}/recompute", data={"note": ""}, follow_redirects=True)
    assert "say why the funding list is recomputed" in words(refused)
    response = client.post(f"/funding/calls/{world.call.id}/recompute", data={"note": "FOUR withdrew on 3 October"},
                           follow_redirects=True)
    assert ("The funding list was recomputed (revision 2). Changes: TEST-0003 THREE: blocked → reserve; "
            "TEST-0004 FOUR left the list.") in words(response)
    # FOUR freed ISCIII-T's 150,000, still not enough for FIVE; THREE has nobody selected below it any more.
    assert 'id="row-TEST-0004"' not in response.get_data(as_text=True)
    assert "Approved by the steering committee: recorded on" in words(response)
    assert "(CSC meeting of 30 September 2030, item 4)" in words(response)


# ---------------------------------------------------------------------------------------------------------
# Funding lists per funder


def test_each_funders_funding_list_agrees_with_the_database(client, world, session):
    approve(client, world)
    url = f"/funding/calls/{world.call.id}/funders/{world.fid['ANR-T']}/funding-list"
    login(client, world.officers["ANR-T"])
    response = client.get(url + ".csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    lines = session.scalars(select(FundingLine).join(FundingScenario).where(
        FundingScenario.status == "current", FundingLine.funder_id == world.fid["ANR-T"])).all()
    assert sorted((r["Reference"], r["Partner"], int(r["Granted (EUR)"])) for r in rows) == sorted(
        (ln.proposal.reference, ln.partner.organisation, ln.amount) for ln in lines)
    assert {r["Confirmation"] for r in rows} == {"Pending"} and {r["Funder"] for r in rows} == {"ANR-T"}
    assert sum(int(r["Granted (EUR)"]) for r in rows) == 1_300_000

    xlsx = client.get(url + ".xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.data)).active
    values = list(sheet.iter_rows(values_only=True))
    header = list(values[0])
    assert [(v[header.index("Reference")], v[header.index("Granted (EUR)")]) for v in values[1:]] == [
        (r["Reference"], int(r["Granted (EUR)"])) for r in rows]

    login(client, world.officers["DFG-T"])
    refused = client.get(url + ".csv")
    assert refused.status_code == 403 and "this funder's officers" in words(refused)
    login(client, world.sec)
    assert client.get(f"/funding/calls/{world.call.id}/funders/{world.fid['DFG-T']}/funding-list.csv").status_code == 200
    assert client.get(url + ".pdf").status_code == 404


def test_no_funding_list_to_export_before_the_approval(client, world):
    login(client, world.sec)
    response = client.get(f"/funding/calls/{world.call.id}/funders/{world.fid['ANR-T']}/funding-list.csv",
                          follow_redirects=True)
    assert "The funding list has not been approved yet; there is nothing to export." in words(response)


# ---------------------------------------------------------------------------------------------------------
# The order from reviews/


def test_the_approved_ranking_list_of_reviews_gives_the_order(client, world, session):
    from reviews.models import PanelConsensus, RankingEntry, RankingList

    # The panel put FIVE first and TWO last; the steering committee approved that list.
    order = ["FIVE", "ONE", "THREE", "FOUR", "TWO"]
    ranking = RankingList(call_id=world.call.id, stage="full", status="draft", created_by_id=world.sec.id)
    for rank, acronym in enumerate(order, start=1):
        ranking.entries.append(RankingEntry(proposal_id=world.p[acronym].id, rank=rank, total=15.0 - rank))
        session.add(PanelConsensus(call_id=world.call.id, proposal_id=world.p[acronym].id, stage="full",
                                   scores={"excellence": 4, "impact": 4, "implementation": 4},
                                   weighted_total=15.0 - rank, recommendation="recommended", summary="Good.",
                                   entered_by_id=world.sec.id))
    session.add(ranking)
    session.commit()
    login(client, world.sec)
    # A draft list does not count yet: the fallback orders by the consensus totals, and says so.
    draft = client.get(f"/funding/calls/{world.call.id}/scenario")
    assert "a draft ranking list exists but is not approved yet" in words(draft)
    ranking.status, ranking.approved_by_id, ranking.approved_at = "approved", world.sec.id, f.FULL_CLOSED
    session.commit()
    response = client.get(f"/funding/calls/{world.call.id}/scenario")
    page = response.get_data(as_text=True)
    assert [ref for ref, _ in re.findall(r'<tr id="row-(TEST-\d+)" data-status="(\w+)"', page)] == [
        world.p[a].reference for a in order]
    assert "The order is the full-stage ranking list approved on 25 June 2030" in words(response)
    assert "fallback" not in words(response)
    # FIVE (ANR 150k, ISCIII 400k) comes first now and is selected; the totals are the scores.
    assert 'data-status="selected"' in row_of(response, "TEST-0005") and "score 14" in words_of(row_of(response, "TEST-0005"))
