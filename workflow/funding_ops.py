"""Operations of the funding decision (issue 6; DOMAIN §4, rules 19, 21, 22, 24): the scenario of a call from
the database, what-if budget increases, recorded budget increases, the steering committee's approval of
the funding list, and each funder's confirmation (or decline) of its own partners.

Each operation takes (session, actor, ...), asks the access rules below, changes rows, audits in the same
transaction, queues mail through the outbox, and leaves the commit to the caller. Proposal states change
only through workflow.operations.transition: approval fires "select" / "place_in_reserve", the last
confirmation of a proposal fires "fund", a decline fires "not_fund" and recomputes the list, which may
"select" proposals from the reserve.

The ranking itself lives in reviews/ (which workflow/ must not import): callers pass it in, best first, as
proposal ids or `RankingEntry(proposal_id, recommendation, score)`; equal scores side by side are ties.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, subqueryload
from sqlalchemy.orm.exc import StaleDataError

from workflow import audit, outbox
from workflow.access import ALLOW, Decision, can, deny
from workflow.clock import utcnow
from workflow.errors import ChangedMeanwhile, DomainError, InvalidInput, NotFound
from workflow.funding import (
    RECOMMENDED,
    SELECTED,
    Change,
    FunderBudget,
    Ranked,
    Request,
    Scenario,
    allocate,
    changes,
    eur,
    reallocate,
)
from workflow.funding_models import BudgetIncrease, FundingConfirmation, FundingLine, FundingScenario
from workflow.lifecycle import STATE_BY_NAME
from workflow.models import Call, CallFunder, Proposal, RoleGrant, User
from workflow.operations import transition
from workflow.proposals import require
from workflow.timefmt import format_instant

# Proposal states the funding list works on; proposals that left it; the rest cannot be on it.
LISTED_STATES = ("recommended", "selected", "reserve")
LEFT_STATES = ("withdrawn", "not_funded", "funded")
MAX_INCREASE = 10_000_000_000  # whole euros; anything above is a typing slip
MAX_TEXT = 4000


class RankingEntry(NamedTuple):
    """One proposal of the panel's ranking, as reviews/ gives it."""

    proposal_id: int
    recommendation: str = RECOMMENDED  # "recommended" | "recommended_if_funds"
    score: float | None = None  # the consensus total; equal neighbours are ties at the funding line


RankingInput = Sequence[int | RankingEntry]


# ---------------------------------------------------------------------------------------------------------
# Access. These rules belong in workflow.access (see the module docstring there); until they move, they are
# written here once, in the same style, and every operation below asks them.


def funding_access(actor: User | None, action: str, call: Call, funder_id: int | None = None) -> Decision:
    """The access policy's answer for a funding action on a call (and, where it matters, one funder)."""
    return can(actor, action, SimpleNamespace(call_id=call.id, funder_id=funder_id))


def _follows(actor: User, call: Call) -> Decision:
    """The right to fire the transitions that follow from a funding decision ("fund", "not_fund", and
    "select" of a reserve proposal a decline frees money for): whoever may make the decision may cause them."""
    return ALLOW if actor is not None else deny("please log in first")


# ---------------------------------------------------------------------------------------------------------
# Reading


def gap_pot_of(call: Call) -> int:
    """The call's gap pot (EU top-up kept for gap filling) in whole euros; 0 without one."""
    value = getattr(call.settings, "gap_pot", 0) or 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput("the call definition's gap_pot must be a whole number of euros, 0 or more")
    return value


def recorded_increases(session: Session, call: Call) -> dict[int, int]:
    rows = session.execute(
        select(BudgetIncrease.funder_id, func.sum(BudgetIncrease.amount))
        .where(BudgetIncrease.call_id == call.id).group_by(BudgetIncrease.funder_id)
    ).all()
    return {fid: int(total) for fid, total in rows}


