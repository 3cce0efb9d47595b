"""Submitting, reopening and withdrawing a proposal, the full proposal, consortium-change approval, the
rebuttal window and the outcome an applicant reads (DOMAIN.md §1 steps 2, 5, 6, 9, 13; rules 1, 3, 13, 18).

State changes go through workflow.operations.transition; what is added here is what the applicant's
pages need around them: the confirmation, the reason for a withdrawal, the pre-stage baseline of the
consortium, the secretariat's approval of consortium changes, the rebuttal and its window, and the outcome
of each stage in plain words.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from workflow import audit, outbox
from workflow.access import can
from workflow.clock import utcnow
from workflow.errors import DomainError, InvalidInput
from workflow.lifecycle import WITHDRAWABLE, Variant, stage_of
from workflow.models import (
    AuditEvent,
    Call,
    ChangeApproval,
    EligibilityCheck,
    Partner,
    Proposal,
    Rebuttal,
    Submission,
)
from workflow.operations import lock_proposal, transition
from workflow.proposals import require
from workflow.timefmt import format_instant

SUBMIT_TRIGGER = {"draft": "submit", "full_draft": "submit_full"}
REOPEN_TRIGGER = {"submitted": "reopen", "full_submitted": "reopen_full"}
MAX_REASON_CHARS = 2000
MAX_JUSTIFICATION_CHARS = 5000


def submit_trigger(proposal: Proposal) -> str:
    return SUBMIT_TRIGGER.get(proposal.state, "submit")


def reopen_trigger(proposal: Proposal) -> str:
    return REOPEN_TRIGGER.get(proposal.state, "reopen")


def latest_submission(session: Session, proposal: Proposal, stage: str | None = None) -> Submission | None:
    query = select(Submission).where(Submission.proposal_id == proposal.id)
    if stage is not None:
        query = query.where(Submission.stage == stage)
    return session.scalars(query.order_by(Submission.id.desc()).limit(1)).first()


# ---------------------------------------------------------------------------------------------------------
# Submit, reopen, withdraw, start the full proposal


def submit(session: Session, actor, proposal_id: int, *, expected_version: int | None,
           confirmed: bool = True) -> Submission:
    """Submit the pre-proposal or the full proposal (whichever stage it is in). Returns the new snapshot."""
    proposal = lock_proposal(session, proposal_id)
    trigger = submit_trigger(proposal)
    require(can(actor, f"proposal.{trigger}", proposal))
    if not confirmed:
        raise InvalidInput("tick the box to confirm that the consortium submits this proposal", "confirm")
    transition(session, actor, proposal_id, trigger, expected_version=expected_version)
    return latest_submission(session, proposal)


def reopen(session: Session, actor, proposal_id: int, *, expected_version: int | None) -> Proposal:
    """Take a submitted proposal back to draft before the deadline; its submissions are kept."""
    proposal = lock_proposal(session, proposal_id)
    return transition(session, actor, proposal_id, reopen_trigger(proposal), expected_version=expected_version)


def withdraw(session: Session, actor, proposal_id: int, *, reason: str, expected_version: int | None,
             confirmed: bool = True) -> Proposal:
    """Withdraw the proposal (until a funding decision). The reason is recorded and mailed."""
    proposal = lock_proposal(session, proposal_id)
    require(can(actor, "proposal.withdraw", proposal))
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("say why the proposal is withdrawn", "reason")
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidInput(f"the reason has {len(reason)} characters; at most {MAX_REASON_CHARS} are allowed",
                           "reason")
    if not confirmed:
        raise InvalidInput("tick the box to confirm the withdrawal", "confirm")
    if proposal.state not in WITHDRAWABLE:
        raise DomainError("this proposal can no longer be withdrawn: a decision has been taken")
    transition(session, actor, proposal_id, "withdraw", reason=reason, expected_version=expected_version)
    outbox.to_coordinator(
        session, proposal, kind="withdrawn", dedup_key=f"withdrawn:proposal:{proposal.id}", subject="withdrawn",
        text=(f"proposal {proposal.reference} \"{proposal.acronym}\" was withdrawn by {actor.name} on "
              f"{format_instant(utcnow(), proposal.call.time_zone)}.\nReason given: {reason}\n"),
    )
    return proposal


def start_full(session: Session, actor, proposal_id: int, *, expected_version: int | None) -> Proposal:
    """Start the full proposal of an invited pre-proposal. The same row carries the texts and partners on.

    It records the consortium's pre-stage baseline: which partners their own funder found ineligible, so
    that removing or replacing them is still recognised after their rows (and checks) are gone.
    """
    proposal = transition(session, actor, proposal_id, "start_full", expected_version=expected_version)
    pre = latest_submission(session, proposal, "pre")
    audit.record(session, actor, BASELINE_ACTION, proposal, after={
        "pre_submission_id": pre.id if pre else None,
        "ineligible_partners": [
            {**_key_dict(p), "funder": p.funder.acronym if p.funder else None, "reason": reason}
            for p, reason in _ineligible_pre_partners(session, proposal)
        ],
    })
    return proposal


# ---------------------------------------------------------------------------------------------------------
# Consortium changes between the stages (rule 13, with rule 12's exception)

BASELINE_ACTION = "proposal.full_baseline"
APPROVAL_ACTION = "proposal.changes_approved"


def _norm(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


def partner_key(organisation, country, pi_email) -> tuple[str, str, str]:
    """A partner's identity across the stages: organisation, country and PI e-mail."""
    return (_norm(organisation), (country or "").strip().upper(), (pi_email or "").strip().lower())


