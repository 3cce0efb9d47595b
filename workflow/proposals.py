"""Proposals and their consortium: creating and editing drafts, and the violations the editor shows.

Each function here is one operation: it takes a session and an actor, asks the access policy, changes
rows, writes the audit event, and leaves the commit to the caller.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from workflow import audit
from workflow.access import can
from workflow.callconfig import PARTNER_TYPES, StageDef
from workflow.calls import funder_infos
from workflow.clock import utcnow
from workflow.countries import country_name, is_known_country
from workflow.errors import AccessDenied, ChangedMeanwhile, DomainError, InvalidInput, NotFound
from workflow.lifecycle import FINAL_STATES, Variant, stage_of
from workflow.models import Call, CallStage, Partner, Proposal
from workflow.rules import Violation, check_consortium, check_texts
from workflow.timefmt import format_instant

# A partner's requested budget, by cost category, in whole euros; requested_amount is the sum.
COST_CATEGORIES = ("personnel", "consumables", "equipment", "travel", "subcontracting", "other")
COST_CATEGORY_LABELS = {
    "personnel": "Personnel",
    "consumables": "Consumables",
    "equipment": "Equipment",
    "travel": "Travel",
    "subcontracting": "Subcontracting",
    "other": "Other costs",
}
MAX_AMOUNT = 1_000_000_000  # per cost category: anything above is a typing slip, not a research budget
MAX_DURATION_MONTHS = 120
# Lengths the database columns hold; the call's own limits (StageDef) apply on top for title and abstract.
ACRONYM_MAX, KEYWORDS_MAX, TOPIC_MAX, TITLE_COLUMN_MAX = 40, 500, 200, 500
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def require(decision) -> None:
    if not decision:
        raise AccessDenied(decision.reason)


def other_proposals_per_pi(session: Session, proposal: Proposal) -> dict[str, int]:
    """For each PI e-mail of this proposal: in how many other live proposals of the call they are a PI."""
    emails = {(p.pi_email or "").strip().lower() for p in proposal.partners if p.pi_email}
    if not emails:
        return {}
    rows = session.execute(
        select(func.lower(Partner.pi_email), func.count(func.distinct(Partner.proposal_id)))
        .join(Proposal, Proposal.id == Partner.proposal_id)
        .where(
            Proposal.call_id == proposal.call_id,
            Proposal.id != proposal.id,
            Proposal.state.not_in(FINAL_STATES),
            func.lower(Partner.pi_email).in_(emails),
        )
        .group_by(func.lower(Partner.pi_email))
    )
    return dict(rows.all())


def proposal_violations(session: Session, proposal: Proposal, stage: str) -> list[Violation]:
    settings = proposal.call.settings
    return check_texts(proposal, settings, stage) + check_consortium(
        proposal.partners, settings, funder_infos(proposal.call), other_proposals_per_pi(session, proposal)
    )


def next_reference(session: Session, call: Call) -> str:
    count = session.scalar(select(func.count(Proposal.id)).where(Proposal.call_id == call.id)) or 0
    return f"{call.code.upper()[:34]}-{count + 1:04d}"  # e.g. EPPERMED-JTC2024-0007


def stage_kind(proposal: Proposal) -> str:
    """The submission stage the proposal is in now: "pre" or "full"."""
    return stage_of(proposal.state, Variant.of(proposal.call))


def current_stage(proposal: Proposal) -> CallStage | None:
    return proposal.call.stage(stage_kind(proposal))


def stage_def(proposal: Proposal) -> StageDef:
    """The call's settings for the proposal's current stage (character limits, page limits)."""
    settings = proposal.call.settings
    return settings.stage(stage_kind(proposal)) or settings.stages[-1]


def stage_name(kind: str, call: Call) -> str:
    if not call.two_stage:
        return "submission stage"
    return "pre-proposal stage" if kind == "pre" else "full-proposal stage"


def stage_closed_reason(call: Call, stage: CallStage, now=None) -> str | None:
    """Why `stage` does not accept work now, in plain words; None while it is open."""
    now = now or utcnow()
    name = stage_name(stage.kind, call)
    if stage.closed_at is not None:
        return f"the call secretariat has closed the {name}"
    if now < stage.opens_at:
        return f"the {name} opens on {format_instant(stage.opens_at, call.time_zone)}"
    if now >= stage.deadline:
        return f"the deadline of the {name} passed on {format_instant(stage.deadline, call.time_zone)}"
    return None


def start_proposal(session: Session, actor, call: Call, *, acronym: str, title: str = "") -> Proposal:
    """An applicant starts a proposal, which is possible only while the call's first stage is open."""
    require(can(actor, "proposal.create", call))
    why = stage_closed_reason(call, call.first_stage)
    if why:
        raise DomainError(f"a new proposal cannot be started: {why}")
    title = one_line(title)
    limit = min(call.settings.stages[0].title_max_chars, TITLE_COLUMN_MAX)
    if len(title) > limit:
        raise InvalidInput(f"the title has {len(title)} characters; at most {limit} are allowed", "title")
    return create_proposal(session, actor, call, acronym=acronym, title=title)


