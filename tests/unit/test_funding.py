"""The funding allocation (workflow.funding.allocate), on hand-checked scenarios (DOMAIN §3 "Ties", §4, rules
19, 21, 22). Every expected number is written out by hand, with the arithmetic in a comment beside it.

Funders in these tests: ANR (id 1), ISCIII (id 2), DFG (id 3); amounts are whole euros.
"""

from __future__ import annotations

import json
import random
import time

import pytest

from workflow.errors import InvalidInput
from workflow.funding import (
    BLOCKED,
    PARTNER_CAP,
    PROJECT_CAP,
    RESERVE,
    SELECTED,
    SHORTFALL,
    TIE,
    FunderBudget,
    Ranked,
    Request,
    Scenario,
    allocate,
    changes,
    reallocate,
)

ANR, ISCIII, DFG = 1, 2, 3
ACRONYMS = {ANR: "ANR", ISCIII: "ISCIII", DFG: "DFG"}


def budgets(**committed) -> list[FunderBudget]:
    """budgets(ANR=300_000, ISCIII=(100_000, {"max_per_project": 400_000}))"""
    out = []
    for acronym, value in committed.items():
        amount, extra = value if isinstance(value, tuple) else (value, {})
        fid = {v: k for k, v in ACRONYMS.items()}[acronym]
        out.append(FunderBudget(fid, acronym, amount, **extra))
    return out


def proposals(*rows) -> tuple[list[Ranked], dict[int, list[Request]]]:
    """rows: (acronym, [(funder id, amount), ...]) or (acronym, [...], score), in rank order from 1.
    Proposal ids are 101, 102, ...; partner ids are proposal id * 10 + position."""
    ranking, requests = [], {}
    for rank, row in enumerate(rows, start=1):
        acronym, asks = row[0], row[1]
        score = row[2] if len(row) > 2 else None
        pid = 100 + rank
        ranking.append(Ranked(pid, rank, f"JC-{pid}", acronym, "recommended", score))
        requests[pid] = [Request(pid * 10 + k, fid, amount, f"{acronym} partner {k} ({ACRONYMS[fid]})")
                         for k, (fid, amount) in enumerate(asks, start=1)]
    return ranking, requests


def status(scenario: Scenario) -> dict[str, str]:
    return {o.acronym: o.status for o in scenario.outcomes}


def by_name(scenario: Scenario, acronym: str):
    return next(o for o in scenario.outcomes if o.acronym == acronym)


# ---------------------------------------------------------------------------------------------------------
# The walk


def test_a_budget_exhausted_mid_list_skips_one_and_funds_a_smaller_one_below():
    funders = budgets(ANR=500_000, DFG=1_000_000)
    ranking, requests = proposals(
        ("ALPHA", [(DFG, 100_000), (ANR, 200_000)]),   # ANR 500,000 - 200,000 = 300,000 left
        ("BETA", [(DFG, 100_000), (ANR, 200_000)]),    # ANR 300,000 - 200,000 = 100,000 left
        ("GAMMA", [(DFG, 100_000), (ANR, 200_000)]),   # needs 200,000, has 100,000: short 100,000
        ("DELTA", [(DFG, 100_000), (ANR, 100_000)]),   # ANR 100,000 - 100,000 = 0 left
        ("EPSILON", [(DFG, 100_000), (ANR, 50_000)]),  # needs 50,000, has 0: short 50,000
    )
    s = allocate(ranking, funders, requests)

    assert status(s) == {"ALPHA": SELECTED, "BETA": SELECTED, "GAMMA": BLOCKED, "DELTA": SELECTED,
                         "EPSILON": RESERVE}
    assert by_name(s, "GAMMA").reason == "blocked by ANR (short €100,000)"
    assert by_name(s, "EPSILON").reason == "blocked by ANR (short €50,000)"
    # A skipped proposal consumes nothing: DFG pays ALPHA, BETA, DELTA only = 3 x 100,000.
    assert s.funder(DFG).allocated == 300_000 and s.funder(DFG).remaining == 700_000
    assert s.funder(ANR).allocated == 500_000 and s.funder(ANR).remaining == 0
    # The gap at rank 3 is recorded with its reason; the reserve list is in rank order.
    assert [(k.rank, k.gap, k.selected_below, k.reason) for k in s.skips] == [
        (3, True, 1, "blocked by ANR (short €100,000)"),
        (5, False, 0, "blocked by ANR (short €50,000)"),
    ]
    assert s.first_gap_rank == 3
    assert [o.acronym for o in s.reserve_list] == ["GAMMA", "EPSILON"]
    assert [o.acronym for o in s.selected] == ["ALPHA", "BETA", "DELTA"]


