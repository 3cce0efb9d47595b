"""The funding pages at scale (issue 9): each costs the same number of SQL statements with few and with many
proposals, long lists show 50 rows a page with the counts and budget bars of the whole list above them,
the pages keep their filters, and what is decided on a page (the approval, sending the letters) still
covers the whole list.

The worlds are the funding world of test_funding_pages (five recommended proposals), and the same with 115
more: 55 small ones that the budgets fund (DFG-T €10,000 and ANR-T €2,000 each) and 60 large ones that do
not fit any more (ANR-T €100,000 each), so that the list, the confirmations, one funder's confirmations
and the letters all run over more than one page. The order is the fallback one, by reference.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re

import pytest
from sqlalchemy import func, select

from tests.conftest import statements
from tests.web.test_funding_pages import World, approve, build_world, login, words
from workflow.funding_models import FundingConfirmation, FundingLine, FundingScenario
from workflow.models import CallFunder, FundingOrganisation, Partner, Proposal, User
from workflow.paging import PER_PAGE

SMALL, LARGE = 55, 60
MANY = 5 + SMALL + LARGE


@pytest.fixture
def world(session) -> World:
    return build_world(session)




def cost(app, client, url: str) -> int:
    """The SQL statements one GET of the page sends (it must succeed)."""
    with statements(app) as seen:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(seen)


def add_proposals(session, w: World) -> None:
    """The 115 more recommended proposals of the module docstring, each with its own coordinator."""
    for n in range(6, 6 + SMALL + LARGE):
        small = n < 6 + SMALL
        asks = {"DFG-T": 10_000, "ANR-T": 2_000} if small else {"DFG-T": 10_000, "ANR-T": 100_000}
        coordinator = User(email=f"coordinator.{n}@example.org", name=f"Coordinator {n}", password_hash=None)
        p = Proposal(call=w.call, reference=f"TEST-{n:04d}", acronym=f"P{n}", title=f"P{n}: precision medicine",
                     coordinator=coordinator, state="recommended")
        for position, (acronym, amount) in enumerate(asks.items(), start=1):
            p.partners.append(Partner(position=position, organisation=f"Lab {n}.{position}", country="DE",
                                      funder_id=w.fid[acronym], pi_name=f"PI {n}.{position}",
                                      pi_email=f"pi.{n}.{position}@example.org", requested_amount=amount,
                                      budget={"personnel": amount}))
        session.add(p)
        w.p[p.acronym] = p
    session.commit()


def generate_letters(session, w: World) -> int:
    """Store a (made-up) generated letter for every letter of the full stage, as an export would."""
    from workflow.letter_models import DecisionLetter
    from workflow.letters import stage_letters

    session.expire_all()  # the approval changed the states in the app's session
    view = stage_letters(session, w.call, "full")
    pdf = b"%PDF-1.4 made up for the test"
    for p, outcome in view.items:
        session.add(DecisionLetter(call_id=w.call.id, proposal_id=p.id, stage="full", outcome=outcome,
                                   coordinator_id=p.coordinator_id, recipient=p.coordinator.email, pdf=pdf,
                                   sha256=hashlib.sha256(pdf).hexdigest(), size_bytes=len(pdf),
                                   template_sha256="0" * 64))
    session.commit()
    return len(view.items)


def row_ids(response, prefix: str) -> list[str]:
    return re.findall(rf'<tr id="{prefix}-([^"]+)"', response.get_data(as_text=True))


def pager_links(response) -> list[str]:
    return [a.replace("&amp;", "&") for a in re.findall(r'<a class="page-link"[^>]* href="([^"]+)"',
                                                        response.get_data(as_text=True))]


def summary_numbers(response) -> tuple[int, int, int]:
    match = re.search(r'id="summary"><strong>(\d+)</strong> selected · <strong>(\d+)</strong> blocked · '
                      r'<strong>(\d+)</strong> in reserve', response.get_data(as_text=True))
    assert match, "no summary of the list"
    return tuple(int(x) for x in match.groups())


def bar_of(response, acronym: str) -> str:
    return re.search(rf'<tr id="bar-{acronym}">.*?aria-label="([^"]+)"', response.get_data(as_text=True), re.S).group(1)


# ---------------------------------------------------------------------------------------------------------
# Before the approval: the list, what-if and the approval page


def test_the_draft_list_pages_cost_the_same_and_page_the_whole_ranking(app, client, session, world):
    call = world.call.id
    anr = world.fid["ANR-T"]
    urls = [f"/funding/calls/{call}/scenario", f"/funding/calls/{call}/what-if?extra_{anr}=200000",
            f"/funding/calls/{call}/approve"]
    login(client, world.sec)
    few = {url: cost(app, client, url) for url in urls}
    add_proposals(session, world)
    assert {url: cost(app, client, url) for url in urls} == few

    first = client.get(f"/funding/calls/{call}/scenario")
    second = client.get(f"/funding/calls/{call}/scenario?page=2")
    assert row_ids(first, "row") == [f"TEST-{n:04d}" for n in range(1, PER_PAGE + 1)]
    assert row_ids(second, "row") == [f"TEST-{n:04d}" for n in range(PER_PAGE + 1, 2 * PER_PAGE + 1)]
    assert f"/funding/calls/{call}/scenario?page=2" in pager_links(first)
    assert f"/funding/calls/{call}/scenario?page=3" in pager_links(second)
    assert f"Showing 51–100 of {MANY}, page 2 of 3." in words(second)
    # The summary and the bars are the whole list's, on every page.
    assert sum(summary_numbers(second)) == MANY and summary_numbers(first) == summary_numbers(second)
    assert bar_of(first, "ANR-T") == bar_of(second, "ANR-T")
    # A page beyond the last shows the last.
    assert row_ids(client.get(f"/funding/calls/{call}/scenario?page=99"), "row")[-1] == f"TEST-{MANY:04d}"

    # What-if: the pages keep the increases tried, and "what changes" is the whole list's.
    tried = client.get(f"/funding/calls/{call}/what-if?extra_{anr}=200000")
    assert "TEST-0003 THREE (rank 3): blocked → selected" in words(tried)
    links = pager_links(tried)
    assert any(f"extra_{anr}=200000" in link and "page=2" in link for link in links), links
    page_two = client.get(f"/funding/calls/{call}/what-if?extra_{anr}=200000&page=2")
    assert "TEST-0003 THREE (rank 3): blocked → selected" in words(page_two)
    assert "tried +€200,000" in words(page_two)
    assert row_ids(page_two, "row") == row_ids(second, "row")
    # ?page= alone is the list as it stands, not a try.
    assert 'id="changes"' not in client.get(f"/funding/calls/{call}/what-if?page=2").get_data(as_text=True)


def test_approving_from_a_later_page_approves_the_whole_list(app, client, session, world):
    add_proposals(session, world)
    call = world.call.id
    login(client, world.sec)
    page = client.get(f"/funding/calls/{call}/approve?page=3")
    assert row_ids(page, "row") == [f"TEST-{n:04d}" for n in range(2 * PER_PAGE + 1, MANY + 1)]
    text = words(page)
    selected = 3 + SMALL
    assert f"{selected} proposals become selected: ONE, TWO, FOUR, P6," in text
    assert f"and {selected - 25} more (see the list below)." in text
    assert f"{MANY - selected} go to the reserve list" in text
    fingerprint = re.search(r'name="fingerprint" type="hidden" value="([0-9a-f]+)"', page.get_data(as_text=True))
    response = client.post(f"/funding/calls/{call}/approve",
                           data={"note": "CSC meeting", "fingerprint": fingerprint.group(1)})
    assert response.status_code == 302
    states = dict(session.execute(select(Proposal.state, func.count()).where(Proposal.call_id == call)
                                  .group_by(Proposal.state)).all())
    assert states == {"selected": selected, "reserve": MANY - selected}


def test_an_approval_from_a_page_of_a_list_that_changed_meanwhile_is_refused(app, client, session, world):
    add_proposals(session, world)
    login(client, world.sec)
    page = client.get(f"/funding/calls/{world.call.id}/approve?page=2").get_data(as_text=True)
    fingerprint = re.search(r'name="fingerprint" type="hidden" value="([0-9a-f]+)"', page).group(1)
    from workflow.funding_ops import record_budget_increase

    record_budget_increase(session, world.officers["ANR-T"], world.call, world.fid["ANR-T"], 500_000)
    session.commit()
    response = client.post(f"/funding/calls/{world.call.id}/approve",
                           data={"note": "CSC meeting", "fingerprint": fingerprint})
    assert response.status_code == 409 and "Nothing was recorded" in words(response)
    assert session.scalar(select(func.count()).select_from(FundingScenario)) == 0


# ---------------------------------------------------------------------------------------------------------
# After the approval: every page, few against many proposals


@pytest.fixture
def approved(client, session):
    """(few, many): the five-proposal world and the 120-proposal one, each approved."""
    few = build_world(session, code="few")
    for p in few.p.values():  # build_world names its coordinators' addresses after the acronyms
        p.coordinator.email = f"few.{p.coordinator.email}"
    session.commit()
    many = build_world(session, code="many")
    add_proposals(session, many)
    for w in (few, many):
        assert approve(client, w).status_code == 302
    return few, many


def pages(w: World) -> dict[str, tuple[User, str]]:
    call = w.call.id
    return {
        "scenario": (w.sec, f"/funding/calls/{call}/scenario"),
        "confirmations": (w.sec, f"/funding/calls/{call}/confirmations"),
        "confirmations (officer)": (w.officers["DFG-T"], f"/funding/calls/{call}/confirmations"),
        "budgets": (w.sec, f"/funding/calls/{call}/budgets"),
        "funding list CSV": (w.sec, f"/funding/calls/{call}/funders/{w.fid['DFG-T']}/funding-list.csv"),
        "funding list XLSX": (w.sec, f"/funding/calls/{call}/funders/{w.fid['DFG-T']}/funding-list.xlsx"),
        "letters": (w.sec, f"/funding/calls/{call}/letters"),
        "letters to send": (w.sec, f"/funding/calls/{call}/letters/full/send"),
    }


def costs(app, client, w: World) -> dict[str, int]:
    out = {}
    for name, (user, url) in pages(w).items():
        login(client, user)
        out[name] = cost(app, client, url)
    return out


def test_the_pages_after_the_approval_cost_the_same_with_few_and_many_proposals(app, client, session, approved):
    few, many = approved
    assert [generate_letters(session, w) for w in (few, many)] == [2, MANY - (3 + SMALL)]
    assert costs(app, client, many) == costs(app, client, few)


def test_the_budgets_page_costs_the_same_whatever_the_number_of_funders(app, client, session, world):
    login(client, world.sec)
    url = f"/funding/calls/{world.call.id}/budgets"
    before = cost(app, client, url)
    for n in range(3):
        org = FundingOrganisation(acronym=f"NEW-{n}", name=f"New Funder {n}", country="NL")
        session.add(CallFunder(call_id=world.call.id, funder=org, committed_budget=100_000))
    session.commit()
    assert cost(app, client, url) == before
    page = client.get(url).get_data(as_text=True)
    assert all(f'id="budget-NEW-{n}"' in page for n in range(3))


def test_the_confirmations_page_by_page_with_the_whole_calls_counts(client, session, approved):
    _few, w = approved
    call = w.call.id
    total = session.scalar(select(func.count()).select_from(FundingConfirmation)
                           .where(FundingConfirmation.call_id == call))
    assert total == 8 + 2 * SMALL
    login(client, w.sec)
    first = client.get(f"/funding/calls/{call}/confirmations")
    second = client.get(f"/funding/calls/{call}/confirmations?page=2")
    assert f"{total} confirmations: {total} pending." in words(first) and f"{total} confirmations" in words(second)
    one, two = row_ids(first, "overview"), row_ids(second, "overview")
    assert len(one) == PER_PAGE and len(two) == PER_PAGE and not set(one) & set(two)
    assert f"/funding/calls/{call}/confirmations?page=2" in pager_links(first)
    # Each row names its proposal.
    c = session.get(FundingConfirmation, int(two[0]))
    proposal = session.get(Proposal, c.proposal_id)
    row = re.search(rf'<tr id="overview-{c.id}">(.*?)</tr>', second.get_data(as_text=True)).group(1)
    assert f"{proposal.reference} {proposal.acronym}" in row


def test_the_approved_list_shows_each_rows_confirmations_on_every_page(client, session, approved):
    _few, w = approved
    call = w.call.id
    login(client, w.sec)
    second = client.get(f"/funding/calls/{call}/scenario?page=2").get_data(as_text=True)

    def row(reference: str) -> str:
        return re.search(rf'<tr id="row-{reference}".*?</tr>', second, re.S).group(0)

    # TEST-0051 to TEST-0060 are small, selected ones; from TEST-0061 on they wait in the reserve.
    selected = re.sub(r"<[^>]+>", " ", re.search(r'<span class="confirmations">(.*?)</span></td>',
                                                  row("TEST-0051"), re.S).group(1))
    assert selected.split() in (["DFG-T", "Pending", "ANR-T", "Pending"], ["ANR-T", "Pending", "DFG-T", "Pending"])
    assert 'class="confirmations"' not in row("TEST-0061")
    # Each funder's column holds that partner's request.
    assert re.search(r'data-funder="DFG-T">€10,000<', row("TEST-0051"))
    assert re.search(r'data-funder="ANR-T">€100,000<', row("TEST-0061"))


def test_an_officer_pages_through_their_confirmations_and_a_refusal_shows_its_card(client, session, approved):
    _few, w = approved
    call = w.call.id
    officer = w.officers["DFG-T"]
    login(client, officer)
    cards = r'<section class="card mb-3" aria-labelledby="confirmation-(\d+)-heading"'
    first = client.get(f"/funding/calls/{call}/confirmations")
    second = client.get(f"/funding/calls/{call}/confirmations?page=2")
    one = re.findall(cards, first.get_data(as_text=True))
    two = re.findall(cards, second.get_data(as_text=True))
    assert len(one) == PER_PAGE and len(two) == 3 + SMALL - PER_PAGE and not set(one) & set(two)
    assert "TEST-0001 ONE — DFG-T" in words(first) and "TEST-0060 P60 — DFG-T" in words(second)
    assert "Lab 60.1" in words(second)  # the card's partner, with its amount
    # A decline without a reason, on a card of the second page: the page shown is the one with the card.
    c = w.confirmation("P60", "DFG-T")
    response = client.post(f"/funding/confirmations/{c.id}", data={
        f"c{c.id}-decision": "decline", f"c{c.id}-reason": "", f"c{c.id}-version": str(c.version)})
    assert response.status_code == 422
    assert re.search(rf'id="c{c.id}-reason-error">give the reason why your organisation declines this funding',
                     response.get_data(as_text=True))


def test_the_funding_list_export_holds_every_line(client, session, approved):
    _few, w = approved
    login(client, w.sec)
    response = client.get(f"/funding/calls/{w.call.id}/funders/{w.fid['DFG-T']}/funding-list.csv")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    lines = session.scalar(select(func.count()).select_from(FundingLine).join(FundingScenario).where(
        FundingScenario.call_id == w.call.id, FundingScenario.status == "current",
        FundingLine.funder_id == w.fid["DFG-T"]))
    assert len(rows) == lines == 3 + SMALL > PER_PAGE
    assert rows[-1]["Reference"] == "TEST-0060" and rows[-1]["Partner"] == "Lab 60.1"


def test_the_letters_page_by_page_with_the_whole_stages_counts_and_sending_sends_all(
        client, session, approved):
    _few, w = approved
    call = w.call.id
    letters = MANY - (3 + SMALL)  # the reserve list; the selected proposals wait for their funders
    login(client, w.sec)
    first = client.get(f"/funding/calls/{call}/letters")
    assert f"{letters} letters: {letters} on the reserve list." in words(first)
    assert f"By status: {letters} not generated." in words(first)
    second = client.get(f"/funding/calls/{call}/letters?stage=full&page=2")
    one, two = row_ids(first, "letter"), row_ids(second, "letter")
    assert len(one) == PER_PAGE and len(two) == letters - PER_PAGE and not set(one) & set(two)
    assert one[0] == "TEST-0003" and two[-1] == f"TEST-{MANY:04d}"
    assert f"/funding/calls/{call}/letters?stage=full&page=2" in pager_links(first)
    assert f"{letters} letters" in words(second) and "coordinator.120@example.org" in words(second)

    assert generate_letters(session, w) == letters
    assert f"By status: {letters} generated." in words(client.get(f"/funding/calls/{call}/letters?page=2"))
    send = client.get(f"/funding/calls/{call}/letters/full/send?page=2")
    assert f"{letters} coordinators will each get one message." in words(send)
    assert f"Send {letters} letters" in words(send)
    recipients = re.findall(r"coordinator\.\d+@example\.org", re.search(
        r'<table class="table table-sm" id="recipients">.*?</table>', send.get_data(as_text=True), re.S).group(0))
    assert len(recipients) == letters - PER_PAGE
    fingerprint = re.search(r'name="fingerprint" type="hidden" value="([0-9a-f]+)"', send.get_data(as_text=True))
    response = client.post(f"/funding/calls/{call}/letters/full/send", data={"fingerprint": fingerprint.group(1)})
    assert response.status_code == 302
    assert f"{letters} decision letters were sent" in words(client.get(response.headers["Location"]))
    assert f"By status: {letters} sent." in words(client.get(f"/funding/calls/{call}/letters"))



def test_the_secretariat_finds_its_console_tabs_on_the_funding_pages_and_officers_do_not(client, world):
    url = f"/funding/calls/{world.call.id}/scenario"
    login(client, world.sec)
    html = client.get(url).get_data(as_text=True)
    assert re.search(r'<a class="nav-link active" aria-current="page" href="[^"]*/funding/calls/\d+/scenario">Funding</a>',
                     html)
    assert 'id="call-nav"' in html
    client.post("/logout")
    login(client, world.officers["ANR-T"])
    assert 'id="call-nav"' not in client.get(url).get_data(as_text=True)
