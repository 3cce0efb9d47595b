"""Rows for the exports (lists of dicts with stable keys, in order); the web layer writes CSV, XLSX, PDF.

Values are raw (numbers stay numbers, texts as written): escaping against spreadsheet formula injection
belongs to the writer. Reviewer names appear only in the secretariat's exports. Each export sends a fixed
number of statements, whatever the number of proposals (one per kind of data, grouped in Python).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from reviews.aggregation import PANEL_RECOMMENDATIONS, aggregate, completed_reviews_of, consensus_by_proposal
from reviews.common import check_stage
from reviews.models import RankingEntry, Review, ReviewAssignment
from reviews.policy import require
from reviews.ranking import ranked_proposals, ranking_of, requested_amounts
from reviews.scoring import RECOMMENDATIONS
from workflow.models import Call, Partner, Proposal, User


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def review_rows(session: Session, actor, call: Call, stage: str | None = None) -> list[dict]:
    """One row per assignment of the stage: the proposal, the reviewer, status, each criterion's score and
    comment, the recommendation."""
    require(actor, "panel.manage", call)
    stage = check_stage(call, stage)
    criteria = call.settings.evaluation.criteria
    rows = []
    q = (select(ReviewAssignment, Review, Proposal, User.name, User.email)
         .join(Proposal, Proposal.id == ReviewAssignment.proposal_id)
         .join(User, User.id == ReviewAssignment.reviewer_id)
         .outerjoin(Review, Review.assignment_id == ReviewAssignment.id)
         .where(ReviewAssignment.call_id == call.id, ReviewAssignment.stage == stage)
         .order_by(Proposal.reference, ReviewAssignment.id))
    for a, review, p, reviewer_name, reviewer_email in session.execute(q).all():
        scores = (review.scores if review else None) or {}
        comments = (review.comments if review else None) or {}
        row = {"reference": p.reference, "acronym": p.acronym, "reviewer": reviewer_name,
               "reviewer_email": reviewer_email,
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
    ids = select(ReviewAssignment.proposal_id).where(ReviewAssignment.call_id == call.id,
                                                     ReviewAssignment.stage == stage)
    proposals = sorted(session.scalars(select(Proposal).where(Proposal.id.in_(ids))), key=lambda p: p.reference)
    reviews = completed_reviews_of(session, ids, stage)
    consensus_by = consensus_by_proposal(session, ids, stage)
    requested = requested_amounts(session, ids)
    evaluation = call.settings.evaluation
    rows = []
    for p in proposals:
        agg = aggregate(evaluation, [r.scores or {} for r in reviews.get(p.id, [])])
        consensus = consensus_by.get(p.id)
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
        row["requested_amount"] = requested.get(p.id, 0)
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
    ids = select(RankingEntry.proposal_id).where(RankingEntry.ranking_id == ranking.id)
    coordinators = dict(session.execute(select(User.id, User.name).where(
        User.id.in_(select(Proposal.coordinator_id).where(Proposal.id.in_(ids))))).all())
    # The coordinator's organisation is the first partner's (Proposal.coordinator_partner).
    organisations: dict[int, str] = {}
    for pid, organisation in session.execute(select(Partner.proposal_id, Partner.organisation).where(
            Partner.proposal_id.in_(ids)).order_by(Partner.proposal_id, Partner.position)):
        organisations.setdefault(pid, organisation)
    rows = []
    for r in ranked_proposals(session, ranking):
        e, p, consensus = r.entry, r.proposal, r.consensus
        row = {"rank": e.rank, "reference": p.reference, "acronym": p.acronym, "title": p.title,
               "coordinator": coordinators[p.coordinator_id], "coordinator_organisation": organisations.get(p.id, "")}
        for c in criteria:
            row[c.key] = consensus.scores.get(c.key) if consensus else None
        row["total"] = e.total
        row["recommendation"] = PANEL_RECOMMENDATIONS[consensus.recommendation] if consensus else ""
        row["requested_amount"] = r.requested
        row["tie_break"] = e.tie_break_note
        row["list_status"] = ranking.status
        row["approved_at"] = ranking.approved_at.isoformat() if ranking.approved_at else ""
        rows.append(row)
    return rows
