"""The eligibility step's long pages at the size of a real call: the secretariat's matrix, its exports and
the report of closing the step, the funder officer's list, the people of a call and the proposals export
send the same number of SQL statements for a call of 3 proposals as for one of 55, and the lists show 50
rows a page with links to the others, while the counts above them cover every row."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

import openpyxl
import pytest
from sqlalchemy import select

from tests import factories as f
from tests.web.test_console_proposals import statements
from tests.web.test_funder import login, text_of
from workflow.accounts import grant_role
from workflow.eligibility import close_eligibility_step
from workflow.models import Call, EligibilityCheck, Proposal, User
from workflow.operations import close_stage, sign_off, transition

BIG = 55  # more than one page of 50 proposals


@pytest.fixture(autouse=True)
def small_select_in_chunks(monkeypatch):
    """SQLAlchemy's selectinload sends one statement per 500 parents: at 10 per statement, the few dozen
    rows of a test show whether a page's statements grow with the call as 2,000 proposals would."""
    from sqlalchemy.orm import strategies

    loader = getattr(strategies, "_SelectInLoader", None) or strategies.SelectInLoader
    monkeypatch.setattr(loader, "_chunksize", 10)


@dataclass
class InCheck:
    """A two-stage call whose pre-proposals are in the eligibility check (four partners each: two DFG-T,
    one ANR-T, one ISCIII-T), with its secretariat and a DFG-T officer."""

    call: Call
    sec: User
    dfg: User
    proposals: list


def in_check(session, frozen, code: str, n: int) -> InCheck:
    frozen(f.PRE_OPEN)
    call = f.make_call(session, code=code)
    sec = f.secretariat(session, call)
    dfg = f.officer(session, call, "DFG-T")
    proposals = [f.valid_proposal(session, call, acronym=f"{code[:4].upper()}{i:03d}") for i in range(n)]
    for p in proposals:
        transition(session, p.coordinator, p.id, "submit")
    session.commit()
    frozen(f.PRE_CLOSED)
    close_stage(session, sec, call, "pre")
    session.commit()
    return InCheck(call, sec, dfg, proposals)


@pytest.fixture
def calls(session, frozen) -> tuple[InCheck, InCheck]:
    """A small call and a big one, the same in everything but their size."""
    return in_check(session, frozen, "small-call", 3), in_check(session, frozen, "big-call", BIG)


def count(app, client, url: str) -> int:
    with statements(app) as seen:
        response = client.get(url)
        assert response.status_code == 200, url
    return len(seen)


def ids(pattern: str, response) -> list[int]:
    return [int(i) for i in re.findall(pattern, response.get_data(as_text=True))]


def decide_all(session, proposal, status: str = "eligible") -> None:
    for c in session.scalars(select(EligibilityCheck).where(EligibilityCheck.proposal_id == proposal.id)):
        c.status = status
        c.reason = "not a research body" if status == "ineligible" else None
    session.commit()


# ---------------------------------------------------------------------------------------------------------
# The secretariat's matrix and its exports


def test_the_matrix_and_its_exports_cost_the_same_for_3_and_for_55_proposals(app, client, session, calls):
    small, big = calls
    for w in calls:
        decide_all(session, w.proposals[0])
    for suffix in ("", "?page=2", "/matrix.csv", "/matrix.xlsx"):
        login(client, small.sec)
        few = count(app, client, f"/secretariat/calls/{small.call.id}/eligibility/pre{suffix}")
        login(client, big.sec)
        many = count(app, client, f"/secretariat/calls/{big.call.id}/eligibility/pre{suffix}")
        assert few == many, suffix


def test_the_matrix_shows_50_proposals_a_page_and_counts_them_all(client, session, calls):
    _, big = calls
    decide_all(session, big.proposals[0])
    decide_all(session, big.proposals[-1], "ineligible")
    login(client, big.sec)
    url = f"/secretariat/calls/{big.call.id}/eligibility/pre"
    first, second = client.get(url), client.get(url + "?page=2")
    on_first, on_second = ids(r'<tr id="proposal-(\d+)"', first), ids(r'<tr id="proposal-(\d+)"', second)
    assert len(on_first) == 50 and len(on_second) == BIG - 50
    assert set(on_first) | set(on_second) == {p.id for p in big.proposals} and not set(on_first) & set(on_second)
    assert big.proposals[-1].id in on_second  # sorted by reference
    assert f'href="{url}?page=2"' in first.get_data(as_text=True)
    assert f'href="{url}?page=1"' in second.get_data(as_text=True)
    for page in (first, second):
        text = text_of(page)
        # Every proposal but the two decided ones waits for its formal check and its two DFG-T partners.
        assert f"{BIG} proposals in the eligibility check; {BIG - 2} formal checks pending" in text
        assert f"DFG-T: {2 * (BIG - 2)} pending" in text
        assert f"1 goes on, 1 becomes ineligible, {BIG - 2} wait for pending checks" in text
        assert f"Showing {'1–50' if page is first else f'51–{BIG}'} of {BIG}" in text


