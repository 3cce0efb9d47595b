"""The review form: scores from the call's criteria, comments, a recommendation; drafts, submission, the
lock, reopening, and reminders (DOMAIN.md rules 15, 18, 24).

A score is 0 to 5 in half points, a number (not a string: the web layer converts with `parse_score`).
A review is complete only when every criterion has a score and a comment, and it has a recommendation.
A submitted review is locked until the secretariat reopens it; from the rebuttal on (the proposal in
state rebuttal or later) nobody can change a full-stage review. Every change of a score is audited with
its before and after.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from reviews.common import AFTER_REBUTTAL, REVIEW_STATE, check_stage
from reviews.models import Review, ReviewAssignment
from reviews.policy import require
from workflow import audit, outbox
from workflow.clock import from_local, utcnow
from workflow.errors import ChangedMeanwhile, DomainError, InvalidInput
from workflow.models import AuditEvent, Call, OutboxMessage, Proposal, User
from workflow.paging import Window
from workflow.timefmt import format_instant

SCORE_VALUES = tuple(i / 2 for i in range(11))  # 0, 0.5, ..., 5
COMMENT_MAX = 10_000
RECOMMENDATIONS = {
    "recommended": "Recommended for funding",
    "recommended_if_funds": "Recommended if funds are available",
    "not_recommended": "Not recommended",
}
LOCKED = "this review was submitted and is locked; ask the call secretariat to reopen it if it must change"
AFTER_REBUTTAL_MESSAGE = "reviews can no longer be changed: the rebuttal has opened"


def check_score(value, field: str | None = None) -> float:
    """A number from 0 to 5 in half points, else InvalidInput naming the field."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput("a score is a number from 0 to 5 in half points", field)
    if not math.isfinite(value) or not 0 <= value <= 5 or value * 2 != int(value * 2):
        raise InvalidInput("a score is from 0 to 5 in half points (0, 0.5, 1, ... 5)", field)
    return float(value)


def parse_score(text: str | None, field: str | None = None) -> float | None:
    """A form's text to a score: "" -> None (not scored yet), "3.5" or "3,5" -> 3.5; else InvalidInput."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        raise InvalidInput("a score is a number from 0 to 5 in half points", field) from None
    return check_score(value, field)


@dataclass(frozen=True)
class CriterionField:
    key: str
    name: str
    weight: float
    threshold: float
    labels: dict[str, str]  # {"0": "Fails / missing information", ...}: the call's words for the scale
    choices: tuple[float, ...] = SCORE_VALUES


def review_form(call: Call) -> list[CriterionField]:
    """The criteria of the call's review form, in order, with their labels."""
    return [CriterionField(c.key, c.name, c.weight, c.threshold, dict(c.labels))
            for c in call.settings.evaluation.criteria]


def review_of(session: Session, assignment: ReviewAssignment) -> Review | None:
    return session.scalar(select(Review).where(Review.assignment_id == assignment.id))


def edit_problem(proposal: Proposal, stage: str, review: Review | None) -> str | None:
    """Why this review cannot be changed now, in plain words; None while it can."""
    if stage == "full" and proposal.state in AFTER_REBUTTAL:
        return AFTER_REBUTTAL_MESSAGE
    if proposal.state != REVIEW_STATE[stage]:
        return "this proposal is no longer under review; its reviews can no longer be changed"
    if review is not None and review.status == "submitted":
        return LOCKED
    return None


def missing_for_submission(call: Call, review: Review | None) -> list[str]:
    """What is still missing before the review can be submitted, in words (empty: complete)."""
    scores = (review.scores if review else None) or {}
    comments = (review.comments if review else None) or {}
    missing = []
    for c in call.settings.evaluation.criteria:
        if scores.get(c.key) is None:
            missing.append(f"a score for {c.name}")
        if not (comments.get(c.key) or "").strip():
            missing.append(f"a comment on {c.name}")
    if not review or review.recommendation not in RECOMMENDATIONS:
        missing.append("a recommendation")
    return missing


def _clean(call: Call, scores: dict | None, comments: dict | None, recommendation: str | None):
    keys = [c.key for c in call.settings.evaluation.criteria]
    scores, comments = dict(scores or {}), dict(comments or {})
    for key in list(scores) + list(comments):
        if key not in keys:
            raise InvalidInput(f"{key!r} is not a criterion of this call")
    clean_scores = {k: (None if scores.get(k) is None else check_score(scores[k], f"score_{k}")) for k in keys}
    clean_comments = {}
    for k in keys:
        text = comments.get(k)
        if text is not None and not isinstance(text, str):
            raise InvalidInput("a comment is text", f"comment_{k}")
        text = (text or "").replace("\r\n", "\n").strip()
        if len(text) > COMMENT_MAX:
            raise InvalidInput(f"a comment has at most {COMMENT_MAX:,} characters (this one has {len(text):,})",
                               f"comment_{k}")
        clean_comments[k] = text
    recommendation = (recommendation or "").strip() or None
    if recommendation is not None and recommendation not in RECOMMENDATIONS:
        raise InvalidInput("choose one of the recommendations offered", "recommendation")
    return clean_scores, clean_comments, recommendation


