"""Reviewer assignment: optimal against brute force, constraints on a generated call, explanations,
manual assignment, the preview accepted or refused when stale (reviews.matching, reviews.assignment)."""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter

import pytest

from reviews import assignment as asg
from reviews.matching import Problem, evaluate, solve_flow, solve_greedy
from reviews.models import ReviewAssignment
from tests import factories as f
from tests.unit.reviews_helpers import (
    assign,
    count,
    events,
    mails,
    make_proposal,
    make_reviewer,
    review_tables,  # noqa: F401  (fixture)
    set_evaluation,
)
from workflow.errors import AccessDenied, DomainError, InvalidInput
from workflow.models import Partner, Proposal

pytestmark = pytest.mark.usefixtures("review_tables")


# ---------------------------------------------------------------------------------------------------------
# The solver against brute force


def brute_force(problem: Problem) -> tuple[int, int]:
    """(coverage, objective) of the best feasible assignment, by enumerating every one of them."""
    options = []
    for p in sorted(problem.need):
        allowed = sorted(r for (q, r) in problem.score if q == p)
        subsets = [s for k in range(min(problem.need[p], len(allowed)) + 1) for s in itertools.combinations(allowed, k)]
        options.append((p, subsets))
    best = (-1, 0)
    for choice in itertools.product(*(subsets for _, subsets in options)):
        load = Counter(r for s in choice for r in s)
        if any(load[r] > problem.capacity[r] for r in load):
            continue
        objective = 0
        for (p, _), chosen in zip(options, choice, strict=True):
            countries = Counter(problem.existing_countries.get(p, Counter()))
            for r in chosen:
                key = problem.country[r] or f"#{r}"
                if countries[key]:
                    objective -= problem.country_penalty
                countries[key] += 1
                objective += problem.score[(p, r)]
        best = max(best, (sum(len(s) for s in choice), objective))
    return best


def random_problem(rng: random.Random, proposals=4, reviewers=5, need=2) -> Problem:
    countries = ["SE", "DE", "FR", None]
    score = {}
    for p in range(proposals):
        for r in range(reviewers):
            if rng.random() > 0.25:  # a quarter of the pairs are conflicts
                score[(p, r)] = rng.randrange(0, 1001)
    return Problem(
        need={p: rng.choice([need, need, need - 1]) for p in range(proposals)},
        capacity={r: rng.randrange(0, 4) for r in range(reviewers)},
        country={r: rng.choice(countries) for r in range(reviewers)},
        score=score,
        country_penalty=rng.choice([0, 150, 400]),
        existing_countries={0: Counter({"SE": 1})},
    )


@pytest.mark.parametrize("seed", range(12))
def test_min_cost_flow_is_optimal_against_brute_force(seed):
    problem = random_problem(random.Random(seed))
    flow = solve_flow(problem)
    assert (flow.coverage, flow.objective) == brute_force(problem)
    assert evaluate(problem, flow.pairs) == flow.objective
    greedy = solve_greedy(problem)
    assert (flow.coverage, flow.objective) >= (greedy.coverage, greedy.objective)


def test_greedy_can_miss_coverage_the_flow_finds():
    # p0 likes r0 best, but p1 can only have r0: best-pair-first leaves p1 without a reviewer.
    problem = Problem(need={0: 1, 1: 1}, capacity={0: 1, 1: 1}, country={0: "SE", 1: "DE"},
                      score={(0, 0): 900, (0, 1): 800, (1, 0): 850})
    greedy, flow = solve_greedy(problem), solve_flow(problem)
    assert greedy.pairs == [(0, 0)]
    assert flow.pairs == [(0, 1), (1, 0)] and flow.objective == 1650


@pytest.mark.parametrize(("penalty", "existing", "expected"), [
    (250, None, [(0, "A"), (0, "C")]),   # 900 + 700 beats 900 + 850 - 250
    (100, None, [(0, "A"), (0, "B")]),   # 900 + 850 - 100 beats 1600
    (250, "DE", [(0, "A"), (0, "B")]),   # C would now be the second German: 1350 < 1500
])
def test_the_country_penalty_spreads_reviewers(penalty, existing, expected):
    ids = {"A": 1, "B": 2, "C": 3}
    problem = Problem(need={0: 2}, capacity={1: 1, 2: 1, 3: 1}, country={1: "SE", 2: "SE", 3: "DE"},
                      score={(0, 1): 900, (0, 2): 850, (0, 3): 700}, country_penalty=penalty,
                      existing_countries={0: Counter({existing: 1})} if existing else {})
    assert solve_flow(problem).pairs == [(p, ids[r]) for p, r in expected]