def test_a_proposal_blocked_by_two_funders_names_both_shortfalls_and_takes_nothing():
    funders = budgets(ANR=300_000, ISCIII=100_000, DFG=1_000_000)
    ranking, requests = proposals(
        ("ALPHA", [(DFG, 200_000), (ANR, 200_000), (ISCIII, 50_000)]),  # ANR 100,000 / ISCIII 50,000 left
        ("BETA", [(DFG, 100_000), (ANR, 220_000), (ISCIII, 80_000)]),   # ANR 220-100 = 120,000 short,
                                                                          # ISCIII 80-50 = 30,000 short
    )
    s = allocate(ranking, funders, requests)

    beta = by_name(s, "BETA")
    assert beta.status == RESERVE
    assert beta.reason == "blocked by ANR (short €120,000) and ISCIII (short €30,000)"
    assert beta.shortfalls == {ANR: 120_000, ISCIII: 30_000}
    assert beta.fundable_as_requested
    assert beta.requested == {DFG: 100_000, ANR: 220_000, ISCIII: 80_000}
    assert beta.from_budget == {}
    # DFG had the money for BETA but keeps it: only ALPHA's 200,000 is allocated.
    assert (s.funder(DFG).allocated, s.funder(ANR).allocated, s.funder(ISCIII).allocated) == (
        200_000, 200_000, 50_000)
    assert s.funder(ANR).requested == 420_000  # 200,000 + 220,000: what the list asks of ANR


def test_caps_per_partner_and_per_project_make_a_proposal_not_fundable_as_requested():
    funders = budgets(DFG=(2_000_000, {"max_per_partner": 300_000}),
                      ISCIII=(800_000, {"max_per_project": 400_000}), ANR=1_000_000)
    ranking, requests = proposals(
        ("OVERPARTNER", [(DFG, 350_000), (ANR, 100_000)]),               # 350,000 > 300,000 per partner
        ("OVERPROJECT", [(ISCIII, 250_000), (ISCIII, 200_000), (ANR, 100_000)]),  # 450,000 > 400,000
        ("ATCAPS", [(DFG, 300_000), (ISCIII, 200_000), (ISCIII, 200_000)]),  # exactly at both caps
    )
    s = allocate(ranking, funders, requests)

    assert status(s) == {"OVERPARTNER": BLOCKED, "OVERPROJECT": BLOCKED, "ATCAPS": SELECTED}
    over_partner, over_project = by_name(s, "OVERPARTNER"), by_name(s, "OVERPROJECT")
    assert over_partner.reason == ("not fundable as requested: OVERPARTNER partner 1 (DFG) asks DFG for "
                                   "€350,000, above its cap of €300,000 per partner")
    assert [(b.kind, b.funder_id, b.amount, b.limit, b.partner_id) for b in over_partner.blockers] == [
        (PARTNER_CAP, DFG, 350_000, 300_000, 1011)]
    assert over_project.reason == ("not fundable as requested: the partners funded by ISCIII ask €450,000 in "
                                   "total, above its cap of €400,000 per project")
    assert [(b.kind, b.amount, b.limit) for b in over_project.blockers] == [(PROJECT_CAP, 450_000, 400_000)]
    assert not over_partner.fundable_as_requested and not over_project.fundable_as_requested
    # Neither consumed anything: ANR pays nobody; DFG 300,000 and ISCIII 200,000 + 200,000 for ATCAPS.
    assert (s.funder(ANR).allocated, s.funder(DFG).allocated, s.funder(ISCIII).allocated) == (0, 300_000, 400_000)