def _writable(session: Session, actor, assignment: ReviewAssignment, expected_version: int | None) -> Review | None:
    require(actor, "review.write", assignment)
    review = review_of(session, assignment)
    if review is not None and expected_version is not None and review.version != expected_version:
        raise ChangedMeanwhile("this review")
    problem = edit_problem(assignment.proposal, assignment.stage, review)
    if problem:
        raise DomainError(problem)
    return review


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError:
        raise ChangedMeanwhile("this review") from None


def save_review(session: Session, actor, assignment: ReviewAssignment, *, scores: dict | None,
                comments: dict | None, recommendation: str | None, expected_version: int | None = None) -> Review:
    """Save the whole form as a draft (scores may be missing; those given must be valid)."""
    review = _writable(session, actor, assignment, expected_version)
    call = assignment.proposal.call
    new_scores, new_comments, new_rec = _clean(call, scores, comments, recommendation)
    if review is None:
        review = Review(assignment_id=assignment.id, proposal_id=assignment.proposal_id,
                        reviewer_id=assignment.reviewer_id, stage=assignment.stage, scores={}, comments={},
                        status="draft")
        session.add(review)
        _flush(session)
    old_scores, old_comments = dict(review.scores or {}), dict(review.comments or {})
    before, after = {}, {}
    changed_scores = {k for k in new_scores if old_scores.get(k) != new_scores[k]}
    if changed_scores:
        before["scores"] = {k: old_scores.get(k) for k in sorted(changed_scores)}
        after["scores"] = {k: new_scores[k] for k in sorted(changed_scores)}
    changed_comments = {k for k in new_comments if (old_comments.get(k) or "") != new_comments[k]}
    if changed_comments:
        before["comments"] = {k: old_comments.get(k) or "" for k in sorted(changed_comments)}
        after["comments"] = {k: new_comments[k] for k in sorted(changed_comments)}
    if review.recommendation != new_rec:
        before["recommendation"], after["recommendation"] = review.recommendation, new_rec
    if after:
        review.scores = {k: v for k, v in new_scores.items() if v is not None}
        review.comments = {k: v for k, v in new_comments.items() if v}
        review.recommendation = new_rec
        _flush(session)
        audit.record(session, actor, "review.saved", review, call_id=assignment.call_id, before=before, after=after)
    return review


def submit_review(session: Session, actor, assignment: ReviewAssignment, *, scores: dict | None = None,
                  comments: dict | None = None, recommendation: str | None = None,
                  expected_version: int | None = None) -> Review:
    """Submit the review (saving the form first when it is given). Refused while anything is missing."""
    if scores is not None or comments is not None or recommendation is not None:
        review = save_review(session, actor, assignment, scores=scores, comments=comments,
                             recommendation=recommendation, expected_version=expected_version)
    else:
        review = _writable(session, actor, assignment, expected_version)
    missing = missing_for_submission(assignment.proposal.call, review)
    if missing:
        raise InvalidInput("the review is not complete: it still needs " + ", ".join(missing))
    review.status, review.submitted_at = "submitted", utcnow()
    _flush(session)
    audit.record(session, actor, "review.submitted", review, call_id=assignment.call_id,
                 before={"status": "draft"},
                 after={"status": "submitted", "scores": review.scores, "recommendation": review.recommendation})
    return review