# ---------------------------------------------------------------------------------------------------------
# A small call in the database


@pytest.fixture
def small(session, frozen):
    frozen(f.FULL_CLOSED)
    call = f.make_call(session)
    w = type("W", (), {})()
    w.session, w.call, w.sec = session, call, f.secretariat(session, call)
    w.p = [
        make_proposal(session, call, "PGX", keywords="pharmacogenomics; oncology",
                      abstract="Pharmacogenomic testing to tailor oncology drug doses."),
        make_proposal(session, call, "CARDIO", keywords="cardiology; wearables",
                      abstract="Wearable sensors to predict heart failure."),
        make_proposal(session, call, "NEURO", keywords="dementia; imaging",
                      abstract="Brain imaging markers of early dementia."),
    ]
    w.r = [
        make_reviewer(session, call, "Sven Svensson", keywords=["pharmacogenomics", "oncology"], country="SE"),
        make_reviewer(session, call, "Saga Lund", keywords=["oncology", "pharmacology"], country="SE"),
        make_reviewer(session, call, "Dieter Kahl", keywords=["cardiology", "wearables"], country="DE",
                      organisation="Universität Bonn"),
        make_reviewer(session, call, "Nora Berg", keywords=["dementia", "imaging", "neurology"], country="NO",
                      organisation="University of Oslo"),
        make_reviewer(session, call, "Piet Smit", keywords=["imaging", "radiology"], country="NL",
                      organisation="Erasmus MC"),
        # Works at a partner of every proposal: never assigned.
        make_reviewer(session, call, "Claire Curie", keywords=["oncology", "pharmacogenomics", "dementia"],
                      country="FR", organisation="Institut  CURIE"),
    ]
    session.commit()
    return w


def test_the_preview_covers_every_proposal_without_conflicts_and_explains_each_pair(small):
    w = small
    preview = asg.propose_assignment(w.session, w.sec, w.call, load_cap=2)
    assert preview.reviewers_per_proposal == 3 and preview.uncovered == []
    pairs = {(pp.acronym, pp.reviewer_name) for pp in preview.pairs}
    assert len(pairs) == len(preview.pairs) == 9
    assert not any(name == "Claire Curie" for _, name in pairs)
    assert Counter(name for _, name in pairs).most_common(1)[0][1] <= 2
    # The best expert of each proposal gets it, and says why.
    sven = next(pp for pp in preview.pairs if pp.reviewer_name == "Sven Svensson")
    assert sven.acronym == "PGX"
    assert sven.reasons.startswith("shares keywords: pharmacogenomics, oncology; text similarity 0.")
    assert "best expertise match of 5 available reviewers" in sven.reasons
    saga = next(pp for pp in preview.pairs if pp.reviewer_name == "Saga Lund" and pp.acronym == "PGX")
    assert "one of 2 reviewers from Sweden on this proposal" in saga.reasons
    nora = next(pp for pp in preview.pairs if pp.reviewer_name == "Nora Berg" and pp.acronym == "NEURO")
    assert nora.explanation["shared_keywords"] == ["dementia", "imaging"]
    assert "only reviewer from Norway on this proposal" in nora.reasons
    # Nothing is written by a preview.
    assert count(w.session, ReviewAssignment) == 0


def test_accepting_writes_auto_assignments_with_explanations_audit_and_mail(small):
    w = small
    preview = asg.propose_assignment(w.session, w.sec, w.call, load_cap=2)
    # The web layer keeps the preview as JSON between two requests.
    kept = asg.AssignmentPreview.from_dict(preview.to_dict())
    created = asg.accept_preview(w.session, w.sec, w.call, kept)
    w.session.commit()
    assert len(created) == count(w.session, ReviewAssignment, ReviewAssignment.source == "auto") == 9
    first = created[0]
    assert first.explanation["reasons"] and first.explanation["method"] == "min-cost flow"
    assert len(events(w.session, "review.assigned")) == 9
    (summary,) = events(w.session, "review.auto_assignment_accepted")
    assert summary.after["pairs"] == 9 and summary.after["objective"] == preview.objective
    assert len(mails(w.session, "review_assignment")) == 5  # one per reviewer with new proposals


