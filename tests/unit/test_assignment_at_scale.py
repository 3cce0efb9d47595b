"""Automatic assignment at call scale: the whole-call score matrix, the conflict index and the array-based
solvers decide what the pair-by-pair definitions decide (reviews.text, reviews.assignment, reviews.matching)."""

from __future__ import annotations

import datetime as dt
import heapq
import random
from collections import Counter

import pytest

from reviews import assignment as asg
from reviews.conflicts import conflicts_by_pair
from reviews.matching import Problem, ScoreTable, evaluate, solve_flow, solve_greedy
from reviews.models import Conflict
from reviews.text import ExpertiseIndex
from tests import factories as f
from tests.unit.reviews_helpers import (
    assign,
    make_proposal,
    make_reviewer,
    review_tables,  # noqa: F401  (fixture)
    set_evaluation,
)
from tests.unit.test_reviews_assignment import brute_force
from workflow.models import ProposalMember

pytestmark = pytest.mark.usefixtures("review_tables")


# ---------------------------------------------------------------------------------------------------------
# Scores: the matrix of a whole call equals the pair-by-pair match (the explanation the secretariat reads)

WORDS = ("oncology", "biomarkers", "dementia", "imaging", "cardiology", "wearables", "genomics", "asthma",
         "machine learning", "rare diseases", "health economics", "Ärzte", "paediatrics", "AI", "the study",
         "cohort", "stroke", "obesity", "microbiome", "proteomics")


def test_the_score_matrix_equals_the_score_of_each_pair():
    rng = random.Random(7)
    proposals = {}
    for pid in range(1, 121):
        keywords = rng.sample(WORDS, rng.choice([0, 1, 3, 4, 5, 8]))  # 8 keywords, 1 shared, no text: 62.5 points
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 40)))
        proposals[pid] = (keywords, f"Title {pid}\n{text}")
    proposals[200] = (["AI", "a", "b", "c", "d", "e", "f", "g"], "")
    reviewers = {rid: rng.sample(WORDS, rng.randint(0, 9)) for rid in range(500, 560)}
    reviewers[600] = ["ai"]
    index = ExpertiseIndex(proposals, reviewers)
    pids, rids = sorted(proposals), sorted(reviewers)
    matrix = index.scaled_affinities(pids, rids, 1000)
    assert matrix.tolist() == [[round(index.match(p, r).affinity * 1000) for r in rids] for p in pids]
    assert matrix[pids.index(200), rids.index(600)] == 62  # 1/8 of the keywords, half to even as round() does
    assert matrix.max() > 500  # strong matches are there, not only zeros


# ---------------------------------------------------------------------------------------------------------
# Solvers: optimal against brute force, greedy as its rule says, with many ties


def reference_greedy(problem: Problem) -> list[tuple[int, int]]:
    """The baseline's rule one pair at a time: the best marginal value first, ties by proposal then reviewer."""
    need, cap = dict(problem.need), dict(problem.capacity)
    countries = {p: Counter(c) for p, c in problem.existing_countries.items()}

    def value(p, r):
        repeat = countries.get(p, Counter())[problem.country_key(r)] >= 1
        return problem.score[(p, r)] - (problem.country_penalty if repeat else 0)

    heap = [(-value(p, r), p, r) for (p, r) in problem.score]
    heapq.heapify(heap)
    chosen = []
    while heap:
        neg, p, r = heapq.heappop(heap)
        if need.get(p, 0) <= 0 or cap.get(r, 0) <= 0:
            continue
        if value(p, r) != -neg:
            heapq.heappush(heap, (-value(p, r), p, r))
            continue
        chosen.append((p, r))
        need[p] -= 1
        cap[r] -= 1
        countries.setdefault(p, Counter())[problem.country_key(r)] += 1
    return sorted(chosen)


def tied_problem(rng: random.Random) -> Problem:
    proposals, reviewers = rng.randint(1, 4), rng.randint(1, 5)
    score = {(10 + p, 50 + r): rng.choice([0, 100, 100, 300, 300, 700])
             for p in range(proposals) for r in range(reviewers) if rng.random() > 0.3}
    return Problem(
        need={10 + p: rng.choice([0, 1, 2, 2]) for p in range(proposals + 1)},  # one without any allowed pair
        capacity={50 + r: rng.choice([0, 1, 1, 2]) for r in range(reviewers)},
        country={50 + r: rng.choice(["SE", "SE", "DE", None, ""]) for r in range(reviewers)},
        score=score,
        country_penalty=rng.choice([0, 100, 200]),
        existing_countries={10: Counter({"SE": 1})},
    )