def _key_dict(p) -> dict:
    get = p.get if isinstance(p, dict) else (lambda k: getattr(p, k, None))
    return {"organisation": get("organisation"), "country": get("country"), "pi_name": get("pi_name"),
            "pi_email": get("pi_email")}


def _key_of(p) -> tuple[str, str, str]:
    d = _key_dict(p)
    return partner_key(d["organisation"], d["country"], d["pi_email"])


@dataclass(frozen=True)
class PartnerChange:
    kind: str  # "added" | "removed"
    organisation: str
    country: str
    pi_name: str
    pi_email: str
    exempt: bool = False
    note: str = ""

    def describe(self) -> str:
        from workflow.countries import country_name

        where = country_name(self.country) if self.country else "no country"
        verb = "added after" if self.kind == "added" else "removed since"
        return f"partner {self.organisation} ({where}, PI {self.pi_email}) was {verb} the pre-proposal"


@dataclass
class ConsortiumChanges:
    """How the consortium differs from the latest pre-proposal submission, and what is approved."""

    baseline: Submission | None
    changes: list[PartnerChange] = field(default_factory=list)
    approval: ChangeApproval | None = None
    approval_covers: bool = False

    @property
    def pending(self) -> list[PartnerChange]:
        """Changes that still need the secretariat's approval."""
        if self.approval_covers:
            return []
        return [c for c in self.changes if not c.exempt]

    @property
    def needs_approval(self) -> list[PartnerChange]:
        return [c for c in self.changes if not c.exempt]

    def reason(self) -> str | None:
        pending = self.pending
        if not pending:
            return None
        what = "; ".join(c.describe() for c in pending)
        if self.approval is not None:
            return (f"{what}; the consortium changed after the call secretariat's approval, so the changes need "
                    "a new approval from the call secretariat")
        return f"{what}; changes need the call secretariat's approval"


def _ineligible_pre_partners(session: Session, proposal: Proposal) -> list[tuple[Partner, str]]:
    """Partners that still exist and that their own funder found ineligible at the pre-proposal stage."""
    checks = session.scalars(select(EligibilityCheck).where(
        EligibilityCheck.proposal_id == proposal.id, EligibilityCheck.stage == "pre",
        EligibilityCheck.partner_id.is_not(None), EligibilityCheck.status == "ineligible",
    ).order_by(EligibilityCheck.id)).all()
    out = []
    for check in checks:
        partner = session.get(Partner, check.partner_id)
        if partner is not None and partner.proposal_id == proposal.id and (
                check.funder_id is None or check.funder_id == partner.funder_id):
            out.append((partner, check.reason or ""))
    return out


