"""Decision letters (issue 6, DOMAIN §7, rule 23): which letter a proposal gets at a stage, when a stage's
letters may be generated, the secretariat's letter template, the background jobs that render a stage's
letters into a ZIP, and sending the letters to the coordinators through the outbox.

Rendering (Jinja in a sandbox, WeasyPrint) is the web layer's (webapp.letters); this module decides and
records. Letters are managed by the call secretariat (the policy's "call.manage").

- Outcomes per stage. Pre-proposal stage: not eligible, not invited, invited. Full stage (or the only
  stage of a single-stage call): not eligible, funded (every funder confirmed), reserve, not funded (the
  panel did not recommend it, or it was not funded). A selected proposal waits for its funders'
  confirmations; proposals still in evaluation, withdrawn or never submitted get no letter.
- Rule 23. Full-stage letters are generated only after the steering committee's approval of the funding
  list; pre-stage letters once no pre-proposal waits for its eligibility or invitation decision. Every
  coordinator gets exactly one letter per stage (a unique constraint on proposal and stage): generating
  again replaces an unsent letter; a sent letter never changes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defaultload, defer, joinedload, load_only, subqueryload
from sqlalchemy.orm.exc import StaleDataError

from workflow import audit, outbox
from workflow.access import can
from workflow.callconfig import stage_name
from workflow.clock import utcnow
from workflow.errors import ChangedMeanwhile, DomainError, InvalidInput
from workflow.funding_ops import current_funding
from workflow.letter_models import DecisionLetter, LetterExportJob, LetterTemplate
from workflow.lifecycle import Variant, stage_of
from workflow.models import Call, Proposal, Submission, User
from workflow.paging import Window
from workflow.proposals import require

NOT_ELIGIBLE, NOT_INVITED, INVITED = "not_eligible", "not_invited", "invited"
FUNDED, RESERVE, NOT_FUNDED = "funded", "reserve", "not_funded"
OUTCOME_LABELS = {
    NOT_ELIGIBLE: "Not eligible",
    NOT_INVITED: "Not invited to the full stage",
    INVITED: "Invited to submit a full proposal",
    FUNDED: "Funded",
    RESERVE: "On the reserve list",
    NOT_FUNDED: "Not funded",
}
STAGE_OUTCOMES = {"pre": (NOT_ELIGIBLE, NOT_INVITED, INVITED), "full": (NOT_ELIGIBLE, FUNDED, RESERVE, NOT_FUNDED)}
STAGES = ("pre", "full")
# Pre-proposals that still wait for a decision of the pre stage.
PRE_PENDING_STATES = ("submitted", "eligibility_check", "pre_review")
# Full-stage proposals on their way to a decision (no letter yet), and what they wait for.
FULL_WAITING = {
    "selected": "selected for funding; waiting for the funders' confirmations",
    "recommended": "recommended; the funding list has not placed it yet",
}

# A letter's status on the letters page (letter_status), in the order the counts are shown.
LETTER_STATUSES = ("not generated", "outdated", "generated", "sent", "sent, outdated")

MAX_TEMPLATE_CHARS = 20_000
STALE_AFTER = dt.timedelta(seconds=90)  # a running job whose heartbeat is older was interrupted
ACTIVE_JOB_STATUSES = ("queued", "running")


def _check_stage(call: Call, stage: str) -> str:
    if stage not in STAGES or call.stage(stage) is None:
        raise InvalidInput(f"this call has no {stage} stage", "stage")
    return stage


# ---------------------------------------------------------------------------------------------------------
# Which letter, and when


def letter_outcome(proposal: Proposal, stage: str, variant: Variant | None = None) -> str | None:
    """The decision a letter of `stage` tells this proposal's coordinator, or None (no letter: the stage
    has not decided, or the proposal was withdrawn or never submitted). `variant`: the call's, when the
    caller asks for many proposals of one call."""
    variant = variant or Variant.of(proposal.call)
    submitted_pre = stage == "pre" and any(s.stage == "pre" for s in proposal.submissions)
    return outcome_of_state(proposal.state, stage, variant, submitted_pre)


def outcome_of_state(state: str, stage: str, variant: Variant, submitted_pre: bool) -> str | None:
    """letter_outcome from the columns it depends on: the proposal's state, the call's variant and whether a
    pre-proposal was submitted (read only at the pre stage)."""
    if stage == "pre":
        if not variant.two_stage:
            return None
        if state == "ineligible":
            return NOT_ELIGIBLE
        if state == "not_invited":
            return NOT_INVITED
        if state != "withdrawn" and stage_of(state, variant) == "full" and submitted_pre:
            return INVITED
        return None
    if state == ("full_ineligible" if variant.two_stage else "ineligible"):
        return NOT_ELIGIBLE
    return {"funded": FUNDED, "reserve": RESERVE, "not_funded": NOT_FUNDED, "not_recommended": NOT_FUNDED}.get(state)


def letter_status(outcome: str, letter_outcome_: str | None, sent: bool) -> str:
    """A letter's status on the letters page (one of LETTER_STATUSES): "not generated" (no letter),
    "generated", "sent", "outdated" (generated for another outcome, not sent) or "sent, outdated" (sent,
    and the outcome changed since). `letter_outcome_` is the stored letter's outcome, None without one."""
    if letter_outcome_ is None:
        return "not generated"
    if letter_outcome_ != outcome:
        return "sent, outdated" if sent else "outdated"
    return "sent" if sent else "generated"


