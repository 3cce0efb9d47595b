"""The ranking list (DOMAIN.md rule 20) and, at the pre-proposal stage, choosing whom to invite.

The order is strict: by the consensus weighted total, ties broken by the call's tie_break criteria in
order (e.g. Excellence, then Impact), then by the smaller total requested amount, then by the panel's
recorded vote. Each entry records in words why it is below the one above it. Approval (by the CSC,
recorded by the secretariat) freezes the list: it cannot be rebuilt and the stage's consensus cannot
change.

At the pre stage the secretariat picks the proposals to invite, sees per funder the requested amount of
the invited set against its committed budget (guidance: about 3x), then sends the invitations and the
not-invited messages by firing "invite" / "not_invite" on every pre-proposal under review.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, selectinload

from reviews.common import check_stage, fmt_score
from reviews.models import PanelConsensus, RankingEntry, RankingList
from reviews.policy import require
from workflow import audit
from workflow.clock import utcnow
from workflow.errors import DomainError, InvalidInput
from workflow.funding_ops import RankingEntry as FundingRankingEntry
from workflow.models import Call, CallFunder, Partner, Proposal
from workflow.operations import transition
from workflow.paging import Window
from workflow.timefmt import format_eur, format_instant

EPS = 1e-9
INVITATION_BUDGET_GUIDANCE = 3.0  # invited requests of about 3x each funder's committed budget (DOMAIN §1 step 4)
FULL_RANKED_STATES = ("panel", "recommended", "selected", "reserve", "not_funded", "funded")


# ---------------------------------------------------------------------------------------------------------
# The order, pure


@dataclass(frozen=True)
class RankItem:
    proposal_id: int
    label: str  # the acronym, for the notes
    total: float
    criteria: dict[str, float]
    requested: int  # whole euros, all partners requesting funding


@dataclass(frozen=True)
class Ranked:
    item: RankItem
    rank: int
    note: str


class UnresolvedTie(DomainError):
    def __init__(self, groups: list[list[RankItem]]):
        self.groups = groups
        names = "; ".join(" and ".join(i.label for i in g) for g in groups)
        super().__init__(f"tied on every criterion and on the requested amount: {names}; record the panel's vote "
                         "(their order) to break the tie")


def _same(a: float, b: float) -> bool:
    return abs(a - b) < EPS


def _key(item: RankItem, tie_break: Sequence[tuple[str, str]]) -> tuple:
    return (-round(item.total, 6), *(-round(item.criteria[k], 6) for k, _ in tie_break), item.requested)


def _note(prev: RankItem, cur: RankItem, tie_break: Sequence[tuple[str, str]]) -> str:
    if not _same(prev.total, cur.total):
        return f"total {fmt_score(cur.total)}, below {prev.label} ({fmt_score(prev.total)})"
    tied = [f"total {fmt_score(cur.total)}"]
    for key, name in tie_break:
        a, b = prev.criteria[key], cur.criteria[key]
        if not _same(a, b):
            return f"tied with {prev.label} on {', '.join(tied)}; lower {name} ({fmt_score(b)} vs {fmt_score(a)})"
        tied.append(f"{name} {fmt_score(b)}")
    if prev.requested != cur.requested:
        return (f"tied with {prev.label} on {', '.join(tied)}; larger request "
                f"({format_eur(cur.requested)} vs {format_eur(prev.requested)})")
    return (f"tied with {prev.label} on {', '.join(tied)} and request ({format_eur(cur.requested)}); "
            "placed below by the panel's vote")


def order(items: Iterable[RankItem], tie_break: Sequence[tuple[str, str]],
          panel_vote: Sequence[int] | None = None) -> list[Ranked]:
    """Rank the items strictly. `tie_break` is [(criterion key, name)], `panel_vote` proposal ids in the
    order the panel voted (used only where everything else is equal). Raises UnresolvedTie otherwise."""
    vote = {pid: i for i, pid in enumerate(panel_vote or [])}
    items = sorted(items, key=lambda i: _key(i, tie_break))
    groups: list[list[RankItem]] = []
    for item in items:
        if groups and _key(groups[-1][0], tie_break) == _key(item, tie_break):
            groups[-1].append(item)
        else:
            groups.append([item])
    unresolved = [g for g in groups if len(g) > 1 and not all(i.proposal_id in vote for i in g)]
    if unresolved:
        raise UnresolvedTie(unresolved)
    ordered = [i for g in groups for i in (sorted(g, key=lambda i: vote[i.proposal_id]) if len(g) > 1 else g)]
    out = []
    for n, item in enumerate(ordered, start=1):
        note = "highest total" if n == 1 else _note(ordered[n - 2], item, tie_break)
        out.append(Ranked(item, n, note))
    return out


# ---------------------------------------------------------------------------------------------------------
# The stored list


def ranking_of(session: Session, call: Call | int, stage: str) -> RankingList | None:
    call_id = call if isinstance(call, int) else call.id
    return session.scalar(select(RankingList).where(RankingList.call_id == call_id, RankingList.stage == stage))


def frozen_problem(session: Session, call_id: int, stage: str) -> str | None:
    """Why the stage's ranking and consensus can no longer change; None while they can."""
    ranking = ranking_of(session, call_id, stage)
    if ranking is not None and ranking.status == "approved":
        zone = ranking.call.time_zone
        return (f"the {stage}-stage ranking list was approved on {format_instant(ranking.approved_at, zone)} "
                "and is frozen")
    return None


