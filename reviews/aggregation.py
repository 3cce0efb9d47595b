"""From individual reviews to the panel's consensus (DOMAIN.md §3, rules 16 and 19).

Pure part: per-criterion mean, minimum, maximum and spread; disagreement when a criterion's scores spread
DISAGREEMENT_SPREAD (2) points or more; the weighted total (sum of weight x score) against the call's
max_total; thresholds per criterion and on the total.

Operations: the secretariat enters the panel's consensus (scores, recommendation, summary) once the
proposal has at least three completed reviews; "recommended" (and "recommended if funds") needs every
criterion threshold and the total threshold met. Every entry and change is audited; nothing changes once
the stage's ranking list is approved.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from reviews.common import MIN_REVIEWS, fmt_score, proposal_stage
from reviews.models import PanelConsensus, Review
from reviews.policy import require
from reviews.scoring import check_score
from workflow import audit
from workflow.callconfig import EvaluationDef
from workflow.clock import utcnow
from workflow.errors import ChangedMeanwhile, DomainError, InvalidInput
from workflow.models import Proposal, Rebuttal
from workflow.operations import transition
from workflow.paging import Window

DISAGREEMENT_SPREAD = 2.0
EPS = 1e-9
PANEL_RECOMMENDATIONS = {
    "recommended": "Recommended",
    "recommended_if_funds": "Recommended if funds are available",
    "not_recommended": "Not recommended",
}
SUMMARY_MAX = 20_000
# Where the panel scores a proposal: the pre-proposal review, or the panel after the rebuttal.
CONSENSUS_STATE = {"pre": "pre_review", "full": "panel"}


@dataclass(frozen=True)
class CriterionAggregate:
    key: str
    name: str
    weight: float
    threshold: float
    scores: tuple[float, ...]
    mean: float | None
    minimum: float | None
    maximum: float | None

    @property
    def spread(self) -> float | None:
        return None if self.mean is None else self.maximum - self.minimum

    @property
    def disagreement(self) -> bool:
        return self.spread is not None and self.spread >= DISAGREEMENT_SPREAD - EPS

    @property
    def meets_threshold(self) -> bool:
        return self.mean is not None and self.mean >= self.threshold - EPS


@dataclass(frozen=True)
class Aggregate:
    criteria: tuple[CriterionAggregate, ...]
    reviews: int
    weighted_total: float | None  # sum of weight x mean score; None without reviews
    max_total: float
    total_threshold: float

    @property
    def meets_total_threshold(self) -> bool:
        return self.weighted_total is not None and self.weighted_total >= self.total_threshold - EPS

    @property
    def disagreements(self) -> list[str]:
        """The names of the criteria the reviewers disagree on (a spread of 2 points or more)."""
        return [c.name for c in self.criteria if c.disagreement]

    @property
    def meets_all_thresholds(self) -> bool:
        return self.meets_total_threshold and all(c.meets_threshold for c in self.criteria)


def weighted_total(evaluation: EvaluationDef, scores: dict[str, float]) -> float:
    return sum(c.weight * scores[c.key] for c in evaluation.criteria)


def aggregate(evaluation: EvaluationDef, score_sets: list[dict[str, float]]) -> Aggregate:
    """Aggregate complete reviews' scores ({criterion key: score} each)."""
    crits = []
    for c in evaluation.criteria:
        values = tuple(float(s[c.key]) for s in score_sets if s.get(c.key) is not None)
        mean = sum(values) / len(values) if values else None
        crits.append(CriterionAggregate(c.key, c.name, c.weight, c.threshold, values, mean,
                                        min(values) if values else None, max(values) if values else None))
    total = None if not score_sets or any(c.mean is None for c in crits) else sum(c.weight * c.mean for c in crits)
    return Aggregate(tuple(crits), len(score_sets), total, evaluation.max_total, evaluation.total_threshold)


def threshold_failures(evaluation: EvaluationDef, scores: dict[str, float]) -> list[str]:
    """The thresholds these (consensus) scores miss, in words."""
    failures = [f"{c.name} {fmt_score(scores[c.key])} is below its threshold {fmt_score(c.threshold)}"
                for c in evaluation.criteria if scores[c.key] < c.threshold - EPS]
    total = weighted_total(evaluation, scores)
    if total < evaluation.total_threshold - EPS:
        failures.append(f"the total {fmt_score(total)} is below the threshold {fmt_score(evaluation.total_threshold)}")
    return failures


# ---------------------------------------------------------------------------------------------------------
# From the database


def completed_reviews(session: Session, proposal: Proposal, stage: str | None = None) -> list[Review]:
    stage = stage or proposal_stage(proposal)
    return list(session.scalars(select(Review).where(
        Review.proposal_id == proposal.id, Review.stage == stage, Review.status == "submitted").order_by(Review.id)))