def reopen_review(session: Session, actor, review: Review, *, reason: str) -> Review:
    """The secretariat reopens a submitted review so its reviewer can change it; the reviewer is told."""
    assignment = review.assignment
    require(actor, "review.reopen", assignment)
    if review.status != "submitted":
        raise DomainError("this review has not been submitted; its reviewer can still change it")
    if review.stage == "full" and assignment.proposal.state in AFTER_REBUTTAL:
        raise DomainError(AFTER_REBUTTAL_MESSAGE)
    reason = " ".join((reason or "").split())
    if not reason:
        raise InvalidInput("say why the review is reopened; the reviewer will read it", "reason")
    review.status, review.submitted_at = "draft", None
    _flush(session)
    audit.record(session, actor, "review.reopened", review, call_id=assignment.call_id,
                 before={"status": "submitted"}, after={"status": "draft"}, reason=reason)
    proposal, call = assignment.proposal, assignment.proposal.call
    reviewer = session.get(User, review.reviewer_id)
    outbox.enqueue(
        session, kind="review_reopened", to=reviewer.email, call_id=call.id,
        dedup_key=f"review_reopened:{review.id}:{review.version}",
        subject=f"[{call.title}] {proposal.acronym}: your review was reopened",
        body=(f"Dear {reviewer.name},\n\nthe call secretariat reopened your review of {proposal.reference} "
              f"\"{proposal.acronym}\" so that you can change it.\nReason: {reason}\n\n"
              "Please submit it again when you are done.\n"),
    )
    return review


# ---------------------------------------------------------------------------------------------------------
# A reviewer's list, and reminders


@dataclass(frozen=True)
class MyAssignment:
    assignment_id: int
    proposal_id: int
    reference: str
    acronym: str
    title: str
    stage: str
    status: str  # "not started" | "draft" | "submitted"
    editable: bool
    why_not: str | None


def my_assignments(session: Session, actor, call: Call) -> list[MyAssignment]:
    """The reviewer's own assignments in the call with their progress (conflicted ones never show), in a
    fixed number of statements however many there are."""
    from reviews.conflicts import conflicted_proposals

    if actor is None:
        return []
    pairs = session.execute(
        select(ReviewAssignment, Proposal).join(Proposal, Proposal.id == ReviewAssignment.proposal_id)
        .where(ReviewAssignment.call_id == call.id, ReviewAssignment.reviewer_id == actor.id)
        .order_by(ReviewAssignment.stage.desc(), ReviewAssignment.id)).all()
    if not pairs:
        return []
    conflicted = conflicted_proposals(session, actor, call, list({p.id: p for _a, p in pairs}.values()))
    reviews = {r.assignment_id: r for r in session.scalars(select(Review).where(
        Review.assignment_id.in_([a.id for a, _p in pairs])))}
    rows = []
    for a, p in pairs:
        if p.id in conflicted:
            continue
        review = reviews.get(a.id)
        status = "not started" if review is None else review.status
        why = edit_problem(p, a.stage, review)
        rows.append(MyAssignment(a.id, a.proposal_id, p.reference, p.acronym, p.title, a.stage, status, why is None,
                                 why))
    return rows


def unfinished_by_reviewer(session: Session, call: Call, stage: str) -> dict[int, list[ReviewAssignment]]:
    """{reviewer id: assignments whose review is not submitted}, for proposals still under review."""
    out: dict[int, list[ReviewAssignment]] = defaultdict(list)
    rows = session.execute(
        select(ReviewAssignment, Review.status)
        .join(Proposal, Proposal.id == ReviewAssignment.proposal_id)
        .outerjoin(Review, Review.assignment_id == ReviewAssignment.id)
        .where(ReviewAssignment.call_id == call.id, ReviewAssignment.stage == stage,
               Proposal.state == REVIEW_STATE[stage])
        .order_by(ReviewAssignment.reviewer_id, ReviewAssignment.id)
    ).all()
    for assignment, status in rows:
        if status != "submitted":
            out[assignment.reviewer_id].append(assignment)
    return dict(out)


def send_reminders(session: Session, actor, call: Call, *, deadline: dt.datetime, stage: str | None = None) -> int:
    """Queue one reminder to each reviewer with unfinished reviews, before `deadline`. At most one per
    reviewer per day (in the call's time zone): sending again the same day queues nothing new.
    Returns how many reminders were queued now."""
    require(actor, "review.assign", call)
    return _queue_reminders(session, actor, call, deadline=deadline, stage=check_stage(call, stage))


# Days before a stage's review deadline on which `jointcall remind-reviewers` (run daily) reminds.
REMINDER_DAYS = (7, 2)


def remind_before_review_deadlines(session: Session, *, days_before: tuple[int, ...] = REMINDER_DAYS
                                   ) -> list[tuple[Call, str, int]]:
    """The scheduled reminders, for whoever operates the server (no actor: the audit log says "system").
    For every stage with a review deadline in its call's settings that is exactly one of `days_before`
    days away today (in the call's time zone), remind the reviewers with unfinished reviews. Safe to run
    more than once a day. Returns (call, stage, reminders queued) for each stage reminded."""
    out = []
    now = utcnow()
    for call in session.scalars(select(Call).order_by(Call.id)):
        for stage_def in call.settings.stages:
            if stage_def.review_deadline is None:
                continue
            deadline = from_local(stage_def.review_deadline, call.time_zone)
            days_left = (stage_def.review_deadline.date() - now.astimezone(call.settings.zone).date()).days
            if now < deadline and days_left in days_before:
                out.append((call, stage_def.kind, _queue_reminders(
                    session, None, call, deadline=deadline, stage=stage_def.kind, record_none=False)))
    return out


