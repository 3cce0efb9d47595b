"""The console's proposal list agrees with the database: search (acronym, title, partner organisation, PI,
country, funder), filters, sort, 50 per page, exports of exactly the filtered list; the number of SQL
statements does not grow with the number of proposals; bulk invitations are confirmed first and applied
all-or-nothing. The dashboard's numbers link to the list behind them; the state diagram shows the counts."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

import openpyxl
import pytest
from sqlalchemy import select

from tests import factories as f
from tests.conftest import statements
from tests.web.test_console_calls import events, login, plain, text_of  # noqa: F401
from tests.web.test_funder import EVIL
from workflow import guards
from workflow.countries import country_name
from workflow.models import EligibilityCheck, OutboxMessage, Proposal
from workflow.operations import decide_eligibility, sign_off, transition
from workflow.proposals import PartnerData, add_partner, create_proposal, update_partner


def listed(response) -> list[str]:
    """The references of the proposals a list page shows, in order."""
    return re.findall(r'<tr id="proposal-\d+">\s*<td>.*?</td>\s*<td><a [^>]*>([^<]+)</a>',
                      response.get_data(as_text=True), re.S)


@dataclass
class World:
    call: object
    sec: object
    dfg: object
    anr: object
    isciii: object
    moh: object
    proposals: list


def world_with_search_targets(session, frozen) -> World:
    """The test call in its pre-proposal stage: ALPHA, BETA and GAMMA submitted (four partners each; GAMMA
    has a fifth, in Italy, funded by MOH-T, and an organisation named like a formula), DRAFTY a draft."""
    frozen(f.PRE_OPEN)
    call = f.make_call(session)
    sec = f.secretariat(session, call)
    officers = [f.officer(session, call, a) for a in ("DFG-T", "ANR-T", "ISCIII-T", "MOH-T")]
    proposals = [f.valid_proposal(session, call, acronym=a) for a in ("ALPHA", "BETA", "GAMMA")]
    gamma = proposals[2]
    add_partner(session, gamma.coordinator, gamma, PartnerData(
        organisation="Istituto Mario Negri", country="IT", pi_name="Maria Rossi", pi_email="maria.rossi@negri.example",
        funder_id=f.funder(session, "MOH-T").id, budget={"personnel": 90_000}))
    heidelberg = gamma.partners[3]
    update_partner(session, gamma.coordinator, heidelberg, PartnerData(
        organisation=EVIL, country="DE", pi_name="Eve Evil", pi_email="eve@example.org",
        funder_id=heidelberg.funder_id, budget={"personnel": 120_000}))
    f.valid_proposal(session, call, acronym="DRAFTY")
    for p in proposals:
        transition(session, p.coordinator, p.id, "submit")
    session.commit()
    return World(call, sec, *officers, proposals)


def expected(session, call, q: str = "", state: str = "", funder: str = "") -> list[str]:
    """What the list must show, computed in Python from every proposal of the call."""
    session.expire_all()
    out = []
    for p in session.scalars(select(Proposal).where(Proposal.call_id == call.id).order_by(Proposal.reference)):
        fields = [p.reference, p.acronym, p.title, p.coordinator.name, p.coordinator.email]
        for pa in p.partners:
            fields += [pa.organisation, pa.pi_name, pa.pi_email, country_name(pa.country)]
            if pa.funder is not None:
                fields += [pa.funder.acronym, pa.funder.name]
        if q and not any(q.lower() in (x or "").lower() for x in fields) and not any(
                q.lower() == pa.country.lower() for pa in p.partners):
            continue
        if state and p.state != state:
            continue
        if funder and not any(pa.funder is not None and pa.funder.acronym == funder and not pa.own_funded
                              for pa in p.partners):
            continue
        out.append(p.reference)
    return out


def test_search_and_filters_agree_with_the_database(client, session, frozen):
    w = world_with_search_targets(session, frozen)
    login(client, w.sec)
    url = f"/secretariat/calls/{w.call.id}/proposals"
    everything = client.get(url)
    assert everything.status_code == 200
    assert listed(everything) == expected(session, w.call) and len(listed(everything)) == 4
    for q in ("negri", "Maria Rossi", "maria.rossi@negri", "Italy", "it", "GAMMA", "Curie", "PI Charité",
              "moh-t", "Spanish Test Funder", "cora", "precision", "nothing-like-this", "50%_"):
        assert listed(client.get(url, query_string={"q": q})) == expected(session, w.call, q=q), q
    gamma = w.proposals[2].reference
    assert listed(client.get(url, query_string={"q": "negri"})) == [gamma]
    moh = f.funder(session, "MOH-T")
    assert listed(client.get(url, query_string={"funder": moh.id})) == expected(session, w.call, funder="MOH-T") \
        == [gamma]
    assert listed(client.get(url, query_string={"state": "submitted"})) == expected(session, w.call, state="submitted")
    assert listed(client.get(url, query_string={"state": "draft", "q": "drafty"})) == \
        expected(session, w.call, q="drafty", state="draft")
    assert listed(client.get(url, query_string={"country": "IT"})) == [gamma]
    assert listed(client.get(url, query_string={"scope": "submitted"})) == [p.reference for p in w.proposals]
    page = plain(client.get(url, query_string={"funder": moh.id}))
    assert "Proposals 1–1 of 1 (filtered)" in page and "€90,000 from MOH-T" in page


def test_sorting_by_acronym_and_requested(client, session, frozen):
    w = world_with_search_targets(session, frozen)
    login(client, w.sec)
    url = f"/secretariat/calls/{w.call.id}/proposals"
    session.expire_all()
    proposals = list(session.scalars(select(Proposal).where(Proposal.call_id == w.call.id)))
    by_acronym = [p.reference for p in sorted(proposals, key=lambda p: p.acronym.lower())]
    assert listed(client.get(url, query_string={"sort": "acronym"})) == by_acronym
    assert listed(client.get(url, query_string={"sort": "acronym", "dir": "desc"})) == by_acronym[::-1]
    by_request = [p.reference for p in sorted(proposals, key=lambda p: (sum(x.requested_amount for x in p.partners),
                                                                       p.id))]
    assert listed(client.get(url, query_string={"sort": "requested"})) == by_request


def test_fifty_per_page(client, session, frozen):
    frozen(f.PRE_OPEN)
    call = f.make_call(session)
    sec = f.secretariat(session, call)
    coordinator = f.make_user(session, "Cora Coordinator")
    for i in range(53):
        create_proposal(session, coordinator, call, acronym=f"P{i:02d}")
    session.commit()
    login(client, sec)
    url = f"/secretariat/calls/{call.id}/proposals"
    first, second = client.get(url), client.get(url, query_string={"page": 2})
    assert len(listed(first)) == 50 and len(listed(second)) == 3
    assert set(listed(first)).isdisjoint(listed(second))
    assert "Proposals 51–53 of 53" in plain(second)
    assert len(listed(client.get(url, query_string={"page": 99}))) == 3  # past the end: the last page
    export = client.get(f"/secretariat/calls/{call.id}/proposals.csv")
    assert len(list(csv.reader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff"))))) == 54  # not paged


def test_exports_hold_exactly_the_filtered_list(client, session, frozen):
    w = world_with_search_targets(session, frozen)
    login(client, w.sec)
    query = {"q": "charité", "sort": "acronym", "dir": "desc"}
    shown = listed(client.get(f"/secretariat/calls/{w.call.id}/proposals", query_string=query))
    assert shown == [p.reference for p in sorted(w.proposals + [_drafty(session, w)], key=lambda p: p.acronym,
                                                 reverse=True)]
    response = client.get(f"/secretariat/calls/{w.call.id}/proposals.csv", query_string=query)
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:4] == ["Reference", "Acronym", "Title", "State"]
    assert [r[0] for r in rows[1:]] == shown
    gamma_row = next(r for r in rows if r[1] == "GAMMA")
    assert gamma_row[9].startswith("Charité Berlin; Institut Curie") and "Istituto Mario Negri" in gamma_row[9]
    assert not any(cell.startswith(("=", "+", "@")) for row in rows for cell in row)  # no formula
    assert gamma_row[11] == str(sum(p.requested_amount for p in w.proposals[2].partners))
    xlsx = client.get(f"/secretariat/calls/{w.call.id}/proposals.xlsx", query_string=query)
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.get_data())).active
    assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)] == shown
    filtered = client.get(f"/secretariat/calls/{w.call.id}/proposals.csv", query_string={"q": "negri"})
    assert [r[0] for r in csv.reader(io.StringIO(filtered.get_data(as_text=True).lstrip("\ufeff")))][1:] == \
        [w.proposals[2].reference]
    assert client.get(f"/secretariat/calls/{w.call.id}/proposals.pdf").status_code == 404


def _drafty(session, w):
    return session.scalar(select(Proposal).where(Proposal.call_id == w.call.id, Proposal.acronym == "DRAFTY"))




def test_the_list_and_the_dashboard_use_a_fixed_number_of_statements(app, client, session, frozen):
    w = world_with_search_targets(session, frozen)
    login(client, w.sec)
    pages = [f"/secretariat/calls/{w.call.id}/proposals", f"/secretariat/calls/{w.call.id}/dashboard",
             f"/secretariat/calls/{w.call.id}/proposals.csv", f"/secretariat/calls/{w.call.id}/diagram"]
    before = {}
    for url in pages:
        with statements(app) as seen:
            assert client.get(url).status_code == 200
        before[url] = len(seen)
    for i in range(12):
        f.valid_proposal(session, w.call, acronym=f"MORE{i}")
    session.commit()
    for url in pages:
        with statements(app) as seen:
            assert client.get(url).status_code == 200
        assert len(seen) == before[url], url


# ---------------------------------------------------------------------------------------------------------
# Bulk invitations


def to_pre_review(session, w, frozen_at) -> None:
    """Close the pre stage and let every check find every partner eligible: the proposals reach pre_review."""
    from workflow.operations import close_stage

    frozen_at(f.PRE_CLOSED)
    close_stage(session, w.sec, w.call, "pre")
    by_funder = {f.funder(session, a).id: u for a, u in (("DFG-T", w.dfg), ("ANR-T", w.anr), ("ISCIII-T", w.isciii),
                                                          ("MOH-T", w.moh))}
    for check in session.scalars(select(EligibilityCheck)):
        actor = w.sec if check.partner_id is None else by_funder[check.funder_id]
        sign_off(session, actor, check.id, "eligible")
    for p in w.proposals:
        decide_eligibility(session, w.sec, p.id)
    session.commit()


@pytest.fixture
def ranking_approved(monkeypatch):
    """Invitations need the pre-stage ranking approved, which the reviews package decides; here it is."""
    monkeypatch.setitem(guards._GUARDS, "ranking_approved", lambda proposal, ctx: None)


def states(session, w) -> dict[str, str]:
    session.expire_all()
    return {p.acronym: session.get(Proposal, p.id).state for p in w.proposals}


def test_bulk_invitation_is_confirmed_then_applied_to_all(client, session, frozen, ranking_approved):
    w = world_with_search_targets(session, frozen)
    to_pre_review(session, w, frozen)
    alpha, beta, gamma = w.proposals
    login(client, w.sec)
    page = text_of(client.get(f"/secretariat/calls/{w.call.id}/proposals", query_string={"state": "pre_review"}))
    assert '<option value="invite">Invite to the full-proposal stage (from Pre-proposal review)</option>' in page
    confirm = client.post(f"/secretariat/calls/{w.call.id}/proposals/bulk",
                          data={"trigger": "invite", "proposal_ids": [str(alpha.id), str(beta.id)]})
    assert confirm.status_code == 200
    assert "2 proposals go to “Invited to full proposal”. Each coordinator is told by e-mail." in plain(confirm)
    assert states(session, w) == {"ALPHA": "pre_review", "BETA": "pre_review", "GAMMA": "pre_review"}  # not yet
    items = re.findall(r'name="items" value="([^"]+)"', confirm.get_data(as_text=True))
    done = client.post(f"/secretariat/calls/{w.call.id}/proposals/bulk/apply",
                       data={"trigger": "invite", "items": items, "reason": "CSC meeting 12 May"})
    assert done.status_code == 302
    assert "Invite to the full-proposal stage: done for 2 proposals." in plain(client.get(done.headers["Location"]))
    assert states(session, w) == {"ALPHA": "invited", "BETA": "invited", "GAMMA": "pre_review"}
    invites = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "invitation")).all()
    assert sorted(m.to_address for m in invites) == sorted([alpha.coordinator.email, beta.coordinator.email])
    [bulk] = events(session, "proposal.bulk")
    assert bulk.after == {"trigger": "invite", "proposals": sorted([alpha.id, beta.id]), "count": 2}
    assert [e.reason for e in events(session, "proposal.invite")] == ["CSC meeting 12 May"] * 2


def test_bulk_refuses_a_selection_that_cannot_all_move(client, session, frozen, monkeypatch):
    w = world_with_search_targets(session, frozen)
    to_pre_review(session, w, frozen)
    alpha, beta, gamma = w.proposals
    drafty = _drafty(session, w)  # lapsed: not_submitted
    monkeypatch.setitem(guards._GUARDS, "ranking_approved", lambda proposal, ctx: None)
    login(client, w.sec)
    confirm = client.post(f"/secretariat/calls/{w.call.id}/proposals/bulk",
                          data={"trigger": "not_invite", "proposal_ids": [str(alpha.id), str(drafty.id)]})
    page = plain(confirm)
    assert "1 of 2 selected proposals cannot move. Nothing was changed" in page
    assert "cannot move: it is in state Not submitted" in page
    assert 'name="items"' not in confirm.get_data(as_text=True)
    # a guard of the lifecycle table that fails is shown too, with its reason
    monkeypatch.setitem(guards._GUARDS, "ranking_approved", lambda proposal, ctx: "the ranking is not approved yet")
    confirm = client.post(f"/secretariat/calls/{w.call.id}/proposals/bulk",
                          data={"trigger": "invite", "proposal_ids": [str(alpha.id), str(beta.id)]})
    assert "cannot move: the ranking is not approved yet" in plain(confirm)
    assert "2 of 2 selected proposals cannot move" in plain(confirm)
    assert states(session, w) == {"ALPHA": "pre_review", "BETA": "pre_review", "GAMMA": "pre_review"}


def test_bulk_apply_is_all_or_nothing(client, session, frozen, ranking_approved):
    w = world_with_search_targets(session, frozen)
    to_pre_review(session, w, frozen)
    alpha, beta, gamma = w.proposals
    login(client, w.sec)
    confirm = client.post(f"/secretariat/calls/{w.call.id}/proposals/bulk",
                          data={"trigger": "invite", "proposal_ids": [str(p.id) for p in w.proposals]})
    items = re.findall(r'name="items" value="([^"]+)"', confirm.get_data(as_text=True))
    assert len(items) == 3
    # meanwhile, GAMMA's coordinator withdraws: the last of the three cannot be invited any more
    transition(session, gamma.coordinator, gamma.id, "withdraw")
    session.commit()
    done = client.post(f"/secretariat/calls/{w.call.id}/proposals/bulk/apply", data={"trigger": "invite", "items": items})
    assert done.status_code == 302
    message = plain(client.get(done.headers["Location"]))
    assert f"{gamma.reference}: this proposal was changed by someone else meanwhile" in message
    assert "Nothing was changed." in message
    assert states(session, w) == {"ALPHA": "pre_review", "BETA": "pre_review", "GAMMA": "withdrawn"}
    assert not session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "invitation")).all()
    assert not events(session, "proposal.invite") and not events(session, "proposal.bulk")


def test_only_the_secretariat_uses_the_list(client, session, frozen):
    w = world_with_search_targets(session, frozen)
    login(client, w.dfg)
    assert client.get(f"/secretariat/calls/{w.call.id}/proposals").status_code == 403
    assert client.get(f"/secretariat/calls/{w.call.id}/proposals.csv").status_code == 403
    assert client.post(f"/secretariat/calls/{w.call.id}/proposals/bulk",
                       data={"trigger": "invite", "proposal_ids": [str(w.proposals[0].id)]}).status_code == 403


# ---------------------------------------------------------------------------------------------------------
# The dashboard and the state diagram


def test_dashboard_counts_link_to_the_list_behind_them(client, session, frozen):
    w = world_with_search_targets(session, frozen)
    login(client, w.sec)
    response = client.get(f"/secretariat/calls/{w.call.id}/dashboard")
    page = text_of(response)
    html = response.get_data(as_text=True)
    assert re.search(r'<tr id="state-submitted">.*?<a href="([^"]+)">3</a>', html, re.S)
    link = re.search(r'<tr id="state-submitted">.*?<a href="([^"]+)">3</a>', html, re.S).group(1).replace("&amp;", "&")
    assert sorted(listed(client.get(link))) == sorted(p.reference for p in w.proposals)
    row = re.search(r'<tr id="funder-DFG-T">(.*?)</tr>', html, re.S).group(1)
    # DFG-T: two partners in each of three submitted proposals
    dfg_requested = sum(pa.requested_amount for p in w.proposals for pa in p.partners if pa.funder.acronym == "DFG-T")
    assert re.search(r'class="text-end partners"><a href="([^"]+)">6</a>', row)
    assert f"€{dfg_requested:,}" in row and "€2,000,000" in row
    funder_link = re.search(r'class="text-end partners"><a href="([^"]+)">', row).group(1).replace("&amp;", "&")
    assert sorted(listed(client.get(funder_link))) == sorted(p.reference for p in w.proposals)
    moh = re.search(r'<tr id="funder-MOH-T">(.*?)</tr>', html, re.S).group(1)
    assert 'partners"><a href="' in moh and ">1</a>" in moh and "€90,000" in moh
    assert '<svg width="620"' in page and 'aria-label="Submitted: 3"' in page  # the chart, no script
    assert "<script" not in html


def test_state_diagram_shows_counts_and_mermaid_source(client, session, frozen):
    w = world_with_search_targets(session, frozen)
    login(client, w.sec)
    response = client.get(f"/secretariat/calls/{w.call.id}/diagram")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<script" not in html
    box = re.search(r'<a href="([^"]+)" id="box-submitted" aria-label="Submitted: 3 proposals">', html)
    assert box and 'class="count">3</text>' in html
    assert sorted(listed(client.get(box.group(1).replace("&amp;", "&")))) == sorted(p.reference for p in w.proposals)
    assert 'id="box-rebuttal"' in html and 'data-trigger="invite"' in html
    assert "stateDiagram-v2" in html and "pre_review --&gt; invited : invite" in html
    assert 'id="row-draft"' in html and "<code>submit</code> → Submitted" in html