def completed_reviews_of(session: Session, proposal_ids, stage: str) -> dict[int, list[Review]]:
    """`completed_reviews` of many proposals in one statement: {proposal id: reviews}. `proposal_ids` is a
    list of ids or a SELECT of them."""
    out: dict[int, list[Review]] = defaultdict(list)
    for r in session.scalars(select(Review).where(
            Review.proposal_id.in_(proposal_ids), Review.stage == stage, Review.status == "submitted")
            .order_by(Review.id)):
        out[r.proposal_id].append(r)
    return out


def proposal_aggregate(session: Session, proposal: Proposal, stage: str | None = None) -> Aggregate:
    reviews = completed_reviews(session, proposal, stage)
    return aggregate(proposal.call.settings.evaluation, [r.scores or {} for r in reviews])


def consensus_of(session: Session, proposal: Proposal, stage: str | None = None) -> PanelConsensus | None:
    stage = stage or proposal_stage(proposal)
    return session.scalar(select(PanelConsensus).where(
        PanelConsensus.proposal_id == proposal.id, PanelConsensus.stage == stage))


def consensus_by_proposal(session: Session, proposal_ids, stage: str) -> dict[int, PanelConsensus]:
    """`consensus_of` many proposals in one statement (a list of ids or a SELECT of them)."""
    return {c.proposal_id: c for c in session.scalars(select(PanelConsensus).where(
        PanelConsensus.proposal_id.in_(proposal_ids), PanelConsensus.stage == stage))}


def _too_few_reviews(n: int) -> str | None:
    if n < MIN_REVIEWS:
        return f"the panel needs at least {MIN_REVIEWS} completed reviews; this proposal has {n}"
    return None


def enough_reviews_problem(session: Session, proposal: Proposal, stage: str | None = None) -> str | None:
    return _too_few_reviews(len(completed_reviews(session, proposal, stage)))


def enter_consensus(session: Session, actor, proposal: Proposal, *, scores: dict, recommendation: str,
                    summary: str, expected_version: int | None = None) -> PanelConsensus:
    """The secretariat records the panel's consensus for the proposal's current stage."""
    from reviews.ranking import frozen_problem

    require(actor, "panel.manage", proposal)
    stage = proposal_stage(proposal)
    if proposal.state != CONSENSUS_STATE[stage]:
        raise DomainError("the panel's consensus is entered when the proposal is with the panel"
                          if stage == "full" else "the consensus is entered while the pre-proposal is under review")
    if (why := frozen_problem(session, proposal.call_id, stage)) is not None:
        raise DomainError(why)
    if (why := enough_reviews_problem(session, proposal, stage)) is not None:
        raise DomainError(why)
    evaluation = proposal.call.settings.evaluation
    scores = dict(scores or {})
    keys = [c.key for c in evaluation.criteria]
    for key in scores:
        if key not in keys:
            raise InvalidInput(f"{key!r} is not a criterion of this call")
    clean = {}
    for c in evaluation.criteria:
        if scores.get(c.key) is None:
            raise InvalidInput(f"give the consensus score for {c.name}", f"score_{c.key}")
        clean[c.key] = check_score(scores[c.key], f"score_{c.key}")
    if recommendation not in PANEL_RECOMMENDATIONS:
        raise InvalidInput("choose the panel's recommendation", "recommendation")
    if recommendation != "not_recommended":
        failures = threshold_failures(evaluation, clean)
        if failures:
            raise InvalidInput(f"a proposal can be {PANEL_RECOMMENDATIONS[recommendation].lower()} only if it meets "
                               "every threshold: " + "; ".join(failures), "recommendation")
    summary = (summary or "").replace("\r\n", "\n").strip()
    if not summary:
        raise InvalidInput("write the panel's summary; the applicants will read it", "summary")
    if len(summary) > SUMMARY_MAX:
        raise InvalidInput(f"the summary has at most {SUMMARY_MAX:,} characters", "summary")
    total = round(weighted_total(evaluation, clean), 6)
    row = consensus_of(session, proposal, stage)
    after = {"stage": stage, "scores": clean, "weighted_total": total, "recommendation": recommendation,
             "summary": summary}
    if row is None:
        row = PanelConsensus(call_id=proposal.call_id, proposal_id=proposal.id, stage=stage, scores=clean,
                             weighted_total=total, recommendation=recommendation, summary=summary,
                             entered_by_id=actor.id, entered_at=utcnow())
        session.add(row)
        session.flush()
        audit.record(session, actor, "panel.consensus_entered", row, after=after)
        return row
    if expected_version is not None and row.version != expected_version:
        raise ChangedMeanwhile("this consensus")
    before = {"scores": row.scores, "weighted_total": row.weighted_total, "recommendation": row.recommendation,
              "summary": row.summary}
    if before == {k: after[k] for k in before}:
        return row
    row.scores, row.weighted_total, row.recommendation, row.summary = clean, total, recommendation, summary
    row.entered_by_id, row.entered_at = actor.id, utcnow()
    try:
        session.flush()
    except StaleDataError:
        raise ChangedMeanwhile("this consensus") from None
    audit.record(session, actor, "panel.consensus_changed", row, before=before, after=after)
    return row