def test_the_matrix_exports_hold_every_proposal(client, session, calls):
    _, big = calls
    login(client, big.sec)
    url = f"/secretariat/calls/{big.call.id}/eligibility/pre/matrix"
    rows = list(csv.reader(io.StringIO(client.get(url + ".csv").get_data().decode("utf-8-sig"))))
    assert sorted(r[1] for r in rows[1:]) == sorted(p.acronym for p in big.proposals)
    sheet = openpyxl.load_workbook(io.BytesIO(client.get(url + ".xlsx").get_data())).active
    assert sheet.max_row == BIG + 1


def test_the_report_of_closing_the_step_pages_its_proposals(app, client, session, calls):
    small, big = calls
    reports = []
    for w in calls:
        for p in w.proposals[:2]:
            decide_all(session, p)
        reports.append(close_eligibility_step(session, w.sec, w.call, "pre").event_id)
        session.commit()
    login(client, small.sec)
    few = count(app, client, f"/secretariat/calls/{small.call.id}/eligibility/pre/closings/{reports[0]}")
    login(client, big.sec)
    url = f"/secretariat/calls/{big.call.id}/eligibility/pre/closings/{reports[1]}"
    assert count(app, client, url) == few
    first, second = text_of(client.get(url)), text_of(client.get(url + "?page=2"))
    for text in (first, second):  # the summary counts every proposal, on every page
        assert f"2 proposals went on; 0 were found ineligible; {BIG - 2} stay in the eligibility check." in text
    names = [p.acronym for p in big.proposals]
    assert all(a in first for a in names[:50]) and not any(a in first for a in names[50:])
    assert all(a in second for a in names[50:]) and not any(a in second for a in names[:50])
    assert "Eligible, going on" in first and "Eligible, going on" not in second
    assert f'href="{url}?page=2"' in first and f"Showing 51–{BIG} of {BIG}" in second


# ---------------------------------------------------------------------------------------------------------
# The funder officer's list


def test_the_officers_list_costs_the_same_for_3_and_for_55_proposals(app, client, session, calls):
    small, big = calls
    # Verdicts by several officers: the list names who decided each, whatever their number.
    for w, officers in ((small, 1), (big, 3)):
        checks = session.scalars(select(EligibilityCheck).where(
            EligibilityCheck.funder_id == f.funder(session, "DFG-T").id,
            EligibilityCheck.proposal_id.in_([p.id for p in w.proposals]))).all()
        for i in range(officers):
            sign_off(session, f.officer(session, w.call, "DFG-T"), checks[i].id, "eligible")
    session.commit()
    for suffix in ("", "?page=2", "?status=pending&page=2", "/partners.csv"):
        login(client, small.dfg)
        few = count(app, client, f"/funder/calls/{small.call.id}/pre{suffix}")
        login(client, big.dfg)
        assert count(app, client, f"/funder/calls/{big.call.id}/pre{suffix}") == few, suffix


def test_the_officers_list_pages_keep_the_filter_and_the_totals(client, session, calls):
    _, big = calls
    decide_all(session, big.proposals[0])
    login(client, big.dfg)
    url = f"/funder/calls/{big.call.id}/pre"
    own = 2 * BIG  # two DFG-T partners in every proposal
    pages = [client.get(f"{url}?status=pending&page={n}") for n in (1, 2, 3)]
    shown = [ids(r'<tr id="check-(\d+)"', page) for page in pages]
    assert [len(s) for s in shown] == [50, 50, own - 2 - 100]
    assert len(set(shown[0] + shown[1] + shown[2])) == own - 2
    assert f'href="{url}?status=pending&amp;page=3"' in pages[1].get_data(as_text=True)
    for page in pages:
        text = text_of(page)
        assert f"All ({own})" in text and f"Pending ({own - 2})" in text and "Eligible (2)" in text
        budget = re.search(r'<tr id="budget-DFG-T">(.*?)</tr>', page.get_data(as_text=True), re.S).group(1)
        assert f"€{BIG * 400_000:,}" in budget  # 250k + 150k requested in each proposal