def requested_amount(proposal: Proposal) -> int:
    return sum(p.requested_amount for p in proposal.partners if p.requests_funding)


# Partner.requests_funding as SQL, for the sums over many proposals in one statement.
REQUESTS_FUNDING = (Partner.funder_id.is_not(None), Partner.own_funded.is_(False))


def requested_amounts(session: Session, proposal_ids) -> dict[int, int]:
    """`requested_amount` of many proposals in one statement (a list of ids or a SELECT of them);
    a proposal without a funded partner is missing (0)."""
    return {pid: int(total) for pid, total in session.execute(
        select(Partner.proposal_id, func.sum(Partner.requested_amount))
        .where(Partner.proposal_id.in_(proposal_ids), *REQUESTS_FUNDING).group_by(Partner.proposal_id))}


@dataclass(frozen=True)
class RankedProposal:
    """One place of a stored ranking list with what the pages and exports show beside it."""

    entry: RankingEntry
    proposal: Proposal
    consensus: PanelConsensus | None
    requested: int


def ranking_size(session: Session, ranking: RankingList) -> int:
    return session.scalar(select(func.count(RankingEntry.id)).where(RankingEntry.ranking_id == ranking.id))


def ranked_proposals(session: Session, ranking: RankingList, window: Window | None = None) -> list[RankedProposal]:
    """The list in rank order (only the places of `window` when given), with each proposal's consensus of
    the list's stage and its requested amount: a fixed number of statements, whatever its length."""
    from reviews.aggregation import consensus_by_proposal

    if window is None:
        entries = list(ranking.entries)
        ids = select(RankingEntry.proposal_id).where(RankingEntry.ranking_id == ranking.id)
    else:
        entries = list(session.scalars(window.apply(select(RankingEntry).where(
            RankingEntry.ranking_id == ranking.id).order_by(RankingEntry.rank))))
        ids = [e.proposal_id for e in entries]
    proposals = {p.id: p for p in session.scalars(select(Proposal).where(Proposal.id.in_(ids)))}
    consensus = consensus_by_proposal(session, ids, ranking.stage)
    requested = requested_amounts(session, ids)
    return [RankedProposal(e, proposals[e.proposal_id], consensus.get(e.proposal_id),
                           requested.get(e.proposal_id, 0)) for e in entries]


@dataclass(frozen=True)
class RankedBrief:
    """A place of a stored ranking list in the few columns a page over the whole list reads."""

    proposal_id: int
    rank: int
    total: float | None
    reference: str
    acronym: str
    state: str
    recommendation: str | None  # the panel's, None without a consensus
    requested: int


def ranking_digest(session: Session, ranking: RankingList) -> list[RankedBrief]:
    """The whole list in rank order as plain columns, in two statements: the invitations page chooses among
    thousands of places and shows fifty, so it builds no ORM object for them."""
    ids = select(RankingEntry.proposal_id).where(RankingEntry.ranking_id == ranking.id)
    requested = requested_amounts(session, ids)
    rows = session.execute(
        select(RankingEntry.proposal_id, RankingEntry.rank, RankingEntry.total, Proposal.reference, Proposal.acronym,
               Proposal.state, PanelConsensus.recommendation)
        .join(Proposal, Proposal.id == RankingEntry.proposal_id)
        .outerjoin(PanelConsensus, and_(PanelConsensus.proposal_id == RankingEntry.proposal_id,
                                        PanelConsensus.stage == ranking.stage))
        .where(RankingEntry.ranking_id == ranking.id).order_by(RankingEntry.rank))
    return [RankedBrief(pid, rank, total, reference, acronym, state, recommendation, requested.get(pid, 0))
            for pid, rank, total, reference, acronym, state, recommendation in rows]