def _latest_event(session: Session, action: str, object_type: str, object_id: int) -> AuditEvent | None:
    return session.scalars(
        select(AuditEvent).where(AuditEvent.action == action, AuditEvent.object_type == object_type,
                                 AuditEvent.object_id == object_id)
        .order_by(AuditEvent.seq.desc()).limit(1)
    ).first()


def _ineligible_keys(session: Session, proposal: Proposal) -> dict[tuple, str]:
    """Identity -> note, for partners their own funder found ineligible at the pre-proposal stage."""
    found: dict[tuple, str] = {}
    event = _latest_event(session, BASELINE_ACTION, "proposal", proposal.id)
    for entry in ((event.after or {}).get("ineligible_partners") or []) if event else []:
        found[_key_of(entry)] = f"found ineligible by {entry.get('funder') or 'its funder'} at the pre-proposal stage"
    for partner, _reason in _ineligible_pre_partners(session, proposal):
        found.setdefault(_key_of(partner), f"found ineligible by "
                                           f"{partner.funder.acronym if partner.funder else 'its funder'} "
                                           "at the pre-proposal stage")
    return found


def _current_keys(proposal: Proposal) -> list[tuple]:
    return sorted(_key_of(p) for p in proposal.partners)


def consortium_changes(session: Session, proposal: Proposal) -> ConsortiumChanges:
    """Partners added or removed (a replacement is both) since the latest pre-proposal submission.

    Removing or replacing a partner that its own funder found ineligible at the pre-proposal stage needs no
    approval when the call allows it (consortium.allow_replacing_ineligible_partner).
    """
    variant = Variant.of(proposal.call)
    if not variant.two_stage:
        return ConsortiumChanges(None)
    base = latest_submission(session, proposal, "pre")
    if base is None:
        return ConsortiumChanges(None)
    before = list(base.content.get("partners") or [])
    before_keys = Counter(_key_of(p) for p in before)
    now_keys = Counter(_key_of(p) for p in proposal.partners)
    removed_keys = before_keys - now_keys
    added_keys = now_keys - before_keys
    allow = proposal.call.settings.consortium.allow_replacing_ineligible_partner
    ineligible = _ineligible_keys(session, proposal) if allow else {}

    changes: list[PartnerChange] = []
    exempt_removals = 0
    for p in sorted(before, key=lambda p: p.get("position") or 0):
        key = _key_of(p)
        if removed_keys[key] > 0:
            removed_keys[key] -= 1
            note = ineligible.get(key, "")
            exempt_removals += bool(note)
            d = _key_dict(p)
            changes.append(PartnerChange("removed", d["organisation"] or "", d["country"] or "",
                                         d["pi_name"] or "", d["pi_email"] or "", exempt=bool(note), note=note))
    for p in sorted(proposal.partners, key=lambda p: p.position):
        key = _key_of(p)
        if added_keys[key] > 0:
            added_keys[key] -= 1
            exempt = exempt_removals > 0
            exempt_removals -= exempt
            changes.append(PartnerChange(
                "added", p.organisation or "", p.country or "", p.pi_name or "", p.pi_email or "",
                exempt=exempt, note="replaces a partner its own funder found ineligible" if exempt else ""))

    result = ConsortiumChanges(base, changes)
    result.approval = session.scalars(
        select(ChangeApproval).where(ChangeApproval.proposal_id == proposal.id)
        .order_by(ChangeApproval.id.desc()).limit(1)
    ).first()
    if result.approval is not None:
        event = _latest_event(session, APPROVAL_ACTION, "changeapproval", result.approval.id)
        approved = (event.after or {}).get("consortium") if event is not None else None
        # An approval covers the consortium it was given for; an approval without that record covers all.
        result.approval_covers = approved is None or sorted(map(tuple, approved)) == _current_keys(proposal)
    return result


