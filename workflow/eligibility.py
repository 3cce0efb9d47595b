"""The eligibility step: between closing a stage and review, the secretariat checks the call rules and
every funder signs off its own applicants.

Three kinds of functions live here:
- pure decisions (no database): which ineligible verdicts a call lets the coordinator repair by replacing
  the partner at the full stage, and what closing the step would do with one proposal's checks;
- queries for the pages: an officer's partners and budget, the secretariat's matrix, the rules engine's
  findings shown next to the formal check, the preview of closing submission;
- operations (session, actor, ...): sign off several partners at once, remind the funders, close the
  eligibility step. Each asks the access policy, writes the audit log, queues mail, and leaves the commit
  to the caller. Single verdicts, closing a stage and deciding one proposal are workflow.operations'.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from workflow import audit, outbox
from workflow.access import can, officer_funders
from workflow.callconfig import STAGE_KINDS
from workflow.callconfig import stage_name as stage_label  # the eligibility pages import it by this name
from workflow.clock import local, utcnow
from workflow.errors import AccessDenied, ChangedMeanwhile, DomainError, GuardFailed, InvalidInput, NotFound
from workflow.lifecycle import Variant, stage_of
from workflow.models import (
    AuditEvent,
    Call,
    CallFunder,
    CallStage,
    EligibilityCheck,
    FundingOrganisation,
    Partner,
    Proposal,
    RoleGrant,
    User,
)
from workflow.operations import decide_eligibility, sign_off, transition
from workflow.paging import Window
from workflow.proposals import proposal_violations, require
from workflow.rules import Violation
from workflow.timefmt import format_eur

PENDING, ELIGIBLE, INELIGIBLE = "pending", "eligible", "ineligible"
STATUSES = (PENDING, ELIGIBLE, INELIGIBLE)
STATUS_LABELS = {PENDING: "Pending", ELIGIBLE: "Eligible", INELIGIBLE: "Not eligible"}


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


# ---------------------------------------------------------------------------------------------------------
# Stages and the states that belong to them


def check_state(call: Call, kind: str) -> str:
    """The proposal state of the eligibility step of stage `kind`."""
    return "full_eligibility_check" if kind == "full" and call.two_stage else "eligibility_check"


def submitted_state(call: Call, kind: str) -> str:
    return "full_submitted" if kind == "full" and call.two_stage else "submitted"


def draft_states(call: Call, kind: str) -> tuple[str, ...]:
    return ("invited", "full_draft") if kind == "full" and call.two_stage else ("draft",)


def call_stage(call: Call, kind: str) -> CallStage:
    stage = call.stage(kind) if kind in STAGE_KINDS else None
    if stage is None:
        raise NotFound(f"this call has no {kind} stage")
    return stage


def status_label(status: str | None) -> str:
    return STATUS_LABELS.get(status or "", "—")


# ---------------------------------------------------------------------------------------------------------
# Pure decisions


def replaceable_ineligible_partners(checks: Iterable, settings, stage: str,
                                    coordinator_partner_id: int | None = None) -> list:
    """The ineligible partner checks the coordinator may repair by replacing or removing the partner at
    the full stage (DOMAIN.md rule 12, TRANSCAN practice), or [] when the proposal cannot go on that way.

    That is possible only at the pre-proposal stage of a two-stage call whose setting
    `consortium.allow_replacing_ineligible_partner` is on, when every check is decided, the secretariat's
    formal check is eligible, and every ineligible verdict is a partner check by that partner's own funder.
    The coordinator's own partner cannot be replaced, so its ineligibility is never repairable.
    `checks` need only `partner_id`, `funder_id` and `status` (ORM rows or plain objects).
    """
    checks = list(checks)
    if stage != "pre" or not settings.two_stage or not settings.consortium.allow_replacing_ineligible_partner:
        return []
    if any(c.status == PENDING for c in checks):
        return []
    formal = [c for c in checks if c.partner_id is None]
    if not formal or any(c.status != ELIGIBLE for c in formal):
        return []
    ineligible = [c for c in checks if c.status == INELIGIBLE]
    if not ineligible:
        return []
    for c in ineligible:
        own_funder = getattr(getattr(c, "partner", None), "funder_id", c.funder_id)
        if c.funder_id is None or c.funder_id != own_funder:
            return []
        if coordinator_partner_id is not None and c.partner_id == coordinator_partner_id:
            return []
    return ineligible


def blocking_ineligible(checks: Iterable, settings, stage: str, coordinator_partner_id: int | None = None) -> list:
    """The ineligible checks that make the proposal ineligible (all of them, unless the call lets the
    coordinator replace those partners; see replaceable_ineligible_partners)."""
    checks = list(checks)
    replaceable = {id(c) for c in replaceable_ineligible_partners(checks, settings, stage, coordinator_partner_id)}
    return [c for c in checks if c.status == INELIGIBLE and id(c) not in replaceable]


def blocking_ineligible_checks(proposal: Proposal, checks: Iterable, stage: str | None = None) -> list:
    """blocking_ineligible for a Proposal row (its stage by default): what the lifecycle guards
    checks_all_eligible / checks_found_ineligible and decide_eligibility need, in one call."""
    if stage is None:
        stage = stage_of(proposal.state, Variant.of(proposal.call))
    coordinator = proposal.coordinator_partner
    return blocking_ineligible(checks, proposal.call.settings, stage, coordinator.id if coordinator else None)


@dataclass(frozen=True)
class Outcome:
    """What closing the eligibility step would do with one proposal, given its checks."""

    kind: str  # "pending" | "eligible" | "conditional" | "ineligible" | "unchecked"
    pending: int = 0
    blocking: tuple = ()
    replaceable: tuple = ()

    @property
    def label(self) -> str:
        return {
            "pending": f"waits: {_plural(self.pending, 'check')} pending",
            "eligible": "goes on",
            "conditional": f"goes on; {_plural(len(self.replaceable), 'partner')} to replace or remove at the "
                           "full stage",
            "ineligible": "ineligible",
            "unchecked": "no checks opened",
        }[self.kind]


def eligibility_outcome(checks: Iterable, settings, stage: str, coordinator_partner_id: int | None = None) -> Outcome:
    checks = list(checks)
    if not checks:
        return Outcome("unchecked")
    pending = sum(c.status == PENDING for c in checks)
    if pending:
        return Outcome("pending", pending=pending)
    replaceable = replaceable_ineligible_partners(checks, settings, stage, coordinator_partner_id)
    if replaceable:
        return Outcome("conditional", replaceable=tuple(replaceable))
    blocking = [c for c in checks if c.status == INELIGIBLE]
    if blocking:
        return Outcome("ineligible", blocking=tuple(blocking))
    return Outcome("eligible")


def findings_note(findings: Sequence[Violation]) -> str:
    """The rules engine's findings as the text that prefills the secretariat's reason."""
    if not findings:
        return ""
    return "The call rules are not met: " + "; ".join(v.message for v in findings) + "."


# ---------------------------------------------------------------------------------------------------------
# Queries


def stage_checks(session: Session, proposal: Proposal, kind: str) -> list[EligibilityCheck]:
    return list(session.scalars(
        select(EligibilityCheck).where(EligibilityCheck.proposal_id == proposal.id, EligibilityCheck.stage == kind)
        .order_by(EligibilityCheck.partner_id.is_not(None), EligibilityCheck.id)
    ))


def formal_findings(session: Session, proposal: Proposal, kind: str) -> list[Violation]:
    """What the rules engine finds wrong with the submitted proposal (blocking violations only): the
    note the secretariat sees next to its formal check, and the prefill of its reason."""
    return [v for v in proposal_violations(session, proposal, kind) if v.blocking]


def outcome_for(session: Session, proposal: Proposal, kind: str, checks=None) -> Outcome:
    checks = stage_checks(session, proposal, kind) if checks is None else checks
    coordinator = proposal.coordinator_partner
    return eligibility_outcome(checks, proposal.call.settings, kind, coordinator.id if coordinator else None)


@dataclass(frozen=True)
class IneligibilityReason:
    """One reason a proposal is not eligible, fit to show to its coordinator."""

    who: str  # "the call secretariat" or the funder's acronym
    partner: str | None  # the partner's organisation, None for the formal check
    reason: str


def ineligibility_reasons(session: Session, proposal: Proposal, kind: str) -> list[IneligibilityReason]:
    """Why the checks of stage `kind` found the proposal or its partners not eligible (for outcome pages)."""
    out = []
    for c in stage_checks(session, proposal, kind):
        if c.status != INELIGIBLE:
            continue
        if c.partner_id is None:
            out.append(IneligibilityReason("the call secretariat", None, c.reason or ""))
        else:
            funder = session.get(FundingOrganisation, c.funder_id) if c.funder_id else None
            out.append(IneligibilityReason(funder.acronym if funder else "the funder",
                                           c.partner.organisation if c.partner else None, c.reason or ""))
    return out


@dataclass
class ClosingPreview:
    """What the secretariat sees before closing submission of a stage."""

    call: Call
    stage: CallStage
    now: dt.datetime
    submitted: int
    drafts: int
    in_check: int

    @property
    def deadline_passed(self) -> bool:
        return self.now >= self.stage.deadline

    @property
    def closed(self) -> bool:
        return self.stage.closed_at is not None

    @property
    def consequence(self) -> str:
        return (f"{_plural(self.submitted, 'submitted proposal')} go{'es' if self.submitted == 1 else ''} to the "
                f"eligibility check; {_plural(self.drafts, 'draft')} will be marked not submitted.")


def closing_preview(session: Session, actor, call: Call, kind: str) -> ClosingPreview:
    require(can(actor, "call.manage", call))
    stage = call_stage(call, kind)
    counts = dict(session.execute(
        select(Proposal.state, func.count(Proposal.id)).where(Proposal.call_id == call.id).group_by(Proposal.state)
    ).all())
    return ClosingPreview(
        call=call, stage=stage, now=utcnow(),
        submitted=counts.get(submitted_state(call, kind), 0),
        drafts=sum(counts.get(s, 0) for s in draft_states(call, kind)),
        in_check=counts.get(check_state(call, kind), 0),
    )


@dataclass
class PartnerRow:
    """One line of a funder officer's dashboard: a partner requesting money from their funder."""

    check: EligibilityCheck
    partner: Partner
    proposal: Proposal
    funder: FundingOrganisation
    decided_by: str | None = None

    @property
    def status_label(self) -> str:
        return status_label(self.check.status)

    @property
    def open(self) -> bool:
        """Whether the verdict may still change: the proposal is still in its eligibility step."""
        return self.proposal.state == check_state(self.proposal.call, self.check.stage)