def one_line(text: str | None) -> str:
    """Acronyms and titles are one line: line breaks and runs of spaces become one space (they reach mail
    subjects and table cells)."""
    return " ".join((text or "").split())


def create_proposal(session: Session, actor, call: Call, *, acronym: str, title: str = "") -> Proposal:
    require(can(actor, "proposal.create", call))
    acronym = one_line(acronym)
    if not acronym:
        raise InvalidInput("give the proposal an acronym", "acronym")
    if len(acronym) > 40:
        raise InvalidInput("the acronym can have at most 40 characters", "acronym")
    proposal = Proposal(
        call=call, reference=next_reference(session, call), acronym=acronym, title=one_line(title),
        coordinator=actor, state="draft",
    )
    session.add(proposal)
    session.flush()
    audit.record(session, actor, "proposal.created", proposal, after={"state": "draft", "acronym": acronym})
    return proposal


PROPOSAL_FIELDS = ("acronym", "title", "abstract", "keywords", "topic", "duration_months")


def text_limits(proposal: Proposal) -> dict[str, int]:
    """The most characters each text field may hold at the proposal's current stage."""
    sd = stage_def(proposal)
    return {"acronym": ACRONYM_MAX, "title": min(sd.title_max_chars, TITLE_COLUMN_MAX),
            "abstract": sd.abstract_max_chars, "keywords": KEYWORDS_MAX, "topic": TOPIC_MAX}


def text_problems(proposal: Proposal, changes: dict) -> dict[str, str]:
    """What is wrong with proposed values of the proposal's fields: {field: message}. Empty when fine.

    Over-long text is refused, never cut (rule 14); missing texts are not problems of a draft (the
    editor lists them as violations until submission)."""
    limits = text_limits(proposal)
    labels = {"acronym": "the acronym", "title": "the title", "abstract": "the abstract",
              "keywords": "the keywords", "topic": "the topic"}
    out: dict[str, str] = {}
    for key, value in changes.items():
        if key not in PROPOSAL_FIELDS:
            out[key] = f"unknown field {key}"
        elif key == "duration_months":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or not 1 <= value <= MAX_DURATION_MONTHS):
                out[key] = f"give the duration as whole months from 1 to {MAX_DURATION_MONTHS}"
        elif not isinstance(value, str):
            out[key] = f"{labels[key]} must be text"
        elif key == "acronym" and not value.strip():
            out[key] = "give the proposal an acronym"
        elif len(value) > limits[key]:
            out[key] = f"{labels[key]} has {len(value)} characters; at most {limits[key]} are allowed"
    return out


def update_proposal(session: Session, actor, proposal: Proposal, *, expected_version: int | None = None,
                    **changes) -> Proposal:
    """Change the proposal's own fields. `expected_version` is the version the editor showed; when the
    proposal was saved by someone else since, ChangedMeanwhile is raised and nothing changes."""
    require(can(actor, "proposal.edit", proposal))
    if expected_version is not None and proposal.version != expected_version:
        raise ChangedMeanwhile()
    for key in ("acronym", "title"):
        if isinstance(changes.get(key), str):
            changes[key] = one_line(changes[key])
    problems = text_problems(proposal, changes)
    if problems:
        key, message = next(iter(problems.items()))
        raise InvalidInput(message, key)
    before, after = {}, {}
    for key, value in changes.items():
        if getattr(proposal, key) != value:
            before[key], after[key] = getattr(proposal, key), value
            setattr(proposal, key, value)
    if after:
        audit.record(session, actor, "proposal.edited", proposal, before=before, after=after)
    return proposal


