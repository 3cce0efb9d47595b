"""Who reviews what: manual assignment, and automatic assignment previewed, then accepted or discarded.

Automatic assignment gives every proposal under review (pre_review at the pre stage) the call's number of
reviewers (at least three), keeps every existing assignment (it counts towards coverage and load), keeps
each reviewer within the load cap, never pairs a conflicted reviewer, maximises expertise match and
spreads reviewers' countries. reviews.matching solves it; this module loads the call, explains every
chosen pair in words, says why a proposal could not be fully covered, and writes the accepted result.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from reviews import conflicts as coi
from reviews.common import (
    MIN_REVIEWS,
    REVIEW_STATE,
    check_stage,
    ordinal,
    proposal_stage,
    reviewer_ids,
)
from reviews.conflicts import call_reviewers, is_conflicted
from reviews.matching import NOT_ALLOWED, Problem, ScoreTable, Solution, solve_flow, solve_greedy
from reviews.models import Conflict, KeptPreview, Review, ReviewAssignment, ReviewerProfile
from reviews.policy import require
from reviews.text import ExpertiseIndex, split_keywords
from workflow import audit, outbox
from workflow.clock import utcnow
from workflow.countries import country_name
from workflow.errors import DomainError, InvalidInput
from workflow.models import Call, Partner, Proposal, ProposalMember, User

SCALE = 1000  # affinities 0..1 become integer scores 0..1000 for the solver
DEFAULT_COUNTRY_PENALTY = 0.25  # in affinity units: a second reviewer from one country on a proposal
NOT_AVAILABLE = "this reviewer is not available for this proposal"


# ---------------------------------------------------------------------------------------------------------
# Manual assignment


def assignments_of(session: Session, proposal: Proposal, stage: str | None = None) -> list[ReviewAssignment]:
    stage = stage or proposal_stage(proposal)
    return list(session.scalars(select(ReviewAssignment).where(
        ReviewAssignment.proposal_id == proposal.id, ReviewAssignment.stage == stage).order_by(ReviewAssignment.id)))


def _tell_reviewer(session: Session, call: Call, reviewer: User, proposals: list[Proposal], key: str) -> None:
    lines = "\n".join(f"- {p.reference} \"{p.acronym}\"" for p in proposals)
    outbox.enqueue(
        session, kind="review_assignment", to=reviewer.email, call_id=call.id, dedup_key=f"review_assigned:{key}",
        subject=f"[{call.title}] {len(proposals)} proposal{'s' if len(proposals) != 1 else ''} to review",
        body=(f"Dear {reviewer.name},\n\nyou have been asked to review:\n{lines}\n\n"
              "Log in to read them and write your reviews. If you have a conflict of interest with any of "
              "them, declare it before reading further.\n"),
    )


def assign_reviewer(session: Session, actor, proposal: Proposal, reviewer: User) -> ReviewAssignment:
    """The secretariat assigns one reviewer to one proposal under review."""
    require(actor, "review.assign", proposal)
    stage = proposal_stage(proposal)
    if proposal.state != REVIEW_STATE[stage]:
        raise DomainError("reviewers can be assigned only while the proposal is under review")
    if reviewer.id not in reviewer_ids(session, proposal.call):
        raise InvalidInput("this person is not a reviewer of this call", "reviewer")
    if any(a.reviewer_id == reviewer.id for a in assignments_of(session, proposal, stage)):
        raise InvalidInput("this reviewer is assigned to this proposal already", "reviewer")
    if is_conflicted(session, reviewer, proposal):
        raise InvalidInput(NOT_AVAILABLE, "reviewer")
    assignment = ReviewAssignment(call_id=proposal.call_id, proposal_id=proposal.id, reviewer_id=reviewer.id,
                                  stage=stage, source="manual", assigned_at=utcnow(), assigned_by_id=actor.id)
    session.add(assignment)
    session.flush()
    audit.record(session, actor, "review.assigned", assignment, after={
        "proposal_id": proposal.id, "reviewer_id": reviewer.id, "stage": stage, "source": "manual"})
    _tell_reviewer(session, proposal.call, reviewer, [proposal], f"{assignment.id}")
    return assignment


def remove_assignment(session: Session, actor, assignment: ReviewAssignment, *, reason: str | None = None) -> None:
    """The secretariat removes an assignment; a draft review goes with it (the audit keeps its content).
    A submitted review is kept: it cannot be removed this way."""
    require(actor, "review.assign", assignment)
    review = session.scalar(select(Review).where(Review.assignment_id == assignment.id))
    if review is not None and review.status == "submitted":
        raise DomainError("this reviewer has submitted the review; a submitted review cannot be removed")
    before = {"proposal_id": assignment.proposal_id, "reviewer_id": assignment.reviewer_id,
              "stage": assignment.stage, "source": assignment.source}
    if review is not None:
        before["draft"] = {"scores": review.scores, "comments": review.comments,
                           "recommendation": review.recommendation}
        session.delete(review)
    audit.record(session, actor, "review.unassigned", assignment, before=before,
                 reason=(reason or "").strip() or None)
    session.delete(assignment)
    session.flush()


# ---------------------------------------------------------------------------------------------------------
# Automatic assignment: the preview


@dataclass
class ProposedPair:
    proposal_id: int
    reference: str
    acronym: str
    reviewer_id: int
    reviewer_name: str
    score: float  # expertise affinity 0..1
    explanation: dict  # stored on the assignment: score parts, shared keywords, country, rank, reasons

    @property
    def reasons(self) -> str:
        return self.explanation["reasons"]


@dataclass
class Uncovered:
    proposal_id: int
    reference: str
    acronym: str
    wanted: int  # reviewers the proposal should have
    has: int  # after the preview (existing non-conflicted + new)
    reason: str

    @property
    def missing(self) -> int:
        return self.wanted - self.has


@dataclass
class AssignmentPreview:
    call_id: int
    stage: str
    method: str
    load_cap: int
    reviewers_per_proposal: int
    country_penalty: float
    pairs: list[ProposedPair]
    uncovered: list[Uncovered]
    objective: float  # sum of affinities of the new pairs minus country penalties
    seconds: float
    notes: list[str] = field(default_factory=list)  # e.g. existing assignments that are now conflicted
    proposals: int = 0
    reviewers: int = 0
    created_at: str = ""

    def to_dict(self) -> dict:
        """Plain JSON, so the web layer can keep the preview between two requests."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> AssignmentPreview:
        data = dict(data)
        data["pairs"] = [ProposedPair(**p) for p in data.get("pairs", [])]
        data["uncovered"] = [Uncovered(**u) for u in data.get("uncovered", [])]
        return cls(**data)

    def pairs_of(self, proposal_id: int) -> list[ProposedPair]:
        return [p for p in self.pairs if p.proposal_id == proposal_id]