def my_funders(session: Session, actor, call: Call) -> list[FundingOrganisation]:
    """The funders the actor is an officer of in this call; refused when none."""
    ids = officer_funders(actor, call.id)
    if not ids:
        raise AccessDenied("only funder officers of this call can see this page" if actor is not None
                           else "please log in first")
    return list(session.scalars(
        select(FundingOrganisation).where(FundingOrganisation.id.in_(ids)).order_by(FundingOrganisation.acronym)
    ))


def _officer_scope(session: Session, actor, call: Call, kind: str, status: str | None,
                   funder_id: int | None) -> tuple[dict[int, FundingOrganisation], list[int]]:
    """The actor's funders in this call, and those whose partners the list shows; refused otherwise."""
    call_stage(call, kind)
    funders = {f.id: f for f in my_funders(session, actor, call)}
    if funder_id is not None and funder_id not in funders:
        raise AccessDenied("you are not an officer of this funder in this call")
    if status is not None and status not in STATUSES:
        raise InvalidInput("filter by pending, eligible or not eligible", "status")
    return funders, ([funder_id] if funder_id is not None else list(funders))


def _officer_conditions(call: Call, kind: str, wanted: list[int], status: str | None) -> list:
    where = [Proposal.call_id == call.id, EligibilityCheck.stage == kind, EligibilityCheck.funder_id.in_(wanted)]
    if status is not None:
        where.append(EligibilityCheck.status == status)
    return where