def test_the_gap_pot_fills_a_shortfall_and_records_how_much_per_funder_and_partner():
    funders = budgets(ANR=300_000, ISCIII=100_000, DFG=1_000_000)
    ranking, requests = proposals(
        ("ALPHA", [(DFG, 200_000), (ANR, 200_000), (ISCIII, 50_000)]),  # ANR 100,000 / ISCIII 50,000 left
        ("BETA", [(DFG, 100_000), (ANR, 220_000), (ISCIII, 80_000)]),   # short 120,000 + 30,000 = 150,000
                                                                          # <= gap pot 200,000: selected
        ("GAMMA", [(DFG, 100_000), (ANR, 100_000)]),                     # ANR 0 left, short 100,000 >
                                                                          # gap pot 200,000 - 150,000 = 50,000
    )
    s = allocate(ranking, funders, requests, gap_pot=200_000)

    assert status(s) == {"ALPHA": SELECTED, "BETA": SELECTED, "GAMMA": RESERVE}
    beta = by_name(s, "BETA")
    assert beta.from_gap_pot == {ANR: 120_000, ISCIII: 30_000}
    assert beta.from_budget == {DFG: 100_000, ANR: 100_000, ISCIII: 50_000}  # 220-120, 80-30
    assert beta.gap_pot_used == 150_000
    assert beta.note == "the gap pot pays €120,000 for ANR and €30,000 for ISCIII"
    # Partners get their whole request; the gap pot's part is recorded on them.
    assert [(p.amount, p.from_gap_pot, p.from_budget) for p in beta.partners] == [
        (100_000, 0, 100_000), (220_000, 120_000, 100_000), (80_000, 30_000, 50_000)]
    assert by_name(s, "GAMMA").reason == "blocked by ANR (short €100,000); the gap pot has only €50,000 left"
    assert (s.gap_pot.total, s.gap_pot.used, s.gap_pot.remaining) == (200_000, 150_000, 50_000)
    anr = s.funder(ANR)
    # Rule 22 counts the funder's own budget only: 200,000 + 100,000 = 300,000 = committed.
    assert (anr.allocated, anr.remaining, anr.gap_pot_used) == (300_000, 0, 120_000)


def test_the_gap_pot_does_not_lift_a_cap():
    funders = budgets(DFG=(1_000_000, {"max_per_partner": 300_000}))
    ranking, requests = proposals(("BIG", [(DFG, 301_000)]))
    s = allocate(ranking, funders, requests, gap_pot=5_000_000)
    assert by_name(s, "BIG").status == RESERVE
    assert "above its cap of €300,000 per partner" in by_name(s, "BIG").reason
    assert s.gap_pot.used == 0


def test_a_spent_gap_pot_is_named_in_the_reason():
    funders = budgets(ANR=100_000)
    ranking, requests = proposals(
        ("ALPHA", [(ANR, 150_000)]),  # short 50,000, gap pot 50,000 -> selected, pot spent
        ("BETA", [(ANR, 10_000)]),    # ANR 0 left, pot 0 left
    )
    s = allocate(ranking, funders, requests, gap_pot=50_000)
    assert by_name(s, "BETA").reason == "blocked by ANR (short €10,000); the gap pot is spent"


# ---------------------------------------------------------------------------------------------------------
# Ties at the funding line