@dataclass
class PartnerData:
    """A partner as the editor sends it. Problems are reported under the partner form's field names:
    organisation, partner_type, country, region, funder, pi_name, pi_email, budget_<category>."""

    organisation: str
    country: str
    pi_name: str
    pi_email: str
    partner_type: str = "academia"
    region: str | None = None
    funder_id: int | None = None
    own_funded: bool = False
    budget: dict[str, int] = field(default_factory=dict)

    def apply(self, partner: Partner) -> dict:
        changed = {}
        for key in ("organisation", "country", "pi_name", "pi_email", "partner_type", "region", "funder_id",
                    "own_funded", "budget"):
            value = getattr(self, key)
            if getattr(partner, key, None) != value:
                changed[key] = value
                setattr(partner, key, value)
        if self.own_funded:
            partner.funder_id = None
        partner.requested_amount = sum(self.budget.values()) if not self.own_funded else 0
        return changed


def partner_problems(call: Call, data: PartnerData) -> dict[str, str]:
    """What is wrong with a partner's data: {form field: message}. Empty when it can be saved.

    Besides the format of each field, the chosen funder must take part in the call and fund partners in
    the partner's country (and region, for a regional funder)."""
    out: dict[str, str] = {}
    organisation = (data.organisation or "").strip()
    if not organisation:
        out["organisation"] = "give the partner's organisation"
    elif len(organisation) > 300:
        out["organisation"] = f"the organisation's name has {len(organisation)} characters; at most 300 are allowed"
    if data.partner_type not in PARTNER_TYPES:
        out["partner_type"] = "choose the type of organisation"
    if not is_known_country(data.country):
        out["country"] = "choose the partner's country"
    if data.region and len(data.region) > 120:
        out["region"] = f"the region has {len(data.region)} characters; at most 120 are allowed"
    pi_name = (data.pi_name or "").strip()
    if not pi_name:
        out["pi_name"] = "give the name of the partner's principal investigator (PI)"
    elif len(pi_name) > 200:
        out["pi_name"] = f"the name has {len(pi_name)} characters; at most 200 are allowed"
    pi_email = (data.pi_email or "").strip()
    if not pi_email:
        out["pi_email"] = "give the PI's e-mail address"
    elif len(pi_email) > 254 or not _EMAIL.match(pi_email):
        out["pi_email"] = "this is not an e-mail address"
    for key, amount in (data.budget or {}).items():
        name = f"budget_{key}"
        if key not in COST_CATEGORIES:
            out[name] = f"unknown cost category {key!r}"
        elif isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            out[name] = "enter whole euros, zero or more"
        elif amount > MAX_AMOUNT:
            out[name] = f"enter at most {MAX_AMOUNT:,} euros".replace(",", "\u202f")
    if not data.own_funded and data.funder_id is not None:
        cf = next((cf for cf in call.funders if cf.funder_id == data.funder_id), None)
        if cf is None:
            out["funder"] = "this funder does not take part in this call; choose one of the call's funders"
        elif "country" not in out and cf.funder.country != data.country:
            here = [c.funder.acronym for c in call.funders if c.funder.country == data.country]
            instead = (f"choose {' or '.join(sorted(here))}, or Own funding" if here else
                       f"no funder of this call funds partners in {country_name(data.country)}, "
                       "so choose Own funding")
            out["funder"] = (f"{cf.funder.acronym} funds partners in {country_name(cf.funder.country)} only; "
                             f"{instead}")
        elif cf.funder.region and (data.region or "").strip().casefold() != cf.funder.region.casefold():
            out["region"] = (f"{cf.funder.acronym} funds partners in {cf.funder.region} only; enter "
                             f"{cf.funder.region} as the region, or choose another funder")
    return out


def _clean(data: PartnerData) -> PartnerData:
    data.organisation = (data.organisation or "").strip()
    data.pi_name = (data.pi_name or "").strip()
    data.pi_email = (data.pi_email or "").strip()
    data.region = (data.region or "").strip() or None
    data.budget = {k: v for k, v in (data.budget or {}).items()}
    return data


def _validate_partner(call: Call, data: PartnerData) -> None:
    problems = partner_problems(call, _clean(data))
    if problems:
        key, message = next(iter(problems.items()))
        raise InvalidInput(message, key)


