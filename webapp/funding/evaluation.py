"""What reviews/ knows about the evaluation, for the funding pages and the letters: the panel's consensus,
the ranking list, and the reviewers' comments as applicants may read them (anonymised)."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from sqlalchemy import select
from sqlalchemy.orm import Session

from reviews.models import PanelConsensus, Review
from reviews.ranking import ranking_of
from workflow.models import Call, Proposal

RECOMMENDATION_LABELS = {
    "recommended": "Recommended",
    "recommended_if_funds": "Recommended if funds are available",
    "not_recommended": "Not recommended",
}


def consensus(session: Session, proposal: Proposal, stage: str) -> PanelConsensus | None:
    """The panel's consensus on the proposal at `stage` (scores, weighted total, recommendation, summary)."""
    return session.scalar(select(PanelConsensus).where(PanelConsensus.proposal_id == proposal.id,
                                                       PanelConsensus.stage == stage))


def consensus_by_proposal(session: Session, call: Call, stage: str) -> dict[int, PanelConsensus]:
    return {c.proposal_id: c for c in session.scalars(select(PanelConsensus).where(
        PanelConsensus.call_id == call.id, PanelConsensus.stage == stage))}


@dataclass(frozen=True)
class RankingInfo:
    status: str  # "draft" | "approved"
    approved_at: object


def ranking_list(session: Session, call: Call, stage: str) -> RankingInfo | None:
    """The stage's ranking list (reviews.ranking.ranking_of): whether it exists and is approved."""
    ranking = ranking_of(session, call, stage)
    return None if ranking is None else RankingInfo(ranking.status, ranking.approved_at)


def anonymised_reviews(session: Session, proposal: Proposal, stage: str) -> list[SimpleNamespace]:
    """The submitted reviews of the proposal at `stage` as a letter shows them: "Reviewer 1", "Reviewer 2",
    each criterion's comment; never a name, an e-mail address or an id."""
    rows = session.scalars(select(Review).where(Review.proposal_id == proposal.id, Review.stage == stage,
                                                Review.status == "submitted").order_by(Review.id)).all()
    criteria = proposal.call.settings.evaluation.criteria
    out = []
    for review in rows:
        comments = review.comments or {}
        shown = [SimpleNamespace(criterion=c.name, text=(comments.get(c.key) or "").strip())
                 for c in criteria if (comments.get(c.key) or "").strip()]
        if shown:
            out.append(SimpleNamespace(label=f"Reviewer {len(out) + 1}", comments=shown))
    return out