@dataclass
class _Loaded:
    call: Call
    stage: str
    proposals: list[Proposal]
    reviewers: list[User]
    profiles: dict[int, ReviewerProfile]
    existing: list[ReviewAssignment]
    conflicts: dict[tuple[int, int], list]

    def country(self, reviewer: User) -> str | None:
        p = self.profiles.get(reviewer.id)
        return (p.country if p is not None else None) or reviewer.country or None


@dataclass
class _Parties:
    """What reviews.conflicts.proposal_info reads of a proposal (its partners, coordinator and members),
    loaded as plain rows: at call scale (12,000 partners) ORM objects cost a large share of the preview."""

    id: int
    coordinator_id: int | None
    partners: list = field(default_factory=list)  # rows: organisation, country, pi_email; by position
    members: list = field(default_factory=list)  # rows: user_id


def _load(session: Session, call: Call, stage: str) -> _Loaded:
    under_review = (Proposal.call_id == call.id, Proposal.state == REVIEW_STATE[stage])
    proposals = list(session.scalars(select(Proposal).where(*under_review).order_by(Proposal.id)))
    parties = {p.id: _Parties(p.id, p.coordinator_id) for p in proposals}
    ids = select(Proposal.id).where(*under_review)
    for row in session.execute(select(Partner.proposal_id, Partner.organisation, Partner.country, Partner.pi_email)
                               .where(Partner.proposal_id.in_(ids)).order_by(Partner.proposal_id, Partner.position)):
        parties[row.proposal_id].partners.append(row)
    for row in session.execute(select(ProposalMember.proposal_id, ProposalMember.user_id)
                               .where(ProposalMember.proposal_id.in_(ids))):
        parties[row.proposal_id].members.append(row)
    # Stored conflicts as rows too; reviews.conflicts reads the same attributes of them as of a Conflict.
    stored: dict[tuple[int, int], list] = defaultdict(list)
    for row in session.execute(select(
            Conflict.id, Conflict.reviewer_id, Conflict.proposal_id, Conflict.source, Conflict.rule, Conflict.reason,
            Conflict.overridden_at, Conflict.overridden_by_id, Conflict.override_justification)
            .where(Conflict.call_id == call.id, Conflict.proposal_id.in_(ids))):
        stored[(row.proposal_id, row.reviewer_id)].append(row)
    reviewers = call_reviewers(session, call)
    profiles = {p.user_id: p for p in session.scalars(select(ReviewerProfile).where(ReviewerProfile.call_id == call.id))}
    existing = list(session.scalars(select(ReviewAssignment).where(
        ReviewAssignment.call_id == call.id, ReviewAssignment.stage == stage)))
    conflicts = coi.conflicts_among(call, [coi.proposal_info(parties[p.id]) for p in proposals], stored, reviewers,
                                    profiles)
    return _Loaded(call, stage, proposals, reviewers, profiles, existing, conflicts)