def funder_budgets(session: Session, call: Call) -> list[FunderBudget]:
    """Every funder of the call with its commitment, recorded increases and caps, by acronym."""
    increases = recorded_increases(session, call)
    rows = sorted(call.funders, key=lambda cf: cf.funder.acronym.casefold())
    return [FunderBudget(cf.funder_id, cf.funder.acronym, cf.committed_budget, increases.get(cf.funder_id, 0),
                         cf.max_per_partner, cf.max_per_project) for cf in rows]


def budget_increases(session: Session, call: Call, funder_id: int | None = None) -> list[BudgetIncrease]:
    query = select(BudgetIncrease).where(BudgetIncrease.call_id == call.id)
    if funder_id is not None:
        query = query.where(BudgetIncrease.funder_id == funder_id)
    return list(session.scalars(query.order_by(BudgetIncrease.recorded_at, BudgetIncrease.id)))


@dataclass
class FundingInputs:
    ranking: list[Ranked]
    funders: list[FunderBudget]
    requests: dict[int, list[Request]]
    gap_pot: int
    proposals: dict[int, Proposal]
    # Proposals of the ranking that left the list (withdrawn, not funded, funded), with their state.
    left: list[tuple[Proposal, str]] = field(default_factory=list)


def _entry(item) -> RankingEntry:
    if isinstance(item, RankingEntry):
        return item
    if isinstance(item, int) and not isinstance(item, bool):
        return RankingEntry(item)
    if isinstance(item, Sequence) and not isinstance(item, str):
        return RankingEntry(*item)
    raise InvalidInput(f"the ranking holds {item!r}, which is not a proposal", "ranking")


def _label(proposal: Proposal) -> str:
    return f"{proposal.reference} {proposal.acronym}"


def load_inputs(session: Session, call: Call, ranking: RankingInput) -> FundingInputs:
    """The allocation's inputs from the database: the ranking (best first; rank = position in it), each
    listed proposal's funded partners' requests, the funders' budgets and the gap pot."""
    entries = [_entry(item) for item in ranking]
    ids = [e.proposal_id for e in entries]
    # subqueryload: the partners in one statement however long the ranking (selectinload sends one per 500).
    proposals = {p.id: p for p in session.scalars(
        select(Proposal).where(Proposal.id.in_(ids)).options(subqueryload(Proposal.partners)))}
    out = FundingInputs([], funder_budgets(session, call), {}, gap_pot_of(call), {})
    for rank, e in enumerate(entries, start=1):
        p = proposals.get(e.proposal_id)
        if p is None or p.call_id != call.id:
            raise InvalidInput(f"the ranking names proposal #{e.proposal_id}, which is not a proposal of this "
                               "call", "ranking")
        if p.state == "not_recommended" or e.recommendation == "not_recommended":
            raise InvalidInput(f"{_label(p)} was not recommended by the panel and can never be funded (rule 19); "
                               "leave it out of the ranking", "ranking")
        if p.state in LEFT_STATES:
            out.left.append((p, p.state))
            continue
        if p.state not in LISTED_STATES:
            state = STATE_BY_NAME[p.state].label if p.state in STATE_BY_NAME else p.state
            raise InvalidInput(f"{_label(p)} is at '{state}', not recommended by the panel yet", "ranking")
        out.proposals[p.id] = p
        score = None if e.score is None else float(e.score)  # JSON-safe (a Decimal is not)
        out.ranking.append(Ranked(p.id, rank, p.reference, p.acronym, e.recommendation, score))
        out.requests[p.id] = [Request(pt.id, pt.funder_id, pt.requested_amount, pt.organisation)
                              for pt in p.partners if pt.requests_funding]
    return out


