"""The dashboard's review progress: per stage, assignments, submitted, drafts, not started, late (the review
deadline given with the reminders has passed), conflicts (declared, detected, overridden) and proposals
with fewer reviewers than wanted, each number linking to the secretariat's review page behind it, in a
fixed number of SQL statements. The call's console tabs reach eligibility, reviews and funding."""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass

from reviews.conflicts import declare_conflict, detect_conflicts, override_conflict
from reviews.models import Review
from tests import factories as f
from tests.unit.reviews_helpers import assign, make_proposal, make_reviewer, submitted_review
from tests.web.test_console_calls import login, plain
from tests.web.test_console_proposals import statements
from workflow.accounts import grant_role

UTC = dt.UTC
NOW = dt.datetime(2030, 4, 2, 9, 0, tzinfo=UTC)
AFTER_DEADLINE = dt.datetime(2030, 4, 21, 9, 0, tzinfo=UTC)
SCORES = {"excellence": 4.0, "impact": 3.5, "implementation": 4.0}
HEIDELBERG = (("Universität Heidelberg", "DE", "DFG-T", 200_000), ("Institut Curie", "FR", "ANR-T", 300_000),
              ("Hospital Clínic", "ES", "ISCIII-T", 100_000))


@dataclass
class World:
    call: object
    sec: object
    ann: object
    ben: object
    cid: object
    dag: object
    carla: object  # works in Heidelberg: conflicted with GAMMA
    hanna: object  # works at Institut Curie, a partner of every proposal
    alpha: object
    beta: object
    gamma: object
    delta: object  # reviewed at the pre stage, since invited: its reviews count, it is no longer under review
    eps: object  # under review at the full stage


def draft_review(session, assignment) -> Review:
    review = Review(assignment_id=assignment.id, proposal_id=assignment.proposal_id,
                    reviewer_id=assignment.reviewer_id, stage=assignment.stage, scores={"excellence": 3.0},
                    comments={}, status="draft")
    session.add(review)
    session.flush()
    return review


def build(session, frozen) -> World:
    """Pre stage: ALPHA has three reviewers (one submitted, one draft, one not started), BETA one (not
    started), GAMMA none; DELTA (invited) three submitted and one not started. Full stage: EPS three (one submitted).
    Conflicts: Dag declares one with BETA; detection finds Carla–GAMMA and Hanna with every live proposal;
    Hanna–ALPHA is overridden."""
    frozen(NOW)
    call = f.make_call(session)
    sec = f.make_user(session, "Sam Secretariat", email="sam@jcs.example.org")
    grant_role(session, None, sec, "secretariat", call.id)
    ann, ben, cid, dag = (make_reviewer(session, call, name, email=f"{name.split()[0].lower()}@rev{i}.example.net",
                                        organisation=org, country=country)
                          for i, (name, org, country) in enumerate((
                              ("Ann Andersen", "Aarhus University", "DK"), ("Ben Bakker", "Universiteit Leiden", "NL"),
                              ("Cid Costa", "Universidade do Porto", "PT"), ("Dag Dahl", "University of Oslo", "NO"))))
    carla = make_reviewer(session, call, "Carla Conti", email="carla@uni-heidelberg.example.de",
                          organisation="Universität Heidelberg", country="DE")
    hanna = make_reviewer(session, call, "Hanna Huber", email="hanna@curie.example.fr",
                          organisation="Institut Curie", country="FR")
    alpha = make_proposal(session, call, "ALPHA", state="pre_review")
    beta = make_proposal(session, call, "BETA", state="pre_review")
    gamma = make_proposal(session, call, "GAMMA", state="pre_review", partners=HEIDELBERG)
    delta = make_proposal(session, call, "DELTA", state="invited")
    eps = make_proposal(session, call, "EPS", state="under_review")
    submitted_review(session, assign(session, alpha, ann, stage="pre"), SCORES)
    draft_review(session, assign(session, alpha, ben, stage="pre"))
    assign(session, alpha, cid, stage="pre")
    assign(session, beta, ann, stage="pre")
    for reviewer in (ann, ben, cid):
        submitted_review(session, assign(session, delta, reviewer, stage="pre"), SCORES)
    assign(session, delta, dag, stage="pre")  # never started, but DELTA has left the review: not late
    submitted_review(session, assign(session, eps, ann, stage="full"), SCORES)
    assign(session, eps, ben, stage="full")
    assign(session, eps, cid, stage="full")
    declare_conflict(session, dag, beta, reason="I wrote a paper with the coordinator last year.")
    detect_conflicts(session, sec, call)
    override_conflict(session, sec, hanna, alpha, justification="Different department, no joint work.")
    session.commit()
    return World(call, sec, ann, ben, cid, dag, carla, hanna, alpha, beta, gamma, delta, eps)