def _officer_query(call: Call, kind: str, wanted: list[int], status: str | None):
    # The decider's name is joined in (a column, not the User row, whose grants would load with it).
    return (
        select(EligibilityCheck, Partner, Proposal, User.name)
        .join(Partner, EligibilityCheck.partner_id == Partner.id)
        .join(Proposal, EligibilityCheck.proposal_id == Proposal.id)
        .outerjoin(User, EligibilityCheck.decided_by_id == User.id)
        .where(*_officer_conditions(call, kind, wanted, status))
        .order_by(Proposal.reference, Partner.position, EligibilityCheck.id)
    )


def _partner_rows(session: Session, actor, funders: dict[int, FundingOrganisation], query) -> list[PartnerRow]:
    rows = []
    for check, partner, proposal, decided_by in session.execute(query).all():
        if not can(actor, "partner.sign_off", check):  # the policy has the last word on every line
            continue
        rows.append(PartnerRow(check, partner, proposal, funders[check.funder_id], decided_by))
    return rows


def officer_partner_rows(session: Session, actor, call: Call, kind: str, *, status: str | None = None,
                         funder_id: int | None = None) -> list[PartnerRow]:
    """The partners of stage `kind` that request money from the actor's funder(s), and nothing else (every
    one of them: the exports)."""
    funders, wanted = _officer_scope(session, actor, call, kind, status, funder_id)
    return _partner_rows(session, actor, funders, _officer_query(call, kind, wanted, status))


