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

At call scale (2,000 proposals x 600 reviewers: 1.2 M allowed pairs) the scores are a matrix (ScoreTable)
and both solvers work on numpy arrays; a plain {pair: score} dict is accepted too (small cases, tests).
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from ortools.graph.python import min_cost_flow

Pair = tuple[int, int]  # (proposal id, reviewer id)
NOT_ALLOWED = -1  # in a ScoreTable: a conflict, an existing assignment


class ScoreTable(Mapping):
    """The scores of the allowed pairs as a matrix: rows are proposals, columns reviewers (both by id,
    ascending), NOT_ALLOWED where a pair may not be assigned. Reads like a {(proposal, reviewer): score} dict."""

    def __init__(self, proposals: Sequence[int], reviewers: Sequence[int], scores: np.ndarray):
        rows, cols = np.argsort(proposals, kind="stable"), np.argsort(reviewers, kind="stable")
        self.proposals: list[int] = [int(proposals[i]) for i in rows]
        self.reviewers: list[int] = [int(reviewers[j]) for j in cols]
        self.scores = np.asarray(scores, dtype=np.int64)[np.ix_(rows, cols)]
        self.row = {p: i for i, p in enumerate(self.proposals)}
        self.col = {r: j for j, r in enumerate(self.reviewers)}

    @classmethod
    def of(cls, score: Mapping[Pair, int]) -> ScoreTable:
        if isinstance(score, ScoreTable):
            return score
        proposals = sorted({p for p, _ in score})
        reviewers = sorted({r for _, r in score})
        row = {p: i for i, p in enumerate(proposals)}
        col = {r: j for j, r in enumerate(reviewers)}
        scores = np.full((len(proposals), len(reviewers)), NOT_ALLOWED, dtype=np.int64)
        for (p, r), s in score.items():
            scores[row[p], col[r]] = s
        return cls(proposals, reviewers, scores)

    def __getitem__(self, pair: Pair) -> int:
        i, j = self.row.get(pair[0]), self.col.get(pair[1])
        if i is None or j is None or self.scores[i, j] == NOT_ALLOWED:
            raise KeyError(pair)
        return int(self.scores[i, j])

    def __iter__(self) -> Iterator[Pair]:
        rows, cols = np.nonzero(self.scores != NOT_ALLOWED)
        return ((self.proposals[i], self.reviewers[j]) for i, j in zip(rows.tolist(), cols.tolist(), strict=True))

    def __len__(self) -> int:
        return int(np.count_nonzero(self.scores != NOT_ALLOWED))


@dataclass
class Problem:
    need: dict[int, int]  # proposal -> how many more reviewers it needs
    capacity: dict[int, int]  # reviewer -> how many more proposals they can take
    country: dict[int, str | None]  # reviewer -> country (None: unknown, never counted as a repeat)
    score: Mapping[Pair, int]  # allowed pairs -> integer score (>= 0); a pair not here may not be assigned
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


@dataclass
class _Pairs:
    """The allowed pairs as parallel arrays, in (proposal id, reviewer id) order."""

    table: ScoreTable
    rows: np.ndarray  # row of each pair in the table
    cols: np.ndarray  # column of each pair
    scores: np.ndarray
    country: np.ndarray  # each pair's reviewer's country key, as a number
    seen_country: np.ndarray  # [row, country number]: an existing reviewer of the proposal is from there


def _pairs(problem: Problem, need: Mapping[int, int], cap: Mapping[int, int]) -> _Pairs:
    """The allowed pairs whose proposal is in `need` and whose reviewer is in `cap`."""
    table = ScoreTable.of(problem.score)
    keys: dict[str, int] = {}
    col_country = np.array([keys.setdefault(problem.country_key(r), len(keys)) for r in table.reviewers],
                           dtype=np.int64)
    seen = np.zeros((len(table.proposals), max(1, len(keys))), dtype=bool)
    for p, counts in problem.existing_countries.items():
        i = table.row.get(p)
        if i is not None:
            for key, n in counts.items():
                if n > 0 and key in keys:
                    seen[i, keys[key]] = True
    row_ok = np.array([p in need for p in table.proposals], dtype=bool)
    col_ok = np.array([r in cap for r in table.reviewers], dtype=bool)
    allowed = (table.scores != NOT_ALLOWED) & row_ok[:, None] & col_ok[None, :]
    rows, cols = np.nonzero(allowed)  # row-major over ascending ids: (proposal, reviewer) order
    return _Pairs(table, rows, cols, table.scores[rows, cols], col_country[cols], seen)


