"""Rows for the exports (lists of dicts with stable keys, in order); the web layer writes CSV, XLSX, PDF.

Values are raw (numbers stay numbers, texts as written): escaping against spreadsheet formula injection
belongs to the writer. Reviewer names appear only in the secretariat's exports.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from reviews.aggregation import PANEL_RECOMMENDATIONS, consensus_of, proposal_aggregate
from reviews.common import check_stage
from reviews.models import Review, ReviewAssignment
from reviews.policy import require
from reviews.ranking import ranking_of, requested_amount
from reviews.scoring import RECOMMENDATIONS
from workflow.models import Call, Proposal, User


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def review_rows(session: Session, actor, call: Call, stage: str | None = None) -> list[dict]:
    """One row per assignment of the stage: the proposal, the reviewer, status, each criterion's score and
    comment, the recommendation."""
    require(actor, "panel.manage", call)
    stage = check_stage(call, stage)
    criteria = call.settings.evaluation.criteria
    rows = []
    q = (select(ReviewAssignment, Review, Proposal, User)
         .join(Proposal, Proposal.id == ReviewAssignment.proposal_id)
         .join(User, User.id == ReviewAssignment.reviewer_id)
         .outerjoin(Review, Review.assignment_id == ReviewAssignment.id)
         .where(ReviewAssignment.call_id == call.id, ReviewAssignment.stage == stage)
         .order_by(Proposal.reference, ReviewAssignment.id))
    for a, review, p, user in session.execute(q).all():
        scores = (review.scores if review else None) or {}
        comments = (review.comments if review else None) or {}
        row = {"reference": p.reference, "acronym": p.acronym, "reviewer": user.name, "reviewer_email": user.email,
               "assignment": a.source, "status": review.status if review else "not started",
               "submitted_at": review.submitted_at.isoformat() if review and review.submitted_at else ""}
        for c in criteria:
            row[f"{c.key}_score"] = scores.get(c.key)
            row[f"{c.key}_comment"] = comments.get(c.key, "")
        row["recommendation"] = RECOMMENDATIONS.get(review.recommendation, "") if review and review.recommendation else ""
        rows.append(row)
    return rows


def score_rows(session: Session, actor, call: Call, stage: str | None = None) -> list[dict]:
    """One row per proposal with reviews in the stage: per criterion mean, min, max and disagreement, the
    weighted total of the means, then the panel's consensus."""
    require(actor, "panel.manage", call)
    stage = check_stage(call, stage)
    criteria = call.settings.evaluation.criteria
    pids = session.scalars(select(ReviewAssignment.proposal_id).where(
        ReviewAssignment.call_id == call.id, ReviewAssignment.stage == stage).distinct())
    proposals = sorted((session.get(Proposal, pid) for pid in pids), key=lambda p: p.reference)
    rows = []
    for p in proposals:
        agg = proposal_aggregate(session, p, stage)
        consensus = consensus_of(session, p, stage)
        row = {"reference": p.reference, "acronym": p.acronym, "title": p.title, "state": p.state,
               "completed_reviews": agg.reviews}
        for c in agg.criteria:
            row[f"{c.key}_mean"] = _r(c.mean)
            row[f"{c.key}_min"] = c.minimum
            row[f"{c.key}_max"] = c.maximum
            row[f"{c.key}_disagreement"] = c.disagreement
        row["mean_weighted_total"] = _r(agg.weighted_total)
        row["max_total"] = agg.max_total
        row["meets_thresholds"] = agg.meets_all_thresholds
        for c in criteria:
            row[f"{c.key}_consensus"] = consensus.scores.get(c.key) if consensus else None
        row["consensus_total"] = _r(consensus.weighted_total) if consensus else None
        row["recommendation"] = PANEL_RECOMMENDATIONS[consensus.recommendation] if consensus else ""
        row["panel_summary"] = consensus.summary if consensus else ""
        row["requested_amount"] = requested_amount(p)
        rows.append(row)
    return rows


def ranking_rows(session: Session, actor, call: Call, stage: str | None = None) -> list[dict]:
    """The ranking list in order: rank, proposal, coordinator, consensus scores and total, recommendation,
    requested amount, the tie-break note, and the list's status."""
    require(actor, "panel.manage", call)
    stage = check_stage(call, stage)
    ranking = ranking_of(session, call, stage)
    if ranking is None:
        return []
    criteria = call.settings.evaluation.criteria
    rows = []
    for e in ranking.entries:
        p = e.proposal
        consensus = consensus_of(session, p, stage)
        row = {"rank": e.rank, "reference": p.reference, "acronym": p.acronym, "title": p.title,
               "coordinator": p.coordinator.name,
               "coordinator_organisation": p.coordinator_partner.organisation if p.coordinator_partner else ""}
        for c in criteria:
            row[c.key] = consensus.scores.get(c.key) if consensus else None
        row["total"] = e.total
        row["recommendation"] = PANEL_RECOMMENDATIONS[consensus.recommendation] if consensus else ""
        row["requested_amount"] = requested_amount(p)
        row["tie_break"] = e.tie_break_note
        row["list_status"] = ranking.status
        row["approved_at"] = ranking.approved_at.isoformat() if ranking.approved_at else ""
        rows.append(row)
    return rows