def apply_consensus(session: Session, actor, proposal: Proposal) -> Proposal:
    """Move a full proposal from the panel by its consensus: "recommend" (recommended, or if funds are
    available) or "not_recommend", through workflow.operations.transition."""
    row = consensus_of(session, proposal, "full")
    if row is None:
        raise DomainError("enter the panel's consensus first")
    trigger = "not_recommend" if row.recommendation == "not_recommended" else "recommend"
    return transition(session, actor, proposal.id, trigger,
                      reason=f"panel consensus: {PANEL_RECOMMENDATIONS[row.recommendation]}")


def apply_panel_decisions(session: Session, actor, call) -> dict[str, int]:
    """`apply_consensus` for every proposal with the panel that has a consensus; returns how many moved
    each way ({"recommend": n, "not_recommend": m}). Proposals without a consensus stay with the panel."""
    require(actor, "panel.manage", call)
    moved = {"recommend": 0, "not_recommend": 0}
    ids = session.scalars(select(Proposal.id).where(Proposal.call_id == call.id, Proposal.state == "panel")
                          .order_by(Proposal.id)).all()
    for pid in ids:
        proposal = session.get(Proposal, pid)
        if consensus_of(session, proposal, "full") is None:
            continue
        after = apply_consensus(session, actor, proposal)
        moved["recommend" if after.state == "recommended" else "not_recommend"] += 1
    return moved


@dataclass(frozen=True)
class PanelRow:
    """One proposal on the panel's table: the reviews' aggregate, the consensus, the rebuttal beside them."""

    proposal_id: int
    reference: str
    acronym: str
    state: str
    aggregate: Aggregate
    consensus: PanelConsensus | None
    rebuttal: str | None
    ready: bool  # enough completed reviews for a consensus
    why_not_ready: str | None


# The proposals on the panel's table: every proposal of the stage that reached review.
PANEL_STATES = {
    "pre": ("pre_review", "invited", "not_invited"),
    "full": ("under_review", "rebuttal", "panel", "recommended", "not_recommended", "selected", "reserve",
             "not_funded", "funded"),
}


def _on_the_panel(call, stage: str) -> tuple:
    return Proposal.call_id == call.id, Proposal.state.in_(PANEL_STATES[stage])


def panel_size(session: Session, actor, call, stage: str = "full") -> int:
    """How many proposals the whole panel table has (for its pages)."""
    from reviews.common import check_stage

    require(actor, "panel.manage", call)
    stage = check_stage(call, stage)
    return session.scalar(select(func.count(Proposal.id)).where(*_on_the_panel(call, stage)))


def panel_table(session: Session, actor, call, stage: str = "full", *,
                window: Window | None = None) -> list[PanelRow]:
    """The secretariat's panel view of every proposal of the stage that reached review (only the page
    `window` when given). A fixed number of statements, whatever the number of proposals."""
    from reviews.common import check_stage

    require(actor, "panel.manage", call)
    stage = check_stage(call, stage)
    where = _on_the_panel(call, stage)
    stmt = select(Proposal).where(*where).order_by(Proposal.id)
    proposals = list(session.scalars(stmt if window is None else window.apply(stmt)))
    ids = select(Proposal.id).where(*where) if window is None else [p.id for p in proposals]
    reviews = completed_reviews_of(session, ids, stage)
    consensus = consensus_by_proposal(session, ids, stage)
    rebuttals = dict(session.execute(select(Rebuttal.proposal_id, Rebuttal.text).where(
        Rebuttal.proposal_id.in_(ids))).all()) if stage == "full" else {}
    evaluation = call.settings.evaluation
    rows = []
    for p in proposals:
        done = reviews.get(p.id, [])
        why = _too_few_reviews(len(done))
        agg = aggregate(evaluation, [r.scores or {} for r in done])
        rows.append(PanelRow(p.id, p.reference, p.acronym, p.state, agg, consensus.get(p.id), rebuttals.get(p.id),
                             why is None, why))
    return rows