@dataclass
class FunderBudget:
    funder: FundingOrganisation
    committed: int
    requested: int = 0
    requested_not_ineligible: int = 0
    counts: dict = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))

    @property
    def partners(self) -> int:
        return sum(self.counts.values())

    @property
    def ratio(self) -> float | None:
        return self.requested / self.committed if self.committed else None


def funder_budgets(session: Session, call: Call, kind: str,
                   funders: Sequence[FundingOrganisation]) -> list[FunderBudget]:
    """Each funder's total requested (all its partners of the stage, whatever a list shows) against its
    committed budget, with its partners counted per status: one aggregate query."""
    committed = {cf.funder_id: cf.committed_budget for cf in call.funders}
    out = {f.id: FunderBudget(f, committed.get(f.id, 0)) for f in funders}
    if not out:
        return []
    totals = session.execute(
        select(EligibilityCheck.funder_id, EligibilityCheck.status, func.count(EligibilityCheck.id),
               func.coalesce(func.sum(Partner.requested_amount), 0))
        .join(Partner, EligibilityCheck.partner_id == Partner.id)
        .join(Proposal, EligibilityCheck.proposal_id == Proposal.id)
        .where(*_officer_conditions(call, kind, list(out), None))
        .group_by(EligibilityCheck.funder_id, EligibilityCheck.status)
    ).all()
    for funder_id, status, count, requested in totals:
        b = out[funder_id]
        b.counts[status] += count
        b.requested += int(requested)  # PostgreSQL sums bigints as numeric
        if status != INELIGIBLE:
            b.requested_not_ineligible += int(requested)
    return list(out.values())


@dataclass
class OfficerPartners:
    """A funder officer's list: one page of their partners (filtered by status), and the budget of each
    of their funders over every partner of the stage."""

    funders: list[FundingOrganisation]
    budgets: list[FunderBudget]
    window: Window
    rows: list[PartnerRow]

    @property
    def partners(self) -> int:
        """Every partner of the stage requesting money from the officer's funders, whatever the filter."""
        return sum(b.partners for b in self.budgets)

    @property
    def counts(self) -> dict[str, int]:
        """Those partners per status."""
        return {status: sum(b.counts[status] for b in self.budgets) for status in STATUSES}

    @property
    def open_rows(self) -> list[PartnerRow]:
        return [r for r in self.rows if r.open]


def officer_partner_page(session: Session, actor, call: Call, kind: str, *, status: str | None = None,
                         page: int = 1) -> OfficerPartners:
    """officer_partner_rows one page at a time (a count, then the page), with the funders' budgets."""
    funders, wanted = _officer_scope(session, actor, call, kind, status, None)
    total = session.scalar(
        select(func.count(EligibilityCheck.id))
        .join(Partner, EligibilityCheck.partner_id == Partner.id)
        .join(Proposal, EligibilityCheck.proposal_id == Proposal.id)
        .where(*_officer_conditions(call, kind, wanted, status))
    ) or 0
    window = Window(total, page)
    rows = _partner_rows(session, actor, funders, window.apply(_officer_query(call, kind, wanted, status)))
    listed = list(funders.values())
    return OfficerPartners(listed, funder_budgets(session, call, kind, listed), window, rows)


@dataclass
class MatrixRow:
    proposal: Proposal
    formal: EligibilityCheck | None
    cells: dict[int, list[EligibilityCheck]]
    outcome: Outcome
    open: bool

    @property
    def pending(self) -> int:
        checks = ([self.formal] if self.formal else []) + [c for cs in self.cells.values() for c in cs]
        return sum(c.status == PENDING for c in checks)


@dataclass
class MatrixSummary:
    """The counters above the matrix, over every proposal still in the eligibility step of the stage
    (not only the page shown)."""

    open: int = 0
    pending_formal: int = 0
    pending_by_funder: dict[int, int] = field(default_factory=dict)
    forecast: dict[str, int] = field(default_factory=dict)  # Outcome.kind -> proposals

    def pending_for(self, funder_id: int) -> int:
        return self.pending_by_funder.get(funder_id, 0)