def test_existing_assignments_are_kept_and_count_for_coverage_and_load(small):
    w = small
    pgx = w.p[0]
    assign(w.session, pgx, w.r[4])  # Piet on PGX, by hand
    assign(w.session, w.p[1], w.r[4])  # and on CARDIO: Piet is full at a cap of 2
    w.session.commit()
    preview = asg.propose_assignment(w.session, w.sec, w.call, load_cap=2)
    assert len(preview.pairs_of(pgx.id)) == 2
    assert len(preview.pairs_of(w.p[1].id)) == 2
    assert not any(pp.reviewer_name == "Piet Smit" for pp in preview.pairs)


def test_a_proposal_that_cannot_be_covered_is_reported_with_the_reason(small):
    w = small
    preview = asg.propose_assignment(w.session, w.sec, w.call, load_cap=1)
    # 5 usable reviewers x 1 = 5 places for 9 needed.
    assert len(preview.pairs) == 5
    missing = sum(u.missing for u in preview.uncovered)
    assert missing == 4
    reasons = " ".join(u.reason for u in preview.uncovered)
    assert "were needed for other proposals; raise the load cap (now 1) or invite more reviewers" in reasons \
        or "not enough non-conflicted reviewers with capacity" in reasons


def test_not_enough_non_conflicted_reviewers_is_said_so(small):
    w = small
    other = make_proposal(w.session, w.call, "LONELY", partners=(
        ("Karolinska Institutet", "SE", "DFG-T", 100_000), ("Universität Bonn", "DE", "DFG-T", 100_000),
        ("University of Oslo", "NO", "DFG-T", 100_000), ("Erasmus MC", "NL", "DFG-T", 100_000),
        ("Institut Curie", "FR", "ANR-T", 100_000)))
    w.session.commit()
    preview = asg.propose_assignment(w.session, w.sec, w.call, load_cap=5)
    (lonely,) = [u for u in preview.uncovered if u.acronym == "LONELY"]
    assert lonely.has == 0 and lonely.missing == 3
    assert lonely.reason == ("not enough non-conflicted reviewers with capacity: 0 of the 0 available reviewers "
                             "are under the load cap of 5 (6 reviewers have a conflict)")
    assert other.id == lonely.proposal_id


def test_every_proposal_gets_at_least_three_reviewers_even_if_the_call_says_fewer(small):
    w = small
    set_evaluation(w.call, reviewers_per_proposal=2)
    assert asg.wanted_reviewers(w.call) == 3
    preview = asg.propose_assignment(w.session, w.sec, w.call, load_cap=3)
    assert Counter(pp.proposal_id for pp in preview.pairs) == {p.id: 3 for p in w.p}
    set_evaluation(w.call, reviewers_per_proposal=4)
    preview = asg.propose_assignment(w.session, w.sec, w.call, load_cap=3)
    assert preview.reviewers_per_proposal == 4


def test_a_stale_preview_is_refused_and_nothing_is_written(small):
    w = small
    preview = asg.propose_assignment(w.session, w.sec, w.call, load_cap=2)
    pair = next(pp for pp in preview.pairs if pp.reviewer_name == "Sven Svensson")  # of Karolinska Institutet
    proposal = w.session.get(Proposal, pair.proposal_id)
    # Meanwhile Sven's organisation joined that proposal as a partner.
    w.session.add(Partner(proposal_id=proposal.id, position=9, organisation="karolinska  institutet",
                          country="SE", pi_name="PI", pi_email="pi@ki.example.se", requested_amount=0, own_funded=True))
    w.session.commit()
    w.session.expire(proposal)
    with pytest.raises(DomainError, match=r"the preview is out of date \(Sven Svensson is not available for PGX any "
                                          r"more\); run the automatic assignment again"):
        asg.accept_preview(w.session, w.sec, w.call, preview)
    w.session.rollback()
    assert count(w.session, ReviewAssignment) == 0


def test_a_preview_over_the_load_cap_is_refused(small):
    w = small
    preview = asg.propose_assignment(w.session, w.sec, w.call, load_cap=2)
    busy = next(pp for pp in preview.pairs if pp.reviewer_name == "Nora Berg")
    # Nora meanwhile reviews a proposal that is past review: it counts towards her load.
    elsewhere = make_proposal(w.session, w.call, "ELSEWHERE", state="rebuttal")
    assign(w.session, elsewhere, w.session.get(type(w.sec), busy.reviewer_id))
    w.session.commit()
    with pytest.raises(DomainError, match="would be above the load cap of 2"):
        asg.accept_preview(w.session, w.sec, w.call, preview)


