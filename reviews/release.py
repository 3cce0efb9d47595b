"""Releasing reviews to the applicants (for the rebuttal), and what the applicants see of them.

workflow/ opens the rebuttal window but does not know the review tables; `open_rebuttal` here runs that
operation with `release_reviews`, so one transaction moves the proposals and releases their reviews.
What applicants see is anonymised: "Reviewer 1", "Reviewer 2", never a name, an e-mail or an id.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from reviews.models import Review
from workflow.models import Call, Proposal
from workflow.submission import RebuttalWindowResult, open_rebuttal_window


def release_reviews(session: Session, proposal_ids: list[int], stage: str = "full") -> int:
    """Mark the submitted reviews of these proposals as visible to their applicants. Returns how many."""
    if not proposal_ids:
        return 0
    reviews = session.scalars(select(Review).where(
        Review.proposal_id.in_(proposal_ids), Review.stage == stage, Review.status == "submitted",
        Review.released_to_applicants.is_(False),
    )).all()
    for review in reviews:
        review.released_to_applicants = True
    session.flush()
    return len(reviews)


def open_rebuttal(session: Session, actor, call: Call) -> RebuttalWindowResult:
    """The secretariat opens the rebuttal window: proposals move, reviews are released, coordinators mailed."""
    return open_rebuttal_window(session, actor, call, release_reviews=release_reviews)


@dataclass(frozen=True)
class CriterionView:
    name: str
    score: float | None
    comment: str


@dataclass(frozen=True)
class AnonymousReview:
    label: str  # "Reviewer 1"
    criteria: list[CriterionView]
    recommendation: str


def released_reviews(session: Session, proposal: Proposal) -> list[AnonymousReview]:
    """The proposal's released reviews as the applicants see them: numbered, without names."""
    reviews = session.scalars(select(Review).where(
        Review.proposal_id == proposal.id, Review.status == "submitted",
        Review.released_to_applicants.is_(True),
    ).order_by(Review.id)).all()
    criteria = proposal.call.settings.evaluation.criteria
    out = []
    for n, review in enumerate(reviews, start=1):
        scores, comments = review.scores or {}, review.comments or {}
        out.append(AnonymousReview(
            label=f"Reviewer {n}",
            criteria=[CriterionView(c.name, scores.get(c.key), (comments.get(c.key) or "").strip())
                      for c in criteria],
            recommendation=(review.recommendation or "").strip(),
        ))
    return out