@dataclass
class Matrix:
    call: Call
    kind: str
    funders: list[CallFunder]
    rows: list[MatrixRow]
    summary: MatrixSummary
    window: Window | None = None  # None: every row (the exports)

    def pending_for(self, funder_id: int) -> int:
        return self.summary.pending_for(funder_id)

    def columns(self, row: MatrixRow) -> list[tuple[str, list[EligibilityCheck]]]:
        """The row's cells in the order of `funders`, as (funder acronym, checks; empty for no partner): a
        page writes 50 rows times every funder of the call, mostly empty."""
        return [(cf.funder.acronym, row.cells.get(cf.funder_id, [])) for cf in self.funders]

    @property
    def pending_formal(self) -> int:
        return self.summary.pending_formal

    @property
    def open_rows(self) -> list[MatrixRow]:
        """The rows held (this page) whose proposal is still in the eligibility step."""
        return [r for r in self.rows if r.open]


def cell_text(checks: Sequence[EligibilityCheck], with_reason: bool = True) -> str:
    """A matrix cell in words: 'Eligible', or per partner when a funder has several in one proposal."""
    def one(c):
        text = status_label(c.status)
        if with_reason and c.status == INELIGIBLE and c.reason:
            text += f" ({c.reason})"
        return text

    if not checks:
        return ""
    if len(checks) == 1:
        return one(checks[0])
    return "; ".join(f"{c.partner.organisation if c.partner else '?'}: {one(c)}" for c in checks)


@dataclass(frozen=True)
class _OwnFunder:
    funder_id: int | None


@dataclass(frozen=True)
class _CheckFacts:
    """The columns of a check that eligibility_outcome reads, without loading the check and its partner."""

    partner_id: int | None
    funder_id: int | None
    status: str
    partner: _OwnFunder | None


def matrix_summary(session: Session, call: Call, kind: str) -> MatrixSummary:
    """Pending checks and the forecast of closing the step, over the whole stage: the checks' columns in one
    statement, each proposal's outcome decided by eligibility_outcome as for a row of the matrix."""
    state = check_state(call, kind)
    coordinator = (
        select(Partner.proposal_id, func.min(Partner.position).label("position"))
        .join(Proposal, Partner.proposal_id == Proposal.id)
        .where(Proposal.call_id == call.id, Proposal.state == state)
        .group_by(Partner.proposal_id).subquery()
    )
    rows = session.execute(
        select(EligibilityCheck.proposal_id, EligibilityCheck.partner_id, EligibilityCheck.funder_id,
               EligibilityCheck.status, Partner.funder_id, Partner.position, coordinator.c.position)
        .join(Proposal, EligibilityCheck.proposal_id == Proposal.id)
        .outerjoin(Partner, EligibilityCheck.partner_id == Partner.id)
        .outerjoin(coordinator, coordinator.c.proposal_id == EligibilityCheck.proposal_id)
        .where(Proposal.call_id == call.id, Proposal.state == state, EligibilityCheck.stage == kind)
    ).all()
    facts: dict[int, list[_CheckFacts]] = defaultdict(list)
    coordinators: dict[int, int] = {}
    summary = MatrixSummary()
    for proposal_id, partner_id, funder_id, status, own_funder, position, first in rows:
        facts[proposal_id].append(_CheckFacts(partner_id, funder_id, status,
                                              _OwnFunder(own_funder) if partner_id is not None else None))
        if partner_id is not None and position == first:
            coordinators[proposal_id] = partner_id
        if status == PENDING:
            if partner_id is None:
                summary.pending_formal += 1
            else:
                summary.pending_by_funder[funder_id] = summary.pending_by_funder.get(funder_id, 0) + 1
    summary.open = len(facts)
    for proposal_id, checks in facts.items():
        kind_of = eligibility_outcome(checks, call.settings, kind, coordinators.get(proposal_id)).kind
        summary.forecast[kind_of] = summary.forecast.get(kind_of, 0) + 1
    return summary


