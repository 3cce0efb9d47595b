"""Guards named in the lifecycle table. Each returns None when it passes, else the reason in plain words.

Other packages (reviews/) add guards with `register`, so the lifecycle table can name them without
workflow/ importing those packages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.lifecycle import Variant, stage_of
from workflow.models import EligibilityCheck, Proposal


@dataclass
class GuardContext:
    session: Session
    now: object  # aware datetime
    actor: object | None = None


Guard = Callable[[Proposal, GuardContext], str | None]
_GUARDS: dict[str, Guard] = {}


def register(name: str) -> Callable[[Guard], Guard]:
    def deco(fn: Guard) -> Guard:
        _GUARDS[name] = fn
        return fn

    return deco


def failing_guards(names, proposal: Proposal, ctx: GuardContext) -> list[str]:
    reasons = []
    for name in names:
        guard = _GUARDS.get(name)
        if guard is None:
            reasons.append(f"the check '{name}' is not available in this installation")
            continue
        why = guard(proposal, ctx)
        if why:
            reasons.append(why)
    return reasons


def _stage(proposal: Proposal):
    call = proposal.call
    kind = stage_of(proposal.state, Variant.of(call))
    return call.stage(kind)


@register("stage_open")
def stage_open(proposal: Proposal, ctx: GuardContext) -> str | None:
    from workflow.timefmt import format_instant

    stage = _stage(proposal)
    zone = proposal.call.time_zone
    if stage.closed_at is not None:
        return "submission for this stage has been closed by the call secretariat"
    if ctx.now < stage.opens_at:
        return f"submission opens on {format_instant(stage.opens_at, zone)}"
    if ctx.now >= stage.deadline:
        return f"the deadline passed on {format_instant(stage.deadline, zone)}"
    return None


@register("stage_closed")
def stage_closed(proposal: Proposal, ctx: GuardContext) -> str | None:
    from workflow.timefmt import format_instant

    stage = _stage(proposal)
    if stage.closed_at is None and ctx.now < stage.deadline:
        return f"submission is open until {format_instant(stage.deadline, proposal.call.time_zone)}"
    return None


@register("consortium_valid")
def consortium_valid(proposal: Proposal, ctx: GuardContext) -> str | None:
    from workflow.proposals import proposal_violations

    kind = stage_of(proposal.state, Variant.of(proposal.call))
    problems = [v for v in proposal_violations(ctx.session, proposal, kind) if v.blocking]
    if problems:
        return "; ".join(v.message for v in problems)
    return None


def _checks(proposal: Proposal, ctx: GuardContext) -> list[EligibilityCheck]:
    kind = stage_of(proposal.state, Variant.of(proposal.call))
    return list(ctx.session.scalars(
        select(EligibilityCheck).where(EligibilityCheck.proposal_id == proposal.id, EligibilityCheck.stage == kind)
    ))


@register("checks_all_eligible")
def checks_all_eligible(proposal: Proposal, ctx: GuardContext) -> str | None:
    checks = _checks(proposal, ctx)
    if not checks:
        return "no eligibility checks have been opened for this proposal"
    pending = sum(c.status == "pending" for c in checks)
    if pending:
        return f"{pending} eligibility check{'s are' if pending > 1 else ' is'} still pending"
    from workflow.eligibility import blocking_ineligible_checks

    # A partner its own funder found ineligible may be replaced at the full stage (rule 12), so only
    # the other ineligible verdicts block.
    if blocking_ineligible_checks(proposal, checks):
        return "a check found the proposal or a partner ineligible"
    return None


@register("checks_found_ineligible")
def checks_found_ineligible(proposal: Proposal, ctx: GuardContext) -> str | None:
    checks = _checks(proposal, ctx)
    pending = sum(c.status == "pending" for c in checks)
    if pending:
        return f"{pending} eligibility check{'s are' if pending > 1 else ' is'} still pending"
    from workflow.eligibility import blocking_ineligible_checks

    if not blocking_ineligible_checks(proposal, checks):
        return "no check found the proposal or a partner ineligible (beyond partners that may be replaced)"
    return None


@register("changes_approved")
def changes_approved(proposal: Proposal, ctx: GuardContext) -> str | None:
    """DOMAIN.md rule 13: consortium changes since the pre-proposal need the secretariat's recorded approval,
    except removing or replacing a partner its own funder found ineligible (rule 12, when the call allows)."""
    from workflow.submission import consortium_changes

    return consortium_changes(ctx.session, proposal).reason()
