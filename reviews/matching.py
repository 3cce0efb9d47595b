"""Reviewer assignment as a pure optimisation problem: min-cost flow (OR-Tools) and a greedy baseline.

The problem, in integers: each proposal needs some more reviewers, each reviewer has some capacity left,
only allowed pairs (no conflict, not already assigned) have a score (the scaled expertise affinity), and a
second reviewer from the same country on one proposal costs a penalty. We want, first, as many new pairs
as the constraints allow and then, among those, the largest total score minus penalties.

The flow network:

    source --need(p)--> proposal p --1, cost 0----------> (p, country c) --1, BIG - score(p, r)--> reviewer r
                                   \\--need(p), penalty--/                                    r --capacity(r)--> sink

The (p, c) node lets one reviewer from country c through at no cost (none if an existing reviewer of p
is from c already), any further one at the penalty. `solve_max_flow_with_min_cost` gives the maximum flow
(coverage) at minimum cost; every unit crosses exactly one reviewer arc, so the cost is
BIG * flow - (scores - penalties), and the objective is exact.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from ortools.graph.python import min_cost_flow

Pair = tuple[int, int]  # (proposal id, reviewer id)


@dataclass
class Problem:
    need: dict[int, int]  # proposal -> how many more reviewers it needs
    capacity: dict[int, int]  # reviewer -> how many more proposals they can take
    country: dict[int, str | None]  # reviewer -> country (None: unknown, never counted as a repeat)
    score: dict[Pair, int]  # allowed pairs -> integer score (>= 0); a pair not here may not be assigned
    country_penalty: int = 0
    existing_countries: dict[int, Counter] = field(default_factory=dict)  # proposal -> its reviewers' countries

    def country_key(self, reviewer: int) -> str:
        c = self.country.get(reviewer)
        return c if c else f"#{reviewer}"


@dataclass
class Solution:
    pairs: list[Pair]
    objective: int  # sum of scores minus country penalties
    seconds: float = 0.0
    method: str = ""

    @property
    def coverage(self) -> int:
        return len(self.pairs)


class InfeasiblePairs(ValueError):
    pass


def evaluate(problem: Problem, pairs: list[Pair]) -> int:
    """The objective of a set of new pairs; raises InfeasiblePairs if they break a constraint."""
    if len(set(pairs)) != len(pairs):
        raise InfeasiblePairs("a pair appears twice")
    per_p: Counter[int] = Counter()
    per_r: Counter[int] = Counter()
    countries = {p: Counter(c) for p, c in problem.existing_countries.items()}
    total = 0
    for p, r in sorted(pairs):
        if (p, r) not in problem.score:
            raise InfeasiblePairs(f"pair {(p, r)} is not allowed")
        per_p[p] += 1
        per_r[r] += 1
        if per_p[p] > problem.need.get(p, 0):
            raise InfeasiblePairs(f"proposal {p} gets more reviewers than it needs")
        if per_r[r] > problem.capacity.get(r, 0):
            raise InfeasiblePairs(f"reviewer {r} is over capacity")
        key = problem.country_key(r)
        cs = countries.setdefault(p, Counter())
        if cs[key] >= 1:
            total -= problem.country_penalty
        cs[key] += 1
        total += problem.score[(p, r)]
    return total


def solve_flow(problem: Problem) -> Solution:
    """The optimal assignment: maximum coverage, then maximum score minus penalties."""
    started = time.perf_counter()
    need = {p: n for p, n in problem.need.items() if n > 0}
    cap = {r: c for r, c in problem.capacity.items() if c > 0}
    pairs = [(p, r) for (p, r) in problem.score if p in need and r in cap]
    if not pairs:
        return Solution([], 0, time.perf_counter() - started, "min-cost flow")
    big = max(problem.score[pr] for pr in pairs) + 1

    source, sink = 0, 1
    ids: dict[object, int] = {}

    def node(key) -> int:
        n = ids.get(key)
        if n is None:
            n = ids[key] = len(ids) + 2
        return n

    tails: list[int] = []
    heads: list[int] = []
    caps: list[int] = []
    costs: list[int] = []

    def arc(t: int, h: int, c: int, cost: int) -> int:
        tails.append(t), heads.append(h), caps.append(c), costs.append(cost)
        return len(tails) - 1

    for p in sorted(need):
        arc(source, node(("p", p)), need[p], 0)
    seen_pc: set[tuple[int, str]] = set()
    pair_arcs: dict[int, Pair] = {}
    for p, r in sorted(pairs):
        c = problem.country_key(r)
        if (p, c) not in seen_pc:
            seen_pc.add((p, c))
            pn, pcn = node(("p", p)), node(("pc", p, c))
            if problem.existing_countries.get(p, Counter())[c] == 0:
                arc(pn, pcn, 1, 0)
            arc(pn, pcn, need[p], problem.country_penalty)
        pair_arcs[arc(node(("pc", p, c)), node(("r", r)), 1, big - problem.score[(p, r)])] = (p, r)
    for r in sorted(cap):
        if ("r", r) in ids:
            arc(ids[("r", r)], sink, cap[r], 0)

    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(
        np.array(tails, dtype=np.int32), np.array(heads, dtype=np.int32),
        np.array(caps, dtype=np.int64), np.array(costs, dtype=np.int64))
    supply = sum(need.values())
    supplies = np.zeros(len(ids) + 2, dtype=np.int64)
    supplies[source], supplies[sink] = supply, -supply
    flow.set_nodes_supplies(np.arange(len(ids) + 2, dtype=np.int32), supplies)
    status = flow.solve_max_flow_with_min_cost()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"the min-cost flow solver failed (status {status})")
    arc_ids = np.fromiter(pair_arcs, dtype=np.int32)
    used = flow.flows(arc_ids)
    chosen = sorted(pair_arcs[int(a)] for a, f in zip(arc_ids, used, strict=True) if f > 0)
    objective = big * len(chosen) - flow.optimal_cost()
    assert objective == evaluate(problem, chosen), "the flow's cost and the objective disagree"
    return Solution(chosen, objective, time.perf_counter() - started, "min-cost flow")


def solve_greedy(problem: Problem) -> Solution:
    """Baseline: repeatedly take the available pair with the best marginal value (score, minus the penalty
    if its reviewer's country is already on the proposal). Fast, but neither coverage nor score is optimal."""
    started = time.perf_counter()
    need = dict(problem.need)
    cap = dict(problem.capacity)
    countries = {p: Counter(c) for p, c in problem.existing_countries.items()}

    def value(p: int, r: int) -> int:
        dup = countries.get(p, Counter())[problem.country_key(r)] >= 1
        return problem.score[(p, r)] - (problem.country_penalty if dup else 0)

    heap = [(-value(p, r), p, r) for (p, r) in problem.score]
    heapq.heapify(heap)
    chosen: list[Pair] = []
    while heap:
        neg, p, r = heapq.heappop(heap)
        if need.get(p, 0) <= 0 or cap.get(r, 0) <= 0:
            continue
        current = value(p, r)
        if current != -neg:  # its country arrived meanwhile: put it back at its real value
            heapq.heappush(heap, (-current, p, r))
            continue
        chosen.append((p, r))
        need[p] -= 1
        cap[r] -= 1
        countries.setdefault(p, Counter())[problem.country_key(r)] += 1
    chosen.sort()
    return Solution(chosen, evaluate(problem, chosen), time.perf_counter() - started, "greedy")
