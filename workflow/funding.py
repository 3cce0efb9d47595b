"""The funding allocation: ranked proposals, funder budgets and partner requests in, a scenario out.

A pure function (no database, no web): `allocate(ranking, funders, requests, gap_pot, increases)`.
DOMAIN.md §4 and rules 19, 21 and 22. Money is whole euros (int) everywhere; nothing is rounded.

The walk, in rank order (a smaller `rank` is better):

1. A proposal is *not fundable as requested* when one of its partners asks a funder for more than the
   funder's cap per partner, when the partners a funder pays ask for more in total than its cap per
   project, or when a partner names a funder that does not take part. It is never selected.
2. Otherwise, per funder, the shortfall is what the funder's partners in the proposal ask beyond the
   funder's remaining budget. No shortfall: the proposal is **selected** and the amounts are deducted.
   A shortfall that the gap pot (the EU top-up kept for gap filling, if the call has one) can cover in
   full: **selected**, the gap pot pays the shortfall, and how much is recorded per funder and partner.
   Otherwise it is not selected, naming each funder short of money and by how much ("blocked by ANR
   (short €120,000) and ISCIII (short €30,000)"). A proposal that is not selected consumes nothing.
3. The walk goes on down the list: a lower-ranked proposal may still fit. A proposal that is not
   selected while a lower-ranked one is has status **blocked**: a gap in the ranking, which a co-funded
   call must justify (rule 21), so every proposal that is not selected is listed in `Scenario.skips`
   with its reason and whether it is a gap. One not selected with no selected proposal below it has
   status **reserve** (below the funding line). The reserve list is every proposal not selected, blocked
   or reserve, in rank order.

Ties at the funding line (DOMAIN §3 "Ties"): consecutive proposals with the same total score and the same
recommendation form a tie group. When the budgets cannot take every member of a group, the members
selected are those of the combination that selects the most of them within the budgets (and the gap
pot); among combinations of that size, the one that comes first in rank order (compared member by
member, i.e. honouring the ranking's recorded tie-break). Without a score there are no ties. An
exhaustive search is bounded (`TIE_SEARCH_LIMIT` steps per group, `TIE_SEARCH_BUDGET` per allocation);
beyond it, the best combination found so far is taken (never fewer proposals than rank order would select)
and the reason says so.

What-if: the same function with `increases` (funder id -> extra euros, not saved) gives a new scenario;
`changes(before, after)` lists the proposals whose status differs.

After a decision: `allocate(..., keep=earlier_scenario)` keeps the earlier scenario's selected proposals
(still in the ranking) selected with exactly the amounts they had, and walks only the others;
`reallocate(scenario, drop=...)` does that from a stored scenario after proposals leave it (a funder
declined, a consortium withdrew).

Rule 22 (per funder, what is allocated from its budget <= committed + recorded increases [+ what-if]) is
checked on every result and raises `AllocationInvariantError` if it ever failed.
"""

from __future__ import annotations

import gc
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import accumulate
from typing import NamedTuple

from workflow.errors import InvalidInput

SELECTED, BLOCKED, RESERVE = "selected", "blocked", "reserve"
STATUSES = (SELECTED, BLOCKED, RESERVE)
RECOMMENDED, RECOMMENDED_IF_FUNDS, NOT_RECOMMENDED = "recommended", "recommended_if_funds", "not_recommended"
RECOMMENDATIONS = (RECOMMENDED, RECOMMENDED_IF_FUNDS)

# Why a proposal is not selected.
SHORTFALL, PARTNER_CAP, PROJECT_CAP, UNKNOWN_FUNDER, TIE = (
    "shortfall", "partner_cap", "project_cap", "unknown_funder", "tie")
NOT_AS_REQUESTED = (PARTNER_CAP, PROJECT_CAP, UNKNOWN_FUNDER)

TIE_SEARCH_LIMIT = 5_000  # search steps per tie group
TIE_SEARCH_BUDGET = 20_000  # search steps per allocation


class AllocationInvariantError(AssertionError):
    """A result broke rule 22 or spent more than the gap pot: a bug, never a user error."""


def eur(amount: int) -> str:
    """Whole euros as people read them: €120,000 (the same text as workflow.timefmt.format_eur)."""
    return f"-€{-amount:,}" if amount < 0 else f"€{amount:,}"


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# ---------------------------------------------------------------------------------------------------------
# Inputs