def stage_problem(session: Session, call: Call, stage: str) -> str | None:
    """Why the letters of `stage` cannot be generated or sent now (rule 23); None when they can."""
    if stage not in STAGES or call.stage(stage) is None:
        return f"this call has no {stage} stage"
    if stage == "full":
        if current_funding(session, call) is None:
            return ("the steering committee's approval of the funding list has not been recorded yet; the "
                    f"{stage_name(call, stage)} stage's letters are generated only after it (rule 23)")
        return None
    pending = session.scalar(select(func.count()).select_from(Proposal).where(
        Proposal.call_id == call.id, Proposal.state.in_(PRE_PENDING_STATES)))
    if pending:
        return (f"{pending} pre-proposal{'s' if pending != 1 else ''} still wait{'s' if pending == 1 else ''} for "
                "the eligibility or invitation decision; the pre-proposal letters are generated once every "
                "pre-proposal has its decision (rule 23)")
    return None


@dataclass
class StageLetters:
    """A stage's letters as the secretariat sees them."""

    stage: str
    problem: str | None
    items: list[tuple[Proposal, str]]  # proposals with a letter at this stage, and its outcome
    waiting: list[tuple[Proposal, str]]  # full stage: proposals on their way to a decision, and why
    letters: dict[int, DecisionLetter]  # proposal id -> its letter, if generated
    counts: dict[str, int] = field(default_factory=dict)

    def status(self, proposal: Proposal, outcome: str) -> str:
        letter = self.letters.get(proposal.id)
        return letter_status(outcome, letter.outcome if letter else None, bool(letter and letter.sent))

    @property
    def to_send(self) -> list[DecisionLetter]:
        """The generated letters of the decision as it stands, not sent yet."""
        return [self.letters[p.id] for p, outcome in self.items if self.status(p, outcome) == "generated"]

    @property
    def not_generated(self) -> list[Proposal]:
        """Proposals whose letter is missing or was generated for another decision (and not sent)."""
        return [p for p, outcome in self.items if self.status(p, outcome) in ("not generated", "outdated")]


