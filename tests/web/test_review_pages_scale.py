"""The review pages at the scale of a real call: each sends the same number of SQL statements with a few
proposals and with many (no query per proposal, reviewer or assignment), the long lists come in pages of
50 whose links keep the list's filters, and what is shown above a list (budgets, counts) still covers the
whole list."""

from __future__ import annotations

import html as htmllib
import re
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select, update

from reviews.models import PanelConsensus, RankingList
from reviews.ranking import approve_ranking, build_ranking, invitation_budget
from tests import factories as f
from tests.conftest import statements
from tests.unit.reviews_helpers import assign, make_proposal, make_reviewer, submitted_review
from tests.web.test_funder import login
from workflow.accounts import grant_role

FEW, MANY = 3, 60  # MANY crosses a 50-row page
GOOD = {"excellence": 4.5, "impact": 4, "implementation": 4}
NOW = f.PRE_CLOSED




@dataclass
class World:
    call: object
    sec: object
    reviewers: list  # the first three review every proposal
    proposals: list

    def base(self) -> str:
        return f"/secretariat/calls/{self.call.id}/reviews"


def add_proposals(session, w: World, n: int) -> None:
    """n pre-proposals under review, each with three submitted reviews and the panel's consensus; every
    one requests a different amount, so the ranking needs no panel vote."""
    for _ in range(n):
        i = len(w.proposals)
        partners = (("Charité Berlin", "DE", "DFG-T", 100_000 + 1_000 * i), ("Institut Curie", "FR", "ANR-T", 50_000),
                    ("Hospital Clínic", "ES", "ISCIII-T", 20_000))
        p = make_proposal(session, w.call, f"P{i:03d}", state="pre_review", partners=partners)
        for reviewer in w.reviewers[:3]:
            submitted_review(session, assign(session, p, reviewer, stage="pre"), GOOD)
        session.add(PanelConsensus(call_id=w.call.id, proposal_id=p.id, stage="pre", scores=GOOD, weighted_total=12.5,
                                   recommendation="recommended" if i % 2 else "recommended_if_funds",
                                   summary=f"Summary of P{i:03d}.", entered_by_id=w.sec.id, entered_at=NOW))
        w.proposals.append(p)
    session.flush()


def rank(session, w: World) -> None:
    """(Re)build the pre-stage ranking and approve it (an approved list is reopened first: the test grows
    the call behind the freeze)."""
    session.execute(update(RankingList).values(status="draft", approved_by_id=None, approved_at=None))
    build_ranking(session, w.sec, w.call, "pre")
    session.flush()
    session.expire_all()
    approve_ranking(session, w.sec, session.scalar(select(RankingList)))
    session.commit()


def build(session, frozen, n: int, reviewers: int = 4) -> World:
    frozen(NOW)
    call = f.make_call(session)
    sec = f.make_user(session, "Sam Secretariat", email="sam@jcs.example.org")
    grant_role(session, None, sec, "secretariat", call.id)
    people = [make_reviewer(session, call, f"Reviewer {i:02d}", email=f"r{i}@rev{i}.example.net",
                            organisation=f"University {i}", country="NO") for i in range(reviewers)]
    # Works where every proposal's first partner does: a detected conflict with each proposal.
    people.append(make_reviewer(session, call, "Carla Conti", email="carla@charite.example.de",
                                organisation="Charité Berlin", country="DE"))
    w = World(call, sec, people, [])
    add_proposals(session, w, n)
    rank(session, w)
    return w


@pytest.fixture
def big(session, frozen):
    return build(session, frozen, MANY, reviewers=52)


def pages(w: World) -> list[str]:
    base = w.base()
    return [base, base + "/pool", base + "/conflicts", base + "/pre/assignments", base + "/pre/progress",
            base + "/pre/panel", base + "/pre/ranking", base + "/pre/invitations",
            base + "/pre/export/reviews.csv", base + "/pre/export/scores.xlsx", base + "/pre/export/ranking.xlsx",
            base + "/pre/export/ranking.pdf"]


def reviewer_pages(w: World) -> list[str]:
    return [f"/review/calls/{w.call.id}", f"/review/calls/{w.call.id}/conflicts"]


def count_statements(app, client, urls) -> dict[str, int]:
    out = {}
    for url in urls:
        with statements(app) as seen:
            r = client.get(url)
            assert r.status_code == 200, url
        out[url] = len(seen)
    return out