def eligibility_matrix(session: Session, actor, call: Call, kind: str, *, page: int | None = None) -> Matrix:
    """Proposals × funders with every check of stage `kind` (the secretariat's view): one page of proposals,
    or all of them when `page` is None (the exports), and the counters over the whole stage. The same
    number of statements whatever the size of the call: children are loaded with one statement each."""
    require(can(actor, "eligibility.manage", call))
    call_stage(call, kind)
    where = (Proposal.call_id == call.id,
             Proposal.id.in_(select(EligibilityCheck.proposal_id).where(EligibilityCheck.stage == kind)))
    # The call's funders with a check at this stage: one index probe per funder, not a pass over every check.
    funder_ids = set(session.scalars(
        select(CallFunder.funder_id).where(CallFunder.call_id == call.id, exists().where(
            EligibilityCheck.funder_id == CallFunder.funder_id, EligibilityCheck.stage == kind,
            EligibilityCheck.proposal_id == Proposal.id, Proposal.call_id == call.id))
    ))
    columns = sorted((cf for cf in call.funders if cf.funder_id in funder_ids), key=lambda cf: cf.funder.acronym)
    query = select(Proposal).where(*where).order_by(Proposal.reference, Proposal.id)
    window = None
    if page is not None:
        window = Window(session.scalar(select(func.count(Proposal.id)).where(*where)) or 0, page)
        query = window.apply(query)
    proposals = session.scalars(query).all()
    ids = [p.id for p in proposals] if window is not None else select(Proposal.id).where(*where)
    partners: dict[int, list[Partner]] = defaultdict(list)
    partner_by_id: dict[int, Partner] = {}
    for partner in session.scalars(select(Partner).where(Partner.proposal_id.in_(ids))
                                   .order_by(Partner.proposal_id, Partner.position)):
        partners[partner.proposal_id].append(partner)
        partner_by_id[partner.id] = partner
    for proposal in proposals:
        set_committed_value(proposal, "partners", partners[proposal.id])
    by_proposal: dict[int, list[EligibilityCheck]] = defaultdict(list)
    for c in session.scalars(select(EligibilityCheck).where(EligibilityCheck.proposal_id.in_(ids),
                                                             EligibilityCheck.stage == kind)
                             .order_by(EligibilityCheck.id)):
        if c.partner_id is not None:
            set_committed_value(c, "partner", partner_by_id.get(c.partner_id))
        by_proposal[c.proposal_id].append(c)
    state = check_state(call, kind)
    rows = []
    for proposal in proposals:
        pchecks = by_proposal[proposal.id]
        cells: dict[int, list[EligibilityCheck]] = defaultdict(list)
        formal = None
        for c in pchecks:
            if c.partner_id is None:
                formal = c
            else:
                cells[c.funder_id].append(c)
        for cs in cells.values():
            cs.sort(key=lambda c: c.partner.position if c.partner else 0)
        coordinator = proposal.coordinator_partner
        outcome = eligibility_outcome(pchecks, call.settings, kind, coordinator.id if coordinator else None)
        rows.append(MatrixRow(proposal, formal, dict(cells), outcome, proposal.state == state))
    return Matrix(call, kind, columns, rows, matrix_summary(session, call, kind), window)


# ---------------------------------------------------------------------------------------------------------
# The report of one closing of the step, a page at a time

CLOSING_LISTS = ("eligible", "conditional", "ineligible", "pending", "held")


def closing_page(summary: dict, page: int) -> tuple[Window, dict[str, list[dict]]]:
    """One page of the proposals a closing of the step names, list after list in the report's order (gone on,
    gone on with a partner to replace, ineligible, still pending, held); the report's counts stay over the
    whole summary."""
    entries = [(key, entry) for key in CLOSING_LISTS for entry in summary.get(key, [])]
    window = Window(len(entries), page)
    shown: dict[str, list[dict]] = {key: [] for key in CLOSING_LISTS}
    for key, entry in window.slice(entries):
        shown[key].append(entry)
    return window, shown


# ---------------------------------------------------------------------------------------------------------
# Operations


def _partner_label(check: EligibilityCheck) -> str:
    proposal = check.proposal
    who = check.partner.organisation if check.partner else "the formal check"
    return f"{proposal.reference} {proposal.acronym} — {who}"


def bulk_sign_off(session: Session, actor, items: Sequence[tuple[int, int | None]], verdict: str,
                  reason: str | None = None) -> list[EligibilityCheck]:
    """One verdict on several partners at once, all or nothing: `items` are (check id, version seen).

    Every check is asked of the access policy before anything changes; each verdict is then given (and
    audited) by workflow.operations.sign_off. Any refusal raises, naming the partner, and the caller rolls
    the whole transaction back."""
    seen: dict[int, int | None] = {}
    for check_id, version in items:
        seen.setdefault(int(check_id), version)
    if not seen:
        raise InvalidInput("select at least one partner to sign off", "checks")
    if verdict not in (ELIGIBLE, INELIGIBLE):
        raise InvalidInput("choose eligible or not eligible", "verdict")
    if verdict == INELIGIBLE and not (reason or "").strip():
        raise InvalidInput("give the reason why the selected partners are not eligible", "reason")
    checks = []
    for check_id in seen:
        check = session.get(EligibilityCheck, check_id)
        if check is None:
            raise NotFound("no such eligibility check")
        require(can(actor, "partner.sign_off", check))
        checks.append(check)
    done = []
    for check in checks:
        label = _partner_label(check)
        try:
            done.append(sign_off(session, actor, check.id, verdict, reason, expected_version=seen[check.id]))
        except ChangedMeanwhile:
            raise ChangedMeanwhile(f"the verdict on {label}") from None
        except InvalidInput as err:
            raise InvalidInput(f"{label}: {err}", err.field) from None
        except DomainError as err:
            raise DomainError(f"{label}: {err}") from None
    return done