def _queue_reminders(session: Session, actor, call: Call, *, deadline: dt.datetime, stage: str,
                     record_none: bool = True) -> int:
    """`record_none`: audit a run that queued nothing too (the secretariat's button does; a daily job
    rerun must not fill the log)."""
    if deadline.tzinfo is None:
        raise InvalidInput("give the deadline with its time zone", "deadline")
    now = utcnow()
    if now >= deadline:
        raise InvalidInput(f"the deadline {format_instant(deadline, call.time_zone)} has passed", "deadline")
    day = now.astimezone(call.settings.zone).date().isoformat()
    queued = 0
    for reviewer_id, assignments in unfinished_by_reviewer(session, call, stage).items():
        reviewer = session.get(User, reviewer_id)
        key = f"review_reminder:{call.id}:{stage}:{reviewer_id}:{day}"
        if session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedup_key == key)) is not None:
            continue
        lines = "\n".join(f"- {a.proposal.reference} \"{a.proposal.acronym}\"" for a in assignments)
        outbox.enqueue(
            session, kind="review_reminder", to=reviewer.email, call_id=call.id, dedup_key=key,
            subject=f"[{call.title}] Reminder: {len(assignments)} review{'s' if len(assignments) != 1 else ''} "
                    f"due by {format_instant(deadline, call.time_zone)}",
            body=(f"Dear {reviewer.name},\n\nthese reviews are not submitted yet:\n{lines}\n\n"
                  f"Please submit them before {format_instant(deadline, call.time_zone)}.\n"),
        )
        queued += 1
    session.flush()
    if queued or record_none:
        audit.record(session, actor, "review.reminders_sent", call, call_id=call.id,
                     after={"stage": stage, "deadline": deadline.isoformat(), "queued": queued})
    return queued


def review_deadline(session: Session, call: Call, kind: str) -> dt.datetime | None:
    """The stage's review deadline: the call's setting (stages[].review_deadline), else the deadline given
    with the stage's latest reminders."""
    stage = next((st for st in call.settings.stages if st.kind == kind), None)
    if stage is not None and stage.review_deadline is not None:
        return from_local(stage.review_deadline, call.time_zone)
    for event in session.scalars(select(AuditEvent).where(
            AuditEvent.call_id == call.id, AuditEvent.action == "review.reminders_sent")
            .order_by(AuditEvent.seq.desc())):
        after = event.after or {}
        if after.get("stage") == kind and after.get("deadline"):
            try:
                return dt.datetime.fromisoformat(after["deadline"])
            except ValueError:
                return None
    return None


# ---------------------------------------------------------------------------------------------------------
# The secretariat's tables of who reviews which proposal, one page at a time: a fixed number of
# statements whatever the number of proposals.


@dataclass(frozen=True)
class AssignedReview:
    assignment: ReviewAssignment
    reviewer_name: str
    review: Review | None
    conflicted: bool = False  # the reviewer is conflicted with the proposal now


@dataclass(frozen=True)
class ProposalReviews:
    """One proposal's row: its reviewers and their reviews."""

    proposal: Proposal
    reviews: list[AssignedReview]
    available: list[User] = field(default_factory=list)  # reviewers who can still be added (assignment)
    conflicted: int = 0  # how many of the call's reviewers are conflicted with it
    late: bool = False  # the review deadline passed and reviews are missing

    @property
    def done(self) -> int:
        return sum(1 for r in self.reviews if r.review is not None and r.review.status == "submitted")

    @property
    def total(self) -> int:
        return len(self.reviews)


def in_review_count(session: Session, call: Call, stage: str) -> int:
    return session.scalar(select(func.count(Proposal.id)).where(
        Proposal.call_id == call.id, Proposal.state == REVIEW_STATE[stage]))


def review_counts(session: Session, call: Call, stage: str) -> dict[str, int]:
    """The stage's proposals under review, assignments and submitted reviews, counted."""
    return {
        "in_review": in_review_count(session, call, stage),
        "assignments": session.scalar(select(func.count(ReviewAssignment.id)).where(
            ReviewAssignment.call_id == call.id, ReviewAssignment.stage == stage)),
        "submitted": session.scalar(select(func.count(Review.id)).join(Proposal, Proposal.id == Review.proposal_id)
                                    .where(Proposal.call_id == call.id, Review.stage == stage,
                                           Review.status == "submitted")),
    }