def stage_letters(session: Session, call: Call, stage: str, *, summary: bool = False) -> StageLetters:
    """Every proposal of the call with its letter at `stage`, in a fixed number of statements whatever the
    size of the call: the proposals with their coordinators (joined), then their submissions and partners
    in one statement each (subqueryload; selectinload would send one per 500 proposals), then the letters.
    `summary=True` for pages that show the letters' status: no partners, no stored PDFs, no submission
    contents (the export renders the letters and needs them)."""
    _check_stage(call, stage)
    options = [joinedload(Proposal.coordinator).lazyload(User.grants)]
    if summary:
        # The status pages list every proposal of the call: only what they show and letter_outcome reads.
        options += [load_only(Proposal.id, Proposal.call_id, Proposal.reference, Proposal.acronym, Proposal.state,
                              Proposal.coordinator_id),
                    defaultload(Proposal.coordinator).load_only(User.id, User.name, User.email)]
    if stage == "pre":  # letter_outcome asks whether a pre-proposal was submitted
        submissions = subqueryload(Proposal.submissions)
        options.append(submissions.load_only(Submission.proposal_id, Submission.stage) if summary else submissions)
    if not summary:
        options.append(subqueryload(Proposal.partners))
    proposals = session.scalars(select(Proposal).where(Proposal.call_id == call.id).order_by(Proposal.reference)
                                .options(*options)).all()
    items, waiting = [], []
    variant = Variant.of(call)
    for p in proposals:
        outcome = letter_outcome(p, stage, variant)
        if outcome is not None:
            items.append((p, outcome))
        elif stage == "full" and p.state in FULL_WAITING:
            waiting.append((p, FULL_WAITING[p.state]))
    query = select(DecisionLetter).where(DecisionLetter.call_id == call.id, DecisionLetter.stage == stage)
    if summary:
        query = query.options(defer(DecisionLetter.pdf))
    letters = {x.proposal_id: x for x in session.scalars(query)}
    counts: dict[str, int] = {}
    for _p, outcome in items:
        counts[outcome] = counts.get(outcome, 0) + 1
    return StageLetters(stage, stage_problem(session, call, stage), items, waiting, letters, counts)


@dataclass
class LetterRow:
    """A row of the letters page: the proposal (with its coordinator), the decision and the letter's status."""

    proposal: Proposal
    outcome: str
    status: str
    sent_at: dt.datetime | None


@dataclass
class LettersOverview:
    """What the letters page shows of a stage: counts over the whole stage, one page of rows."""

    stage: str
    problem: str | None
    total: int  # proposals with a letter at this stage
    counts: dict[str, int]  # outcome -> letters
    status_counts: dict[str, int]  # LETTER_STATUSES -> letters, none left out
    window: Window
    rows: list[LetterRow]
    waiting: list[tuple[str, str, str]]  # full stage: (reference, acronym, why) of proposals not decided yet
    sent_outdated: list[tuple[str, str, str, str]]  # (reference, acronym, outcome sent, outcome now)

    @property
    def to_send(self) -> int:
        return self.status_counts["generated"]


def letters_overview(session: Session, call: Call, stage: str, page: int = 1) -> LettersOverview:
    """The letters page of a stage in five statements whose rows do not grow with the call except as columns
    (state, reference, acronym; each letter's outcome and sending): the outcome and status of every proposal
    come from those, and only the page's proposals are loaded with their coordinators."""
    _check_stage(call, stage)
    variant = Variant.of(call)
    proposals = session.execute(select(Proposal.id, Proposal.reference, Proposal.acronym, Proposal.state)
                                .where(Proposal.call_id == call.id).order_by(Proposal.reference)).all()
    submitted_pre: set[int] = set()
    if stage == "pre":
        submitted_pre = set(session.scalars(
            select(Submission.proposal_id).join(Proposal, Submission.proposal_id == Proposal.id)
            .where(Proposal.call_id == call.id, Submission.stage == "pre").distinct()))
    letters = {pid: (outcome, sent_at) for pid, outcome, sent_at in session.execute(
        select(DecisionLetter.proposal_id, DecisionLetter.outcome, DecisionLetter.sent_at)
        .where(DecisionLetter.call_id == call.id, DecisionLetter.stage == stage))}
    items, waiting, sent_outdated = [], [], []
    counts: dict[str, int] = {}
    status_counts = dict.fromkeys(LETTER_STATUSES, 0)
    for pid, reference, acronym, state in proposals:
        outcome = outcome_of_state(state, stage, variant, pid in submitted_pre)
        if outcome is None:
            if stage == "full" and state in FULL_WAITING:
                waiting.append((reference, acronym, FULL_WAITING[state]))
            continue
        stored, sent_at = letters.get(pid, (None, None))
        status = letter_status(outcome, stored, sent_at is not None)
        items.append((pid, outcome, status, sent_at))
        counts[outcome] = counts.get(outcome, 0) + 1
        status_counts[status] += 1
        if status == "sent, outdated":
            sent_outdated.append((reference, acronym, stored, outcome))
    window = Window(len(items), page)
    shown = window.slice(items)
    loaded = {p.id: p for p in session.scalars(
        select(Proposal).where(Proposal.id.in_([pid for pid, *_ in shown]))
        .options(joinedload(Proposal.coordinator).lazyload(User.grants)))} if shown else {}
    rows = [LetterRow(loaded[pid], outcome, status, sent_at) for pid, outcome, status, sent_at in shown
            if pid in loaded]  # (a proposal deleted between the two statements is left out)
    return LettersOverview(stage, stage_problem(session, call, stage), len(items), counts, status_counts, window,
                           rows, waiting, sent_outdated)