def solve_flow(problem: Problem) -> Solution:
    """The optimal assignment: maximum coverage, then maximum score minus penalties."""
    started = time.perf_counter()
    need = {p: n for p, n in problem.need.items() if n > 0}
    cap = {r: c for r, c in problem.capacity.items() if c > 0}
    pp = _pairs(problem, need, cap)
    m = len(pp.rows)
    if not m:
        return Solution([], 0, time.perf_counter() - started, "min-cost flow")
    big = int(pp.scores.max()) + 1
    table = pp.table

    # Nodes: source 0, sink 1, the proposals in need (by id), then each (proposal, country) node and each
    # reviewer node numbered where the pair list first meets it, the (p, c) node before the reviewer's.
    source, sink = 0, 1
    proposal_node = {p: 2 + k for k, p in enumerate(sorted(need))}
    group = pp.rows * (int(pp.country.max()) + 1) + pp.country
    _, first_of_group, group_of = np.unique(group, return_index=True, return_inverse=True)
    new_group = np.zeros(m, dtype=bool)
    new_group[first_of_group] = True
    _, first_of_col = np.unique(pp.cols, return_index=True)
    new_reviewer = np.zeros(m, dtype=bool)
    new_reviewer[first_of_col] = True
    created = new_group.astype(np.int64) + new_reviewer
    first_node = 2 + len(need) + np.cumsum(created) - created  # first node created at each pair
    group_node = first_node[first_of_group]
    pc_node = group_node[group_of]
    reviewer_node = np.zeros(len(table.reviewers), dtype=np.int64)
    reviewer_node[pp.cols[first_of_col]] = first_node[first_of_col] + new_group[first_of_col]
    n_nodes = 2 + len(need) + int(created.sum())

    # Arcs, per pair: on meeting its (p, c) node, the free arc (if no existing reviewer of p is from c) and
    # the penalised one, then the pair's own arc.
    p_node = np.array([proposal_node.get(p, 0) for p in table.proposals], dtype=np.int64)[pp.rows]
    p_need = np.array([need.get(p, 0) for p in table.proposals], dtype=np.int64)[pp.rows]
    free = new_group & ~pp.seen_country[pp.rows, pp.country]
    per_pair = 1 + new_group + free
    pair_arc = len(need) + np.cumsum(per_pair) - 1  # the last arc of each pair's block
    sink_cols = np.array([j for j in np.unique(pp.cols).tolist() if table.reviewers[j] in cap], dtype=np.int64)
    n_arcs = len(need) + int(per_pair.sum()) + len(sink_cols)
    tails = np.empty(n_arcs, dtype=np.int64)
    heads = np.empty(n_arcs, dtype=np.int64)
    caps = np.empty(n_arcs, dtype=np.int64)
    costs = np.empty(n_arcs, dtype=np.int64)
    k = len(need)
    tails[:k], heads[:k] = source, [proposal_node[p] for p in sorted(need)]
    caps[:k], costs[:k] = [need[p] for p in sorted(need)], 0
    at = pair_arc - per_pair + 1  # first arc of each pair's block
    i = at[free]
    tails[i], heads[i], caps[i], costs[i] = p_node[free], pc_node[free], 1, 0
    i = at[new_group] + free[new_group]
    tails[i], heads[i] = p_node[new_group], pc_node[new_group]
    caps[i], costs[i] = p_need[new_group], problem.country_penalty
    tails[pair_arc], heads[pair_arc] = pc_node, reviewer_node[pp.cols]
    caps[pair_arc], costs[pair_arc] = 1, big - pp.scores
    i = slice(n_arcs - len(sink_cols), n_arcs)
    tails[i], heads[i] = reviewer_node[sink_cols], sink
    caps[i], costs[i] = [cap[table.reviewers[j]] for j in sink_cols.tolist()], 0

    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(tails.astype(np.int32), heads.astype(np.int32), caps, costs)
    supply = sum(need.values())
    supplies = np.zeros(n_nodes, dtype=np.int64)
    supplies[source], supplies[sink] = supply, -supply
    flow.set_nodes_supplies(np.arange(n_nodes, dtype=np.int32), supplies)
    status = flow.solve_max_flow_with_min_cost()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"the min-cost flow solver failed (status {status})")
    used = np.flatnonzero(flow.flows(pair_arc.astype(np.int32)) > 0)
    chosen = [(table.proposals[i], table.reviewers[j])
              for i, j in zip(pp.rows[used].tolist(), pp.cols[used].tolist(), strict=True)]
    objective = big * len(chosen) - flow.optimal_cost()
    assert objective == evaluate(problem, chosen), "the flow's cost and the objective disagree"
    return Solution(chosen, objective, time.perf_counter() - started, "min-cost flow")


def solve_greedy(problem: Problem) -> Solution:
    """Baseline: repeatedly take the available pair with the best marginal value (score, minus the penalty
    if its reviewer's country is already on the proposal). Fast, but neither coverage nor score is optimal."""
    started = time.perf_counter()
    need = {p: n for p, n in problem.need.items() if n > 0}
    cap = {r: c for r, c in problem.capacity.items() if c > 0}
    pp = _pairs(problem, need, cap)  # a pair whose proposal is full or reviewer busy is never taken
    table = pp.table
    values = pp.scores - problem.country_penalty * pp.seen_country[pp.rows, pp.country]
    # Best value first, then proposal id, then reviewer id: the order a heap of (-value, p, r) pops in.
    order = np.lexsort((pp.cols, pp.rows, -values))
    queue = zip((-values[order]).tolist(), pp.rows[order].tolist(), pp.cols[order].tolist(),
                pp.country[order].tolist(), strict=True)
    still = {table.row[p]: n for p, n in need.items() if p in table.row}
    room = {table.col[r]: c for r, c in cap.items() if r in table.col}
    seen = {(int(i), int(c)) for i, c in zip(*np.nonzero(pp.seen_country), strict=True)}
    open_places, penalty = sum(still.values()), problem.country_penalty
    later: list[tuple[int, int, int, int]] = []  # pairs whose value fell (their country arrived): re-queued
    chosen: list[Pair] = []
    head = next(queue, None)
    while open_places and (head is not None or later):
        if later and (head is None or later[0] < head):
            item = heapq.heappop(later)
        else:
            item, head = head, next(queue, None)
        neg, i, j, c = item
        if still[i] <= 0 or room[j] <= 0:
            continue
        current = table.scores[i, j] - (penalty if (i, c) in seen else 0)
        if current != -neg:
            heapq.heappush(later, (-int(current), i, j, c))
            continue
        chosen.append((table.proposals[i], table.reviewers[j]))
        still[i] -= 1
        room[j] -= 1
        open_places -= 1
        seen.add((i, c))
    chosen.sort()
    return Solution(chosen, evaluate(problem, chosen), time.perf_counter() - started, "greedy")