def approve_changes(session: Session, actor, proposal: Proposal, justification: str) -> ChangeApproval:
    """The call secretariat records (for the CSC) its approval of the consortium as it now stands."""
    require(can(actor, "proposal.approve_changes", proposal))
    if proposal.state != "full_draft":
        raise DomainError("consortium changes can be approved only while the full proposal is a draft")
    justification = (justification or "").strip()
    if not justification:
        raise InvalidInput("give the justification for approving the changes", "justification")
    if len(justification) > MAX_JUSTIFICATION_CHARS:
        raise InvalidInput(f"the justification has {len(justification)} characters; at most "
                           f"{MAX_JUSTIFICATION_CHARS} are allowed", "justification")
    report = consortium_changes(session, proposal)
    if not report.needs_approval:
        raise InvalidInput("the consortium has no changes that need approval", "justification")
    if report.approval is not None and report.approval_covers:
        raise InvalidInput("these changes are approved already", "justification")
    approval = ChangeApproval(proposal_id=proposal.id, approved_by_id=actor.id, approved_at=utcnow(),
                              justification=justification)
    session.add(approval)
    session.flush()
    audit.record(session, actor, APPROVAL_ACTION, approval, call_id=proposal.call_id, reason=justification,
                 after={"proposal_id": proposal.id,
                        "changes": [c.describe() for c in report.needs_approval],
                        "consortium": [list(k) for k in _current_keys(proposal)]})
    outbox.to_coordinator(
        session, proposal, kind="changes_approved", dedup_key=f"changes_approved:{approval.id}",
        subject="consortium changes approved",
        text=(f"the call secretariat approved these changes to the consortium of {proposal.reference} "
              f"\"{proposal.acronym}\":\n"
              + "".join(f"- {c.describe()}\n" for c in report.needs_approval)
              + f"\nJustification: {justification}\n"
              "Any further change to the consortium needs a new approval.\n"),
    )
    return approval


# ---------------------------------------------------------------------------------------------------------
# The rebuttal (rule 18)


@dataclass
class RebuttalWindowResult:
    opens_at: dt.datetime
    closes_at: dt.datetime
    proposals: list[int]
    reviews_released: int


ReleaseReviews = Callable[[Session, list[int]], int]


def open_rebuttal_window(session: Session, actor, call: Call, *, release_reviews: ReleaseReviews,
                         ) -> RebuttalWindowResult:
    """Open the call's rebuttal window (rebuttal.days long, from now): every proposal under review moves
    to "rebuttal", its submitted reviews are released to the applicants (`release_reviews`, supplied by
    reviews/ since workflow/ does not know review tables), and each coordinator is mailed."""
    require(can(actor, "call.manage", call))
    if not call.has_rebuttal:
        raise DomainError("this call has no rebuttal step")
    if call.rebuttal_opens_at is not None:
        raise DomainError(f"the rebuttal window was opened already, on "
                          f"{format_instant(call.rebuttal_opens_at, call.time_zone)}")
    ids = list(session.scalars(select(Proposal.id).where(
        Proposal.call_id == call.id, Proposal.state == "under_review").order_by(Proposal.id)))
    if not ids:
        raise DomainError("no proposal of this call is under review, so there is nothing to rebut")
    now = utcnow()
    rules = call.settings.rebuttal
    call.rebuttal_opens_at, call.rebuttal_closes_at = now, now + dt.timedelta(days=rules.days)
    audit.record(session, actor, "call.rebuttal_opened", call, call_id=call.id, after={
        "opens_at": now.isoformat(), "closes_at": call.rebuttal_closes_at.isoformat(), "proposals": len(ids)})
    closes = format_instant(call.rebuttal_closes_at, call.time_zone)
    for pid in ids:
        proposal = transition(session, actor, pid, "open_rebuttal")
        outbox.to_coordinator(
            session, proposal, kind="rebuttal_open", dedup_key=f"rebuttal_open:proposal:{pid}",
            subject="the reviews are available for your rebuttal",
            text=(f"the reviews of {proposal.reference} \"{proposal.acronym}\" are available on its page. "
                  f"As coordinator you may submit one rebuttal of at most {rules.max_chars:,} characters "
                  f"before {closes}.\n"),
        )
    released = release_reviews(session, ids)
    return RebuttalWindowResult(now, call.rebuttal_closes_at, ids, released)


