"""The call's review figures at a glance (the secretariat's dashboard): per stage, assignments and their
reviews' status, late reviews, conflicts, and proposals with fewer reviewers than wanted. Aggregate SQL
only, so the number of statements does not grow with the proposals, assignments and reviews.

The per-proposal list behind these numbers is reviews.scoring.review_progress.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from reviews.assignment import wanted_reviewers
from reviews.common import REVIEW_STATE
from reviews.conflicts import LIVE_STATES
from reviews.models import Conflict, Review, ReviewAssignment
from reviews.scoring import review_deadline
from workflow.callconfig import stage_name
from workflow.clock import utcnow
from workflow.lifecycle import Variant, stage_of
from workflow.models import Call, Proposal


@dataclass(frozen=True)
class StageReviews:
    """One stage's review figures. "Late" is the rule of the progress page and of the reminders: the review
    deadline (reviews.scoring.review_deadline: the call's setting, else the latest reminders') has passed
    and a review of a proposal still under review at this stage is not submitted."""

    kind: str
    label: str
    in_review: int  # proposals in the stage's review state
    wanted: int  # reviewers each proposal should get
    short: int  # proposals in review with fewer assignments than wanted
    assignments: int  # every assignment of the stage (also of proposals that moved on, as the progress page)
    submitted: int
    drafts: int
    not_started: int
    unfinished: int  # not submitted, the proposal still under review
    unfinished_proposals: int
    deadline: dt.datetime | None
    now: dt.datetime
    declared: int  # stored conflicts of proposals under review, not overridden
    detected: int
    overridden: int

    @property
    def late_now(self) -> bool:
        return self.deadline is not None and self.now >= self.deadline

    @property
    def late(self) -> int:
        return self.unfinished if self.late_now else 0

    @property
    def late_proposals(self) -> int:
        return self.unfinished_proposals if self.late_now else 0

    @property
    def conflicts(self) -> int:
        return self.declared + self.detected + self.overridden


@dataclass(frozen=True)
class ReviewProgress:
    stages: list[StageReviews]

    @property
    def max_assignments(self) -> int:
        return max([s.assignments for s in self.stages] + [1])


def _review_stage_case():
    """The stage whose reviews a proposal in a review state receives (SQL)."""
    return case((Proposal.state == REVIEW_STATE["pre"], "pre"), else_="full")


def call_review_progress(session: Session, call: Call) -> ReviewProgress:
    """Per stage of the call: assignments, submitted, drafts, not started, late, conflicts, and proposals
    with fewer reviewers than wanted. Four aggregate statements plus one per stage (its review deadline)."""
    kinds = [s.kind for s in call.settings.stages]
    review_states = [REVIEW_STATE[k] for k in kinds]
    in_review = or_(*[and_(ReviewAssignment.stage == k, Proposal.state == REVIEW_STATE[k]) for k in kinds])
    status = case((Review.status == "submitted", "submitted"), (Review.status == "draft", "draft"),
                  else_="not_started")
    flag = case((in_review, 1), else_=0)

    # 1. Assignments by stage, review status and whether the proposal is still under review.
    by_status: Counter = Counter()
    unfinished: Counter = Counter()
    for stage, st, live, n in session.execute(
        select(ReviewAssignment.stage, status, flag, func.count(ReviewAssignment.id))
        .join(Proposal, Proposal.id == ReviewAssignment.proposal_id)
        .outerjoin(Review, Review.assignment_id == ReviewAssignment.id)
        .where(ReviewAssignment.call_id == call.id, ReviewAssignment.stage.in_(kinds))
        .group_by(ReviewAssignment.stage, status, flag)
    ).all():
        by_status[(stage, st)] += n
        if live and st != "submitted":
            unfinished[stage] += n

    # 2. Proposals under review with an unfinished review (those the progress page marks late).
    unfinished_proposals = Counter(dict(session.execute(
        select(ReviewAssignment.stage, func.count(func.distinct(ReviewAssignment.proposal_id)))
        .join(Proposal, Proposal.id == ReviewAssignment.proposal_id)
        .outerjoin(Review, Review.assignment_id == ReviewAssignment.id)
        .where(ReviewAssignment.call_id == call.id, in_review,
               or_(Review.id.is_(None), Review.status != "submitted"))
        .group_by(ReviewAssignment.stage)
    ).all()))

    # 3. Proposals under review and those with fewer assignments than wanted (assignments of their stage).
    wanted = wanted_reviewers(call)
    per_proposal = (
        select(Proposal.state.label("state"), func.count(ReviewAssignment.id).label("n"))
        .outerjoin(ReviewAssignment, and_(ReviewAssignment.proposal_id == Proposal.id,
                                          ReviewAssignment.stage == _review_stage_case()))
        .where(Proposal.call_id == call.id, Proposal.state.in_(review_states))
        .group_by(Proposal.id, Proposal.state)
    ).subquery()
    coverage = {state: (total, int(short or 0)) for state, total, short in session.execute(
        select(per_proposal.c.state, func.count(), func.sum(case((per_proposal.c.n < wanted, 1), else_=0)))
        .group_by(per_proposal.c.state)
    ).all()}

    # 4. Stored conflicts of the proposals under review (the conflicts page lists those), by stage.
    overridden = case((Conflict.overridden_at.is_not(None), 1), else_=0)
    conflicts: Counter = Counter()
    variant = Variant.of(call)
    for state, source, over, n in session.execute(
        select(Proposal.state, Conflict.source, overridden, func.count(Conflict.id))
        .join(Proposal, Proposal.id == Conflict.proposal_id)
        .where(Conflict.call_id == call.id, Proposal.state.in_(LIVE_STATES))
        .group_by(Proposal.state, Conflict.source, overridden)
    ).all():
        conflicts[(stage_of(state, variant), "overridden" if over else source)] += n

    now = utcnow()
    stages = []
    for kind in kinds:
        total, short = coverage.get(REVIEW_STATE[kind], (0, 0))
        submitted, drafts, not_started = (by_status[(kind, s)] for s in ("submitted", "draft", "not_started"))
        stages.append(StageReviews(
            kind=kind, label=stage_name(call, kind), in_review=total, wanted=wanted,
            short=short, assignments=submitted + drafts + not_started, submitted=submitted, drafts=drafts,
            not_started=not_started, unfinished=unfinished[kind], unfinished_proposals=unfinished_proposals[kind],
            deadline=review_deadline(session, call, kind), now=now, declared=conflicts[(kind, "declared")],
            detected=conflicts[(kind, "detected")], overridden=conflicts[(kind, "overridden")]))
    return ReviewProgress(stages)