def dashboard_url(w) -> str:
    return f"/secretariat/calls/{w.call.id}/dashboard"


def cells(page: str, row_id: str) -> dict[str, tuple[str, str]]:
    """{column class: (number shown, link)} of one row of the dashboard's review tables."""
    tr = re.search(rf'<tr id="{row_id}">(.*?)</tr>', page, re.S).group(1)
    return {cls: (html.unescape(text).strip(), html.unescape(href)) for cls, href, text in re.findall(
        r'<td class="text-end ([\w-]+)"><a href="([^"]+)"[^>]*>([^<]*)</a>', tr)}


def numbers(page: str, row_id: str) -> dict[str, str]:
    return {k: v[0] for k, v in cells(page, row_id).items()}


def progress_late_rows(client, w, kind: str) -> int:
    page = client.get(f"/secretariat/calls/{w.call.id}/reviews/{kind}/progress").get_data(as_text=True)
    return len(re.findall(r'<tr id="progress-\d+">(?:(?!</tr>).)*text-bg-danger">late<', page, re.S))


def test_the_dashboard_counts_reviews_per_stage_and_links_to_the_review_pages(client, session, frozen):
    w = build(session, frozen)
    login(client, w.sec)
    page = client.get(dashboard_url(w)).get_data(as_text=True)
    assert numbers(page, "reviews-pre") == {
        "in-review": "3", "short": "2", "assignments": "8", "submitted": "4", "drafts": "1", "not-started": "3",
        "late": "—"}
    assert numbers(page, "reviews-full") == {
        "in-review": "1", "short": "0", "assignments": "3", "submitted": "1", "drafts": "0", "not-started": "2",
        "late": "—"}
    assert numbers(page, "conflicts-pre") == {"declared": "1", "detected": "3", "overridden": "1"}
    assert numbers(page, "conflicts-full") == {"declared": "0", "detected": "1", "overridden": "0"}
    text = plain(client.get(dashboard_url(w)))
    assert "With fewer than 3 reviewers" in text and "not set yet (set it on the settings page" in text

    base = f"/secretariat/calls/{w.call.id}/reviews"
    pre, full = cells(page, "reviews-pre"), cells(page, "reviews-full")
    assert {k: v[1] for k, v in pre.items()} == {
        "in-review": f"{base}/pre/assignments", "short": f"{base}/pre/assignments",
        "assignments": f"{base}/pre/assignments", "submitted": f"{base}/pre/progress",
        "drafts": f"{base}/pre/progress", "not-started": f"{base}/pre/progress", "late": f"{base}/pre/progress"}
    assert full["late"][1] == f"{base}/full/progress" and full["assignments"][1] == f"{base}/full/assignments"
    assert {v[1] for v in cells(page, "conflicts-pre").values()} == {f"{base}/conflicts"}

    # every link of the review section (tables and chart) answers the secretariat
    section = page[page.index('id="reviews-heading"'):]
    links = set(re.findall(r'href="([^"]+)"', section))
    assert f"{base}/pre/progress" in links and f"{base}/conflicts" in links and base in links
    for link in links:
        assert client.get(html.unescape(link)).status_code == 200, link
    # the conflicts page behind the figures lists the same six conflicts, one of them overridden
    listed = client.get(f"{base}/conflicts").get_data(as_text=True)
    assert listed.count('<tr class="conflict-row"') == 6
    assert listed.count('text-bg-warning">overridden</span>') == 1


def test_late_reviews_follow_the_deadline_given_with_the_reminders(client, session, frozen):
    w = build(session, frozen)
    login(client, w.sec)
    remind = client.post(f"/secretariat/calls/{w.call.id}/reviews/pre/progress/remind",
                         data={"deadline": "2030-04-20T17:00"})
    assert remind.status_code == 303
    page = client.get(dashboard_url(w)).get_data(as_text=True)
    assert numbers(page, "reviews-pre")["late"] == "0"
    assert "20 April 2030, 17:00 CEST" in re.search(r'<tr id="reviews-pre">.*?</tr>', page, re.S).group(0)
    assert numbers(page, "reviews-full")["late"] == "—"  # no deadline given for the full stage

    frozen(AFTER_DEADLINE)
    page = client.get(dashboard_url(w)).get_data(as_text=True)
    # Ben's draft and Cid's unstarted review of ALPHA, Ann's of BETA; DELTA is no longer under review
    assert numbers(page, "reviews-pre")["late"] == "3"
    row = plain(client.get(dashboard_url(w)))
    assert "3 on 2 proposals" in row
    # the same rule as the progress page: it marks those two proposals late
    assert progress_late_rows(client, w, "pre") == 2
    assert numbers(page, "reviews-full")["late"] == "—"

    # a review submitted since: one fewer late
    review = session.get(Review, session.query(Review.id).filter_by(
        proposal_id=w.alpha.id, reviewer_id=w.ben.id).scalar())
    review.status, review.submitted_at = "submitted", AFTER_DEADLINE
    session.commit()
    page = client.get(dashboard_url(w)).get_data(as_text=True)
    assert numbers(page, "reviews-pre")["late"] == "2"
    assert numbers(page, "reviews-pre")["submitted"] == "5" and numbers(page, "reviews-pre")["drafts"] == "0"