def test_tied_proposals_at_the_line_select_the_combination_that_funds_the_most():
    funders = budgets(ANR=400_000)
    ranking, requests = proposals(
        ("TOP", [(ANR, 100_000)], 14.0),     # ANR 400,000 - 100,000 = 300,000 left
        ("WIDE", [(ANR, 250_000)], 12.5),    # tied at 12.5: rank order would fund WIDE alone (250,000,
        ("NARROW", [(ANR, 150_000)], 12.5),  # then 50,000 left fits neither); NARROW + SLIM =
        ("SLIM", [(ANR, 150_000)], 12.5),    # 300,000 funds two, so they are selected instead
        ("LOW", [(ANR, 10_000)], 11.0),      # ANR 0 left: short 10,000
    )
    s = allocate(ranking, funders, requests)

    assert status(s) == {"TOP": SELECTED, "WIDE": BLOCKED, "NARROW": SELECTED, "SLIM": SELECTED,
                         "LOW": RESERVE}
    wide = by_name(s, "WIDE")
    assert wide.reason == ("blocked by ANR (short €250,000); tied with NARROW and SLIM at score 12.5; the "
                           "equally scored combination funding the most proposals was preferred (NARROW and SLIM)")
    assert [b.kind for b in wide.blockers] == [SHORTFALL, TIE]
    assert wide.tie_group == by_name(s, "SLIM").tie_group is not None
    assert by_name(s, "TOP").tie_group is None
    # The skip of a better-ranked tied proposal is listed as a gap, with its reason.
    assert [(k.rank, k.gap) for k in s.skips] == [(2, True), (5, False)]
    assert s.funder(ANR).allocated == 400_000


def test_among_equally_large_tied_combinations_rank_order_decides():
    funders = budgets(ANR=300_000)
    ranking, requests = proposals(
        ("FIRST", [(ANR, 150_000)], 12.0),   # any two of the three fit (2 x 150,000 = 300,000);
        ("SECOND", [(ANR, 150_000)], 12.0),  # the first two in rank order are taken
        ("THIRD", [(ANR, 150_000)], 12.0),
    )
    for _ in range(3):  # deterministic
        s = allocate(ranking, funders, requests)
        assert status(s) == {"FIRST": SELECTED, "SECOND": SELECTED, "THIRD": RESERVE}
    assert by_name(s, "THIRD").reason == (
        "blocked by ANR (short €150,000); tied with FIRST and SECOND at score 12; the equally scored "
        "combination funding the most proposals was preferred (FIRST and SECOND)")


def test_a_tie_search_can_skip_the_first_and_keep_later_members_across_two_funders():
    funders = budgets(ANR=200_000, ISCIII=200_000)
    ranking, requests = proposals(
        ("A", [(ANR, 150_000), (ISCIII, 150_000)], 13.0),  # A alone: ANR 50,000 / ISCIII 50,000 left
        ("B", [(ANR, 100_000)], 13.0),                     # B + C: ANR 100,000, ISCIII 100,000 - both fit
        ("C", [(ISCIII, 100_000)], 13.0),                  # A + B: ANR 250,000 > 200,000 - no
        ("D", [(ANR, 100_000), (ISCIII, 100_000)], 13.0),  # B + C + D: ANR 200,000, ISCIII 200,000 - fits
    )
    s = allocate(ranking, funders, requests)
    # The most that fit is three (B, C, D); A is skipped with both shortfalls after them: ANR 150,000 - 0.
    assert status(s) == {"A": BLOCKED, "B": SELECTED, "C": SELECTED, "D": SELECTED}
    assert by_name(s, "A").reason.startswith("blocked by ANR (short €150,000) and ISCIII (short €150,000)")


def test_without_scores_or_with_different_recommendations_there_is_no_tie():
    funders = budgets(ANR=300_000)
    rows = (("WIDE", [(ANR, 250_000)]), ("NARROW", [(ANR, 150_000)]), ("SLIM", [(ANR, 150_000)]))
    ranking, requests = proposals(*rows)
    s = allocate(ranking, funders, requests)  # rank order: WIDE, then 50,000 left fits neither
    assert status(s) == {"WIDE": SELECTED, "NARROW": RESERVE, "SLIM": RESERVE}

    ranking, requests = proposals(*[(*r, 12.0) for r in rows])
    ranking[0] = ranking[0]._replace(recommendation="recommended")
    ranking[1] = ranking[1]._replace(recommendation="recommended_if_funds")
    ranking[2] = ranking[2]._replace(recommendation="recommended_if_funds")
    s = allocate(ranking, funders, requests)  # WIDE is alone in its band; the other two tie, neither fits
    assert status(s) == {"WIDE": SELECTED, "NARROW": RESERVE, "SLIM": RESERVE}