def wanted_reviewers(call: Call, override: int | None = None) -> int:
    """How many reviewers each proposal should get: the call's number, never fewer than three."""
    return max(MIN_REVIEWS, override or call.settings.evaluation.reviewers_per_proposal)


def build_problem(data: _Loaded, *, load_cap: int, wanted: int, country_penalty: float
                  ) -> tuple[Problem, ExpertiseIndex, dict]:
    pids = {p.id for p in data.proposals}
    by_r = {r.id: r for r in data.reviewers}
    load = Counter(a.reviewer_id for a in data.existing)
    counted = Counter()
    countries: dict[int, Counter] = defaultdict(Counter)
    stale = []
    for a in data.existing:
        if a.proposal_id not in pids:
            continue
        if (a.proposal_id, a.reviewer_id) in data.conflicts:
            stale.append(a)
            continue
        counted[a.proposal_id] += 1
        r = by_r.get(a.reviewer_id)
        countries[a.proposal_id][(data.country(r) if r else None) or f"#{a.reviewer_id}"] += 1
    index = ExpertiseIndex(
        {p.id: (split_keywords(p.keywords), f"{p.title}\n{p.abstract}") for p in data.proposals},
        {r.id: list((data.profiles[r.id].keywords or []) if r.id in data.profiles else []) for r in data.reviewers},
    )
    proposal_ids, reviewer_ids_ = [p.id for p in data.proposals], [r.id for r in data.reviewers]
    scores = index.scaled_affinities(proposal_ids, reviewer_ids_, SCALE)
    row = {pid: i for i, pid in enumerate(proposal_ids)}
    col = {rid: j for j, rid in enumerate(reviewer_ids_)}
    # Existing and conflicted pairs may not be assigned (again).
    for pid, rid in [*((a.proposal_id, a.reviewer_id) for a in data.existing), *data.conflicts]:
        if pid in row and rid in col:
            scores[row[pid], col[rid]] = NOT_ALLOWED
    problem = Problem(
        need={p.id: max(0, wanted - counted[p.id]) for p in data.proposals},
        capacity={r.id: max(0, load_cap - load[r.id]) for r in data.reviewers},
        country={r.id: data.country(r) for r in data.reviewers},
        score=ScoreTable(proposal_ids, reviewer_ids_, scores),
        country_penalty=round(country_penalty * SCALE),
        existing_countries=dict(countries),
    )
    return problem, index, {"counted": counted, "stale": stale, "load": load}


