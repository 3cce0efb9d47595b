"""People and roles in a call, as operations: invite by e-mail, accept the mailed link, revoke, list.

Roles per call: secretariat (managed by an administrator), funder officer of one funder, reviewer (the
reviewer pool with profiles lives in reviews/; here the role itself is granted). An invitation mails a
single-use link (only its SHA-256 is stored); accepting it grants the role to the account of the person
who opens it: a logged-in person's own account, or a new account they create on the spot with a password
(the mailed link proves the address). Every invitation, grant, revocation and cancellation is audited.

workflow/ knows no URLs: the web layer passes `link(token) -> absolute URL`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session, joinedload, lazyload

from workflow import audit, outbox
from workflow.access import can
from workflow.accounts import (
    _check_email,
    _check_name,
    find_user,
    grant_role,
    hash_password,
    normalise_email,
    password_problem,
)
from workflow.clock import utcnow
from workflow.console_models import RoleInvitation
from workflow.errors import DomainError, InvalidInput, NotFound
from workflow.models import Call, CallFunder, FundingOrganisation, RoleGrant, User
from workflow.paging import Window
from workflow.proposals import require
from workflow.timefmt import format_instant

ROLE_LABELS = {"secretariat": "Call secretariat", "officer": "Funder officer", "reviewer": "Reviewer"}
INVITATION_LIFETIME = dt.timedelta(days=14)
MAIL_KIND = "role_invitation"


def role_label(role: str, funder: FundingOrganisation | None = None) -> str:
    label = ROLE_LABELS.get(role, role)
    return f"{label} of {funder.acronym}" if funder is not None else label


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _may_manage(actor, call: Call, role: str) -> None:
    """Secretariat roles are an administrator's to give and take; the call's own roles are the secretariat's.
    (Composed from `admin` and `call.manage` until the policy has a `role.manage` action.)"""
    if role == "secretariat":
        require(can(actor, "admin"))
    else:
        require(can(actor, "call.manage", call))


def _funder_of_call(session: Session, call: Call, funder_id) -> FundingOrganisation:
    try:
        funder_id = int(funder_id)
    except (TypeError, ValueError):
        raise InvalidInput("choose the funder this officer works for", "funder_id") from None
    cf = session.scalar(select(CallFunder).where(CallFunder.call_id == call.id, CallFunder.funder_id == funder_id))
    if cf is None:
        raise InvalidInput("this funder does not take part in the call", "funder_id")
    return cf.funder


# ---------------------------------------------------------------------------------------------------------
# Inviting


@dataclass(frozen=True)
class Invited:
    invitation: RoleInvitation
    replaced: int  # earlier pending invitations of the same person to the same role, now cancelled


def invite(session: Session, actor, call: Call, *, email: str, role: str, funder_id=None, name: str = "",
           link: Callable[[str], str]) -> Invited:
    """Invite `email` to `role` in `call`; mails the single-use link in the call's wording of the
    "role_invitation" message (workflow.mail_templates)."""
    if role not in ROLE_LABELS:
        raise InvalidInput("choose a role", "role")
    _may_manage(actor, call, role)
    email = _check_email(email)
    name = " ".join((name or "").split())[:200]
    funder = _funder_of_call(session, call, funder_id) if role == "officer" else None
    fid = funder.id if funder is not None else None
    user = find_user(session, email)
    if user is not None and any(g.role == role and g.call_id == call.id and g.funder_id == fid for g in user.grants):
        raise InvalidInput(f"{email} is {role_label(role, funder).lower()} in this call already", "email")
    now = utcnow()
    replaced = session.execute(
        update(RoleInvitation)
        .where(RoleInvitation.call_id == call.id, RoleInvitation.email == email, RoleInvitation.role == role,
               (RoleInvitation.funder_id == fid) if fid is not None else RoleInvitation.funder_id.is_(None),
               RoleInvitation.accepted_at.is_(None), RoleInvitation.revoked_at.is_(None))
        .values(revoked_at=now).execution_options(synchronize_session=False)
    ).rowcount or 0
    token = secrets.token_urlsafe(32)
    inv = RoleInvitation(call_id=call.id, email=email, name=name or (user.name if user else ""), role=role,
                         funder_id=fid, token_sha256=_digest(token), invited_by_id=getattr(actor, "id", None),
                         created_at=now, expires_at=now + INVITATION_LIFETIME)
    session.add(inv)
    session.flush()
    context = {
        "call": {"title": call.title, "code": call.code},
        "recipient": {"name": inv.name or email, "email": email},
        "role": role_label(role, funder),
        "inviter": {"name": getattr(actor, "name", "The call secretariat")},
        "link": link(token),
        "expires": format_instant(inv.expires_at, call.time_zone),
        "has_account": user is not None,
    }
    from workflow.mail_templates import render

    subject, body = render(session, call, MAIL_KIND, context)
    outbox.enqueue(session, kind=MAIL_KIND, to=email, call_id=call.id, dedup_key=f"role_invitation:{inv.id}",
                   subject=subject, body=body)
    audit.record(session, actor, "role.invited", inv, call_id=call.id,
                 after={"email": email, "role": role, "funder_id": fid, "replaced": replaced})
    return Invited(inv, replaced)


# ---------------------------------------------------------------------------------------------------------
# Accepting


class InvitationRefused(DomainError):
    """A role invitation link that cannot be used: `reason` is unknown, used, expired or revoked."""

    MESSAGES = {
        "unknown": "This invitation link is not valid. Check that you opened the whole link from the e-mail.",
        "used": "This invitation has been accepted already. Each link works only once.",
        "expired": "This invitation has expired. Ask the call secretariat for a new one.",
        "revoked": "This invitation was withdrawn or replaced by a newer one. Use the link in the latest e-mail.",
    }

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(self.MESSAGES[reason])


def check_invitation(session: Session, token: str) -> RoleInvitation:
    """The invitation if `token` can be accepted now; raises InvitationRefused otherwise. Changes nothing."""
    inv = None
    if token and len(token) <= 100:
        inv = session.scalar(select(RoleInvitation).where(RoleInvitation.token_sha256 == _digest(token)))
    if inv is None:
        raise InvitationRefused("unknown")
    if inv.accepted_at is not None:
        raise InvitationRefused("used")
    if inv.revoked_at is not None:
        raise InvitationRefused("revoked")
    if utcnow() >= inv.expires_at:
        raise InvitationRefused("expired")
    return inv


def accept(session: Session, token: str, actor: User | None = None, *, name: str | None = None,
           password: str | None = None, confirm: str | None = None) -> tuple[User, RoleGrant]:
    """Accept an invitation. A logged-in actor gets the role on their own account. Otherwise a new account
    is made for the invited address (confirmed: the link came to that mailbox) with the chosen password;
    if the address has an account already, its owner must log in first."""
    inv = check_invitation(session, token)
    created = False
    if actor is None:
        if find_user(session, inv.email) is not None:
            raise InvalidInput(f"{inv.email} has a Jointcall account already: log in to accept", "email")
        name = _check_name(name or "")
        if (problem := password_problem(password, confirm, inv.email)) is not None:
            raise problem
    now = utcnow()
    won = session.execute(
        update(RoleInvitation).where(RoleInvitation.id == inv.id, RoleInvitation.accepted_at.is_(None),
                                     RoleInvitation.revoked_at.is_(None))
        .values(accepted_at=now).execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        raise InvitationRefused("used")
    if actor is None:
        actor = User(email=normalise_email(inv.email), name=name, password_hash=hash_password(password),
                     email_confirmed_at=now)
        session.add(actor)
        session.flush()
        created = True
        audit.record(session, actor, "user.created", actor,
                     after={"email": actor.email, "via": "role_invitation", "invitation_id": inv.id})
    session.execute(update(RoleInvitation).where(RoleInvitation.id == inv.id).values(accepted_by_id=actor.id)
                    .execution_options(synchronize_session=False))
    session.refresh(inv)
    grant = grant_role(session, actor, actor, inv.role, inv.call_id, inv.funder_id)
    audit.record(session, actor, "role.invitation_accepted", inv, call_id=inv.call_id,
                 after={"email": inv.email, "role": inv.role, "funder_id": inv.funder_id, "user_id": actor.id,
                        "account_created": created})
    return actor, grant


# ---------------------------------------------------------------------------------------------------------
# Revoking and cancelling


def revoke(session: Session, actor, call: Call, grant_id: int, reason: str | None = None) -> None:
    grant = session.get(RoleGrant, grant_id)
    if grant is None or grant.call_id != call.id:
        raise NotFound("no such role in this call")
    _may_manage(actor, call, grant.role)
    if grant.role == "secretariat" and grant.user_id == getattr(actor, "id", None) and not actor.is_admin:
        raise DomainError("you cannot remove your own secretariat role")
    before = {"role": grant.role, "call_id": grant.call_id, "funder_id": grant.funder_id, "user_id": grant.user_id}
    user = grant.user
    user.grants.remove(grant)
    session.flush()
    audit.record(session, actor, "role.revoked", user, call_id=call.id, before=before, reason=reason)


def cancel_invitation(session: Session, actor, call: Call, invitation_id: int) -> RoleInvitation:
    inv = session.get(RoleInvitation, invitation_id)
    if inv is None or inv.call_id != call.id:
        raise NotFound("no such invitation in this call")
    _may_manage(actor, call, inv.role)
    if not inv.pending:
        raise DomainError("this invitation is no longer pending")
    inv.revoked_at = utcnow()
    audit.record(session, actor, "role.invitation_cancelled", inv, call_id=call.id,
                 before={"email": inv.email, "role": inv.role, "funder_id": inv.funder_id})
    return inv


# ---------------------------------------------------------------------------------------------------------
# Who has which role


@dataclass(frozen=True)
class RoleRow:
    grant: RoleGrant
    user: User
    funder: FundingOrganisation | None

    @property
    def label(self) -> str:
        return role_label(self.grant.role, self.funder)


@dataclass(frozen=True)
class CallPeople:
    roles: list[RoleRow]  # one page of them
    pending: list[RoleInvitation]
    window: Window
    counts: dict[str, int]  # role -> people with it in the call, on every page

    def of(self, role: str) -> list[RoleRow]:
        return [r for r in self.roles if r.grant.role == role]


ROLE_ORDER = {"secretariat": 0, "officer": 1, "reviewer": 2}


def call_people(session: Session, call: Call, page: int = 1) -> CallPeople:
    """One page of the roles in the call (secretariat, then officers by funder, then reviewers, each by
    name), how many people hold each role, and every pending invitation: four queries whatever their
    number."""
    counts = dict(session.execute(
        select(RoleGrant.role, func.count(RoleGrant.id)).where(RoleGrant.call_id == call.id).group_by(RoleGrant.role)
    ).all())
    window = Window(sum(counts.values()), page)
    rows = session.execute(window.apply(
        select(RoleGrant, User, FundingOrganisation)
        .join(User, RoleGrant.user_id == User.id)
        .outerjoin(FundingOrganisation, RoleGrant.funder_id == FundingOrganisation.id)
        .where(RoleGrant.call_id == call.id)
        .order_by(case(ROLE_ORDER, value=RoleGrant.role, else_=9), func.coalesce(FundingOrganisation.acronym, ""),
                  func.lower(User.name), RoleGrant.id)
        # The page shows the people's names, not their other roles: those would load with every User row.
        .options(lazyload(User.grants))
    )).all()
    now = utcnow()
    pending = list(session.scalars(
        select(RoleInvitation).options(joinedload(RoleInvitation.funder))
        .where(RoleInvitation.call_id == call.id, RoleInvitation.accepted_at.is_(None),
               RoleInvitation.revoked_at.is_(None), RoleInvitation.expires_at > now)
        .order_by(RoleInvitation.created_at.desc())
    ).unique())
    return CallPeople([RoleRow(g, u, fo) for g, u, fo in rows], pending, window, counts)


def secretariats_by_call(session: Session, actor) -> list[tuple[Call, list[tuple[RoleGrant, User]], list[RoleInvitation]]]:
    """For an administrator: every call with its secretariat and pending secretariat invitations."""
    require(can(actor, "admin"))
    calls = session.scalars(select(Call).order_by(Call.created_at.desc(), Call.id.desc())).all()
    grants = session.execute(
        select(RoleGrant, User).join(User, RoleGrant.user_id == User.id)
        .where(RoleGrant.role == "secretariat").order_by(User.name)
    ).all()
    now = utcnow()
    invitations = session.scalars(
        select(RoleInvitation).where(RoleInvitation.role == "secretariat", RoleInvitation.accepted_at.is_(None),
                                     RoleInvitation.revoked_at.is_(None), RoleInvitation.expires_at > now)
    ).all()
    out = []
    for call in calls:
        out.append((call, [(g, u) for g, u in grants if g.call_id == call.id],
                    [i for i in invitations if i.call_id == call.id]))
    return out