# ---------------------------------------------------------------------------------------------------------
# What-if and recomputation


def two_funder_case():
    funders = budgets(ANR=300_000, ISCIII=100_000, DFG=1_000_000)
    ranking, requests = proposals(
        ("ALPHA", [(DFG, 200_000), (ANR, 200_000), (ISCIII, 50_000)]),  # ANR 100,000 / ISCIII 50,000 left
        ("BETA", [(DFG, 100_000), (ANR, 220_000), (ISCIII, 80_000)]),   # short 120,000 and 30,000
        ("GAMMA", [(DFG, 100_000), (ANR, 100_000)]),                     # fits ANR's 100,000
    )
    return funders, ranking, requests


def test_what_if_increases_change_the_outcome_without_touching_the_inputs():
    funders, ranking, requests = two_funder_case()
    base = allocate(ranking, funders, requests)
    assert status(base) == {"ALPHA": SELECTED, "BETA": BLOCKED, "GAMMA": SELECTED}

    # +120,000 for ANR alone: BETA still lacks ISCIII's 30,000; ANR now has 220,000 for GAMMA anyway.
    half = allocate(ranking, funders, requests, increases={ANR: 120_000})
    assert by_name(half, "BETA").reason == "blocked by ISCIII (short €30,000)"
    assert changes(base, half) == []

    # +120,000 ANR and +30,000 ISCIII: BETA fits exactly (ANR 220,000, ISCIII 80,000 left), which
    # leaves ANR 0 for GAMMA.
    both = allocate(ranking, funders, requests, increases={ANR: 120_000, ISCIII: 30_000})
    assert status(both) == {"ALPHA": SELECTED, "BETA": SELECTED, "GAMMA": RESERVE}
    assert [(c.acronym, c.before, c.after) for c in changes(base, both)] == [
        ("BETA", BLOCKED, SELECTED), ("GAMMA", SELECTED, RESERVE)]
    anr = both.funder(ANR)
    assert (anr.committed, anr.increases, anr.what_if, anr.available, anr.allocated, anr.remaining) == (
        300_000, 0, 120_000, 420_000, 420_000, 0)
    assert both.increases == {ANR: 120_000, ISCIII: 30_000}
    # Nothing was saved: the base inputs still give the base scenario.
    assert allocate(ranking, funders, requests) == base


def test_recorded_increases_count_like_committed_money():
    funders, ranking, requests = two_funder_case()
    funders = [f._replace(increases=120_000) if f.funder_id == ANR else
               f._replace(increases=30_000) if f.funder_id == ISCIII else f for f in funders]
    s = allocate(ranking, funders, requests)
    assert status(s) == {"ALPHA": SELECTED, "BETA": SELECTED, "GAMMA": RESERVE}
    assert (s.funder(ANR).increases, s.funder(ANR).what_if, s.funder(ANR).remaining) == (120_000, 0, 0)


def test_reallocating_after_a_decline_keeps_decisions_and_promotes_from_the_reserve():
    funders = budgets(ANR=500_000)
    ranking, requests = proposals(
        ("ALPHA", [(ANR, 200_000)]), ("BETA", [(ANR, 200_000)]), ("GAMMA", [(ANR, 200_000)]),
        ("DELTA", [(ANR, 100_000)]), ("EPSILON", [(ANR, 50_000)]),
    )
    approved = allocate(ranking, funders, requests)
    assert [o.acronym for o in approved.selected] == ["ALPHA", "BETA", "DELTA"]

    # ALPHA's funder declines: 200,000 comes free. BETA and DELTA keep theirs (500 - 200 - 100 = 200,000
    # free), GAMMA (rank 3, 200,000) is next in rank order and takes it all; EPSILON stays in reserve.
    after = reallocate(approved, drop=[by_name(approved, "ALPHA").proposal_id])
    assert status(after) == {"BETA": SELECTED, "GAMMA": SELECTED, "DELTA": SELECTED, "EPSILON": RESERVE}
    assert by_name(after, "BETA").kept and by_name(after, "DELTA").kept and not by_name(after, "GAMMA").kept
    assert by_name(after, "BETA").note == "selected in an earlier decision"
    assert [(c.acronym, c.before, c.after) for c in changes(approved, after)] == [
        ("GAMMA", BLOCKED, SELECTED), ("ALPHA", SELECTED, None)]
    assert after.funder(ANR).allocated == 500_000