def test_the_review_figures_use_a_fixed_number_of_statements(app, client, session, frozen):
    w = build(session, frozen)
    login(client, w.sec)
    client.post(f"/secretariat/calls/{w.call.id}/reviews/pre/progress/remind", data={"deadline": "2030-04-20T17:00"})
    assert client.get(dashboard_url(w)).status_code == 200
    with statements(app) as seen:
        assert client.get(dashboard_url(w)).status_code == 200
    before = len(seen)
    for i in range(8):
        p = make_proposal(session, w.call, f"MORE{i}", state="pre_review" if i % 2 else "under_review")
        stage = "pre" if i % 2 else "full"
        submitted_review(session, assign(session, p, w.ann, stage=stage), SCORES)
        draft_review(session, assign(session, p, w.ben, stage=stage))
        assign(session, p, w.cid, stage=stage)
        declare_conflict(session, w.dag, p, reason="A former student of mine leads a partner team.")
    detect_conflicts(session, w.sec, w.call)
    session.commit()
    with statements(app) as seen:
        page = client.get(dashboard_url(w))
    assert page.status_code == 200
    assert numbers(page.get_data(as_text=True), "reviews-pre")["assignments"] == str(8 + 4 * 3)
    assert len(seen) == before


def test_people_without_the_review_pages_see_no_review_figures(client, session, frozen):
    w = build(session, frozen)
    officer = f.officer(session, w.call, "DFG-T")
    session.commit()
    login(client, officer)
    assert client.get(dashboard_url(w)).status_code == 403
    login(client, w.sec)
    assert 'id="review-progress"' in client.get(dashboard_url(w)).get_data(as_text=True)


def nav_links(page: str) -> dict[str, str]:
    nav = re.search(r'<ul class="nav nav-tabs" id="call-nav">(.*?)</ul>', page, re.S).group(1)
    return {html.unescape(label): html.unescape(href)
            for href, label in re.findall(r'href="([^"]+)">([^<]+)</a>', nav)}


def test_the_console_tabs_reach_eligibility_reviews_and_funding(client, session, frozen):
    w = build(session, frozen)
    login(client, w.sec)
    page = client.get(dashboard_url(w)).get_data(as_text=True)
    links = nav_links(page)
    assert list(links) == ["Overview", "Dashboard", "Proposals", "Eligibility", "Reviews", "Funding", "People",
                           "Settings", "Mail", "Audit log", "State diagram"]
    assert links["Eligibility"] == f"/secretariat/calls/{w.call.id}/eligibility/pre"
    assert links["Reviews"] == f"/secretariat/calls/{w.call.id}/reviews"
    assert links["Funding"] == f"/funding/calls/{w.call.id}/scenario"
    for label, href in links.items():
        assert client.get(href).status_code == 200, label
    # the review pages mark their tab as the current one
    reviews = client.get(links["Reviews"]).get_data(as_text=True)
    assert re.search(r'<a class="nav-link active" aria-current="page" href="[^"]+">Reviews</a>', reviews)
    assert f'aria-current="page" href="/secretariat/calls/{w.call.id}/dashboard"' in page


def test_a_single_stage_call_opens_eligibility_on_its_only_stage(client, session, frozen):
    frozen(NOW)
    call = f.make_call(session, two_stage=False)
    sec = f.secretariat(session, call)
    session.commit()
    login(client, sec)
    page = client.get(f"/secretariat/calls/{call.id}/dashboard")
    links = nav_links(page.get_data(as_text=True))
    assert links["Eligibility"] == f"/secretariat/calls/{call.id}/eligibility/full"
    assert client.get(links["Eligibility"]).status_code == 200
    assert client.get(links["Funding"]).status_code == 200
    # one stage, one row of review figures, named as the call names it
    body = page.get_data(as_text=True)
    assert numbers(body, "reviews-full")["assignments"] == "0" and 'id="reviews-pre"' not in body
    assert re.search(r'<tr id="reviews-full">\s*<th scope="row">Proposal</th>', body)
