"""The order the funding list follows: the panel's ranking from reviews/, or a documented fallback.

1. The full stage's ranking list approved by the steering committee, through reviews' API
   (reviews.ranking.funding_ranking): its order, each proposal's recommendation from the panel's
   consensus, its total as the score (equal totals side by side are ties at the funding line).
2. Fallback, when this database has no approved ranking list (reviews/ may not have one yet): the proposals
   in state recommended, reserve or selected, by the panel's consensus total where one is recorded
   (highest first), then by proposal reference. The pages say so, so that nobody approves a list without
   knowing where its order came from.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from reviews.ranking import funding_ranking as reviews_funding_ranking
from webapp.funding.evaluation import consensus_by_proposal, ranking_list
from workflow.errors import DomainError
from workflow.funding_ops import LISTED_STATES, RankingEntry
from workflow.models import Call, Proposal
from workflow.timefmt import format_instant

APPROVED, FALLBACK = "approved ranking", "fallback"


@dataclass(frozen=True)
class FundingRanking:
    entries: list[RankingEntry]  # best first
    origin: str  # APPROVED | FALLBACK
    note: str

    @property
    def ids(self) -> list[int]:
        return [e.proposal_id for e in self.entries]

    @property
    def is_fallback(self) -> bool:
        return self.origin == FALLBACK


def funding_stage(call: Call) -> str:
    return call.settings.stages[-1].kind  # "full" (a single-stage call's only stage is "full" too)


def funding_ranking(session: Session, call: Call) -> FundingRanking:
    stage = funding_stage(call)
    ranking = ranking_list(session, call, stage)
    problem = ""
    if ranking is not None and ranking.status == "approved":
        try:
            entries = [e for e in reviews_funding_ranking(session, call) if e.recommendation != "not_recommended"]
        except (DomainError, KeyError):  # e.g. an entry without the panel's consensus
            entries, problem = None, " (the approved ranking list could not be read completely)"
    if ranking is not None and ranking.status == "approved" and entries is not None:
        when = format_instant(ranking.approved_at, call.time_zone) if ranking.approved_at else "an earlier date"
        return FundingRanking(entries, APPROVED, f"The order is the {stage}-stage ranking list approved on {when}.")

    consensus = consensus_by_proposal(session, call, stage)
    proposals = session.scalars(select(Proposal).where(Proposal.call_id == call.id,
                                                       Proposal.state.in_(LISTED_STATES))).all()

    def key(p: Proposal):
        c = consensus.get(p.id)
        return (0 if c is not None else 1, -(c.weighted_total if c is not None else 0.0), p.reference)

    entries = []
    for p in sorted(proposals, key=key):
        c = consensus.get(p.id)
        if c is not None and c.recommendation == "not_recommended":
            continue
        entries.append(RankingEntry(p.id, c.recommendation if c is not None else "recommended",
                                    float(c.weighted_total) if c is not None else None))
    draft = problem or (" (a draft ranking list exists but is not approved yet)" if ranking is not None else "")
    note = (f"No approved {stage}-stage ranking list was found{draft}. The order shown is a fallback: the "
            "recommended proposals by the panel's consensus total where one is recorded (highest first), then "
            "by proposal reference. Check it before recording the approval.")
    return FundingRanking(entries, FALLBACK, note)