@pytest.mark.parametrize("seed", range(40))
def test_the_optimum_beats_or_equals_greedy_and_brute_force_agrees_with_ties(seed):
    problem = tied_problem(random.Random(seed))
    flow, greedy = solve_flow(problem), solve_greedy(problem)
    assert (flow.coverage, flow.objective) == brute_force(problem)
    assert evaluate(problem, flow.pairs) == flow.objective
    assert greedy.pairs == reference_greedy(problem)
    assert (flow.coverage, flow.objective) >= (greedy.coverage, greedy.objective)
    # The same scores as a call-sized matrix give the same decisions.
    as_matrix = Problem(problem.need, problem.capacity, problem.country, ScoreTable.of(problem.score),
                        problem.country_penalty, problem.existing_countries)
    assert solve_flow(as_matrix).pairs == flow.pairs and solve_greedy(as_matrix).pairs == greedy.pairs


def test_greedy_takes_the_best_marginal_pair_and_pays_the_country_penalty():
    def greedy(penalty):
        problem = Problem(need={1: 2}, capacity={7: 1, 8: 1, 9: 1}, country={7: "SE", 8: "SE", 9: "DE"},
                          score={(1, 7): 900, (1, 8): 850, (1, 9): 700}, country_penalty=penalty)
        return solve_greedy(problem)

    assert greedy(250).pairs == [(1, 7), (1, 9)]  # the second Swede is worth 600 now: the German's 700 wins
    assert greedy(100).pairs == [(1, 7), (1, 8)] and greedy(100).objective == 1650


# ---------------------------------------------------------------------------------------------------------
# Conflicts: the preview leaves out exactly the pairs reviews.conflicts reports, for every rule


@pytest.mark.parametrize("same_country", [False, True])
def test_the_preview_leaves_out_exactly_the_conflicted_reviewers(session, frozen, same_country):
    frozen(f.FULL_CLOSED)
    call = f.make_call(session)
    sec = f.secretariat(session, call)
    if same_country:
        set_evaluation(call, conflict_same_country=True)
    rev = {}

    def reviewer(key, **kwargs):
        kwargs.setdefault("organisation", f"Free University {key}")
        kwargs.setdefault("country", "IS")
        rev[key] = make_reviewer(session, call, f"Reviewer {key}", keywords=["oncology", "imaging"], **kwargs)

    reviewer("org", organisation="karolinska   INSTITUTET")
    reviewer("domain", email="ann@ki.se")
    reviewer("subdomain", email="bo@med.ki.se")
    reviewer("parent", email="cy@uu.se")
    reviewer("public", email="dag@gmail.com")
    reviewer("pi", email="Eva.PI@gmail.com")  # the PI rule alone: a public mail domain
    reviewer("coordinator")
    reviewer("member")
    reviewer("declared")
    reviewer("declared-overridden")
    reviewer("overridden", organisation="Lund University")
    reviewer("no-longer", organisation="Uppsala University")
    reviewer("german", country="DE")
    for n in range(8):
        reviewer(f"free-{n}")
    partners = (("Karolinska Institutet", "SE", "DFG-T", 100_000, "pi@ki.se"),
                ("Uppsala Sjukhus", "SE", "DFG-T", 100_000, "pi@med.uu.se"),
                ("Charité Berlin", "DE", "DFG-T", 100_000, "pi@gmail.com"))
    p1 = make_proposal(session, call, "ONE", partners=partners)
    p2 = make_proposal(session, call, "TWO", coordinator=rev["coordinator"], partners=(
        ("Lund University", "SE", "DFG-T", 100_000, "eva.pi@gmail.com"),))
    p3 = make_proposal(session, call, "THREE", partners=(("Oslo Universitet", "NO", "DFG-T", 100_000),))
    session.add(ProposalMember(proposal_id=p3.id, user_id=rev["member"].id))
    at = dt.datetime(2030, 6, 1, tzinfo=dt.UTC)

    def stored(key, proposal, source, rule, overridden=False):
        session.add(Conflict(call_id=call.id, reviewer_id=rev[key].id, proposal_id=proposal.id, source=source,
                             rule=rule, reason="stored", created_at=at, overridden_at=at if overridden else None,
                             overridden_by_id=sec.id if overridden else None,
                             override_justification="checked" if overridden else None))

    stored("declared", p3, "declared", "declared")
    stored("declared-overridden", p3, "declared", "declared", overridden=True)
    stored("overridden", p2, "detected", "same_organisation", overridden=True)
    stored("no-longer", p3, "detected", "same_organisation")  # Uppsala is not a partner of THREE
    assign(session, p3, rev["free-0"])  # an existing assignment is not offered again
    session.commit()

    preview = asg.propose_assignment(session, sec, call, load_cap=3)

    proposals, reviewers = [p1, p2, p3], list(rev.values())
    conflicted = set(conflicts_by_pair(session, call, proposals, reviewers))
    expected = {(p1.id, rev[k].id) for k in ("org", "domain", "subdomain", "parent")} | {
        (p2.id, rev["pi"].id), (p2.id, rev["coordinator"].id), (p3.id, rev["member"].id), (p3.id, rev["declared"].id)}
    if same_country:
        expected.add((p1.id, rev["german"].id))
    assert conflicted == expected
    assert preview.uncovered == [] and len(preview.pairs) == 3 * 3 - 1
    assert not {(pp.proposal_id, pp.reviewer_id) for pp in preview.pairs} & conflicted
    per_proposal = Counter(p for p, _ in conflicted)
    for pp in preview.pairs:
        already = 1 if pp.proposal_id == p3.id else 0
        assert pp.explanation["candidates"] == len(reviewers) - per_proposal[pp.proposal_id] - already
        assert f"of {pp.explanation['candidates']} available reviewers" in pp.reasons