def test_reallocating_keeps_the_gap_pot_split_of_kept_proposals():
    funders = budgets(ANR=300_000, ISCIII=100_000, DFG=1_000_000)
    ranking, requests = proposals(
        ("ALPHA", [(DFG, 200_000), (ANR, 200_000), (ISCIII, 50_000)]),
        ("BETA", [(DFG, 100_000), (ANR, 220_000), (ISCIII, 80_000)]),  # gap pot pays 120,000 + 30,000
        ("GAMMA", [(DFG, 100_000), (ANR, 100_000)]),                    # reserve: pot has 50,000 left
    )
    approved = allocate(ranking, funders, requests, gap_pot=200_000)
    after = reallocate(approved, drop=[by_name(approved, "ALPHA").proposal_id])
    beta = by_name(after, "BETA")
    # BETA keeps exactly what was decided, although ANR now has money again.
    assert (beta.from_budget, beta.from_gap_pot) == ({DFG: 100_000, ANR: 100_000, ISCIII: 50_000},
                                                     {ANR: 120_000, ISCIII: 30_000})
    # ANR: 300,000 - BETA's 100,000 = 200,000 free; GAMMA's 100,000 comes from ANR's budget.
    gamma = by_name(after, "GAMMA")
    assert gamma.status == SELECTED and gamma.from_gap_pot == {} and gamma.from_budget == {DFG: 100_000, ANR: 100_000}
    assert (after.funder(ANR).allocated, after.gap_pot.used) == (200_000, 150_000)


# ---------------------------------------------------------------------------------------------------------
# Inputs the allocation refuses


@pytest.mark.parametrize("mutate, message", [
    (lambda r, q: r.__setitem__(0, r[0]._replace(recommendation="not_recommended")),
     r"ALPHA is not recommended and can never be funded \(rule 19\)"),
    (lambda r, q: r.__setitem__(0, r[0]._replace(recommendation="maybe")), "unknown recommendation"),
    (lambda r, q: r.__setitem__(1, r[1]._replace(rank=1)), "share rank 1"),
    (lambda r, q: r.__setitem__(1, r[1]._replace(proposal_id=101, rank=5)), "appears twice"),
    (lambda r, q: q[101].__setitem__(0, q[101][0]._replace(amount=-5)), "cannot be below €0"),
    (lambda r, q: q[101].__setitem__(0, q[101][0]._replace(amount=100.5)), "whole number of euros"),
])
def test_inputs_that_cannot_be_allocated_are_refused(mutate, message):
    funders = budgets(ANR=300_000)
    ranking, requests = proposals(("ALPHA", [(ANR, 100_000)]), ("BETA", [(ANR, 100_000)]))
    mutate(ranking, requests)
    with pytest.raises(InvalidInput, match=message):
        allocate(ranking, funders, requests)


def test_what_if_increases_must_name_a_funder_of_the_call_and_be_positive():
    funders = budgets(ANR=300_000)
    ranking, requests = proposals(("ALPHA", [(ANR, 100_000)]))
    with pytest.raises(InvalidInput, match="funder #99"):
        allocate(ranking, funders, requests, increases={99: 1})
    with pytest.raises(InvalidInput, match="cannot be below"):
        allocate(ranking, funders, requests, increases={ANR: -1})