@dataclass
class ReminderResult:
    queued: int = 0
    already_today: int = 0
    officers: list[str] = field(default_factory=list)
    funders_without_officer: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        parts = []
        if self.queued:
            parts.append(f"{_plural(self.queued, 'reminder')} queued for funder officers with pending checks")
        if self.already_today:
            parts.append(f"{_plural(self.already_today, 'officer')} already reminded today")
        if not parts:
            parts.append("no funder has pending checks; nobody was reminded")
        if self.funders_without_officer:
            parts.append("no officer account for " + ", ".join(self.funders_without_officer))
        return "; ".join(parts) + "."


def pending_partner_checks(session: Session, call: Call, kind: str) -> list[tuple[EligibilityCheck, Partner, Proposal]]:
    """Pending funder checks of proposals still in the eligibility step of stage `kind`."""
    return list(session.execute(
        select(EligibilityCheck, Partner, Proposal)
        .join(Partner, EligibilityCheck.partner_id == Partner.id)
        .join(Proposal, EligibilityCheck.proposal_id == Proposal.id)
        .where(Proposal.call_id == call.id, Proposal.state == check_state(call, kind),
               EligibilityCheck.stage == kind, EligibilityCheck.status == PENDING)
        .order_by(Proposal.reference, Partner.position)
    ).all())


def remind_funders(session: Session, actor, call: Call, kind: str, *, link: str | None = None) -> ReminderResult:
    """Queue one e-mail per officer of every funder with pending checks, listing their pending partners.

    At most one reminder per officer, call and stage a day (the call's day): the outbox's dedup key makes a
    second click the same day queue nothing. Audited when something was queued."""
    from workflow import mail_templates  # it imports workflow.console, which would make a cycle at import

    require(can(actor, "eligibility.manage", call))
    call_stage(call, kind)
    pending = pending_partner_checks(session, call, kind)
    by_funder: dict[int, list] = defaultdict(list)
    for check, partner, proposal in pending:
        by_funder[check.funder_id].append((partner, proposal))
    result = ReminderResult()
    if not by_funder:
        return result
    grants = session.execute(
        select(RoleGrant, User).join(User, RoleGrant.user_id == User.id)
        .where(RoleGrant.role == "officer", RoleGrant.call_id == call.id, RoleGrant.funder_id.in_(list(by_funder)))
        .order_by(User.id, RoleGrant.funder_id)
    ).all()
    funders = {f.id: f for f in session.scalars(
        select(FundingOrganisation).where(FundingOrganisation.id.in_(list(by_funder))))}
    per_officer: dict[int, tuple[User, list[int]]] = {}
    for grant, user in grants:
        per_officer.setdefault(user.id, (user, []))[1].append(grant.funder_id)
    covered = {fid for _, fids in per_officer.values() for fid in fids}
    result.funders_without_officer = sorted(funders[fid].acronym for fid in by_funder if fid not in covered)
    today = local(utcnow(), call.time_zone).date().isoformat()
    label = stage_label(call, kind)
    reminded = []
    for user, fids in per_officer.values():
        lines, count = [], 0
        for fid in sorted(fids, key=lambda i: funders[i].acronym):
            for partner, proposal in by_funder[fid]:
                count += 1
                lines.append(f"- {proposal.reference} {proposal.acronym}: {partner.organisation} "
                             f"(PI {partner.pi_name}), requesting {format_eur(partner.requested_amount)} "
                             f"from {funders[fid].acronym}")
        # The call's wording of the "reminder" kind (console → Mail), else that kind's default wording.
        subject, body = mail_templates.render(session, call, "reminder", {
            "recipient": {"name": user.name, "email": user.email}, "stage": label,
            "funder": ", ".join(funders[i].acronym for i in sorted(fids, key=lambda i: funders[i].acronym)),
            "pending": count, "partners": "\n".join(lines), "link": link or ""})
        msg = outbox.enqueue(
            session, kind="eligibility_reminder", to=user.email, call_id=call.id,
            dedup_key=f"eligibility-reminder:{call.id}:{kind}:{user.id}:{today}",
            subject=subject, body=body,
        )
        if msg in session.new:
            result.queued += 1
            reminded.append(user.email)
        else:
            result.already_today += 1
    result.officers = reminded
    if result.queued:
        audit.record(session, actor, "eligibility.reminded", object_type="call", object_id=call.id,
                     call_id=call.id, after={
                         "stage": kind, "day": today, "officers": reminded,
                         "funders": sorted(funders[fid].acronym for fid in covered),
                         "pending_checks": len(pending)})
    return result


