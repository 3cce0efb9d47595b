"""What reviews/ plugs into workflow/: the reviewer facts for workflow.access and the lifecycle guards.

`install()` runs when the reviews package is imported (reviews/__init__.py), so any process that uses
reviews (the web app, the CLI, the tests) has them. workflow/ never imports reviews/.

Reviewer facts, for (reviewer, proposal):
  None                 not assigned to it;
  "conflicted"         assigned, but a declared or detected conflict is active (not overridden);
  "needs_declaration"  assigned, but the confidentiality and no-conflict declaration is not accepted yet;
  "assigned"           assigned, no conflict, declaration accepted: may open the proposal and its reviews.

Guards (names for workflow/lifecycle.py rows):
  enough_reviews             at least three completed reviews of the proposal's stage (rule 16);
  consensus_entered          the panel's consensus of the stage is recorded;
  consensus_recommends       ... and it recommends the proposal (or recommends it if funds are available);
  consensus_not_recommended  ... and it does not recommend the proposal;
  ranking_approved           the stage's ranking list is approved (e.g. before invite / not_invite).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import object_session

from workflow import access
from workflow.guards import GuardContext, register
from workflow.models import Proposal

_installed = False


def reviewer_facts(actor, proposal: Proposal) -> str | None:
    from reviews.conflicts import is_conflicted
    from reviews.models import ReviewAssignment
    from reviews.pool import declaration_accepted

    session = object_session(proposal)
    if session is None or actor is None or getattr(actor, "id", None) is None:
        return None
    assigned = session.scalar(select(ReviewAssignment.id).where(
        ReviewAssignment.proposal_id == proposal.id, ReviewAssignment.reviewer_id == actor.id).limit(1))
    if assigned is None:
        return None
    if is_conflicted(session, actor, proposal):
        return "conflicted"
    if not declaration_accepted(session, actor, proposal.call_id):
        return "needs_declaration"
    return "assigned"


def enough_reviews(proposal: Proposal, ctx: GuardContext) -> str | None:
    from reviews.aggregation import enough_reviews_problem

    return enough_reviews_problem(ctx.session, proposal)


def _consensus(proposal: Proposal, ctx: GuardContext):
    from reviews.aggregation import consensus_of

    return consensus_of(ctx.session, proposal)


def consensus_entered(proposal: Proposal, ctx: GuardContext) -> str | None:
    return None if _consensus(proposal, ctx) is not None else "the panel's consensus has not been entered"


def consensus_recommends(proposal: Proposal, ctx: GuardContext) -> str | None:
    row = _consensus(proposal, ctx)
    if row is None:
        return "the panel's consensus has not been entered"
    return "the panel did not recommend this proposal" if row.recommendation == "not_recommended" else None


def consensus_not_recommended(proposal: Proposal, ctx: GuardContext) -> str | None:
    row = _consensus(proposal, ctx)
    if row is None:
        return "the panel's consensus has not been entered"
    return "the panel recommended this proposal" if row.recommendation != "not_recommended" else None


def ranking_approved(proposal: Proposal, ctx: GuardContext) -> str | None:
    from reviews.common import proposal_stage
    from reviews.ranking import ranking_of

    stage = proposal_stage(proposal)
    ranking = ranking_of(ctx.session, proposal.call_id, stage)
    if ranking is None or ranking.status != "approved":
        return f"the {stage}-stage ranking list has not been approved"
    return None


GUARDS = {
    "enough_reviews": enough_reviews,
    "consensus_entered": consensus_entered,
    "consensus_recommends": consensus_recommends,
    "consensus_not_recommended": consensus_not_recommended,
    "ranking_approved": ranking_approved,
}


def install() -> None:
    """Plug the reviewer facts and the guards in (idempotent)."""
    global _installed
    if _installed:
        return
    access.set_reviewer_facts(reviewer_facts)
    for name, fn in GUARDS.items():
        register(name)(fn)
    _installed = True