def compute_scenario(session: Session, actor, call: Call, ranking: RankingInput,
                     increases: Mapping[int, int] | None = None) -> Scenario:
    """The scenario for the ranking as things stand (nothing is saved): the list to approve. Once approved,
    show `current_funding(session, call).scenario` instead. `increases` (funder id -> euros) are what-if
    budget increases: the secretariat's only, and only before the approval."""
    require(funding_access(actor, "funding.what_if" if increases else "funding.view", call))
    if increases:
        current = current_funding(session, call)
        if current is not None:
            raise DomainError(_frozen_refusal(current, call))
    inputs = load_inputs(session, call, ranking)
    return allocate(inputs.ranking, inputs.funders, inputs.requests, inputs.gap_pot, increases)


@dataclass
class WhatIf:
    base: Scenario
    scenario: Scenario
    changes: list[Change]


def what_if(session: Session, actor, call: Call, ranking: RankingInput, increases: Mapping[int, int]) -> WhatIf:
    """The scenario with budget increases tried (not saved), beside the one without, and what changes."""
    require(funding_access(actor, "funding.what_if", call))
    current = current_funding(session, call)
    if current is not None:
        raise DomainError(_frozen_refusal(current, call))
    inputs = load_inputs(session, call, ranking)
    base = allocate(inputs.ranking, inputs.funders, inputs.requests, inputs.gap_pot)
    tried = allocate(inputs.ranking, inputs.funders, inputs.requests, inputs.gap_pot, increases)
    return WhatIf(base, tried, changes(base, tried))


def current_funding(session: Session, call: Call, *, lock: bool = False) -> FundingScenario | None:
    """The call's current approved funding list (its latest revision), or None before the approval."""
    query = select(FundingScenario).where(FundingScenario.call_id == call.id, FundingScenario.status == "current")
    if lock:
        query = query.with_for_update(of=FundingScenario).execution_options(populate_existing=True)
    return session.scalar(query)


def funding_revisions(session: Session, call: Call) -> list[FundingScenario]:
    """Every revision of the approved list, oldest first (their stored results are read when asked for)."""
    return list(session.scalars(select(FundingScenario).where(FundingScenario.call_id == call.id)
                                .order_by(FundingScenario.revision)))


def funding_lines(session: Session, call: Call, *, funder_id: int | None = None, proposal_id: int | None = None,
                  proposal_ids: Collection[int] | None = None) -> list[FundingLine]:
    """The per-partner amounts of the current funding list (empty before the approval), each with its
    proposal and partner (joined: the same statements however many lines)."""
    current = current_funding(session, call)
    if current is None:
        return []
    query = select(FundingLine).where(FundingLine.scenario_id == current.id)
    if funder_id is not None:
        query = query.where(FundingLine.funder_id == funder_id)
    if proposal_id is not None:
        query = query.where(FundingLine.proposal_id == proposal_id)
    if proposal_ids is not None:
        query = query.where(FundingLine.proposal_id.in_(list(proposal_ids)))
    query = query.options(joinedload(FundingLine.proposal), joinedload(FundingLine.partner))
    return list(session.scalars(query.order_by(FundingLine.id)))


def proposals_by_id(session: Session, call: Call, ids: Collection[int]) -> dict[int, Proposal]:
    """The call's proposals with these ids, in one statement (e.g. those of a page of confirmations)."""
    if not ids:
        return {}
    return {p.id: p for p in session.scalars(select(Proposal).where(Proposal.call_id == call.id,
                                                                    Proposal.id.in_(list(ids))))}


def confirmations(session: Session, call: Call, *, funder_id: int | None = None,
                  proposal_id: int | None = None, status: str | None = None) -> list[FundingConfirmation]:
    query = select(FundingConfirmation).where(FundingConfirmation.call_id == call.id)
    if funder_id is not None:
        query = query.where(FundingConfirmation.funder_id == funder_id)
    if proposal_id is not None:
        query = query.where(FundingConfirmation.proposal_id == proposal_id)
    if status is not None:
        query = query.where(FundingConfirmation.status == status)
    return list(session.scalars(query.order_by(FundingConfirmation.proposal_id, FundingConfirmation.funder_id)))


def _frozen_refusal(current: FundingScenario, call: Call) -> str:
    return (f"the funding list was approved on {format_instant(current.approved_at, call.time_zone)}; "
            "budgets and the list are frozen")