def add_partner(session: Session, actor, proposal: Proposal, data: PartnerData) -> Partner:
    """Add a partner at the end. Partner 1 is the coordinator's own organisation, so the coordinator
    adds it first."""
    require(can(actor, "proposal.edit", proposal))
    if not proposal.partners and proposal.coordinator_id != getattr(actor, "id", None):
        raise DomainError("the coordinator adds partner 1, their own organisation, first")
    _validate_partner(proposal.call, data)
    partner = Partner(position=len(proposal.partners) + 1)
    data.apply(partner)
    proposal.partners.append(partner)
    session.flush()
    audit.record(session, actor, "partner.added", partner, call_id=proposal.call_id,
                 after={"proposal_id": proposal.id, "position": partner.position,
                        "organisation": partner.organisation, "country": partner.country,
                        "requested_amount": partner.requested_amount})
    return partner


def update_partner(session: Session, actor, partner: Partner, data: PartnerData, *,
                   expected_version: int | None = None) -> Partner:
    """Change a partner. `expected_version` is the version the form showed; when someone saved the partner
    since, ChangedMeanwhile is raised and nothing changes (a save racing this one fails at the flush)."""
    require(can(actor, "proposal.edit", partner.proposal))
    if expected_version is not None and partner.version != expected_version:
        raise ChangedMeanwhile()
    _validate_partner(partner.proposal.call, data)
    before = {k: getattr(partner, k) for k in ("organisation", "country", "funder_id", "requested_amount")}
    changed = data.apply(partner)
    if changed:
        try:
            session.flush()  # the UPDATE checks the version: a save that won the race makes this one stale
        except StaleDataError:
            raise ChangedMeanwhile("this partner") from None
        audit.record(session, actor, "partner.edited", partner, call_id=partner.proposal.call_id,
                     before=before, after=changed)
    return partner


def remove_partner(session: Session, actor, partner: Partner) -> None:
    proposal = partner.proposal
    require(can(actor, "proposal.edit", proposal))
    if partner.position == 1:
        raise InvalidInput("partner 1 is the coordinator's own organisation and cannot be removed", "partners")
    proposal.partners.remove(partner)
    for position, p in enumerate(proposal.partners, start=1):
        p.position = position
    audit.record(session, actor, "partner.removed", object_type="partner", object_id=partner.id,
                 call_id=proposal.call_id, before={"proposal_id": proposal.id, "organisation": partner.organisation,
                                                   "position": partner.position})


def move_partner(session: Session, actor, partner: Partner, direction: str) -> Partner:
    """Swap a partner with its neighbour above ("up") or below ("down"). Position 1 stays the
    coordinator's: partner 1 does not move and nobody moves above it."""
    proposal = partner.proposal
    require(can(actor, "proposal.edit", proposal))
    if direction not in ("up", "down"):
        raise InvalidInput("move a partner up or down", "direction")
    partners = sorted(proposal.partners, key=lambda p: p.position)
    index = partners.index(partner)
    target = index - 1 if direction == "up" else index + 1
    if index == 0:
        raise InvalidInput("partner 1 is the coordinator's own organisation and stays first", "partners")
    if target == 0:
        raise InvalidInput("position 1 is the coordinator's; no partner can move above it", "partners")
    if target >= len(partners):
        raise InvalidInput("this partner is the last one already", "partners")
    partners[index], partners[target] = partners[target], partners[index]
    old = partner.position
    for position, p in enumerate(partners, start=1):
        p.position = position
    proposal.partners.sort(key=lambda p: p.position)
    audit.record(session, actor, "partner.moved", partner, call_id=proposal.call_id,
                 before={"proposal_id": proposal.id, "position": old},
                 after={"proposal_id": proposal.id, "position": partner.position})
    return partner


def get_proposal(session: Session, proposal_id: int) -> Proposal:
    proposal = session.get(Proposal, proposal_id)
    if proposal is None:
        raise NotFound("no such proposal")
    return proposal


def state_counts(session: Session, call: Call) -> Counter:
    rows = session.execute(
        select(Proposal.state, func.count(Proposal.id)).where(Proposal.call_id == call.id).group_by(Proposal.state)
    )
    return Counter(dict(rows.all()))
