"""Who sees which reviews of a proposal, and under which name.

- The secretariat sees every review with its reviewer's name, drafts included.
- A reviewer (assigned, not conflicted, declaration accepted: access "proposal.reviews") sees their own
  review; the other reviewers' submitted reviews only once their own is submitted, when the call's
  evaluation.hide_other_reviews_until_submitted is true (the default); never the others' drafts. The
  others are "Reviewer 1", "Reviewer 2"... unless evaluation.show_reviewer_names is true.
- Applicants see anonymised reviews only once released (reviews.release; `release_proposal_reviews`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from reviews import release
from reviews.common import evaluation_setting, proposal_stage
from reviews.models import Review, ReviewAssignment
from reviews.policy import decide, require
from reviews.scoring import RECOMMENDATIONS
from workflow import audit
from workflow.access import is_secretariat
from workflow.errors import DomainError
from workflow.models import Proposal, User


@dataclass(frozen=True)
class CriterionScore:
    key: str
    name: str
    score: float | None
    comment: str


@dataclass(frozen=True)
class ReviewCard:
    label: str  # "Reviewer 2", or "Reviewer 2 (Name)" when names are shown
    reviewer_name: str | None  # None when hidden
    own: bool
    status: str  # "draft" | "submitted"
    criteria: list[CriterionScore]
    recommendation: str | None  # its label
    submitted_at: dt.datetime | None


@dataclass(frozen=True)
class ReviewsView:
    own: ReviewCard | None
    others: list[ReviewCard]
    others_hidden: str | None  # why the other reviews are not shown, in words; None when they are


def hide_until_submitted(call) -> bool:
    return bool(evaluation_setting(call, "hide_other_reviews_until_submitted", True))


def names_shown(call) -> bool:
    return bool(evaluation_setting(call, "show_reviewer_names", False))


def _numbered(session: Session, proposal: Proposal, stage: str) -> list[tuple[int, ReviewAssignment, Review | None]]:
    rows = session.execute(
        select(ReviewAssignment, Review).outerjoin(Review, Review.assignment_id == ReviewAssignment.id)
        .where(ReviewAssignment.proposal_id == proposal.id, ReviewAssignment.stage == stage)
        .order_by(ReviewAssignment.id)).all()
    return [(n, a, r) for n, (a, r) in enumerate(rows, start=1)]


def _card(session: Session, proposal: Proposal, n: int, review: Review, *, own: bool, named: bool) -> ReviewCard:
    name = session.get(User, review.reviewer_id).name if named else None
    scores, comments = review.scores or {}, review.comments or {}
    return ReviewCard(
        label=f"Reviewer {n}" + (f" ({name})" if name else ""), reviewer_name=name, own=own, status=review.status,
        criteria=[CriterionScore(c.key, c.name, scores.get(c.key), comments.get(c.key) or "")
                  for c in proposal.call.settings.evaluation.criteria],
        recommendation=RECOMMENDATIONS.get(review.recommendation or "", review.recommendation),
        submitted_at=review.submitted_at,
    )


def reviews_for(session: Session, actor, proposal: Proposal, stage: str | None = None) -> ReviewsView:
    """The reviews of a proposal as this person may see them (access "proposal.reviews" first)."""
    require(actor, "proposal.reviews", proposal)
    stage = stage or proposal_stage(proposal)
    numbered = _numbered(session, proposal, stage)
    if is_secretariat(actor, proposal.call_id):
        cards = [_card(session, proposal, n, r, own=False, named=True) for n, _a, r in numbered if r is not None]
        return ReviewsView(None, cards, None)
    mine = next(((n, a, r) for n, a, r in numbered if a.reviewer_id == actor.id), None)
    own = None
    if mine is not None and mine[2] is not None:
        own = _card(session, proposal, mine[0], mine[2], own=True, named=False)
    if hide_until_submitted(proposal.call) and (own is None or own.status != "submitted"):
        return ReviewsView(own, [], "the other reviews are shown once you have submitted yours")
    named = names_shown(proposal.call)
    others = [_card(session, proposal, n, r, own=False, named=named) for n, a, r in numbered
              if r is not None and r.status == "submitted" and a.reviewer_id != actor.id]
    return ReviewsView(own, others, None)


def release_proposal_reviews(session: Session, actor, proposal: Proposal) -> int:
    """The secretariat releases a proposal's submitted reviews to its applicants (anonymised), e.g. for the
    rebuttal. Uses reviews.release.release_reviews. Returns how many reviews were released now."""
    require(actor, "panel.manage", proposal)
    stage = proposal_stage(proposal)
    if not session.scalar(select(Review.id).where(Review.proposal_id == proposal.id, Review.stage == stage,
                                                 Review.status == "submitted").limit(1)):
        raise DomainError("this proposal has no submitted review to release")
    count = release.release_reviews(session, [proposal.id], stage)
    if count:
        audit.record(session, actor, "review.released", proposal, after={"stage": stage, "reviews": count})
    return count


def applicant_reviews(session: Session, actor, proposal: Proposal) -> list[release.AnonymousReview]:
    """What the consortium sees: the released reviews, numbered, without names (reviews.release)."""
    require(actor, "proposal.read_outcome", proposal)
    return release.released_reviews(session, proposal)


def may_open_reviews(actor, proposal: Proposal) -> bool:
    return bool(decide(actor, "proposal.reviews", proposal))