class Ranked(NamedTuple):
    """One recommended proposal of the ranking list."""

    proposal_id: int
    rank: int
    reference: str = ""
    acronym: str = ""
    recommendation: str = RECOMMENDED
    score: float | None = None  # the total (consensus) score; equal scores side by side form a tie group

    @property
    def name(self) -> str:
        return self.acronym or self.reference or f"proposal #{self.proposal_id}"


class Request(NamedTuple):
    """A funded partner's request to its funder."""

    partner_id: int
    funder_id: int
    amount: int
    label: str = ""  # e.g. the organisation, used in reasons

    @property
    def name(self) -> str:
        return self.label or f"partner #{self.partner_id}"


class FunderBudget(NamedTuple):
    funder_id: int
    acronym: str
    committed: int
    increases: int = 0  # recorded budget increases, in total
    max_per_partner: int | None = None
    max_per_project: int | None = None


# ---------------------------------------------------------------------------------------------------------
# Outputs


class Blocker(NamedTuple):
    """One reason a proposal is not selected."""

    kind: str  # SHORTFALL | PARTNER_CAP | PROJECT_CAP | UNKNOWN_FUNDER | TIE
    text: str
    funder_id: int | None = None
    funder: str = ""
    amount: int = 0  # SHORTFALL: euros missing; caps: euros requested
    limit: int | None = None  # caps: the cap
    partner_id: int | None = None


class PartnerAmount(NamedTuple):
    partner_id: int
    funder_id: int
    amount: int  # requested; for a selected proposal, granted
    from_gap_pot: int = 0  # the part the gap pot pays (selected proposals only)
    label: str = ""

    @property
    def from_budget(self) -> int:
        return self.amount - self.from_gap_pot


class ProposalOutcome(NamedTuple):
    proposal_id: int
    reference: str
    acronym: str
    rank: int
    recommendation: str
    score: float | None
    status: str  # SELECTED | BLOCKED | RESERVE
    requested: dict[int, int]  # funder id -> what its partners in this proposal ask, in total
    from_budget: dict[int, int]  # funder id -> paid from its budget (selected only)
    from_gap_pot: dict[int, int]  # funder id -> shortfall the gap pot pays (selected only)
    partners: tuple[PartnerAmount, ...]
    blockers: tuple[Blocker, ...] = ()
    reason: str = ""  # why it is not selected, in one sentence; "" when selected
    note: str = ""  # for a selected proposal: the gap pot's part, or that it was kept from a decision
    tie_group: int | None = None
    kept: bool = False

    @property
    def selected(self) -> bool:
        return self.status == SELECTED

    @property
    def total_requested(self) -> int:
        return sum(self.requested.values())

    @property
    def gap_pot_used(self) -> int:
        return sum(self.from_gap_pot.values())

    @property
    def fundable_as_requested(self) -> bool:
        return not any(b.kind in NOT_AS_REQUESTED for b in self.blockers)

    @property
    def shortfalls(self) -> dict[int, int]:
        return {b.funder_id: b.amount for b in self.blockers if b.kind == SHORTFALL}

    @property
    def name(self) -> str:
        return self.acronym or self.reference or f"proposal #{self.proposal_id}"


class FunderOutcome(NamedTuple):
    funder_id: int
    acronym: str
    committed: int
    increases: int  # recorded
    what_if: int  # tried, not saved
    allocated: int  # from its own budget, to selected proposals
    gap_pot_used: int  # paid by the gap pot for this funder's partners
    requested: int  # what all ranked proposals ask of this funder
    max_per_partner: int | None = None
    max_per_project: int | None = None

    @property
    def available(self) -> int:
        return self.committed + self.increases + self.what_if

    @property
    def remaining(self) -> int:
        return self.available - self.allocated


class GapPot(NamedTuple):
    total: int
    used: int

    @property
    def remaining(self) -> int:
        return self.total - self.used


class Skip(NamedTuple):
    """A proposal the walk did not select, and why. `gap`: a lower-ranked proposal was selected."""

    proposal_id: int
    reference: str
    rank: int
    reason: str
    gap: bool
    selected_below: int  # how many lower-ranked proposals were selected