def close_rebuttal_window(session: Session, actor, call: Call) -> int:
    """After the window's end, move every proposal still in "rebuttal" to the panel."""
    require(can(actor, "call.manage", call))
    if call.rebuttal_closes_at is None:
        raise DomainError("the rebuttal window has not been opened")
    if utcnow() < call.rebuttal_closes_at:
        raise DomainError(f"the rebuttal window is open until "
                          f"{format_instant(call.rebuttal_closes_at, call.time_zone)}")
    ids = list(session.scalars(select(Proposal.id).where(
        Proposal.call_id == call.id, Proposal.state == "rebuttal").order_by(Proposal.id)))
    for pid in ids:
        transition(session, actor, pid, "close_rebuttal")
    audit.record(session, actor, "call.rebuttal_closed", call, call_id=call.id, after={"proposals": len(ids)})
    return len(ids)


def rebuttal_window_state(call: Call, now: dt.datetime | None = None) -> str:
    """"not_opened", "open" or "closed" (the end instant is exclusive)."""
    now = now or utcnow()
    if call.rebuttal_opens_at is None or now < call.rebuttal_opens_at:
        return "not_opened"
    if call.rebuttal_closes_at is not None and now >= call.rebuttal_closes_at:
        return "closed"
    return "open"


def normalise_text(text: str | None) -> str:
    """Browsers send line breaks as CR LF; count and keep them as one character each."""
    return (text or "").replace("\r\n", "\n").replace("\r", "\n")


def rebuttal_of(session: Session, proposal: Proposal) -> Rebuttal | None:
    return session.scalar(select(Rebuttal).where(Rebuttal.proposal_id == proposal.id))


def submit_rebuttal(session: Session, actor, proposal: Proposal, text: str) -> Rebuttal:
    """The coordinator's one rebuttal, inside the window, within the call's character limit."""
    proposal = lock_proposal(session, proposal.id)
    require(can(actor, "proposal.rebut", proposal))
    call = proposal.call
    if not call.has_rebuttal:
        raise DomainError("this call has no rebuttal step")
    existing = rebuttal_of(session, proposal)
    if existing is not None:
        raise DomainError(f"a rebuttal was already submitted on "
                          f"{format_instant(existing.submitted_at, call.time_zone)}; only one is allowed per proposal")
    window = rebuttal_window_state(call)
    if window == "not_opened":
        raise DomainError("the rebuttal window is not open yet")
    if window == "closed":
        raise DomainError(f"the rebuttal window closed on {format_instant(call.rebuttal_closes_at, call.time_zone)}")
    if proposal.state != "rebuttal":
        raise DomainError("this proposal is not in the rebuttal step")
    text = normalise_text(text).strip()
    if not text:
        raise InvalidInput("write your rebuttal", "text")
    limit = call.settings.rebuttal.max_chars
    if len(text) > limit:
        raise InvalidInput(f"your rebuttal has {len(text):,} characters; at most {limit:,} are allowed", "text")
    rebuttal = Rebuttal(proposal_id=proposal.id, text=text, submitted_at=utcnow(), submitted_by_id=actor.id)
    session.add(rebuttal)
    try:
        session.flush()
    except IntegrityError:
        raise DomainError("a rebuttal was already submitted; only one is allowed per proposal") from None
    audit.record(session, actor, "proposal.rebuttal_submitted", rebuttal, call_id=call.id,
                 after={"proposal_id": proposal.id, "characters": len(text)})
    outbox.to_coordinator(
        session, proposal, kind="rebuttal_receipt", dedup_key=f"rebuttal_receipt:proposal:{proposal.id}",
        subject="rebuttal received",
        text=(f"the rebuttal of {proposal.reference} \"{proposal.acronym}\" ({len(text):,} characters) was "
              f"received on {format_instant(rebuttal.submitted_at, call.time_zone, 'd MMMM y, HH:mm:ss zzz')}.\n"),
    )
    return rebuttal


# ---------------------------------------------------------------------------------------------------------
# The outcome, per stage, in plain words


@dataclass
class StageOutcome:
    stage: str  # "pre" | "full"
    title: str
    status: str  # the outcome in plain words
    final: bool = False
    reasons: list[str] = field(default_factory=list)