def candidates(session: Session, call: Call, stage: str) -> tuple[list[tuple[Proposal, PanelConsensus]], list[Proposal]]:
    """(proposals to rank with their consensus, proposals that still lack a consensus)."""
    consensus = {c.proposal_id: c for c in session.scalars(select(PanelConsensus).where(
        PanelConsensus.call_id == call.id, PanelConsensus.stage == stage))}
    states = ("pre_review",) if stage == "pre" else FULL_RANKED_STATES
    proposals = list(session.scalars(select(Proposal).where(Proposal.call_id == call.id, Proposal.state.in_(states))
                                     .options(selectinload(Proposal.partners)).order_by(Proposal.id)))
    ranked, missing = [], []
    for p in proposals:
        c = consensus.get(p.id)
        if c is None:
            if p.state in ("pre_review", "panel"):
                missing.append(p)
            continue
        if stage == "full" and c.recommendation == "not_recommended":
            continue  # not recommended proposals are never ranked for funding (rule 19)
        ranked.append((p, c))
    return ranked, missing


def _tie_break(call: Call) -> list[tuple[str, str]]:
    names = {c.key: c.name for c in call.settings.evaluation.criteria}
    return [(k, names[k]) for k in call.settings.evaluation.tie_break]


def build_ranking(session: Session, actor, call: Call, stage: str | None = None, *,
                  panel_vote: Sequence[int] | None = None, vote_note: str | None = None) -> RankingList:
    """Build (or rebuild) the draft ranking list of a stage from the panel's consensus."""
    require(actor, "panel.manage", call)
    stage = check_stage(call, stage)
    if (why := frozen_problem(session, call.id, stage)) is not None:
        raise DomainError(why)
    ranked, missing = candidates(session, call, stage)
    if missing:
        raise DomainError("enter the panel's consensus first for: " + ", ".join(p.acronym for p in missing))
    if not ranked:
        raise DomainError("there is no proposal to rank")
    items = [RankItem(p.id, p.acronym, c.weighted_total, {k: float(v) for k, v in c.scores.items()},
                      requested_amount(p)) for p, c in ranked]
    result = order(items, _tie_break(call), panel_vote)
    ranking = ranking_of(session, call, stage)
    if ranking is None:
        ranking = RankingList(call_id=call.id, stage=stage, status="draft", created_by_id=actor.id,
                              created_at=utcnow())
        session.add(ranking)
    else:
        ranking.entries.clear()
        ranking.created_by_id, ranking.created_at = actor.id, utcnow()
    session.flush()
    for r in result:
        ranking.entries.append(RankingEntry(proposal_id=r.item.proposal_id, rank=r.rank, total=r.item.total,
                                            tie_break_note=r.note))
    session.flush()
    audit.record(session, actor, "ranking.built", ranking, after={
        "stage": stage,
        "entries": [{"rank": r.rank, "proposal_id": r.item.proposal_id, "total": r.item.total, "note": r.note}
                    for r in result],
        "panel_vote": list(panel_vote or []), "panel_vote_used": any("panel's vote" in r.note for r in result)},
        reason=(vote_note or "").strip() or None)
    return ranking


def approve_ranking(session: Session, actor, ranking: RankingList) -> RankingList:
    """Record the CSC's approval: the list is frozen from now on."""
    require(actor, "ranking.approve", ranking)
    if ranking.status == "approved":
        raise DomainError("this ranking list is approved already")
    if not ranking.entries:
        raise DomainError("this ranking list is empty")
    call = ranking.call
    ranked, missing = candidates(session, call, ranking.stage)
    current = {p.id: c.weighted_total for p, c in ranked}
    listed = {e.proposal_id: e.total for e in ranking.entries}
    if missing or set(current) != set(listed) or any(not _same(current[k], listed[k]) for k in listed):
        raise DomainError("the panel's consensus changed since this list was built; build it again before approving")
    ranking.status, ranking.approved_by_id, ranking.approved_at = "approved", actor.id, utcnow()
    session.flush()
    audit.record(session, actor, "ranking.approved", ranking, before={"status": "draft"}, after={
        "status": "approved", "stage": ranking.stage,
        "order": [{"rank": e.rank, "proposal_id": e.proposal_id} for e in ranking.entries]})
    return ranking


