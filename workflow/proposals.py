"""Proposals and their consortium: creating and editing drafts, and the violations the editor shows.

Each function here is one operation: it takes a session and an actor, asks the access policy, changes
rows, writes the audit event, and leaves the commit to the caller.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workflow import audit
from workflow.access import can
from workflow.calls import funder_infos
from workflow.errors import AccessDenied, InvalidInput, NotFound
from workflow.lifecycle import FINAL_STATES
from workflow.models import Call, Partner, Proposal
from workflow.rules import Violation, check_consortium, check_texts


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


def create_proposal(session: Session, actor, call: Call, *, acronym: str, title: str = "") -> Proposal:
    require(can(actor, "proposal.create", call))
    acronym = (acronym or "").strip()
    if not acronym:
        raise InvalidInput("give the proposal an acronym", "acronym")
    if len(acronym) > 40:
        raise InvalidInput("the acronym can have at most 40 characters", "acronym")
    proposal = Proposal(
        call=call, reference=next_reference(session, call), acronym=acronym, title=title.strip(),
        coordinator=actor, state="draft",
    )
    session.add(proposal)
    session.flush()
    audit.record(session, actor, "proposal.created", proposal, after={"state": "draft", "acronym": acronym})
    return proposal


PROPOSAL_FIELDS = ("acronym", "title", "abstract", "keywords", "topic", "duration_months")


def update_proposal(session: Session, actor, proposal: Proposal, **changes) -> Proposal:
    require(can(actor, "proposal.edit", proposal))
    before, after = {}, {}
    for key, value in changes.items():
        if key not in PROPOSAL_FIELDS:
            raise InvalidInput(f"unknown field {key}", key)
        if getattr(proposal, key) != value:
            before[key], after[key] = getattr(proposal, key), value
            setattr(proposal, key, value)
    if after:
        audit.record(session, actor, "proposal.edited", proposal, before=before, after=after)
    return proposal


@dataclass
class PartnerData:
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


def add_partner(session: Session, actor, proposal: Proposal, data: PartnerData) -> Partner:
    require(can(actor, "proposal.edit", proposal))
    partner = Partner(position=len(proposal.partners) + 1)
    data.apply(partner)
    proposal.partners.append(partner)
    session.flush()
    audit.record(session, actor, "partner.added", partner, call_id=proposal.call_id,
                 after={"proposal_id": proposal.id, "organisation": partner.organisation,
                        "country": partner.country, "requested_amount": partner.requested_amount})
    return partner


def update_partner(session: Session, actor, partner: Partner, data: PartnerData) -> Partner:
    require(can(actor, "proposal.edit", partner.proposal))
    before = {k: getattr(partner, k) for k in ("organisation", "country", "funder_id", "requested_amount")}
    changed = data.apply(partner)
    if changed:
        audit.record(session, actor, "partner.edited", partner, call_id=partner.proposal.call_id,
                     before=before, after=changed)
    return partner


def remove_partner(session: Session, actor, partner: Partner) -> None:
    proposal = partner.proposal
    require(can(actor, "proposal.edit", proposal))
    if partner.position == 1:
        raise InvalidInput("the coordinator's partner cannot be removed", "partners")
    proposal.partners.remove(partner)
    for position, p in enumerate(proposal.partners, start=1):
        p.position = position
    audit.record(session, actor, "partner.removed", object_type="partner", object_id=partner.id,
                 call_id=proposal.call_id, before={"proposal_id": proposal.id, "organisation": partner.organisation})


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