def letter_of(session: Session, proposal: Proposal, stage: str) -> DecisionLetter | None:
    return session.scalar(select(DecisionLetter).where(DecisionLetter.proposal_id == proposal.id,
                                                       DecisionLetter.stage == stage))


def released_letters(session: Session, proposal: Proposal) -> list[DecisionLetter]:
    """The letters sent to this proposal's coordinator, pre-proposal stage first."""
    rows = session.scalars(select(DecisionLetter).where(
        DecisionLetter.proposal_id == proposal.id, DecisionLetter.sent_at.is_not(None))).all()
    return sorted(rows, key=lambda x: STAGES.index(x.stage))


# ---------------------------------------------------------------------------------------------------------
# The template


def template_of(session: Session, call: Call) -> LetterTemplate | None:
    return session.scalar(select(LetterTemplate).where(LetterTemplate.call_id == call.id))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalise_source(source: str) -> str:
    return (source or "").replace("\r\n", "\n").replace("\r", "\n")


def check_template_size(source: str) -> str:
    source = normalise_source(source)
    if not source.strip():
        raise InvalidInput("the template is empty; write the letter's body (or reset it to the default)", "source")
    if len(source) > MAX_TEMPLATE_CHARS:
        raise InvalidInput(f"the template has {len(source):,} characters; at most {MAX_TEMPLATE_CHARS:,} are "
                           "allowed", "source")
    return source


def save_template(session: Session, actor, call: Call, source: str, *,
                  expected_version: int | None = None) -> LetterTemplate:
    """Store the call's letter template. The caller has checked that it compiles and renders in the
    sandbox (webapp.letters.validate_body); this checks who and how long, and audits the change."""
    require(can(actor, "call.manage", call))
    source = check_template_size(source)
    row = template_of(session, call)
    if row is not None and expected_version is not None and row.version != expected_version:
        raise ChangedMeanwhile("the letter template")
    before = {"sha256": row.source_sha256, "chars": len(row.source)} if row is not None else None
    if row is None:
        row = LetterTemplate(call_id=call.id, source=source, source_sha256=sha256_text(source),
                             updated_by_id=actor.id, updated_at=utcnow())
        session.add(row)
    else:
        row.source, row.source_sha256 = source, sha256_text(source)
        row.updated_by_id, row.updated_at = actor.id, utcnow()
    try:
        session.flush()
    except (StaleDataError, IntegrityError):
        raise ChangedMeanwhile("the letter template") from None
    audit.record(session, actor, "letters.template_saved", row, call_id=call.id, before=before,
                 after={"sha256": row.source_sha256, "chars": len(source)})
    return row


# ---------------------------------------------------------------------------------------------------------
# Export jobs


def job_is_stale(job: LetterExportJob, now: dt.datetime | None = None) -> bool:
    """A queued or running job nobody has reported on for a while: its server process stopped."""
    if job.status not in ACTIVE_JOB_STATUSES:
        return False
    last = job.heartbeat_at or job.created_at
    return last < (now or utcnow()) - STALE_AFTER


def active_job(session: Session, call: Call, stage: str) -> LetterExportJob | None:
    jobs = session.scalars(select(LetterExportJob).where(
        LetterExportJob.call_id == call.id, LetterExportJob.stage == stage, LetterExportJob.via == "web",
        LetterExportJob.status.in_(ACTIVE_JOB_STATUSES)).order_by(LetterExportJob.id.desc())).all()
    now = utcnow()
    return next((j for j in jobs if not job_is_stale(j, now)), None)


def latest_jobs(session: Session, call: Call, stage: str, limit: int = 5) -> list[LetterExportJob]:
    return list(session.scalars(select(LetterExportJob).where(
        LetterExportJob.call_id == call.id, LetterExportJob.stage == stage)
        .order_by(LetterExportJob.id.desc()).limit(limit)))