def _explain(data: _Loaded, problem: Problem, solution: Solution, index: ExpertiseIndex, extra: dict, *,
             wanted: int, load_cap: int, method: str) -> tuple[list[ProposedPair], list[Uncovered], list[str]]:
    by_p = {p.id: p for p in data.proposals}
    by_r = {r.id: r for r in data.reviewers}
    table = ScoreTable.of(problem.score)
    available = table.scores != NOT_ALLOWED  # not conflicted, not assigned already
    with_capacity = np.array([problem.capacity.get(r, 0) > 0 for r in table.reviewers], dtype=bool)
    n_conflicted = Counter(pid for (pid, _rid) in data.conflicts)
    final_countries = {pid: Counter(c) for pid, c in problem.existing_countries.items()}
    for pid, rid in solution.pairs:
        final_countries.setdefault(pid, Counter())[problem.country_key(rid)] += 1
    pairs = []
    for pid, rid in solution.pairs:
        p, r, m = by_p[pid], by_r[rid], index.match(pid, rid)
        scores = table.scores[table.row[pid]]
        s = int(scores[table.col[rid]])
        rank = int(np.count_nonzero(scores > s)) + 1  # 1 + how many available reviewers match better
        n_cand = int(np.count_nonzero(available[table.row[pid]]))
        joint = "joint " if np.count_nonzero(scores == s) > 1 else ""
        if s == 0:
            rank_words = f"no expertise match among {n_cand} available reviewers; assigned to complete the coverage"
        elif rank == 1:
            rank_words = f"{joint}best expertise match of {n_cand} available reviewers"
        else:
            rank_words = f"{joint}{ordinal(rank)} best expertise match of {n_cand} available reviewers"
        code = problem.country.get(rid)
        if not code:
            country_words = "country not given"
        else:
            n = final_countries[pid][code]
            country_words = (f"only reviewer from {country_name(code)} on this proposal" if n == 1 else
                             f"one of {n} reviewers from {country_name(code)} on this proposal "
                             "(accepted at a penalty: no better-spread choice matched as well)")
        reasons = f"{m.words()}; {rank_words}; {country_words}"
        pairs.append(ProposedPair(pid, p.reference, p.acronym, rid, r.name, round(m.affinity, 4), {
            "score": round(m.affinity, 4), "keyword_score": round(m.keyword_score, 4),
            "shared_keywords": list(m.shared_keywords), "text_similarity": round(m.text_similarity, 4),
            "country": code, "rank": rank, "candidates": n_cand, "reasons": reasons,
            "method": method, "load_cap": load_cap,
        }))
    got = Counter(pid for pid, _ in solution.pairs)
    uncovered = []
    for p in data.proposals:
        has = extra["counted"][p.id] + got[p.id]
        if has >= wanted:
            continue
        i = table.row.get(p.id)
        n_free = int(np.count_nonzero(available[i])) if i is not None else 0
        n_room = int(np.count_nonzero(available[i] & with_capacity)) if i is not None else 0
        conflicted = n_conflicted[p.id]
        if n_room < wanted - extra["counted"][p.id]:
            reason = (f"not enough non-conflicted reviewers with capacity: {n_room} of the "
                      f"{n_free} available reviewers are under the load cap of {load_cap}"
                      + (f" ({conflicted} reviewer{'s have' if conflicted != 1 else ' has'} a conflict)"
                         if conflicted else ""))
        else:
            reason = (f"the {n_room} non-conflicted reviewers with capacity were needed for other "
                      f"proposals; raise the load cap (now {load_cap}) or invite more reviewers")
        uncovered.append(Uncovered(p.id, p.reference, p.acronym, wanted, has, reason))
    notes = [f"{by_r[a.reviewer_id].name if a.reviewer_id in by_r else 'A reviewer'} is assigned to "
             f"{by_p[a.proposal_id].acronym} but now has a conflict of interest; remove that assignment"
             for a in extra["stale"]]
    return pairs, uncovered, notes