def test_a_partner_of_a_funder_outside_the_call_makes_the_proposal_not_fundable():
    funders = budgets(ANR=300_000)
    ranking, requests = proposals(("ALPHA", [(ANR, 100_000)]))
    requests[101].append(Request(9999, 77, 10_000, "Stray Institute"))
    s = allocate(ranking, funders, requests)
    assert s.outcomes[0].reason == ("not fundable as requested: Stray Institute asks funder #77, which does "
                                    "not take part in the call")


# ---------------------------------------------------------------------------------------------------------
# Invariants over random inputs


def random_case(rng: random.Random):
    n_funders = rng.randint(1, 6)
    funders = []
    for fid in range(1, n_funders + 1):
        committed = rng.randrange(0, 1_000_001, 10_000)
        cap_partner = rng.choice([None, None, rng.randrange(50_000, 400_001, 10_000)])
        cap_project = rng.choice([None, None, rng.randrange(100_000, 800_001, 10_000)])
        funders.append(FunderBudget(fid, f"F{fid}", committed, rng.choice([0, 0, rng.randrange(0, 200_001)]),
                                    cap_partner, cap_project))
    ranking, requests = [], {}
    scores = [rng.choice([10.0, 11.5, 12.0, 13.5]) for _ in range(rng.randint(0, 25))]
    ranks = rng.sample(range(1, 1000), len(scores))
    for pid, (score, rank) in enumerate(zip(sorted(scores, reverse=True), sorted(ranks), strict=True), start=1):
        ranking.append(Ranked(pid, rank, f"R{pid}", f"P{pid}", rng.choice(["recommended", "recommended_if_funds"]),
                              rng.choice([score, score, None])))
        requests[pid] = [Request(pid * 100 + k, rng.randint(1, n_funders + (1 if rng.random() < 0.03 else 0)),
                                 rng.randrange(0, 400_001, 1_000)) for k in range(rng.randint(0, 5))]
    rng.shuffle(ranking)
    gap_pot = rng.choice([0, 0, rng.randrange(0, 500_001, 1_000)])
    increases = {f.funder_id: rng.randrange(0, 300_001, 1_000) for f in funders if rng.random() < 0.3}
    return ranking, funders, requests, gap_pot, increases


def check_invariants(s: Scenario, funders, gap_pot: int, increases) -> None:
    spent = {f.funder_id: 0 for f in funders}
    for o in s.outcomes:
        if o.status == SELECTED:
            assert o.fundable_as_requested and not o.reason
            for fid, requested in o.requested.items():
                # Every euro requested is paid, from the funder's budget or the gap pot.
                assert o.from_budget[fid] + o.from_gap_pot.get(fid, 0) == requested
                spent[fid] += o.from_budget[fid]
            assert sum(p.amount for p in o.partners) == o.total_requested
            assert sum(p.from_gap_pot for p in o.partners) == o.gap_pot_used
        else:
            assert o.reason and o.from_budget == {}
    for f in funders:
        out = s.funder(f.funder_id)
        # Rule 22: the funder's allocations never exceed committed + recorded increases (+ what-if tried).
        assert out.allocated == spent[f.funder_id] <= f.committed + f.increases + increases.get(f.funder_id, 0)
        assert out.remaining >= 0
    assert 0 <= s.gap_pot.used <= gap_pot
    ranks = [o.rank for o in s.outcomes]
    assert ranks == sorted(ranks)
    # blocked = a lower-ranked proposal was selected; reserve = none was; skips list them all.
    for k, o in enumerate(s.outcomes):
        below = any(x.status == SELECTED for x in s.outcomes[k + 1:])
        if o.status != SELECTED:
            assert o.status == (BLOCKED if below else RESERVE)
    assert [k.proposal_id for k in s.skips] == [o.proposal_id for o in s.reserve_list]
    assert Scenario.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_rule_22_and_the_bookkeeping_hold_on_random_inputs():
    rng = random.Random(20300305)
    for _ in range(400):
        ranking, funders, requests, gap_pot, increases = random_case(rng)
        s = allocate(ranking, funders, requests, gap_pot, increases)
        check_invariants(s, funders, gap_pot, increases)
        # With enough money every proposal fundable as requested is selected, and nothing else is.
        enough = sum(r.amount for rs in requests.values() for r in rs) + 1
        rich = allocate(ranking, funders, requests, gap_pot, {f.funder_id: enough for f in funders})
        assert all((o.status == SELECTED) == o.fundable_as_requested for o in rich.outcomes)
        # Dropping selected proposals keeps the others' amounts exactly and the rules intact.
        chosen = [o.proposal_id for o in s.selected]
        if chosen and not increases:
            drop = rng.sample(chosen, rng.randint(1, len(chosen)))
            after = reallocate(s, drop)
            check_invariants(after, funders, gap_pot, {})
            for o in s.selected:
                if o.proposal_id not in drop:
                    kept = after.outcome(o.proposal_id)
                    assert (kept.status, kept.from_budget, kept.from_gap_pot) == (
                        SELECTED, o.from_budget, o.from_gap_pot)