def create_export_job(session: Session, actor, call: Call, stage: str, *, via: str = "web") -> LetterExportJob:
    """A job rendering every letter of the stage into one ZIP. From the web, the secretariat's, and a job
    already running for the stage is returned instead of a second one; from the command line (`via="cli"`,
    run by whoever operates the server) without an actor."""
    if via == "web":
        require(can(actor, "call.manage", call))
    elif via != "cli":
        raise InvalidInput("a job is started from the web or the command line", "via")
    _check_stage(call, stage)
    problem = stage_problem(session, call, stage)
    if problem is not None:
        raise DomainError(problem)
    if not stage_letters(session, call, stage, summary=True).items:
        raise DomainError(f"no proposal has a decision letter at the {stage_name(call, stage)} stage yet")
    if via == "web":
        running = active_job(session, call, stage)
        if running is not None:
            return running
    now = utcnow()
    job = LetterExportJob(call_id=call.id, stage=stage, status="queued", via=via, attempt=1, total=0, done=0,
                          created_by_id=actor.id if actor is not None else None, created_at=now, heartbeat_at=now)
    session.add(job)
    session.flush()
    return job


def restart_export_job(session: Session, actor, job: LetterExportJob) -> LetterExportJob:
    """Start a failed or interrupted job again from the first letter (a new attempt)."""
    require(can(actor, "call.manage", job.call))
    if job.status == "done":
        raise DomainError("this export is complete; start a new one to render the letters again")
    if job.status in ACTIVE_JOB_STATUSES and not job_is_stale(job):
        raise DomainError("this export is still running; wait for it to finish")
    problem = stage_problem(session, job.call, job.stage)
    if problem is not None:
        raise DomainError(problem)
    attempt = job.attempt
    won = session.execute(
        update(LetterExportJob).where(LetterExportJob.id == job.id, LetterExportJob.attempt == attempt)
        .values(attempt=attempt + 1, status="queued", done=0, total=0, error=None, file_key=None,
                size_bytes=None, sha256=None, started_at=None, finished_at=None, heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if not won:
        raise ChangedMeanwhile("this export")
    session.refresh(job)
    return job


def _job_update(session: Session, job_id: int, attempt: int, *, statuses=ACTIVE_JOB_STATUSES, **values) -> bool:
    """Change the job only if `attempt` is still its current run; False when it was restarted meanwhile."""
    values.setdefault("heartbeat_at", utcnow())
    return bool(session.execute(
        update(LetterExportJob).where(LetterExportJob.id == job_id, LetterExportJob.attempt == attempt,
                                      LetterExportJob.status.in_(statuses))
        .values(**values).execution_options(synchronize_session=False)
    ).rowcount)


def job_started(session: Session, job_id: int, attempt: int, total: int) -> bool:
    return _job_update(session, job_id, attempt, status="running", total=total, done=0, started_at=utcnow())


def job_progress(session: Session, job_id: int, attempt: int, done: int) -> bool:
    return _job_update(session, job_id, attempt, statuses=("running",), done=done)


def job_finished(session: Session, job_id: int, attempt: int, *, file_key: str | None, size_bytes: int,
                 sha256: str, letters: list[dict]) -> bool:
    """Record a complete export (the ZIP is in place) and audit it, with every letter's fingerprint."""
    job = session.get(LetterExportJob, job_id)
    ok = _job_update(session, job_id, attempt, statuses=("running",), status="done", finished_at=utcnow(),
                     file_key=file_key, size_bytes=size_bytes, sha256=sha256)
    if ok:
        creator = session.get(User, job.created_by_id) if job.created_by_id else None
        audit.record(session, creator, "letters.exported", job, call_id=job.call_id,
                     after={"stage": job.stage, "via": job.via, "letters": len(letters), "zip_sha256": sha256,
                            "entries": letters})
    return ok


def job_failed(session: Session, job_id: int, attempt: int, error: str) -> bool:
    return _job_update(session, job_id, attempt, statuses=ACTIVE_JOB_STATUSES, status="failed",
                       error=error[:4000], finished_at=utcnow())


def store_letter(session: Session, job: LetterExportJob, proposal: Proposal, outcome: str, pdf: bytes,
                 template_sha256: str) -> DecisionLetter:
    """Keep the letter a job rendered (the job was created by someone allowed to). An unsent letter of the
    proposal and stage is replaced; a sent one is never changed (rule 23)."""
    problem = stage_problem(session, job.call, job.stage)
    if problem is not None:
        raise DomainError(problem)
    current = letter_outcome(proposal, job.stage)
    if current != outcome:
        raise DomainError(f"the decision on {proposal.reference} changed while its letter was rendered; "
                          "run the export again")
    letter = letter_of(session, proposal, job.stage)
    values = dict(outcome=outcome, coordinator_id=proposal.coordinator_id, recipient=proposal.coordinator.email,
                  pdf=pdf, sha256=hashlib.sha256(pdf).hexdigest(), size_bytes=len(pdf),
                  template_sha256=template_sha256, generated_at=utcnow(), generated_by_id=job.created_by_id)
    if letter is None:
        letter = DecisionLetter(call_id=proposal.call_id, proposal_id=proposal.id, stage=job.stage, **values)
        session.add(letter)
    elif letter.sent:
        raise DomainError(f"the letter of {proposal.reference} was sent on {letter.sent_at:%Y-%m-%d} and is kept "
                          "as sent")
    else:
        for key, value in values.items():
            setattr(letter, key, value)
    try:
        session.flush()
    except (IntegrityError, StaleDataError):  # two jobs of the same stage at once
        raise ChangedMeanwhile(f"the letter of {proposal.reference}") from None
    return letter


# ---------------------------------------------------------------------------------------------------------
# Sending


def letter_mail(call: Call, proposal: Proposal, stage: str, outcome: str, link: str) -> tuple[str, str]:
    """The subject and body of the message that tells a coordinator their decision letter is ready."""
    title = call.settings.title
    what = stage_name(call, stage)
    subject = f"[{title}] Decision on your {what} {proposal.reference} {proposal.acronym}"
    body = (
        f"Dear {proposal.coordinator.name},\n\n"
        f"the decision on your {what} {proposal.reference} \"{proposal.acronym}\" has been made: "
        f"{OUTCOME_LABELS[outcome].lower()}.\n\n"
        f"The decision letter (PDF) explains it and is available on your proposal's decision page:\n{link}\n\n"
        f"Please share it with your consortium partners.\n\n"
        f"With kind regards,\nthe Joint Call Secretariat of {title}\n"
    )
    return subject, body


def send_letters(session: Session, actor, call: Call, stage: str, *,
                 link_for: Callable[[Proposal], str]) -> list[DecisionLetter]:
    """Release the stage's generated, unsent letters to their coordinators: one message each through the
    outbox (the letter attached where the mailer supports it, and always on the decision page)."""
    require(can(actor, "call.manage", call))
    _check_stage(call, stage)
    problem = stage_problem(session, call, stage)
    if problem is not None:
        raise DomainError(problem)
    view = stage_letters(session, call, stage, summary=True)
    letters = view.to_send
    if not letters:
        missing = len(view.not_generated)
        raise DomainError("no generated letter is waiting to be sent" + (
            f"; {missing} letter{'s are' if missing != 1 else ' is'} not generated yet: run the export first"
            if missing else ""))
    now = utcnow()
    for letter in letters:
        proposal = letter.proposal
        subject, body = letter_mail(call, proposal, stage, letter.outcome, link_for(proposal))
        message = outbox.enqueue(
            session, kind="decision_letter", to=proposal.coordinator.email, subject=subject, body=body,
            dedup_key=f"decision-letter:{letter.id}", call_id=call.id,
            attachments=[{"kind": "decision_letter", "letter_id": letter.id}])
        session.flush()
        letter.sent_at, letter.sent_by_id, letter.outbox_message_id = now, actor.id, message.id
        audit.record(session, actor, "letters.sent", letter, call_id=call.id,
                     before={"sent": False}, after={"sent": True, "proposal": proposal.reference, "stage": stage,
                                                    "outcome": letter.outcome, "to": proposal.coordinator.email,
                                                    "sha256": letter.sha256})
    try:
        session.flush()
    except StaleDataError:
        raise ChangedMeanwhile("the letters") from None
    return letters