def test_the_review_pages_and_exports_send_as_many_statements_for_many_proposals_as_for_few(
        app, client, session, frozen):
    w = build(session, frozen, FEW)
    login(client, w.sec)
    few = count_statements(app, client, pages(w))
    login(client, w.reviewers[0])
    few_reviewer = count_statements(app, client, reviewer_pages(w))

    add_proposals(session, w, MANY - FEW)
    for i in range(6):  # a bigger pool too
        w.reviewers.append(make_reviewer(session, w.call, f"Extra {i}", email=f"x{i}@extra{i}.example.net"))
    rank(session, w)
    login(client, w.sec)
    many = count_statements(app, client, pages(w))
    login(client, w.reviewers[0])
    many_reviewer = count_statements(app, client, reviewer_pages(w))
    assert {url: (few[url], n) for url, n in many.items() if n != few[url]} == {}
    assert {url: (few_reviewer[url], n) for url, n in many_reviewer.items() if n != few_reviewer[url]} == {}


def ids(html: str, pattern: str) -> list[str]:
    return re.findall(pattern, html)


def next_link(html: str) -> str:
    """The href of the pager's "Next" link, as a browser would follow it."""
    return htmllib.unescape(re.search(r'<a class="page-link" rel="next" href="([^"]+)"', html).group(1))


@pytest.mark.parametrize(("path", "row"), [
    ("/pre/ranking", r'<tr id="rank-(\d+)"'),
    ("/pre/panel", r'<tr id="panel-(\d+)"'),
    ("/pre/progress", r'<tr id="progress-(\d+)"'),
    ("/pre/assignments", r'<tr id="proposal-(\d+)"'),
    ("/pool", r'<tr id="reviewer-(\d+)"'),
    ("/conflicts", r'<tr class="conflict-row" data-proposal="(\d+)" data-reviewer="(\d+)"'),
])
def test_long_review_lists_come_in_pages_of_fifty(client, big, path, row):
    login(client, big.sec)
    first = client.get(big.base() + path).get_data(as_text=True)
    assert len(ids(first, row)) == 50
    assert 'aria-current="page">1</a>' in first and re.search(r"Showing 1–50 of \d+", first)
    second = client.get(next_link(first)).get_data(as_text=True)
    rest = ids(second, row)
    assert rest and not set(rest) & set(ids(first, row))
    assert 'rel="prev"' in second and re.search(r"Showing 51–\d+ of \d+, page 2 of 2", second)


def test_the_ranking_continues_on_its_second_page_and_the_totals_above_cover_every_proposal(client, big):
    login(client, big.sec)
    second = client.get(big.base() + "/pre/ranking?page=2").get_data(as_text=True)
    assert ids(second, r'<tr id="rank-(\d+)"') == [str(n) for n in range(51, MANY + 1)]
    progress = client.get(big.base() + "/pre/progress?page=2").get_data(as_text=True)
    reviews = 3 * MANY
    assert f"{MANY} proposals; {reviews} of {reviews} assigned reviews submitted." in re.sub(r"\s+", " ", progress)
    # A page number beyond the last shows the last page.
    assert ids(client.get(big.base() + "/pre/ranking?page=99").get_data(as_text=True),
               r'<tr id="rank-(\d+)"')[0] == "51"