def propose_assignment(session: Session, actor, call: Call, *, load_cap: int, stage: str | None = None,
                       reviewers_per_proposal: int | None = None,
                       country_penalty: float = DEFAULT_COUNTRY_PENALTY, method: str = "flow") -> AssignmentPreview:
    """Compute (and write nothing) the automatic assignment of the call's proposals under review.
    `method` "flow" is the optimum; "greedy" is the baseline, for comparison."""
    require(actor, "review.assign", call)
    stage = check_stage(call, stage)
    if not isinstance(load_cap, int) or isinstance(load_cap, bool) or not 1 <= load_cap <= 1000:
        raise InvalidInput("the load cap is a whole number of proposals per reviewer, at least 1", "load_cap")
    if reviewers_per_proposal is not None and not 1 <= reviewers_per_proposal <= 50:
        raise InvalidInput("give a sensible number of reviewers per proposal", "reviewers_per_proposal")
    if not 0 <= country_penalty <= 1:
        raise InvalidInput("the country penalty is between 0 and 1", "country_penalty")
    if method not in ("flow", "greedy"):
        raise InvalidInput("the method is flow or greedy", "method")
    wanted = wanted_reviewers(call, reviewers_per_proposal)
    data = _load(session, call, stage)
    problem, index, extra = build_problem(data, load_cap=load_cap, wanted=wanted, country_penalty=country_penalty)
    solution = solve_flow(problem) if method == "flow" else solve_greedy(problem)
    pairs, uncovered, notes = _explain(data, problem, solution, index, extra, wanted=wanted,
                                       load_cap=load_cap, method=solution.method)
    return AssignmentPreview(
        call_id=call.id, stage=stage, method=solution.method, load_cap=load_cap, reviewers_per_proposal=wanted,
        country_penalty=country_penalty, pairs=pairs, uncovered=uncovered,
        objective=round(solution.objective / SCALE, 4), seconds=round(solution.seconds, 4), notes=notes,
        proposals=len(data.proposals), reviewers=len(data.reviewers), created_at=utcnow().isoformat(),
    )


def accept_preview(session: Session, actor, call: Call, preview: AssignmentPreview) -> list[ReviewAssignment]:
    """Write the previewed pairs as assignments (source "auto", with their explanation). Everything is
    checked again first; if anything changed since the preview, nothing is written."""
    require(actor, "review.assign", call)
    if preview.call_id != call.id:
        raise InvalidInput("this preview belongs to another call")
    if not preview.pairs:
        raise DomainError("the preview assigns nobody; there is nothing to accept")
    stage = check_stage(call, preview.stage)
    data = _load(session, call, stage)
    by_p = {p.id: p for p in data.proposals}
    by_r = {r.id: r for r in data.reviewers}
    existing_pairs = {(a.proposal_id, a.reviewer_id) for a in data.existing}
    load = Counter(a.reviewer_id for a in data.existing)
    per_p = Counter(a.proposal_id for a in data.existing
                    if (a.proposal_id, a.reviewer_id) not in data.conflicts)
    seen = set()
    for pair in preview.pairs:
        key = (pair.proposal_id, pair.reviewer_id)
        problem = None
        if pair.proposal_id not in by_p:
            problem = f"{pair.acronym} is no longer under review"
        elif pair.reviewer_id not in by_r:
            problem = f"{pair.reviewer_name} is no longer a reviewer of this call"
        elif key in existing_pairs or key in seen:
            problem = f"{pair.reviewer_name} is assigned to {pair.acronym} already"
        elif key in data.conflicts:
            problem = f"{pair.reviewer_name} is not available for {pair.acronym} any more"
        else:
            load[pair.reviewer_id] += 1
            per_p[pair.proposal_id] += 1
            if load[pair.reviewer_id] > preview.load_cap:
                problem = f"{pair.reviewer_name} would be above the load cap of {preview.load_cap}"
            elif per_p[pair.proposal_id] > preview.reviewers_per_proposal:
                problem = f"{pair.acronym} would get more than {preview.reviewers_per_proposal} reviewers"
        if problem:
            raise DomainError(f"the preview is out of date ({problem}); run the automatic assignment again")
        seen.add(key)
    now = utcnow()
    created = []
    for pair in preview.pairs:
        a = ReviewAssignment(call_id=call.id, proposal_id=pair.proposal_id, reviewer_id=pair.reviewer_id,
                             stage=stage, source="auto", explanation=dict(pair.explanation), assigned_at=now,
                             assigned_by_id=actor.id)
        session.add(a)
        created.append(a)
    session.flush()
    for a in created:
        audit.record(session, actor, "review.assigned", a, after={
            "proposal_id": a.proposal_id, "reviewer_id": a.reviewer_id, "stage": stage, "source": "auto",
            "score": a.explanation["score"], "reasons": a.explanation["reasons"]})
    audit.record(session, actor, "review.auto_assignment_accepted", call, call_id=call.id, after={
        "stage": stage, "pairs": len(created), "method": preview.method, "objective": preview.objective,
        "load_cap": preview.load_cap, "reviewers_per_proposal": preview.reviewers_per_proposal,
        "uncovered": [u.reference for u in preview.uncovered]})
    per_reviewer: dict[int, list[ReviewAssignment]] = defaultdict(list)
    for a in created:
        per_reviewer[a.reviewer_id].append(a)
    for rid, mine in per_reviewer.items():
        _tell_reviewer(session, call, by_r[rid], [by_p[a.proposal_id] for a in mine],
                       f"auto:{mine[0].id}:{len(mine)}")
    return created