def test_conflicts_are_counted_when_a_proposal_cannot_be_covered(session, frozen):
    frozen(f.FULL_CLOSED)
    call = f.make_call(session)
    sec = f.secretariat(session, call)
    for n in range(4):
        make_reviewer(session, call, f"Reviewer {n}", organisation="Karolinska Institutet" if n else "Lund University")
    make_proposal(session, call, "KI", partners=(("Karolinska  institutet", "SE", "DFG-T", 100_000),))
    session.commit()
    (short,) = asg.propose_assignment(session, sec, call, load_cap=2).uncovered
    assert (short.has, short.reason) == (1, "not enough non-conflicted reviewers with capacity: 1 of the 1 available "
                                            "reviewers are under the load cap of 2 (3 reviewers have a conflict)")


# ---------------------------------------------------------------------------------------------------------
# Explanations: ranks and ties among all available reviewers


def test_each_pair_says_where_it_ranks_among_the_available_reviewers(session, frozen):
    frozen(f.FULL_CLOSED)
    call = f.make_call(session)
    sec = f.secretariat(session, call)
    make_reviewer(session, call, "Ann", keywords=["dementia", "imaging"], organisation="A")
    make_reviewer(session, call, "Ben", keywords=["dementia", "imaging"], organisation="B")
    make_reviewer(session, call, "Cid", keywords=["imaging"], organisation="C")
    make_reviewer(session, call, "Dag", keywords=["asthma"], organisation="D")
    make_proposal(session, call, "NEURO", keywords="dementia; imaging", abstract="Brain imaging in dementia.")
    session.commit()
    preview = asg.propose_assignment(session, sec, call, load_cap=1)
    reasons = {pp.reviewer_name: pp.reasons for pp in preview.pairs}
    assert set(reasons) == {"Ann", "Ben", "Cid"}
    assert "; joint best expertise match of 4 available reviewers; " in reasons["Ann"]
    assert "; joint best expertise match of 4 available reviewers; " in reasons["Ben"]
    assert "; 3rd best expertise match of 4 available reviewers; " in reasons["Cid"]
    assert reasons["Cid"].startswith("shares keywords: imaging; text similarity 0.")