# ---------------------------------------------------------------------------------------------------------
# Budget increases


def record_budget_increase(session: Session, actor, call: Call, funder_id: int, amount: int,
                           reason: str = "") -> BudgetIncrease:
    """Add `amount` euros to a funder's budget in the call (its officers or the secretariat), until the
    funding list is approved."""
    cf = session.scalar(select(CallFunder).where(CallFunder.call_id == call.id, CallFunder.funder_id == funder_id))
    if cf is None:
        raise InvalidInput("this funder does not take part in the call", "funder_id")
    require(funding_access(actor, "funding.increase_budget", call, funder_id))
    current = current_funding(session, call)
    if current is not None:
        raise DomainError(_frozen_refusal(current, call))
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidInput("give the increase in whole euros", "amount")
    if amount <= 0:
        raise InvalidInput("an increase must be more than €0", "amount")
    if amount > MAX_INCREASE:
        raise InvalidInput(f"an increase above {eur(MAX_INCREASE)} is not plausible; check the amount", "amount")
    reason = (reason or "").strip()
    if len(reason) > MAX_TEXT:
        raise InvalidInput(f"keep the reason under {MAX_TEXT:,} characters", "reason")
    before = cf.committed_budget + recorded_increases(session, call).get(funder_id, 0)
    row = BudgetIncrease(call_id=call.id, funder_id=funder_id, amount=amount, reason=reason,
                         recorded_by_id=actor.id, recorded_at=utcnow())
    session.add(row)
    session.flush()
    audit.record(session, actor, "funding.budget_increased", row, call_id=call.id,
                 before={"funder": cf.funder.acronym, "budget": before},
                 after={"funder": cf.funder.acronym, "increase": amount, "budget": before + amount},
                 reason=reason or None)
    return row


# ---------------------------------------------------------------------------------------------------------
# Approval, confirmations and recomputation