def test_a_tie_group_never_selects_fewer_than_rank_order_would():
    rng = random.Random(7)
    for _ in range(300):
        ranking, funders, requests, gap_pot, _ = random_case(rng)
        tied = [r._replace(score=12.0, recommendation="recommended") for r in ranking]
        plain = [r._replace(score=None) for r in ranking]
        assert len(allocate(tied, funders, requests, gap_pot).selected) >= len(
            allocate(plain, funders, requests, gap_pot).selected)


# ---------------------------------------------------------------------------------------------------------
# Size


def big_case(seed: int = 1, ties: bool = False):
    rng = random.Random(seed)
    funders = [FunderBudget(f, f"F{f}", rng.randrange(500_000, 5_000_001, 1_000),
                            max_per_project=600_000 if f % 5 == 0 else None) for f in range(1, 41)]
    ranking, requests = [], {}
    for pid in range(1, 5001):
        # With ties: total scores in half points, so about 33 proposals share each score.
        score = round(15 - pid * 0.003, 1) if ties else None
        ranking.append(Ranked(pid, pid, f"JC-{pid:04d}", f"P{pid}", "recommended", score))
        requests[pid] = [Request(pid * 10 + k, rng.randint(1, 40), rng.randrange(50_000, 350_001, 1_000))
                         for k in range(rng.randint(3, 6))]
    return ranking, funders, requests


def test_5000_proposals_and_40_funders_timing(capsys):
    lines = []
    for ties in (False, True):
        ranking, funders, requests = big_case(ties=ties)
        wall = cpu = float("inf")
        for _ in range(5):
            start, start_cpu = time.perf_counter(), time.process_time()
            s = allocate(ranking, funders, requests, gap_pot=2_000_000)
            wall = min(wall, time.perf_counter() - start)
            cpu = min(cpu, time.process_time() - start_cpu)
        check_invariants(s, funders, 2_000_000, {})
        lines.append(f"allocate: 5,000 proposals x 40 funders{' (with score ties)' if ties else ''}: "
                     f"{wall * 1000:.1f} ms wall, {cpu * 1000:.1f} ms CPU (best of 5); "
                     f"{len(s.selected)} selected, {len(s.gaps)} gaps")
    with capsys.disabled():
        print("\n" + "\n".join(lines))


def test_the_garbage_collector_is_back_on_after_an_allocation_even_a_refused_one():
    import gc

    funders = budgets(ANR=300_000)
    ranking, requests = proposals(("ALPHA", [(ANR, 100_000)]))
    assert gc.isenabled()
    allocate(ranking, funders, requests)
    assert gc.isenabled()
    with pytest.raises(InvalidInput):
        allocate(ranking, funders, requests, increases={99: 1})
    assert gc.isenabled()
    gc.disable()  # a caller that had it off keeps it off
    try:
        allocate(ranking, funders, requests)
        assert not gc.isenabled()
    finally:
        gc.enable()