def test_bulk_sign_off_acts_on_the_partners_selected_on_page_2(client, session, calls):
    _, big = calls
    login(client, big.dfg)
    url = f"/funder/calls/{big.call.id}/pre"
    page2 = client.get(url + "?status=pending&page=2")
    chosen = ids(r'<tr id="check-(\d+)"', page2)[:2]
    assert f'action="{url}/sign-off?status=pending&amp;page=2"' in page2.get_data(as_text=True)
    form = {"check": [str(i) for i in chosen], **{f"version-{i}": "1" for i in chosen}, "verdict": "eligible"}
    response = client.post(f"{url}/sign-off?status=pending&page=2", data=form)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"{url}?status=pending&page=2")
    session.expire_all()
    signed = session.scalars(select(EligibilityCheck.id).where(EligibilityCheck.status == "eligible")).all()
    assert sorted(signed) == sorted(chosen)
    assert "2 partners signed off as eligible" in text_of(client.get(response.headers["Location"]))


# ---------------------------------------------------------------------------------------------------------
# The people of a call, and the proposals export


def test_the_people_page_costs_the_same_for_few_and_many_reviewers_and_pages_them(app, client, session, calls):
    small, big = calls
    for w, n in ((small, 3), (big, BIG)):
        for i in range(n):
            grant_role(session, None, f.make_user(session, f"Reviewer {i:03d}"), "reviewer", w.call.id)
    session.commit()
    login(client, small.sec)
    few = count(app, client, f"/secretariat/calls/{small.call.id}/people")
    login(client, big.sec)
    url = f"/secretariat/calls/{big.call.id}/people"
    assert count(app, client, url) == few
    assert count(app, client, url + "?page=2") == few
    first, second = client.get(url), client.get(url + "?page=2")
    on_first, on_second = ids(r'<tr id="grant-(\d+)"', first), ids(r'<tr id="grant-(\d+)"', second)
    assert len(on_first) == 50 and len(on_second) == BIG + 2 - 50 and not set(on_first) & set(on_second)
    assert "Sam Secretariat" in text_of(first) and "Reviewer 054" in text_of(second)
    assert f'href="{url}?page=2"' in first.get_data(as_text=True)
    for page in (first, second):
        assert f"Call secretariat: 1; Funder officer: 1; Reviewer: {BIG}." in text_of(page)
    # Revoking a role on page 2 comes back to page 2.
    revoke = f"{url}/grants/{on_second[-1]}/revoke?page=2"
    assert f'action="{revoke}"' in second.get_data(as_text=True).replace("&amp;", "&")
    response = client.post(revoke)
    assert response.status_code == 302 and response.headers["Location"].endswith(f"{url}?page=2")
    assert f"Reviewer: {BIG - 1}." in text_of(client.get(response.headers["Location"]))


def test_the_proposals_export_costs_the_same_for_3_and_for_55_proposals(app, client, session, calls):
    small, big = calls
    login(client, small.sec)
    few = count(app, client, f"/secretariat/calls/{small.call.id}/proposals.csv")
    login(client, big.sec)
    with statements(app) as seen:
        response = client.get(f"/secretariat/calls/{big.call.id}/proposals.csv")
    assert len(seen) == few
    rows = list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert len(rows) == BIG
    assert all(r["Partner organisations"] == "Charité Berlin; Institut Curie; Hospital Clínic; Universität Heidelberg"
               for r in rows)
    coordinators = {p.acronym: p.coordinator.email for p in session.scalars(
        select(Proposal).where(Proposal.call_id == big.call.id))}
    assert {r["Acronym"]: r["Coordinator e-mail"] for r in rows} == coordinators


def test_the_matrix_is_the_eligibility_tab_of_the_console(client, calls):
    small, _ = calls
    login(client, small.sec)
    html = client.get(f"/secretariat/calls/{small.call.id}/eligibility/pre").get_data(as_text=True)
    assert re.search(r'<a class="nav-link active" aria-current="page" href="[^"]*/eligibility/pre">Eligibility</a>', html)
