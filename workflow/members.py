"""Co-applicants: the coordinator invites partner PIs by e-mail; an invitee who accepts becomes a member.

An invitation carries a single-use token that is mailed (through the outbox) and never stored: the row
keeps only its SHA-256. It expires after INVITATION_DAYS. Accepting it makes the person a ProposalMember
with the rights the coordinator chose (view and edit, or view only). Inviting, revoking and removing
are the coordinator's (access "proposal.manage_members"); accepting needs the token and a login.
Each operation writes its audit event and leaves the commit to the caller.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Callable

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from workflow import audit, outbox
from workflow.access import can
from workflow.accounts import normalise_email
from workflow.clock import utcnow
from workflow.errors import AccessDenied, DomainError, InvalidInput, NotFound
from workflow.models import Proposal, ProposalInvitation, ProposalMember
from workflow.proposals import require
from workflow.timefmt import format_instant

INVITATION_DAYS = 14
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def pending_invitations(session: Session, proposal: Proposal) -> list[ProposalInvitation]:
    now = utcnow()
    return list(session.scalars(
        select(ProposalInvitation).where(
            ProposalInvitation.proposal_id == proposal.id,
            ProposalInvitation.accepted_at.is_(None),
            ProposalInvitation.revoked_at.is_(None),
            ProposalInvitation.expires_at > now,
        ).order_by(ProposalInvitation.created_at, ProposalInvitation.id)
    ))


def find_invitation(session: Session, token: str) -> ProposalInvitation | None:
    if not token or len(token) > 200:
        return None
    return session.scalar(select(ProposalInvitation).where(ProposalInvitation.token_sha256 == token_hash(token)))


def invitation_problem(invitation: ProposalInvitation, now: dt.datetime | None = None) -> str | None:
    """Why this invitation cannot be accepted any more, in plain words; None while it can."""
    now = now or utcnow()
    zone = invitation.proposal.call.time_zone
    if invitation.accepted_at is not None:
        return "this invitation has been accepted already; each invitation link works once"
    if invitation.revoked_at is not None:
        return "the coordinator withdrew this invitation; ask them for a new one if you should take part"
    if now >= invitation.expires_at:
        return (f"this invitation expired on {format_instant(invitation.expires_at, zone)}; "
                "ask the coordinator to invite you again")
    return None


def invite_co_applicant(
    session: Session,
    actor,
    proposal: Proposal,
    *,
    email: str,
    can_edit: bool,
    link: Callable[[str], str],
) -> ProposalInvitation:
    """Invite a person by e-mail to join the proposal. `link(token)` builds the absolute URL that is
    mailed. A pending invitation to the same address is replaced (its link stops working)."""
    require(can(actor, "proposal.manage_members", proposal))
    address = normalise_email(email)
    if not address:
        raise InvalidInput("give the e-mail address of the person to invite", "email")
    if len(address) > 254 or not _EMAIL.match(address):
        raise InvalidInput("this is not an e-mail address", "email")
    if normalise_email(proposal.coordinator.email) == address:
        raise InvalidInput("this is the coordinator's own address", "email")
    if any(normalise_email(m.user.email) == address for m in proposal.members):
        raise InvalidInput("this person is a co-applicant already", "email")
    now = utcnow()
    for old in pending_invitations(session, proposal):
        if normalise_email(old.email) == address:
            old.revoked_at = now
            audit.record(session, actor, "proposal.invitation_revoked", old, call_id=proposal.call_id,
                         before={"email": old.email}, reason="replaced by a new invitation")
    token = secrets.token_urlsafe(32)
    invitation = ProposalInvitation(
        proposal_id=proposal.id, email=address, can_edit=bool(can_edit), token_sha256=token_hash(token),
        invited_by_id=actor.id, created_at=now, expires_at=now + dt.timedelta(days=INVITATION_DAYS),
    )
    session.add(invitation)
    session.flush()
    audit.record(session, actor, "proposal.invitation_sent", invitation, call_id=proposal.call_id,
                 after={"proposal_id": proposal.id, "email": address, "can_edit": invitation.can_edit,
                        "expires_at": invitation.expires_at.isoformat()})
    call = proposal.call
    rights = "view and edit it" if invitation.can_edit else "view it (read-only)"
    outbox.enqueue(
        session, kind="co_applicant_invitation", to=address, call_id=call.id,
        dedup_key=f"invitation:{invitation.id}",
        subject=f"[{call.title}] Invitation to join the proposal {proposal.acronym}",
        body=(
            "Dear colleague,\n\n"
            f"{actor.name} ({actor.email}) invites you to join the proposal {proposal.acronym} "
            f"({proposal.reference}) in the call {call.title} as a co-applicant, "
            f"with permission to {rights}.\n\n"
            "To accept, open this link, then log in or create an account:\n"
            f"{link(token)}\n\n"
            f"The link works once and expires on {format_instant(invitation.expires_at, call.time_zone)}.\n"
            "If you did not expect this invitation, you can ignore this message.\n"
        ),
    )
    return invitation


def accept_invitation(session: Session, actor, token: str) -> ProposalMember:
    """The invitee (logged in, with any account) accepts: they become a member with the invited rights.
    The token is the coordinator's permission; it works once."""
    if actor is None:
        raise AccessDenied("please log in first")
    invitation = find_invitation(session, token)
    if invitation is None:
        raise NotFound("this invitation link is not valid; check that you copied all of it")
    proposal = invitation.proposal
    why = invitation_problem(invitation)
    if why:
        raise DomainError(why)
    if proposal.coordinator_id == actor.id:
        raise DomainError("you are the coordinator of this proposal already")
    if any(m.user_id == actor.id for m in proposal.members):
        raise DomainError("you are a co-applicant of this proposal already")
    now = utcnow()
    # Single use even under concurrency: only one request can turn a pending invitation into accepted.
    claimed = session.execute(
        update(ProposalInvitation)
        .where(ProposalInvitation.id == invitation.id, ProposalInvitation.accepted_at.is_(None),
               ProposalInvitation.revoked_at.is_(None))
        .values(accepted_at=now, accepted_by_id=actor.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        raise DomainError("this invitation has been accepted already; each invitation link works once")
    session.refresh(invitation)
    member = ProposalMember(user=actor, can_edit=invitation.can_edit, added_at=now)
    proposal.members.append(member)
    session.flush()
    audit.record(session, actor, "proposal.member_added", proposal,
                 after={"user_id": actor.id, "email": actor.email, "can_edit": member.can_edit,
                        "invitation_id": invitation.id, "invited_email": invitation.email})
    return member


def revoke_invitation(session: Session, actor, invitation: ProposalInvitation) -> ProposalInvitation:
    proposal = invitation.proposal
    require(can(actor, "proposal.manage_members", proposal))
    if invitation.accepted_at is not None:
        raise InvalidInput("this invitation has been accepted already; remove the co-applicant instead")
    if invitation.revoked_at is not None:
        raise InvalidInput("this invitation was withdrawn already")
    invitation.revoked_at = utcnow()
    audit.record(session, actor, "proposal.invitation_revoked", invitation, call_id=proposal.call_id,
                 before={"email": invitation.email, "can_edit": invitation.can_edit})
    return invitation


def remove_member(session: Session, actor, member: ProposalMember) -> None:
    proposal = member.proposal
    require(can(actor, "proposal.manage_members", proposal))
    proposal.members.remove(member)
    audit.record(session, actor, "proposal.member_removed", proposal,
                 before={"user_id": member.user_id, "email": member.user.email, "can_edit": member.can_edit})


def proposals_of(session: Session, user) -> list[Proposal]:
    """The proposals a person coordinates or is a co-applicant of, newest first."""
    member_of = select(ProposalMember.proposal_id).where(ProposalMember.user_id == user.id)
    return list(session.scalars(
        select(Proposal).where((Proposal.coordinator_id == user.id) | Proposal.id.in_(member_of))
        .order_by(Proposal.call_id, func.lower(Proposal.acronym), Proposal.id)
    ))