def _sha(result: dict) -> str:
    text = json.dumps(result, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _store(session: Session, actor, call: Call, scenario: Scenario, *, revision: int, cause: str, note: str,
           approved_by_id: int, approved_at) -> FundingScenario:
    result = scenario.to_dict()
    row = FundingScenario(call_id=call.id, revision=revision, status="current", cause=cause, note=note,
                          result=result, result_sha256=_sha(result), created_by_id=actor.id, created_at=utcnow(),
                          approved_by_id=approved_by_id, approved_at=approved_at)
    for o in scenario.selected:
        for p in o.partners:
            row.lines.append(FundingLine(proposal_id=o.proposal_id, partner_id=p.partner_id, funder_id=p.funder_id,
                                         amount=p.amount, from_gap_pot=p.from_gap_pot))
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise ChangedMeanwhile("the funding list") from None
    return row


def _open_confirmations(session: Session, row: FundingScenario, outcome) -> list[FundingConfirmation]:
    per_funder: dict[int, int] = defaultdict(int)
    for p in outcome.partners:
        per_funder[p.funder_id] += p.amount
    opened = []
    for fid, amount in per_funder.items():
        c = FundingConfirmation(call_id=row.call_id, proposal_id=outcome.proposal_id, funder_id=fid,
                                scenario_id=row.id, amount=amount, status="pending")
        session.add(c)
        opened.append(c)
    return opened


def _summary(scenario: Scenario) -> dict:
    return {
        "selected": [o.reference for o in scenario.selected],
        "reserve": [o.reference for o in scenario.reserve_list],
        "gaps": [{"reference": s.reference, "rank": s.rank, "reason": s.reason} for s in scenario.gaps],
        "gap_pot": {"total": scenario.gap_pot.total, "used": scenario.gap_pot.used},
        "funders": {f.acronym: {"available": f.available, "allocated": f.allocated, "remaining": f.remaining}
                    for f in scenario.funders},
    }


def _notify_officers(session: Session, call: Call, row: FundingScenario, opened: list[FundingConfirmation]) -> None:
    """One message per officer of each funder asked to confirm, listing its partners' proposals."""
    if not opened:
        return
    by_funder: dict[int, list[FundingConfirmation]] = defaultdict(list)
    for c in opened:
        by_funder[c.funder_id].append(c)
    grants = session.execute(
        select(RoleGrant, User).join(User, RoleGrant.user_id == User.id)
        .where(RoleGrant.role == "officer", RoleGrant.call_id == call.id, RoleGrant.funder_id.in_(list(by_funder)))
        .order_by(User.id, RoleGrant.funder_id)
    ).all()
    per_user: dict[int, tuple[User, list[int]]] = {}
    for grant, user in grants:
        per_user.setdefault(user.id, (user, []))[1].append(grant.funder_id)
    scenario = row.scenario
    title = call.settings.title
    for user, fids in per_user.values():
        lines = []
        for fid in fids:
            for c in by_funder[fid]:
                o = scenario.outcome(c.proposal_id)
                lines.append(f"- {o.reference} {o.acronym} (rank {o.rank}): {eur(c.amount)} from "
                             f"{scenario.funder(fid).acronym}")
        what = "approved the funding list" if row.revision == 1 else "updated the funding list"
        outbox.enqueue(
            session, kind="funding_confirmation_request", to=user.email, call_id=call.id,
            dedup_key=f"funding-confirm:{row.id}:{user.id}",
            subject=f"[{title}] Please confirm the funding of your partners ({len(lines)} proposal"
                    f"{'s' if len(lines) != 1 else ''})",
            body=(f"Dear {user.name},\n\nthe call secretariat {what} on behalf of the steering committee. "
                  f"Please confirm or decline the funding of your organisation's partners in:\n\n"
                  + "\n".join(lines) + "\n"),
        )


def list_fingerprint(scenario: Scenario) -> str:
    """Identifies a funding list (order, outcomes, amounts): the approval page carries it, and the approval
    is refused when the list it would freeze is not the one the committee was shown."""
    text = json.dumps(scenario.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def approve_funding_list(session: Session, actor, call: Call, ranking: RankingInput, note: str, *,
                         expected_fingerprint: str | None = None) -> FundingScenario:
    """Record the steering committee's approval of the funding list computed from `ranking`: freeze the
    scenario (revision 1), fire "select" for the selected proposals and "place_in_reserve" for the rest, and
    ask each funder to confirm its partners. With `expected_fingerprint` (the list that was shown), a list
    that came out differently raises ChangedMeanwhile and nothing is recorded."""
    require(funding_access(actor, "funding.approve", call))
    note = (note or "").strip()
    if not note:
        raise InvalidInput("say where the steering committee approved the list (e.g. the meeting and its date)",
                           "note")
    if len(note) > MAX_TEXT:
        raise InvalidInput(f"keep the note under {MAX_TEXT:,} characters", "note")
    current = current_funding(session, call, lock=True)
    if current is not None:
        raise DomainError(_frozen_refusal(current, call))
    inputs = load_inputs(session, call, ranking)
    if not inputs.ranking:
        raise InvalidInput("the ranking has no recommended proposal to fund", "ranking")
    for p in inputs.proposals.values():
        if p.state != "recommended":
            raise InvalidInput(f"{_label(p)} is already {STATE_BY_NAME[p.state].label.lower()}; only recommended "
                               "proposals can go on a new funding list", "ranking")
    missing = session.scalars(select(Proposal).where(
        Proposal.call_id == call.id, Proposal.state == "recommended",
        Proposal.id.not_in(list(inputs.proposals) or [0])).order_by(Proposal.reference)).all()
    if missing:
        raise InvalidInput("the ranking leaves out " + ", ".join(_label(p) for p in missing)
                           + ", which the panel recommended; the funding list must follow the whole ranking",
                           "ranking")
    scenario = allocate(inputs.ranking, inputs.funders, inputs.requests, inputs.gap_pot)
    if expected_fingerprint is not None and list_fingerprint(scenario) != expected_fingerprint:
        raise ChangedMeanwhile("the funding list")
    now = utcnow()
    row = _store(session, actor, call, scenario, revision=1, cause="approval", note=note,
                 approved_by_id=actor.id, approved_at=now)
    audit.record(session, actor, "funding.approved", row, call_id=call.id, after=_summary(scenario), reason=note)
    opened, position = [], 0
    for o in scenario.outcomes:  # in rank order
        if o.status == SELECTED:
            transition(session, actor, o.proposal_id, "select",
                       reason=f"selected in the approved funding list (rank {o.rank})" + (f"; {o.note}" if o.note else ""))
            opened += _open_confirmations(session, row, o)
        else:
            position += 1
            transition(session, actor, o.proposal_id, "place_in_reserve",
                       reason=f"reserve list position {position} (rank {o.rank}): {o.reason}")
    session.flush()
    _fund_unconfirmable(session, actor, call, scenario.selected)
    _notify_officers(session, call, row, opened)
    return row


def _fund_unconfirmable(session: Session, actor, call: Call, outcomes) -> None:
    """A selected proposal with no partner requesting money has nobody to confirm it: it is funded at once."""
    for o in outcomes:
        if not o.partners:
            transition(session, actor, o.proposal_id, "fund", follows=_follows(actor, call),
                       reason="no partner requests funding, so no funder needs to confirm")


def confirm_funding(session: Session, actor, confirmation_id: int, decision: str, reason: str | None = None,
                    *, expected_version: int | None = None) -> FundingConfirmation:
    """A funder's officer confirms ("confirm") or declines ("decline", with a reason) the funding of its own
    partners in one selected proposal. When every funder of the proposal has confirmed, it is funded; a
    decline makes it not funded and recomputes the list (which may select proposals from the reserve)."""
    c = session.scalars(
        select(FundingConfirmation).where(FundingConfirmation.id == confirmation_id)
        .with_for_update(of=FundingConfirmation)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if c is None:
        raise NotFound("no such funding confirmation")
    call = session.get(Call, c.call_id)
    require(funding_access(actor, "funding.confirm", call, c.funder_id))
    if expected_version is not None and c.version != expected_version:
        raise ChangedMeanwhile("this confirmation")
    if c.status != "pending":
        when = format_instant(c.decided_at, call.time_zone) if c.decided_at else ""
        raise DomainError({
            "confirmed": f"{c.funder.acronym} already confirmed this funding on {when}",
            "declined": f"{c.funder.acronym} already declined this funding on {when}",
            "cancelled": "this proposal is no longer on the funding list; nothing is left to confirm",
        }[c.status])
    if decision not in ("confirm", "decline"):
        raise InvalidInput("choose confirm or decline", "decision")
    reason = (reason or "").strip() or None
    if reason is not None and len(reason) > MAX_TEXT:
        raise InvalidInput(f"keep the reason under {MAX_TEXT:,} characters", "reason")
    if decision == "decline" and not reason:
        raise InvalidInput("give the reason why your organisation declines this funding", "reason")
    proposal = session.get(Proposal, c.proposal_id)
    if proposal.state != "selected":
        raise DomainError(f"{_label(proposal)} is not selected for funding any more")
    status = "confirmed" if decision == "confirm" else "declined"
    before = {"status": c.status}
    c.status, c.reason, c.decided_by_id, c.decided_at = status, reason, actor.id, utcnow()
    try:
        session.flush()
    except StaleDataError:
        raise ChangedMeanwhile("this confirmation") from None
    audit.record(session, actor, f"funding.{status}", c, call_id=call.id, before=before,
                 after={"status": status, "proposal": proposal.reference, "funder": c.funder.acronym,
                        "amount": c.amount}, reason=reason)
    follow = _follows(actor, call)
    if status == "confirmed":
        rows = confirmations(session, call, proposal_id=proposal.id)
        if all(r.status == "confirmed" for r in rows):
            transition(session, actor, proposal.id, "fund", follows=follow,
                       reason="every funder confirmed: " + ", ".join(sorted(r.funder.acronym for r in rows)))
        return c
    for other in confirmations(session, call, proposal_id=proposal.id, status="pending"):
        other.status = "cancelled"
        audit.record(session, actor, "funding.confirmation_cancelled", other, call_id=call.id,
                     before={"status": "pending"}, after={"status": "cancelled", "funder": other.funder.acronym},
                     reason=f"{c.funder.acronym} declined the funding of {proposal.reference}")
    transition(session, actor, proposal.id, "not_fund", follows=follow, reason=f"{c.funder.acronym} declined: {reason}")
    _recompute(session, actor, call, cause="decline",
               note=f"{c.funder.acronym} declined {_label(proposal)}: {reason}")
    return c


def recompute_funding(session: Session, actor, call: Call, note: str) -> FundingScenario:
    """The secretariat recomputes the approved list after a selected or reserve proposal left it (e.g. the
    consortium withdrew): proposals still selected keep their amounts, the freed money goes down the list."""
    require(funding_access(actor, "funding.recompute", call))
    note = (note or "").strip()
    if not note:
        raise InvalidInput("say why the funding list is recomputed", "note")
    if len(note) > MAX_TEXT:
        raise InvalidInput(f"keep the note under {MAX_TEXT:,} characters", "note")
    if current_funding(session, call) is None:
        raise DomainError("the funding list has not been approved yet")
    return _recompute(session, actor, call, cause="recompute", note=note)


def _recompute(session: Session, actor, call: Call, *, cause: str, note: str) -> FundingScenario:
    """A new revision of the approved list without the proposals that left it (their state says so); the
    others keep their decisions; newly selected reserve proposals are selected and their funders asked."""
    current = current_funding(session, call, lock=True)
    if current is None:  # another transaction superseded it while we waited for the lock
        raise ChangedMeanwhile("the funding list")
    previous = current.scenario
    ids = [o.proposal_id for o in previous.outcomes]
    states = dict(session.execute(select(Proposal.id, Proposal.state).where(Proposal.id.in_(ids))).all())
    gone = [pid for pid in ids if states.get(pid) in ("withdrawn", "not_funded")]
    for c in session.scalars(select(FundingConfirmation).where(
            FundingConfirmation.proposal_id.in_(gone or [0]), FundingConfirmation.status == "pending")):
        c.status = "cancelled"
        audit.record(session, actor, "funding.confirmation_cancelled", c, call_id=call.id,
                     before={"status": "pending"}, after={"status": "cancelled", "funder": c.funder.acronym},
                     reason=f"the proposal left the funding list ({states[c.proposal_id]})")
    scenario = reallocate(previous, drop=gone)
    current.status = "superseded"
    session.flush()
    row = _store(session, actor, call, scenario, revision=current.revision + 1, cause=cause, note=note,
                 approved_by_id=current.approved_by_id, approved_at=current.approved_at)
    diff = changes(previous, scenario)
    audit.record(session, actor, "funding.recomputed", row, call_id=call.id, reason=note,
                 before={"revision": current.revision},
                 after={"revision": row.revision, **_summary(scenario),
                        "changes": [{"reference": ch.reference, "before": ch.before, "after": ch.after}
                                    for ch in diff]})
    follow = _follows(actor, call)
    opened, promoted = [], []
    for o in scenario.selected:
        if o.kept:
            continue
        if states.get(o.proposal_id) == "reserve":
            transition(session, actor, o.proposal_id, "select", follows=follow,
                       reason=f"selected from the reserve list (rank {o.rank}) after: {note}")
        opened += _open_confirmations(session, row, o)
        promoted.append(o)
    session.flush()
    _fund_unconfirmable(session, actor, call, promoted)
    _notify_officers(session, call, row, opened)
    return row