def funding_ranking(session: Session, call: Call) -> list[FundingRankingEntry]:
    """The approved full-stage ranking as workflow.funding_ops takes it: best first, with each proposal's
    panel recommendation and consensus total (ties at the funding line show as equal totals)."""
    ranking = ranking_of(session, call, "full")
    if ranking is None or ranking.status != "approved":
        raise DomainError("the full-stage ranking list has not been approved")
    consensus = {c.proposal_id: c for c in session.scalars(select(PanelConsensus).where(
        PanelConsensus.call_id == call.id, PanelConsensus.stage == "full"))}
    return [FundingRankingEntry(e.proposal_id, consensus[e.proposal_id].recommendation, e.total)
            for e in ranking.entries]


# ---------------------------------------------------------------------------------------------------------
# The pre-proposal stage: whom to invite


@dataclass(frozen=True)
class BudgetRow:
    funder: str  # acronym
    name: str
    committed: int
    requested: int  # by the partners it funds in the invited set
    ratio: float | None  # requested / committed

    @property
    def above_guidance(self) -> bool:
        return self.ratio is not None and self.ratio > INVITATION_BUDGET_GUIDANCE + EPS


def invitation_budget(session: Session, call: Call, invited_ids: Iterable[int]) -> list[BudgetRow]:
    """Per funder: the requested amount of the invited set against its committed budget."""
    ids = set(invited_ids)
    requested: dict[int, int] = {}
    if ids:
        requested = {fid: int(total) for fid, total in session.execute(
            select(Partner.funder_id, func.sum(Partner.requested_amount))
            .join(Proposal, Proposal.id == Partner.proposal_id)
            .where(Proposal.call_id == call.id, Proposal.id.in_(sorted(ids)), *REQUESTS_FUNDING)
            .group_by(Partner.funder_id))}
    rows = []
    for cf in session.scalars(select(CallFunder).where(CallFunder.call_id == call.id)):
        asked = requested.get(cf.funder_id, 0)
        rows.append(BudgetRow(cf.funder.acronym, cf.funder.name, cf.committed_budget, asked,
                              asked / cf.committed_budget if cf.committed_budget else None))
    rows.sort(key=lambda r: r.funder.casefold())
    return rows


@dataclass(frozen=True)
class InvitationOutcome:
    invited: list[Proposal]
    not_invited: list[Proposal]


def send_invitations(session: Session, actor, call: Call, invited_ids: Iterable[int], *,
                     reason: str | None = None) -> InvitationOutcome:
    """Invite the chosen pre-proposals to the full stage and tell all the others they are not invited:
    "invite" / "not_invite" fired for every pre-proposal under review (their messages go with them)."""
    require(actor, "panel.manage", call)
    if not call.two_stage:
        raise DomainError("this call has a single stage; there is nobody to invite")
    ranking = ranking_of(session, call, "pre")
    if ranking is None or ranking.status != "approved":
        raise DomainError("approve the pre-proposal ranking list first")
    chosen = set(invited_ids)
    pending = list(session.scalars(select(Proposal).where(Proposal.call_id == call.id,
                                                          Proposal.state == "pre_review")))
    if not pending:
        raise DomainError("no pre-proposal is waiting for the invitation decision")
    by_id = {p.id: p for p in pending}
    unknown = chosen - set(by_id)
    if unknown:
        raise InvalidInput("only pre-proposals under review can be invited", "invited")
    rank = {e.proposal_id: e.rank for e in ranking.entries}
    off_list = [p.acronym for p in pending if p.id not in rank]
    if off_list:
        raise DomainError("not on the approved ranking list: " + ", ".join(off_list))
    reason = (reason or "").strip() or None
    invited, not_invited = [], []
    for p in sorted(pending, key=lambda p: rank[p.id]):
        if p.id in chosen:
            invited.append(transition(session, actor, p.id, "invite", reason=reason))
        else:
            not_invited.append(transition(session, actor, p.id, "not_invite", reason=reason))
    budget = invitation_budget(session, call, chosen)
    audit.record(session, actor, "call.invitations_sent", call, call_id=call.id, reason=reason, after={
        "invited": [p.reference for p in invited], "not_invited": [p.reference for p in not_invited],
        "budget": [{"funder": b.funder, "committed": b.committed, "requested": b.requested,
                    "ratio": None if b.ratio is None else round(b.ratio, 3)} for b in budget]})
    return InvitationOutcome(invited, not_invited)