_WORDS = {
    # state: (what the applicant is told, whether it is a final outcome of that stage)
    "submitted": ("Submitted; the eligibility check follows the deadline", False),
    "eligibility_check": ("Submitted; the eligibility check is in progress", False),
    "pre_review": ("Eligible; under evaluation", False),
    "not_invited": ("Eligible, but not invited to submit a full proposal", True),
    "invited": ("Invited; the full proposal has not been started", False),
    "full_draft": ("The full proposal is being written and has not been submitted", False),
    "full_submitted": ("Submitted; the eligibility check follows the deadline", False),
    "full_eligibility_check": ("Submitted; the eligibility check is in progress", False),
    "under_review": ("Eligible; under review by independent experts", False),
    "rebuttal": ("Eligible; the reviews are available for your rebuttal", False),
    "panel": ("Eligible; to be discussed by the evaluation panel", False),
    "not_recommended": ("Not recommended for funding by the evaluation panel", True),
    "recommended": ("Recommended for funding by the evaluation panel; the funding decision is pending", False),
    "selected": ("Selected for funding; the national funding organisations will contact the partners", False),
    "reserve": ("On the reserve list: funded only if money becomes available", False),
    "not_funded": ("Recommended, but not funded", True),
    "funded": ("Funded", True),
}
INVITED = "Eligible, and invited to submit a full proposal"
def _reasons(session: Session, proposal: Proposal, stage: str) -> list[str]:
    checks = session.scalars(select(EligibilityCheck).where(
        EligibilityCheck.proposal_id == proposal.id, EligibilityCheck.stage == stage,
        EligibilityCheck.status == "ineligible").order_by(EligibilityCheck.id)).all()
    out = []
    for c in checks:
        if c.partner_id is None:
            who = "Call secretariat (formal check)"
        else:
            partner = c.partner
            funder = partner.funder.acronym if partner is not None and partner.funder else "the funder"
            who = f"{funder}, for {partner.organisation}" if partner is not None else funder
        out.append(f"{who}: {c.reason}")
    return out


def _submitted(session: Session, proposal: Proposal, stage: str) -> bool:
    return latest_submission(session, proposal, stage) is not None


def _withdrawal(session: Session, proposal: Proposal) -> tuple[str, str | None]:
    """(state before the withdrawal, reason given)."""
    event = _latest_event(session, "proposal.withdraw", "proposal", proposal.id)
    if event is None:
        return "draft", None
    return (event.before or {}).get("state", "draft"), event.reason


def outcome_of(session: Session, proposal: Proposal) -> list[StageOutcome]:
    """What an applicant is told about each stage so far, in plain words."""
    variant = Variant.of(proposal.call)
    state, withdrawn_reason = proposal.state, None
    if state == "withdrawn":
        state, withdrawn_reason = _withdrawal(session, proposal)
    stage = stage_of(state, variant)
    if state == "not_submitted":
        stage = "pre" if variant.two_stage and not _submitted(session, proposal, "pre") else "full"

    out: list[StageOutcome] = []
    if variant.two_stage and stage == "full":
        out.append(StageOutcome("pre", "Pre-proposal", INVITED, final=True))
    current = StageOutcome(stage, ("Pre-proposal" if stage == "pre" else "Full proposal") if variant.two_stage
                           else "Proposal", "")
    if state == "draft":
        current.status = ("Reopened for changes; submit it again before the deadline"
                          if _submitted(session, proposal, stage) else "Not submitted yet")
    elif state in ("ineligible", "full_ineligible"):
        current.status, current.final = "Not eligible", True
        current.reasons = _reasons(session, proposal, stage)
    elif state == "not_submitted":
        current.status, current.final = "Not submitted before the deadline", True
    elif state in _WORDS:
        current.status, current.final = _WORDS[state]
    else:
        current.status = "In progress"
    if proposal.state == "withdrawn":
        current.status, current.final = "Withdrawn by the consortium or the call secretariat", True
        current.reasons = [f"Reason given: {withdrawn_reason}"] if withdrawn_reason else []
    out.append(current)
    return out