def _entry(proposal: Proposal, **extra) -> dict:
    return {"id": proposal.id, "reference": proposal.reference, "acronym": proposal.acronym, **extra}


@dataclass
class StepClosing:
    """What closing the eligibility step did: the summary is also the audit event's `after`."""

    summary: dict
    event_id: int | None = None

    def count(self, key: str) -> int:
        return len(self.summary.get(key, []))


def _reasons(checks) -> list[dict]:
    out = []
    for c in checks:
        if c.partner_id is None:
            out.append({"check": "formal", "partner": None, "funder": None, "reason": c.reason})
        else:
            out.append({"check": "partner", "partner": c.partner.organisation if c.partner else None,
                        "funder": c.partner.funder.acronym if c.partner and c.partner.funder else None,
                        "reason": c.reason})
    return out


def close_eligibility_step(session: Session, actor, call: Call, kind: str) -> StepClosing:
    """Decide every proposal of the stage whose checks are all decided: all eligible -> onwards, any
    ineligible -> ineligible with the reasons (workflow.operations.decide_eligibility), or onwards with the
    partners to replace when the call allows it. Proposals with pending checks stay, and are listed."""
    require(can(actor, "eligibility.manage", call))
    call_stage(call, kind)
    state = check_state(call, kind)
    summary: dict = {"stage": kind, "eligible": [], "conditional": [], "ineligible": [], "pending": [], "held": []}
    ids = session.scalars(
        select(Proposal.id).where(Proposal.call_id == call.id, Proposal.state == state).order_by(Proposal.reference)
    ).all()
    for pid in ids:
        proposal = session.get(Proposal, pid)
        checks = stage_checks(session, proposal, kind)
        outcome = outcome_for(session, proposal, kind, checks)
        if outcome.kind in ("pending", "unchecked"):
            summary["pending"].append(_entry(proposal, pending=outcome.pending))
            continue
        if outcome.kind == "conditional":
            replace = _reasons(outcome.replaceable)
            why = "; ".join(f"{r['partner']} ({r['funder']}): {r['reason']}" for r in replace)
            try:
                transition(session, actor, pid, "declare_eligible",
                           reason=f"eligible on condition that at the full stage the coordinator replaces or "
                                  f"removes the partner(s) their own funder found not eligible: {why}")
            except GuardFailed as err:
                summary["held"].append(_entry(proposal, why=str(err)))
                continue
            _tell_coordinator_to_replace(session, proposal, why)
            summary["conditional"].append(_entry(proposal, state=proposal.state, replace=replace))
            continue
        decide_eligibility(session, actor, pid)
        if outcome.kind == "ineligible":
            summary["ineligible"].append(_entry(proposal, state=proposal.state, reasons=_reasons(outcome.blocking)))
        else:
            summary["eligible"].append(_entry(proposal, state=proposal.state))
    event = audit.record(session, actor, "eligibility.step_closed", object_type="call", object_id=call.id,
                         call_id=call.id, after=summary)
    session.flush()
    return StepClosing(summary, event.id)


def _tell_coordinator_to_replace(session: Session, proposal: Proposal, why: str) -> None:
    outbox.to_coordinator(
        session, proposal, kind="eligible_replace_partner", dedup_key=f"eligibility-conditional:proposal:{proposal.id}",
        subject="eligible, a partner must be replaced",
        text=(f"pre-proposal {proposal.reference} \"{proposal.acronym}\" goes on to the pre-proposal review. "
              f"Its own funder found a partner not eligible: {why}.\n"
              "If the proposal is invited to the full stage, replace or remove that partner there.\n"),
    )


def step_closing_event(session: Session, actor, call: Call, event_id: int) -> AuditEvent:
    """The summary of one closing of the eligibility step, read back from its audit event."""
    require(can(actor, "eligibility.manage", call))
    event = session.get(AuditEvent, event_id)
    if event is None or event.call_id != call.id or event.action != "eligibility.step_closed":
        raise NotFound("no such closing of the eligibility step")
    return event