def test_invitations_keep_the_whole_chosen_set_and_its_budgets_on_every_page(client, session, big):
    login(client, big.sec)
    first = client.get(big.base() + "/pre/invitations").get_data(as_text=True)
    everyone = [p.id for p in big.proposals]  # the panel recommended all of them
    budget = {b.funder: b for b in invitation_budget(session, big.call, everyone)}

    def summary(html):
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.search(r'<p id="invited-summary">.*?</p>', html,
                                                                       re.S).group(0))).strip()

    def dfg(html):
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.search(r'<tr id="budget-DFG-T">.*?</tr>', html,
                                                                       re.S).group(0)))

    assert summary(first).startswith(f"{MANY} proposals chosen")
    assert f"€{budget['DFG-T'].requested:,}" in dfg(first)
    on_first = set(ids(first, r'<tr data-proposal="(\d+)"'))
    assert len(on_first) == 50
    second = client.get(next_link(first)).get_data(as_text=True)
    on_second = set(ids(second, r'<tr data-proposal="(\d+)"'))
    assert on_second and not on_second & on_first
    assert summary(second) == summary(first) and dfg(second) == dfg(first)
    # Unticking one proposal on page 2 (submitting its update form as a browser would) keeps that choice
    # when going back to page 1, and the links carry only that change, not the whole chosen list.
    dropped = sorted(on_second)[0]
    form = re.search(r'<form method="get"[^>]*id="choose-form">.*?</form>', second, re.S).group(0)
    fields = [(n, v) for n, v in re.findall(r'<input[^>]*type="hidden" name="(\w+)" value="([^"]*)"', form)]
    fields += [("invite", pid) for pid in sorted(on_second) if pid != dropped]  # the ticks left on the page
    page2 = client.get(big.base() + "/pre/invitations", query_string=fields).get_data(as_text=True)
    assert summary(page2).startswith(f"{MANY - 1} proposals chosen")
    prev = htmllib.unescape(re.search(r'<a class="page-link" rel="prev" href="([^"]+)"', page2).group(1))
    assert "sel=" in prev and "invite=" not in prev
    back = client.get(prev).get_data(as_text=True)
    assert summary(back) == summary(page2)
    # page 1's form carries the choice made on page 2: submitting it untouched keeps the count
    form1 = re.search(r'<form method="get"[^>]*id="choose-form">.*?</form>', back, re.S).group(0)
    fields1 = re.findall(r'<input[^>]*type="hidden" name="(\w+)" value="([^"]*)"', form1)
    fields1 += [("invite", pid) for pid in re.findall(r'name="invite" value="(\d+)" id="invite-\d+" checked', form1)]
    assert summary(client.get(big.base() + "/pre/invitations", query_string=fields1).get_data(as_text=True)) == \
        summary(page2)
    # An explicit list (?chosen=1&invite=...) is still understood, and its links are the short form too.
    kept = [pid for pid in everyone if str(pid) != dropped]
    explicit = client.get(big.base() + "/pre/invitations?chosen=1&page=2&" + "&".join(f"invite={pid}" for pid in kept))
    assert summary(explicit.get_data(as_text=True)) == summary(page2)


def test_choosing_far_from_the_recommendation_keeps_the_links_short(client, session, big):
    """Links carry the choice as one bit per proposal of the list: the same length whatever is chosen, and
    no choice at all in them when it is the panel's recommendation."""
    login(client, big.sec)
    keep = big.proposals[0].id
    query = [("chosen", "1"), ("invite", str(keep))]
    html = client.get(big.base() + "/pre/invitations", query_string=query).get_data(as_text=True)
    assert "1 proposal chosen" in re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    href = next_link(html)
    sel = re.search(r"sel=([^&]+)", href).group(1)
    assert "invite=" not in href and len(sel) <= MANY // 6 + 2
    assert "1 proposal chosen" in re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", client.get(href).get_data(as_text=True)))
    everyone_again = client.get(big.base() + "/pre/invitations?chosen=1&" + "&".join(
        f"invite={p.id}" for p in big.proposals)).get_data(as_text=True)
    next_href = next_link(everyone_again)
    assert "invite=" not in next_href and "sel=" not in next_href
    # an altered or foreign choice falls back to the recommendation, without an error
    altered = client.get(big.base() + "/pre/invitations?sel=%%%")
    assert altered.status_code == 200 and f"{MANY} proposals chosen" in re.sub(
        r"\s+", " ", re.sub(r"<[^>]+>", " ", altered.get_data(as_text=True)))


def test_a_reviewer_declares_conflicts_page_by_page(client, session, big):
    reviewer = big.reviewers[5]
    login(client, reviewer)
    url = f"/review/calls/{big.call.id}/conflicts"
    first = client.get(url).get_data(as_text=True)
    on_first = ids(first, r'<tr id="declare-(\d+)"')
    assert len(on_first) == 50
    second = client.get(next_link(first)).get_data(as_text=True)
    on_second = ids(second, r'<tr id="declare-(\d+)"')
    assert on_second and not set(on_second) & set(on_first)
    # A refused declaration comes back on the page it was sent from.
    target = on_second[0]
    action = htmllib.unescape(re.search(rf'<form method="post" action="([^"]+/conflicts/{target}[^"]*)"', second)
                              .group(1))
    refused = client.post(action, data={f"p{target}-reason": " "})
    assert refused.status_code == 422
    assert ids(refused.get_data(as_text=True), r'<tr id="declare-(\d+)"') == on_second