def test_only_the_secretariat_runs_the_assignment(small):
    w = small
    with pytest.raises(AccessDenied, match="only the call secretariat can assign reviewers"):
        asg.propose_assignment(w.session, w.r[0], w.call, load_cap=2)
    with pytest.raises(InvalidInput, match="load cap"):
        asg.propose_assignment(w.session, w.sec, w.call, load_cap=0)


def test_discarding_a_preview_changes_nothing_but_is_on_record(small):
    w = small
    preview = asg.propose_assignment(w.session, w.sec, w.call, load_cap=2)
    asg.discard_preview(w.session, w.sec, w.call, asg.preview_summary(preview))
    w.session.commit()
    assert count(w.session, ReviewAssignment) == 0
    assert events(w.session, "review.auto_assignment_discarded")[0].after["pairs"] == 9


def test_the_pre_stage_assigns_pre_proposals_under_review_only(session, frozen):
    frozen(f.PRE_CLOSED)
    call = f.make_call(session)
    sec = f.secretariat(session, call)
    waiting = make_proposal(session, call, "WAIT", state="pre_review")
    make_proposal(session, call, "EARLY", state="eligibility_check")
    for name in ("Ann", "Ben", "Cid"):
        make_reviewer(session, call, name)
    session.commit()
    preview = asg.propose_assignment(session, sec, call, load_cap=5, stage="pre")
    assert {pp.acronym for pp in preview.pairs} == {"WAIT"} and len(preview.pairs) == 3
    created = asg.accept_preview(session, sec, call, preview)
    assert {(a.stage, a.proposal_id) for a in created} == {("pre", waiting.id)}
    # The full stage has nothing under review yet.
    assert asg.propose_assignment(session, sec, call, load_cap=5).pairs == []


# ---------------------------------------------------------------------------------------------------------
# Manual assignment


def test_manual_assignment_and_removal(small):
    w = small
    a = asg.assign_reviewer(w.session, w.sec, w.p[0], w.r[0])
    w.session.commit()
    assert (a.source, a.stage, a.assigned_by_id) == ("manual", "full", w.sec.id)
    with pytest.raises(InvalidInput, match="assigned to this proposal already"):
        asg.assign_reviewer(w.session, w.sec, w.p[0], w.r[0])
    asg.remove_assignment(w.session, w.sec, a, reason="wrong expertise")
    w.session.commit()
    assert count(w.session, ReviewAssignment) == 0
    assert [e.reason for e in events(w.session, "review.unassigned")] == ["wrong expertise"]


def test_a_conflicted_reviewer_is_refused_discreetly(small):
    w = small
    with pytest.raises(InvalidInput) as refused:
        asg.assign_reviewer(w.session, w.sec, w.p[0], w.r[5])  # Claire works at Institut Curie
    assert str(refused.value) == "this reviewer is not available for this proposal"
    assert "Curie" not in str(refused.value)


def test_a_submitted_review_cannot_be_unassigned(small):
    from tests.unit.reviews_helpers import ALL_SCORES, submitted_review

    w = small
    a = assign(w.session, w.p[0], w.r[0])
    submitted_review(w.session, a, ALL_SCORES)
    w.session.commit()
    with pytest.raises(DomainError, match="submitted review cannot be removed"):
        asg.remove_assignment(w.session, w.sec, a)


# ---------------------------------------------------------------------------------------------------------
# A generated call: 300 proposals, 120 reviewers

TOPICS = ("oncology", "pharmacogenomics", "cardiology", "dementia", "imaging", "diabetes", "rare diseases",
          "biomarkers", "machine learning", "microbiome", "immunology", "paediatrics", "epidemiology",
          "health economics", "wearables", "genomics", "proteomics", "stroke", "obesity", "asthma")
COUNTRIES = ("SE", "DE", "FR", "ES", "IT", "NL", "NO", "PL", "AT", "BE", "CA", "IL")
ORGS = [f"University {i}" for i in range(60)]