def preview_summary(preview: AssignmentPreview) -> dict:
    """What the audit log keeps of a preview (its pairs are not written anywhere until accepted)."""
    return {"stage": preview.stage, "pairs": len(preview.pairs), "method": preview.method,
            "objective": preview.objective}


def discard_preview(session: Session, actor, call: Call, summary: dict) -> None:
    """The secretariat discards the preview it was shown (`preview_summary`): nothing changes but the audit
    log says so. The preview is not computed again for that."""
    require(actor, "review.assign", call)
    audit.record(session, actor, "review.auto_assignment_discarded", call, call_id=call.id,
                 after={k: summary.get(k) for k in ("stage", "pairs", "method", "objective")})


PREVIEW_KEPT_FOR = dt.timedelta(days=1)


def keep_preview(session: Session, actor, call: Call, preview: AssignmentPreview, params: dict) -> KeptPreview:
    """Keep a computed preview for its pages (replacing the one this person kept for the stage; previews
    older than a day go too)."""
    require(actor, "review.assign", call)
    session.execute(delete(KeptPreview).where(or_(
        KeptPreview.created_at < utcnow() - PREVIEW_KEPT_FOR,
        (KeptPreview.call_id == call.id) & (KeptPreview.stage == preview.stage)
        & (KeptPreview.created_by_id == actor.id))))
    kept = KeptPreview(call_id=call.id, stage=preview.stage, params=dict(params), data=preview.to_dict(),
                       created_by_id=actor.id)
    session.add(kept)
    session.flush()
    return kept


def kept_preview(session: Session, actor, call: Call, stage: str, kept_id: int | None
                 ) -> tuple[AssignmentPreview, dict] | None:
    """(the kept preview, its parameters), or None when it is gone, too old or not this call's stage."""
    require(actor, "review.assign", call)
    kept = session.get(KeptPreview, kept_id) if kept_id else None
    if (kept is None or kept.call_id != call.id or kept.stage != stage
            or kept.created_at < utcnow() - PREVIEW_KEPT_FOR):
        return None
    return AssignmentPreview.from_dict(kept.data), dict(kept.params)


def forget_previews(session: Session, call: Call, stage: str, kept_id: int | None = None) -> None:
    """Drop the kept previews of a stage (after accepting: every one of them is out of date), or one."""
    where = [KeptPreview.call_id == call.id, KeptPreview.stage == stage]
    if kept_id is not None:
        where.append(KeptPreview.id == kept_id)
    session.execute(delete(KeptPreview).where(*where))


def load_summary(session: Session, call: Call, stage: str) -> dict[int, int]:
    """{reviewer id: number of assignments} in a stage of the call."""
    return dict(Counter(session.scalars(select(ReviewAssignment.reviewer_id).where(
        ReviewAssignment.call_id == call.id, ReviewAssignment.stage == stage))))