def _assigned(session: Session, proposal_ids: list[int], stage: str) -> dict[int, list[tuple]]:
    """{proposal id: [(assignment, its review or None, reviewer's name)]} in assignment order."""
    out: dict[int, list[tuple]] = defaultdict(list)
    for a, review, name in session.execute(
            select(ReviewAssignment, Review, User.name)
            .join(User, User.id == ReviewAssignment.reviewer_id)
            .outerjoin(Review, Review.assignment_id == ReviewAssignment.id)
            .where(ReviewAssignment.proposal_id.in_(proposal_ids), ReviewAssignment.stage == stage)
            .order_by(ReviewAssignment.id)):
        out[a.proposal_id].append((a, review, name))
    return out


def assignment_table(session: Session, call: Call, stage: str, window: Window | None = None
                     ) -> tuple[list[ProposalReviews], Counter, list[User]]:
    """(the proposals under review, by reference, with their reviewers and the reviewers who can still be
    added; each reviewer's load in the stage; the call's reviewers). Only the page `window` when given."""
    from reviews.conflicts import call_reviewers, conflicts_by_pair, with_people

    stmt = (select(Proposal).where(Proposal.call_id == call.id, Proposal.state == REVIEW_STATE[stage])
            .order_by(Proposal.reference, Proposal.id))
    proposals = with_people(session, list(session.scalars(stmt if window is None else window.apply(stmt))))
    reviewers = call_reviewers(session, call)
    conflicts = conflicts_by_pair(session, call, proposals, reviewers)
    assigned = _assigned(session, [p.id for p in proposals], stage)
    load = Counter(dict(session.execute(
        select(ReviewAssignment.reviewer_id, func.count(ReviewAssignment.id))
        .where(ReviewAssignment.call_id == call.id, ReviewAssignment.stage == stage)
        .group_by(ReviewAssignment.reviewer_id)).all()))
    rows = []
    for p in proposals:
        mine = assigned.get(p.id, [])
        taken = {a.reviewer_id for a, _r, _n in mine}
        rows.append(ProposalReviews(
            p, [AssignedReview(a, name, review, (p.id, a.reviewer_id) in conflicts) for a, review, name in mine],
            available=[r for r in reviewers if r.id not in taken and (p.id, r.id) not in conflicts],
            conflicted=sum(1 for r in reviewers if (p.id, r.id) in conflicts)))
    return rows, load, reviewers


def _in_progress(call: Call, stage: str) -> tuple:
    # Proposals beyond review (e.g. with the panel) keep their reviews: every proposal with assignments.
    assigned = select(ReviewAssignment.proposal_id).where(ReviewAssignment.call_id == call.id,
                                                          ReviewAssignment.stage == stage)
    return Proposal.call_id == call.id, or_(Proposal.state == REVIEW_STATE[stage], Proposal.id.in_(assigned))


def progress_size(session: Session, call: Call, stage: str) -> int:
    return session.scalar(select(func.count(Proposal.id)).where(*_in_progress(call, stage)))


def progress_summary(session: Session, call: Call, stage: str) -> dict[str, int]:
    """The stage's assignments and how many of their reviews are submitted, over the whole call."""
    assigned, submitted = session.execute(
        select(func.count(ReviewAssignment.id), func.count(Review.id))
        .outerjoin(Review, (Review.assignment_id == ReviewAssignment.id) & (Review.status == "submitted"))
        .where(ReviewAssignment.call_id == call.id, ReviewAssignment.stage == stage)).one()
    return {"assigned": assigned, "submitted": submitted}


def review_progress(session: Session, call: Call, stage: str, *, late_now: bool = False,
                    window: Window | None = None) -> list[ProposalReviews]:
    """Per proposal of the stage (those under review first, then those beyond it, each by reference):
    its reviewers and their reviews; `late_now`: the review deadline has passed. Only the page `window`
    when given."""
    stmt = (select(Proposal).where(*_in_progress(call, stage))
            .order_by(case((Proposal.state == REVIEW_STATE[stage], 0), else_=1), Proposal.reference, Proposal.id))
    proposals = list(session.scalars(stmt if window is None else window.apply(stmt)))
    assigned = _assigned(session, [p.id for p in proposals], stage)
    rows = []
    for p in proposals:
        row = ProposalReviews(p, [AssignedReview(a, name, review) for a, review, name in assigned.get(p.id, [])])
        if late_now and p.state == REVIEW_STATE[stage] and row.done < row.total:
            row = replace(row, late=True)
        rows.append(row)
    return rows
