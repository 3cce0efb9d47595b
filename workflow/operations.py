"""State-changing operations on proposals: one function per change, each inside the caller's transaction.

Every operation: locks the proposal row (FOR UPDATE on PostgreSQL; the version column everywhere),
asks the access policy, fires the lifecycle transition, writes the audit event and the outbox rows, and
leaves the commit to the caller. A concurrent change raises ChangedMeanwhile, never a lost update.
"""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from workflow import audit, lifecycle, outbox
from workflow.access import Decision, can
from workflow.callconfig import STAGE_NAMES
from workflow.clock import utcnow
from workflow.errors import ChangedMeanwhile, DomainError, InvalidInput, NotFound
from workflow.guards import GuardContext
from workflow.lifecycle import Variant, stage_of
from workflow.models import Call, CallStage, Document, EligibilityCheck, Proposal, Submission
from workflow.proposals import require
from workflow.timefmt import format_instant


def lock_proposal(session: Session, proposal_id: int) -> Proposal:
    """Load the proposal afresh and lock its row until the transaction ends (PostgreSQL)."""
    proposal = session.scalars(
        select(Proposal).where(Proposal.id == proposal_id).with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if proposal is None:
        raise NotFound("no such proposal")
    return proposal


def transition(
    session: Session,
    actor,
    proposal_id: int,
    trigger: str,
    *,
    reason: str | None = None,
    expected_version: int | None = None,
    follows: Decision | None = None,
) -> Proposal:
    """Fire `trigger` on the proposal. `expected_version` is the version the actor saw; if the proposal
    changed since, the actor is told so instead of acting on a state they never saw.

    `follows` is the access decision of an operation this transition is the consequence of (a funder's
    confirmation funds the proposal): the actor was allowed that decision, so the transition needs no
    right of its own, and the audit names the actor who made it."""
    proposal = lock_proposal(session, proposal_id)
    if expected_version is not None and proposal.version != expected_version:
        raise ChangedMeanwhile()
    require(follows if follows is not None else can(actor, f"proposal.{trigger}", proposal))
    variant = Variant.of(proposal.call)
    ctx = GuardContext(session=session, now=utcnow(), actor=actor)
    before, after = lifecycle.fire(proposal, trigger, variant, ctx)
    audit.record(session, actor, f"proposal.{trigger}", proposal,
                 before={"state": before}, after={"state": after}, reason=reason)
    effect = _EFFECTS.get(trigger)
    if effect is not None:
        effect(session, actor, proposal, before, after)
    try:
        session.flush()
    except StaleDataError:
        raise ChangedMeanwhile() from None
    return proposal


# ---------------------------------------------------------------------------------------------------------
# Side effects of particular transitions: snapshots and messages, in the same transaction.


def snapshot(proposal: Proposal, stage: str, session: Session) -> dict:
    docs = session.scalars(
        select(Document).where(Document.proposal_id == proposal.id, Document.stage == stage)
        .order_by(Document.kind, Document.partner_id, Document.version)
    ).all()
    latest: dict[tuple, Document] = {}
    for d in docs:
        latest[(d.kind, d.partner_id)] = d
    return {
        "reference": proposal.reference,
        "acronym": proposal.acronym,
        "title": proposal.title,
        "abstract": proposal.abstract,
        "keywords": proposal.keywords,
        "topic": proposal.topic,
        "duration_months": proposal.duration_months,
        "partners": [
            {
                "position": p.position, "organisation": p.organisation, "partner_type": p.partner_type,
                "country": p.country, "region": p.region,
                "funder": p.funder.acronym if p.funder else None, "own_funded": p.own_funded,
                "pi_name": p.pi_name, "pi_email": p.pi_email, "requested_amount": p.requested_amount,
                "budget": dict(sorted((p.budget or {}).items())),
            }
            for p in proposal.partners
        ],
        "documents": [
            {"kind": d.kind, "partner_id": d.partner_id, "version": d.version, "filename": d.filename,
             "sha256": d.sha256, "pages": d.page_count}
            for d in latest.values()
        ],
    }


def content_hash(content: dict) -> str:
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _record_submission(session, actor, proposal, before, after):
    variant = Variant.of(proposal.call)
    stage = stage_of(after, variant)
    content = snapshot(proposal, stage, session)
    number = 1 + (session.scalar(
        select(func.count(Submission.id)).where(Submission.proposal_id == proposal.id, Submission.stage == stage)
    ) or 0)
    previous = None
    if stage == "full" and variant.two_stage:
        previous = session.scalar(
            select(Submission.id).where(Submission.proposal_id == proposal.id, Submission.stage == "pre")
            .order_by(Submission.id.desc()).limit(1)
        )
    sub = Submission(
        proposal=proposal, stage=stage, number=number, submitted_at=utcnow(), submitted_by_id=actor.id,
        content=content, sha256=content_hash(content), previous_stage_submission_id=previous,
    )
    session.add(sub)
    session.flush()
    call = proposal.call
    outbox.to_coordinator(
        session, proposal, kind="submission_receipt", dedup_key=f"receipt:submission:{sub.id}",
        subject=f"receipt of your {STAGE_NAMES[stage]}",
        text=(
            f"your {'pre-' if stage == 'pre' else 'full '}proposal {proposal.reference} \"{proposal.acronym}\" "
            f"was submitted on {format_instant(sub.submitted_at, call.time_zone, 'd MMMM y, HH:mm:ss zzz')}.\n"
            f"Submission number {number} for this stage; the latest submission before the deadline counts.\n"
            f"SHA-256 of the submitted content: {sub.sha256}\n"
        ),
        attachments=[{"kind": "receipt", "submission_id": sub.id}],
        context={"stage": stage, "number": number, "sha256": sub.sha256,
                 "submitted_at": format_instant(sub.submitted_at, call.time_zone, 'd MMMM y, HH:mm:ss zzz')},
    )


def _message(kind: str, subject: str, text: str):
    def effect(session, actor, proposal, before, after):
        outbox.to_coordinator(session, proposal, kind=kind, dedup_key=f"{kind}:proposal:{proposal.id}:{after}",
                              subject=subject, text=f"{text.format(p=proposal, call=proposal.call)}\n",
                              context={"outcome": subject})

    return effect


def _open_checks(session, actor, proposal, before, after):
    open_checks(session, proposal, stage_of(after, Variant.of(proposal.call)))


_EFFECTS = {
    "close_submission": _open_checks,
    "submit": _record_submission,
    "submit_full": _record_submission,
    "declare_ineligible": _message("decision", "not eligible",
                                   "proposal {p.reference} \"{p.acronym}\" was found not eligible. "
                                   "The reasons are shown on its page."),
    "invite": _message("invitation", "invited to submit a full proposal",
                       "your pre-proposal {p.reference} \"{p.acronym}\" is invited to the full-proposal stage."),
    "not_invite": _message("decision", "not invited",
                           "your pre-proposal {p.reference} \"{p.acronym}\" was not invited to the full stage."),
}


# ---------------------------------------------------------------------------------------------------------
# Closing a stage and the eligibility step.


def close_stage(session: Session, actor, call: Call, kind: str) -> dict[str, int]:
    """Close submission of a stage: submitted proposals go to eligibility check with pending checks
    (the secretariat's formal check and one per funder with partners requesting money), drafts lapse."""
    require(can(actor, "call.manage", call))
    stage: CallStage | None = call.stage(kind)
    if stage is None:
        raise InvalidInput(f"this call has no {kind} stage")
    now = utcnow()
    if now < stage.deadline:
        raise InvalidInput(f"the deadline is {format_instant(stage.deadline, call.time_zone)}; "
                           "submission cannot be closed before it")
    if stage.closed_at is None:
        stage.closed_at = now
        audit.record(session, actor, "stage.closed", object_type="call_stage", object_id=stage.id,
                     call_id=call.id, after={"stage": kind, "closed_at": now.isoformat()})
    variant = Variant.of(call)
    submitted = "submitted" if kind == "pre" or not variant.two_stage else "full_submitted"
    drafts = ("draft",) if submitted == "submitted" else ("invited", "full_draft")
    counts = {"to_eligibility": 0, "not_submitted": 0}
    ids = session.scalars(
        select(Proposal.id).where(Proposal.call_id == call.id, Proposal.state.in_((submitted, *drafts)))
        .order_by(Proposal.id)
    ).all()
    for pid in ids:
        proposal = session.get(Proposal, pid)
        if proposal.state == submitted:
            transition(session, actor, pid, "close_submission")
            counts["to_eligibility"] += 1
        else:
            transition(session, actor, pid, "lapse", reason="not submitted before the deadline")
            counts["not_submitted"] += 1
    return counts


def open_checks(session: Session, proposal: Proposal, stage: str) -> list[EligibilityCheck]:
    """The pending checks of a stage: one formal check, one per partner requesting funding. Idempotent."""
    existing = session.scalars(select(EligibilityCheck).where(
        EligibilityCheck.proposal_id == proposal.id, EligibilityCheck.stage == stage)).all()
    if existing:
        return list(existing)
    checks = [EligibilityCheck(proposal_id=proposal.id, stage=stage, status="pending")]
    for p in proposal.partners:
        if p.requests_funding:
            checks.append(EligibilityCheck(proposal_id=proposal.id, partner_id=p.id, funder_id=p.funder_id,
                                           stage=stage, status="pending"))
    session.add_all(checks)
    session.flush()
    return checks


def sign_off(session: Session, actor, check_id: int, verdict: str, reason: str | None = None,
             expected_version: int | None = None) -> EligibilityCheck:
    """A funder officer's verdict on one of its partners, or the secretariat's formal verdict."""
    check = session.scalars(
        select(EligibilityCheck).where(EligibilityCheck.id == check_id).with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if check is None:
        raise NotFound("no such eligibility check")
    if expected_version is not None and check.version != expected_version:
        raise ChangedMeanwhile("this sign-off")
    proposal = session.get(Proposal, check.proposal_id)
    if check.partner_id is None:
        require(can(actor, "eligibility.manage", proposal))
    else:
        require(can(actor, "partner.sign_off", check))
    if proposal.state not in ("eligibility_check", "full_eligibility_check"):
        raise DomainError("the eligibility step of this proposal is closed")
    if verdict not in ("eligible", "ineligible"):
        raise InvalidInput("choose eligible or not eligible", "verdict")
    reason = (reason or "").strip() or None
    if verdict == "ineligible" and not reason:
        raise InvalidInput("give the reason why the partner is not eligible", "reason")
    before = {"status": check.status, "reason": check.reason}
    check.status, check.reason = verdict, reason
    check.decided_by_id, check.decided_at = actor.id, utcnow()
    audit.record(session, actor, "eligibility.signed_off", check, call_id=proposal.call_id,
                 before=before, after={"status": verdict, "reason": reason, "proposal_id": proposal.id})
    try:
        session.flush()
    except StaleDataError:
        raise ChangedMeanwhile("this sign-off") from None
    return check


def decide_eligibility(session: Session, actor, proposal_id: int) -> Proposal:
    """Close the eligibility step for one proposal: all eligible -> onwards, any ineligible -> ineligible."""
    proposal = lock_proposal(session, proposal_id)
    checks = session.scalars(select(EligibilityCheck).where(
        EligibilityCheck.proposal_id == proposal.id,
        EligibilityCheck.stage == stage_of(proposal.state, Variant.of(proposal.call)),
    )).all()
    from workflow.eligibility import blocking_ineligible_checks

    blocking = blocking_ineligible_checks(proposal, checks)
    if blocking:
        reasons = "; ".join(c.reason or "" for c in blocking)
        return transition(session, actor, proposal.id, "declare_ineligible", reason=reasons)
    replaceable = [c for c in checks if c.status == "ineligible"]
    note = ("eligible; to replace or remove at the full stage: " + "; ".join(c.reason or "" for c in replaceable)
            if replaceable else None)
    return transition(session, actor, proposal.id, "declare_eligible", reason=note)