def generated_call(session, rng: random.Random, n_proposals=300, n_reviewers=120):
    call = f.make_call(session)
    sec = f.secretariat(session, call)
    from tests.factories import funder

    funders = [funder(session, a).id for a in ("DFG-T", "ANR-T", "ISCIII-T", "MOH-T")]
    coordinator = f.make_user(session, "Generated Coordinator")
    proposals = []
    for i in range(n_proposals):
        kws = rng.sample(TOPICS, 3)
        proposals.append(Proposal(call_id=call.id, reference=f"GEN-{i:04d}", acronym=f"GEN{i}", title=f"Study {i}",
                                  abstract=f"We study {kws[0]} and {kws[1]} with {kws[2]} in a cohort.",
                                  keywords="; ".join(kws), state="under_review", coordinator_id=coordinator.id))
    session.add_all(proposals)
    session.flush()
    partners = []
    for p in proposals:
        for pos in range(1, 5):
            org = rng.choice(ORGS)
            partners.append(Partner(proposal_id=p.id, position=pos, organisation=org, country=rng.choice(COUNTRIES),
                                    funder_id=rng.choice(funders), pi_name="PI",
                                    pi_email=f"pi{p.id}.{pos}@{org.split()[1]}.uni.example.org",
                                    requested_amount=100_000))
    session.add_all(partners)
    session.flush()
    reviewers = [make_reviewer(session, call, f"Reviewer {i}", keywords=rng.sample(TOPICS, 4),
                               organisation=rng.choice(ORGS), country=rng.choice(COUNTRIES))
                 for i in range(n_reviewers)]
    # A few assignments exist already (without conflicts).
    for p, r in zip(proposals[:20], reviewers[:20], strict=True):
        if r.organisation not in {x.organisation for x in partners if x.proposal_id == p.id}:
            session.add(ReviewAssignment(call_id=call.id, proposal_id=p.id, reviewer_id=r.id, stage="full"))
    session.commit()
    return call, sec, proposals, reviewers


def test_a_generated_call_of_300_proposals_and_120_reviewers(session, frozen, capsys):
    frozen(f.FULL_CLOSED)
    call, sec, proposals, reviewers = generated_call(session, random.Random(2030))
    cap = 9
    started = time.perf_counter()
    flow = asg.propose_assignment(session, sec, call, load_cap=cap)
    flow_total = time.perf_counter() - started
    started = time.perf_counter()
    greedy = asg.propose_assignment(session, sec, call, load_cap=cap, method="greedy")
    greedy_total = time.perf_counter() - started

    existing = {(a.proposal_id, a.reviewer_id) for a in session.query(ReviewAssignment)}
    new = [(pp.proposal_id, pp.reviewer_id) for pp in flow.pairs]
    # No duplicate pair, none repeating an existing assignment.
    assert len(set(new)) == len(new) and not set(new) & existing
    # Coverage: every proposal has 3 reviewers (existing ones count).
    per_p = Counter(p for p, _ in new) + Counter(p for p, _ in existing)
    assert flow.uncovered == [] and all(per_p[p.id] == 3 for p in proposals)
    # Load caps (existing ones count).
    per_r = Counter(r for _, r in new) + Counter(r for _, r in existing)
    assert max(per_r.values()) <= cap
    # No conflicts (and there are many to avoid: reviewers work at partners of ~7% of the proposals).
    from reviews.conflicts import conflicts_by_pair

    conflicted = set(conflicts_by_pair(session, call, proposals, reviewers))
    assert len(conflicted) > 1500 and not set(new) & conflicted
    by_r = {r.id: r for r in reviewers}
    orgs = {p.id: {x.organisation for x in p.partners} for p in proposals}
    assert not any(by_r[r].organisation in orgs[p] for p, r in new)
    # The optimum is at least as good as the greedy baseline.
    assert (len(flow.pairs), flow.objective) >= (len(greedy.pairs), greedy.objective)

    accept_started = time.perf_counter()
    asg.accept_preview(session, sec, call, flow)
    session.commit()
    accept_total = time.perf_counter() - accept_started
    assert count(session, ReviewAssignment) == 900  # 300 x 3, existing ones included
    with capsys.disabled():
        print(f"\n300 proposals x 120 reviewers, cap {cap}: min-cost flow {len(flow.pairs)} pairs, objective "
              f"{flow.objective:.3f}, solver {flow.seconds:.3f} s, whole preview {flow_total:.2f} s; greedy "
              f"{len(greedy.pairs)} pairs, objective {greedy.objective:.3f}, whole preview {greedy_total:.2f} s; "
              f"accept ({len(flow.pairs)} rows + audit) {accept_total:.2f} s")