@dataclass(frozen=True)
class Scenario:
    outcomes: tuple[ProposalOutcome, ...]  # in rank order
    funders: tuple[FunderOutcome, ...]  # in the order given
    gap_pot: GapPot
    skips: tuple[Skip, ...]  # every proposal not selected, in rank order
    increases: dict[int, int] = field(default_factory=dict)  # the what-if increases applied

    def __post_init__(self):
        object.__setattr__(self, "_by_id", {o.proposal_id: o for o in self.outcomes})
        object.__setattr__(self, "_funders_by_id", {f.funder_id: f for f in self.funders})

    def outcome(self, proposal_id: int) -> ProposalOutcome:
        return self._by_id[proposal_id]

    def funder(self, funder_id: int) -> FunderOutcome:
        return self._funders_by_id[funder_id]

    def __contains__(self, proposal_id: int) -> bool:
        return proposal_id in self._by_id

    @property
    def selected(self) -> list[ProposalOutcome]:
        return [o for o in self.outcomes if o.status == SELECTED]

    @property
    def blocked(self) -> list[ProposalOutcome]:
        return [o for o in self.outcomes if o.status == BLOCKED]

    @property
    def reserve_list(self) -> list[ProposalOutcome]:
        """Every recommended proposal not selected (blocked or reserve), in rank order."""
        return [o for o in self.outcomes if o.status != SELECTED]

    @property
    def gaps(self) -> list[Skip]:
        return [s for s in self.skips if s.gap]

    @property
    def first_gap_rank(self) -> int | None:
        """The rank of the first skipped proposal with a selected one below it; in co-funded calls the
        EU top-up is calculated only on the proposals above it (DOMAIN §4)."""
        gaps = self.gaps
        return gaps[0].rank if gaps else None

    @property
    def total_allocated(self) -> int:
        return sum(f.allocated for f in self.funders)

    # -- storage -------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """Plain JSON (funder ids as keys become [id, amount] pairs, so they come back as ints)."""
        return {
            "outcomes": [
                {
                    "proposal_id": o.proposal_id, "reference": o.reference, "acronym": o.acronym,
                    "rank": o.rank, "recommendation": o.recommendation, "score": o.score,
                    "status": o.status, "requested": _pairs(o.requested), "from_budget": _pairs(o.from_budget),
                    "from_gap_pot": _pairs(o.from_gap_pot),
                    "partners": [[p.partner_id, p.funder_id, p.amount, p.from_gap_pot, p.label] for p in o.partners],
                    "blockers": [
                        {"kind": b.kind, "text": b.text, "funder_id": b.funder_id, "funder": b.funder,
                         "amount": b.amount, "limit": b.limit, "partner_id": b.partner_id}
                        for b in o.blockers
                    ],
                    "reason": o.reason, "note": o.note, "tie_group": o.tie_group, "kept": o.kept,
                }
                for o in self.outcomes
            ],
            "funders": [
                {"funder_id": f.funder_id, "acronym": f.acronym, "committed": f.committed,
                 "increases": f.increases, "what_if": f.what_if, "allocated": f.allocated,
                 "gap_pot_used": f.gap_pot_used, "requested": f.requested,
                 "max_per_partner": f.max_per_partner, "max_per_project": f.max_per_project}
                for f in self.funders
            ],
            "gap_pot": {"total": self.gap_pot.total, "used": self.gap_pot.used},
            "skips": [
                {"proposal_id": s.proposal_id, "reference": s.reference, "rank": s.rank, "reason": s.reason,
                 "gap": s.gap, "selected_below": s.selected_below}
                for s in self.skips
            ],
            "increases": _pairs(self.increases),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Scenario:
        outcomes = tuple(
            ProposalOutcome(
                proposal_id=o["proposal_id"], reference=o["reference"], acronym=o["acronym"], rank=o["rank"],
                recommendation=o["recommendation"], score=o["score"], status=o["status"],
                requested=_unpairs(o["requested"]), from_budget=_unpairs(o["from_budget"]),
                from_gap_pot=_unpairs(o["from_gap_pot"]),
                partners=tuple(PartnerAmount(*p) for p in o["partners"]),
                blockers=tuple(Blocker(**b) for b in o["blockers"]),
                reason=o["reason"], note=o["note"], tie_group=o["tie_group"], kept=o["kept"],
            )
            for o in data["outcomes"]
        )
        return cls(
            outcomes=outcomes,
            funders=tuple(FunderOutcome(**f) for f in data["funders"]),
            gap_pot=GapPot(**data["gap_pot"]),
            skips=tuple(Skip(**s) for s in data["skips"]),
            increases=_unpairs(data["increases"]),
        )

    # -- replaying ------------------------------------------------------------------------------------

    def inputs(self) -> tuple[list[Ranked], list[FunderBudget], dict[int, list[Request]], int]:
        """The inputs this scenario was computed from (without what-if increases)."""
        ranking = [Ranked(o.proposal_id, o.rank, o.reference, o.acronym, o.recommendation, o.score)
                   for o in self.outcomes]
        funders = [FunderBudget(f.funder_id, f.acronym, f.committed, f.increases, f.max_per_partner,
                                f.max_per_project) for f in self.funders]
        requests = {o.proposal_id: [Request(p.partner_id, p.funder_id, p.amount, p.label) for p in o.partners]
                    for o in self.outcomes}
        return ranking, funders, requests, self.gap_pot.total


def _pairs(d: Mapping[int, int]) -> list[list[int]]:
    return [[k, v] for k, v in d.items()]


def _unpairs(pairs) -> dict[int, int]:
    return {int(k): v for k, v in pairs}


class Change(NamedTuple):
    proposal_id: int
    reference: str
    acronym: str
    rank: int
    before: str | None  # None: not in the earlier scenario
    after: str | None  # None: not in the later scenario
    reason: str  # the later scenario's reason (or note), to say why


def changes(before: Scenario, after: Scenario) -> list[Change]:
    """The proposals whose status differs between two scenarios, in rank order (of `after`, then `before`)."""
    out: list[Change] = []
    for o in after.outcomes:
        was = before._by_id.get(o.proposal_id)
        if was is None or was.status != o.status:
            out.append(Change(o.proposal_id, o.reference, o.acronym, o.rank, was.status if was else None,
                              o.status, o.reason or o.note))
    for o in before.outcomes:
        if o.proposal_id not in after:
            out.append(Change(o.proposal_id, o.reference, o.acronym, o.rank, o.status, None, ""))
    return out


# ---------------------------------------------------------------------------------------------------------
# The allocation


def _int(value, what: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be a whole number of euros, not {value!r}")
    if value < minimum:
        raise InvalidInput(f"{what} cannot be below {eur(minimum)} ({eur(value)} given)")
    return value


class _Prepared:
    """A proposal's inputs, checked and summed per funder once."""

    __slots__ = ("entry", "requests", "by_funder", "fatal", "kept")

    def __init__(self, entry: Ranked, requests: tuple[Request, ...], by_funder: dict[int, int],
                 fatal: list[Blocker]):
        self.entry, self.requests, self.by_funder, self.fatal = entry, requests, by_funder, fatal
        self.kept: ProposalOutcome | None = None


def _prepare(entry: Ranked, reqs: Iterable[Request], budgets: Mapping[int, FunderBudget]) -> _Prepared:
    reqs = tuple(reqs)
    by_funder: dict[int, int] = {}
    fatal: list[Blocker] = []
    for r in reqs:
        if type(r.amount) is not int or r.amount < 0:
            _int(r.amount, f"the request of {r.name} in {entry.name}")
        by_funder[r.funder_id] = by_funder.get(r.funder_id, 0) + r.amount
        budget = budgets.get(r.funder_id)
        if budget is None:
            fatal.append(Blocker(
                UNKNOWN_FUNDER, f"{r.name} asks funder #{r.funder_id}, which does not take part in the call",
                r.funder_id, f"#{r.funder_id}", r.amount, None, r.partner_id))
        elif budget.max_per_partner is not None and r.amount > budget.max_per_partner:
            fatal.append(Blocker(
                PARTNER_CAP, f"{r.name} asks {budget.acronym} for {eur(r.amount)}, above its cap of "
                f"{eur(budget.max_per_partner)} per partner", r.funder_id, budget.acronym, r.amount,
                budget.max_per_partner, r.partner_id))
    for fid, total in by_funder.items():
        budget = budgets.get(fid)
        if budget is not None and budget.max_per_project is not None and total > budget.max_per_project:
            fatal.append(Blocker(
                PROJECT_CAP, f"the partners funded by {budget.acronym} ask {eur(total)} in total, above its cap "
                f"of {eur(budget.max_per_project)} per project", fid, budget.acronym, total,
                budget.max_per_project))
    return _Prepared(entry, reqs, by_funder, fatal)


class _Walk:
    """The mutable state of one allocation: remaining budgets and gap pot, and decisions so far."""

    def __init__(self, budgets: Mapping[int, FunderBudget], remaining: dict[int, int], gap_total: int,
                 gap_left: int):
        self.budgets, self.remaining, self.gap_total, self.gap_left = budgets, remaining, gap_total, gap_left
        self.search_budget = TIE_SEARCH_BUDGET
        # proposal id -> (selected, blockers, from_budget, from_gap, gap pot left when decided)
        self.decisions: dict[int, tuple] = {}

    def shortfalls(self, p: _Prepared, remaining: Mapping[int, int]) -> dict[int, int]:
        out = {}
        for fid, amount in p.by_funder.items():
            left = remaining[fid]
            if amount > left:
                out[fid] = amount - (left if left > 0 else 0)
        return out

    def fits(self, p: _Prepared) -> bool:
        return not p.fatal and sum(self.shortfalls(p, self.remaining).values()) <= self.gap_left

    def select(self, p: _Prepared, short: dict[int, int]) -> None:
        remaining = self.remaining
        from_budget = {}
        for fid, amount in p.by_funder.items():
            paid = amount - short.get(fid, 0)
            remaining[fid] -= paid
            from_budget[fid] = paid
        self.gap_left -= sum(short.values())
        self.decisions[p.entry.proposal_id] = (True, (), from_budget, dict(short), self.gap_left)

    def decide(self, p: _Prepared, extra: Blocker | None = None) -> bool:
        """Select `p` if it fits, else record why not. Returns whether it was selected."""
        if p.fatal:
            self.decisions[p.entry.proposal_id] = (False, tuple(p.fatal), {}, {}, self.gap_left)
            return False
        short = self.shortfalls(p, self.remaining)
        missing = sum(short.values())
        if missing == 0 or missing <= self.gap_left:
            self.select(p, short)
            return True
        blockers = tuple(
            Blocker(SHORTFALL, f"{self.budgets[fid].acronym} (short {eur(amount)})", fid,
                    self.budgets[fid].acronym, amount)
            for fid, amount in short.items()
        ) + ((extra,) if extra else ())
        self.decisions[p.entry.proposal_id] = (False, blockers, {}, {}, self.gap_left)
        return False

    def best_combination(self, candidates: list[_Prepared]) -> tuple[list[_Prepared], bool]:
        """The largest subset of `candidates` that fits the remaining budgets and gap pot together; among
        the largest, the first in rank order. A depth-first search that tries including each member
        before leaving it out, so its first complete path is the rank-order (greedy) choice and later
        paths come in rank order; it prunes branches that cannot beat the best found and stops after
        TIE_SEARCH_LIMIT steps, or when the allocation's TIE_SEARCH_BUDGET is spent (then it returns the
        best found so far and False).

        The bound: every euro a member asks is paid from its funder's free budget or from the gap pot, so
        the members still to add must fit, by their totals, into the free money of all funders plus the
        gap pot; at most as many as the smallest totals that fit."""
        remaining, gap_left = self.remaining, self.gap_left
        n = len(candidates)
        totals = [sum(p.by_funder.values()) for p in candidates]
        funder_ids = {fid for p in candidates for fid in p.by_funder}
        free = sum(max(0, remaining[fid]) for fid in funder_ids) + gap_left
        # prefix sums of the smallest totals among candidates[i:] (of all candidates in a very large group)
        if n <= 256:
            suffix = [list(accumulate(sorted(totals[i:]))) for i in range(n + 1)]
        else:
            everyone = list(accumulate(sorted(totals)))
            suffix = [everyone] * (n + 1)
        demand: dict[int, int] = {}
        best: list[int] = []
        path: list[int] = []
        steps, exhaustive = 0, True
        limit = min(TIE_SEARCH_LIMIT, self.search_budget)

        def over_if_added(p: _Prepared) -> int:
            extra = 0
            for fid, amount in p.by_funder.items():
                before = demand.get(fid, 0)
                left = remaining[fid]
                if left < 0:
                    left = 0
                extra += max(0, before + amount - left) - max(0, before - left)
            return extra

        # frames: [index, euros over budget so far, free money left, step (0 include, 1 exclude, 2 done)]
        stack = [[0, 0, free, 0]]
        while stack:
            frame = stack[-1]
            i, over, left, step = frame
            if step == 0:
                if len(path) > len(best):
                    best = path.copy()
                if i == n or len(path) + bisect_right(suffix[i], left) <= len(best):
                    stack.pop()
                    continue
                steps += 1
                if steps > limit:
                    exhaustive = False
                    break
                p = candidates[i]
                extra = over_if_added(p)
                if over + extra <= gap_left:
                    for fid, amount in p.by_funder.items():
                        demand[fid] = demand.get(fid, 0) + amount
                    path.append(i)
                    frame[3] = 1
                    stack.append([i + 1, over + extra, left - totals[i], 0])
                else:
                    frame[3] = 2
                    stack.append([i + 1, over, left, 0])
            elif step == 1:
                for fid, amount in candidates[i].by_funder.items():
                    demand[fid] -= amount
                path.pop()
                frame[3] = 2
                stack.append([i + 1, over, left, 0])
            else:
                stack.pop()
        self.search_budget -= min(steps, limit)
        return [candidates[i] for i in best], exhaustive

    def decide_group(self, group: list[_Prepared], score) -> None:
        candidates = [p for p in group if p.kept is None and self.fits(p)]
        chosen, exhaustive = self.best_combination(candidates) if len(candidates) > 1 else (candidates, True)
        for p in chosen:
            self.select(p, self.shortfalls(p, self.remaining))
        chosen_ids = {p.entry.proposal_id for p in chosen}
        winners = [p.entry.name for p in group if p.entry.proposal_id in chosen_ids or p.kept is not None]
        if winners:
            shown = _and(winners) if len(winners) <= 5 else f"{len(winners)} proposals"
            why = (f"; the equally scored combination funding the most proposals was preferred ({shown})"
                   if exhaustive else
                   f"; too many tied proposals to compare every combination, so the best combination found was "
                   f"preferred ({shown})")
        else:
            why = ""
        names = [p.entry.name for p in group]
        for k, p in enumerate(group):
            if p.kept is not None or p.entry.proposal_id in chosen_ids:
                continue
            if p.fatal:
                self.decide(p)
                continue
            others = names[:k] + names[k + 1:] if len(names) <= 6 else ()
            tied = f"tied with {_and(others)}" if others else f"tied with {len(names) - 1} other proposals"
            self.decide(p, Blocker(TIE, f"{tied} at score {score:g}{why}"))


def _check_ranking(ranking: Iterable[Ranked]) -> list[Ranked]:
    entries = sorted(ranking, key=lambda e: e.rank)
    seen_ids: set[int] = set()
    previous_rank = None
    for e in entries:
        if e.recommendation == NOT_RECOMMENDED:
            raise InvalidInput(f"{e.name} is not recommended and can never be funded (rule 19); "
                               "leave it out of the funding list")
        if e.recommendation not in RECOMMENDATIONS:
            raise InvalidInput(f"{e.name} has an unknown recommendation {e.recommendation!r}; use "
                               f"{' or '.join(RECOMMENDATIONS)}")
        if e.proposal_id in seen_ids:
            raise InvalidInput(f"{e.name} appears twice in the ranking")
        if e.rank == previous_rank:
            raise InvalidInput(f"two proposals share rank {e.rank}; the ranking must be a strict order (rule 20)")
        seen_ids.add(e.proposal_id)
        previous_rank = e.rank
    return entries


@contextmanager
def _no_collection_pauses():
    """An allocation builds ~100,000 small objects that all live until it returns: the garbage collector's
    passes in between find nothing to free and took a third of the time. Re-enabled only if it was on."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def allocate(
    ranking: Iterable[Ranked],
    funders: Iterable[FunderBudget],
    requests: Mapping[int, Iterable[Request]],
    gap_pot: int = 0,
    increases: Mapping[int, int] | None = None,
    *,
    keep: Scenario | None = None,
) -> Scenario:
    """Allocate the funders' budgets to the ranked proposals (see the module's docstring).

    `requests` maps a proposal id to its funded partners' requests (own-funded partners are left out);
    `increases` are what-if budget increases per funder id (not saved); `keep` is an earlier scenario
    whose selected proposals stay selected with their amounts.
    """
    with _no_collection_pauses():
        return _allocate(ranking, funders, requests, gap_pot, increases, keep)


def _allocate(ranking, funders, requests, gap_pot, increases, keep) -> Scenario:
    entries = _check_ranking(ranking)
    budgets: dict[int, FunderBudget] = {}
    for f in funders:
        if f.funder_id in budgets:
            raise InvalidInput(f"funder {f.acronym} is given twice")
        _int(f.committed, f"the committed budget of {f.acronym}")
        _int(f.increases, f"the recorded increases of {f.acronym}")
        budgets[f.funder_id] = f
    gap_total = _int(gap_pot, "the gap pot")
    what_if: dict[int, int] = {}
    for fid, extra in (increases or {}).items():
        if fid not in budgets:
            raise InvalidInput(f"a budget increase names funder #{fid}, which does not take part in the call")
        if _int(extra, f"the increase tried for {budgets[fid].acronym}"):
            what_if[fid] = extra
    available = {fid: f.committed + f.increases + what_if.get(fid, 0) for fid, f in budgets.items()}

    prepared = [_prepare(e, requests.get(e.proposal_id, ()), budgets) for e in entries]
    remaining = dict(available)
    gap_left = gap_total
    if keep is not None:
        kept = {o.proposal_id: o for o in keep.outcomes if o.status == SELECTED}
        for p in prepared:
            o = kept.get(p.entry.proposal_id)
            if o is None:
                continue
            p.kept = o
            for fid, paid in o.from_budget.items():
                if fid not in remaining:
                    raise InvalidInput(f"{p.entry.name} was selected with money from funder #{fid}, which no "
                                       "longer takes part in the call")
                remaining[fid] -= paid
            gap_left -= o.gap_pot_used
        for fid, left in remaining.items():
            if left < 0:
                raise InvalidInput(f"the budget of {budgets[fid].acronym} no longer covers the proposals "
                                   f"already selected (short {eur(-left)})")
        if gap_left < 0:
            raise InvalidInput(f"the gap pot no longer covers what it pays to the proposals already selected "
                               f"(short {eur(-gap_left)})")

    walk = _Walk(budgets, remaining, gap_total, gap_left)
    tie_of: dict[int, int] = {}
    groups = 0
    n, i = len(prepared), 0
    while i < n:
        first = prepared[i].entry
        j = i + 1
        if first.score is not None:
            while (j < n and prepared[j].entry.score == first.score
                   and prepared[j].entry.recommendation == first.recommendation):
                j += 1
        if j - i == 1:
            p = prepared[i]
            if p.kept is None:
                walk.decide(p)
        else:
            groups += 1
            for p in prepared[i:j]:
                tie_of[p.entry.proposal_id] = groups
            walk.decide_group(prepared[i:j], first.score)
        i = j

    return _result(prepared, walk, budgets, what_if, gap_total, tie_of)


_new = tuple.__new__  # builds a NamedTuple from a tuple of its fields, without the keyword machinery


def _result(prepared, walk: _Walk, budgets, what_if, gap_total, tie_of) -> Scenario:
    decisions = walk.decisions
    # Status: selected; blocked when a lower-ranked proposal was selected (a gap); reserve otherwise.
    selected_below = [0] * len(prepared)
    count = 0
    for k in range(len(prepared) - 1, -1, -1):
        selected_below[k] = count
        p = prepared[k]
        if p.kept is not None or decisions[p.entry.proposal_id][0]:
            count += 1

    allocated = dict.fromkeys(budgets, 0)
    gap_by_funder = dict.fromkeys(budgets, 0)
    requested = dict.fromkeys(budgets, 0)
    outcomes, skips = [], []
    for k, p in enumerate(prepared):
        e = p.entry
        for fid, amount in (p.by_funder if p.kept is None else p.kept.requested).items():
            if fid in requested:
                requested[fid] += amount
        if p.kept is not None:
            o = p.kept
            from_budget, from_gap = dict(o.from_budget), dict(o.from_gap_pot)
            partners = o.partners
            status, blockers, reason = SELECTED, (), ""
            note = o.note if o.kept else "selected in an earlier decision" + (f"; {o.note}" if o.note else "")
            kept = True
        else:
            chosen, blockers, from_budget, from_gap, gap_left_then = decisions[e.proposal_id]
            kept = False
            if chosen:
                status, reason = SELECTED, ""
                partners = _split(p.requests, from_gap)
                note = ("the gap pot pays " + _and([f"{eur(a)} for {budgets[f].acronym}"
                                                    for f, a in from_gap.items() if a])) if any(from_gap.values()) else ""
            else:
                status = BLOCKED if selected_below[k] else RESERVE
                partners = tuple([_new(PartnerAmount, (r[0], r[1], r[2], 0, r[3])) for r in p.requests])
                reason, note = _reason(blockers, walk.gap_total, gap_left_then), ""
                from_budget, from_gap = {}, {}
        if status == SELECTED:
            for fid, paid in from_budget.items():
                allocated[fid] += paid
            for fid, paid in from_gap.items():
                gap_by_funder[fid] += paid
        else:
            skips.append(Skip(e.proposal_id, e.reference, e.rank, reason, bool(selected_below[k]),
                              selected_below[k]))
        outcomes.append(ProposalOutcome(
            e.proposal_id, e.reference, e.acronym, e.rank, e.recommendation, e.score, status,
            dict(p.by_funder) if p.kept is None else dict(p.kept.requested), from_budget, from_gap, partners,
            blockers, reason, note,
            tie_of.get(e.proposal_id), kept,
        ))

    funder_rows = tuple(
        FunderOutcome(fid, b.acronym, b.committed, b.increases, what_if.get(fid, 0), allocated[fid],
                      gap_by_funder[fid], requested[fid], b.max_per_partner, b.max_per_project)
        for fid, b in budgets.items()
    )
    gap_used = sum(gap_by_funder.values())
    for f in funder_rows:  # rule 22
        if f.allocated > f.committed + f.increases + f.what_if:
            raise AllocationInvariantError(
                f"{f.acronym}: allocated {eur(f.allocated)} exceeds committed {eur(f.committed)} + increases "
                f"{eur(f.increases)} + what-if {eur(f.what_if)} (rule 22)")
    if gap_used > gap_total or gap_used != gap_total - walk.gap_left:
        raise AllocationInvariantError(f"the gap pot paid {eur(gap_used)} of {eur(gap_total)}")
    return Scenario(tuple(outcomes), funder_rows, GapPot(gap_total, gap_used), tuple(skips), dict(what_if))


def _split(reqs: tuple[Request, ...], from_gap: Mapping[int, int]) -> tuple[PartnerAmount, ...]:
    """Each partner gets its request; where the gap pot pays part of a funder's share, the funder's budget
    pays its partners in the order given and the gap pot pays the rest."""
    gap_left = dict(from_gap)
    budget_left: dict[int, int] = {}
    for r in reqs:
        budget_left[r.funder_id] = budget_left.get(r.funder_id, 0) + r.amount
    for fid, gap in gap_left.items():
        budget_left[fid] -= gap
    out = []
    for r in reqs:
        paid = min(r.amount, budget_left[r.funder_id])
        budget_left[r.funder_id] -= paid
        out.append(PartnerAmount(r.partner_id, r.funder_id, r.amount, r.amount - paid, r.label))
    return tuple(out)


def _reason(blockers: tuple[Blocker, ...], gap_total: int, gap_left: int) -> str:
    fatal = [b.text for b in blockers if b.kind in NOT_AS_REQUESTED]
    short = [b.text for b in blockers if b.kind == SHORTFALL]
    tie = [b.text for b in blockers if b.kind == TIE]
    parts = []
    if fatal:
        parts.append("not fundable as requested: " + "; ".join(fatal))
    if short:
        text = "blocked by " + _and(short)
        if gap_total:
            text += f"; the gap pot has only {eur(gap_left)} left" if gap_left else "; the gap pot is spent"
        parts.append(text)
    parts.extend(tie)
    return "; ".join(parts)


def reallocate(previous: Scenario, drop: Iterable[int] = ()) -> Scenario:
    """Recompute a decided scenario after proposals left it (`drop`: declined or withdrawn): the proposals
    still selected keep their amounts, the budgets and gap pot are those of `previous`, and the other
    proposals are walked again in rank order (a reserve proposal may now be selected)."""
    gone = set(drop)
    ranking, funders, requests, gap_pot = previous.inputs()
    ranking = [r for r in ranking if r.proposal_id not in gone]
    return allocate(ranking, funders, requests, gap_pot, keep=previous)