def test_adding_and_removing_a_reviewer_on_the_second_page_of_assignments_returns_to_that_page(client, session, big):
    login(client, big.sec)
    second = client.get(big.base() + "/pre/assignments?page=2").get_data(as_text=True)
    add = re.search(r'<form method="post" action="([^"]+/assignments\?page=2)"[^>]*>\s*<input type="hidden" '
                    r'name="csrf_token" value="[^"]*">\s*<input type="hidden" name="proposal_id" value="(\d+)">', second)
    assert add, "page 2 has a form to add a reviewer"
    action, proposal_id = add.group(1).replace("&amp;", "&"), int(add.group(2))
    assert "page=2" in action
    reviewer = next(r for r in big.reviewers if r.name == "Reviewer 10")
    answer = client.post(action, data={"proposal_id": proposal_id, "reviewer_id": reviewer.id})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/pre/assignments?page=2")
    after = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Reviewer 10 is assigned to" in after and f'id="proposal-{proposal_id}"' in after
    remove = re.search(r'action="([^"]+/remove\?page=2)"', after)
    assert remove
    answer = client.post(remove.group(1).replace("&amp;", "&"))
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/pre/assignments?page=2")


def test_the_automatic_assignment_preview_comes_in_pages_and_accepting_writes_every_pair(client, session, big,
                                                                                       monkeypatch):
    import webapp.secretariat.reviews as views
    from reviews.models import KeptPreview, ReviewAssignment

    computed = []
    real = views.propose_assignment

    def counted(*args, **kwargs):
        computed.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(views, "propose_assignment", counted)
    login(client, big.sec)
    before = session.scalar(select(func.count(ReviewAssignment.id)))
    first = client.get(big.base() + "/pre/assignments/preview?load_cap=20&reviewers_per_proposal=4&method=flow")
    html = first.get_data(as_text=True)
    assert first.status_code == 200 and len(computed) == 1
    assert re.search(r"\b60 new assignments proposed for 60 proposals", re.sub(r"\s+", " ", html))
    row = r'<tr class="pair" data-proposal="(\d+)" data-reviewer="\d+">'
    assert len(ids(html, row)) == 50 and re.search(r"Showing 1–50 of 60", html)
    # The second page reads the preview kept by the first: computing it again takes seconds at call scale.
    second = client.get(next_link(html)).get_data(as_text=True)
    assert "reviewers_per_proposal=4" in next_link(html) and "run=" in next_link(html)
    assert len(computed) == 1
    rest = ids(second, row)
    assert len(rest) == 10 and not set(rest) & set(ids(html, row))
    token = re.search(r'name="token" value="([^"]+)"', second).group(1)
    accepted = client.post(big.base() + "/pre/assignments/preview/accept", data={"token": token})
    assert accepted.status_code == 303 and len(computed) == 2  # accepting checks against a fresh computation
    assert session.scalar(select(func.count(ReviewAssignment.id))) == before + 60
    assert session.scalar(select(func.count(KeptPreview.id))) == 0  # out of date once accepted
    # A page link whose kept preview is gone computes it again from the parameters it carries.
    again = client.get(next_link(html))
    assert again.status_code == 200 and len(computed) == 3 and "Every proposal gets 4 reviewers" in again.get_data(as_text=True)


def test_with_a_long_reviewer_pool_each_row_takes_an_e_mail_with_one_list_of_suggestions(client, session, big):
    from reviews.models import ReviewAssignment

    login(client, big.sec)
    url = big.base() + "/pre/assignments"
    html = client.get(url).get_data(as_text=True)
    assert html.count('<datalist id="reviewer-choices">') == 1 and 'name="reviewer_id"' not in html
    assert html.count('list="reviewer-choices"') == 50
    assert "r10@rev10.example.net" in html and "Reviewer 10" in html
    proposal = big.proposals[0]

    def assigned(reviewer) -> bool:
        return session.scalar(select(func.count(ReviewAssignment.id)).where(
            ReviewAssignment.proposal_id == proposal.id, ReviewAssignment.reviewer_id == reviewer.id)) > 0

    r10 = next(r for r in big.reviewers if r.name == "Reviewer 10")
    done = client.post(url, data={"proposal_id": proposal.id, "reviewer": " R10@Rev10.example.NET "},
                       follow_redirects=True)
    assert "Reviewer 10 is assigned to" in done.get_data(as_text=True) and assigned(r10)
    unknown = client.post(url, data={"proposal_id": proposal.id, "reviewer": "nobody@example.org"},
                          follow_redirects=True).get_data(as_text=True)
    assert "Nobody with the e-mail nobody@example.org is a reviewer of this call; nothing was assigned." in unknown
    carla = next(r for r in big.reviewers if r.name == "Carla Conti")  # works where every first partner does
    refused = client.post(url, data={"proposal_id": proposal.id, "reviewer": carla.email},
                          follow_redirects=True).get_data(as_text=True)
    assert "this reviewer is not available for this proposal" in refused and not assigned(carla)
