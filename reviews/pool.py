"""The reviewer pool of a call: invitations by e-mail, accepting or declining, profiles, the declaration.

The secretariat invites a person by e-mail: an existing account is linked, otherwise one is created
(without a password; the person sets one through the usual password-reset link). The invitation carries
a single-use token that is mailed through the outbox and never stored (the row keeps its SHA-256). The
reviewer role in the call is granted only when the person accepts; a profile (expertise keywords,
organisation, country, e-mail domain) is then started from their account. No proposal text is shown to a
reviewer before they accept the confidentiality and no-conflict declaration (`declaration_accepted`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from reviews.common import email_domain as domain_of
from reviews.common import reviewer_ids
from reviews.models import ReviewAssignment, ReviewerInvitation, ReviewerProfile
from reviews.policy import require
from reviews.text import split_keywords
from workflow import audit, outbox
from workflow.accounts import create_user, find_user, grant_role, normalise_email
from workflow.clock import utcnow
from workflow.countries import is_known_country
from workflow.errors import AccessDenied, DomainError, InvalidInput, NotFound
from workflow.models import Call, User
from workflow.timefmt import format_instant

INVITATION_DAYS = 30
MAX_KEYWORDS, KEYWORD_MAX_CHARS = 40, 100
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DOMAIN = re.compile(r"^(?=.{3,254}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,62}$")

DECLARATION_TEXT = (
    "I will keep every proposal, review and discussion of this call confidential and use them only for "
    "this evaluation. I will not contact applicants about their proposals. I will declare at once any "
    "conflict of interest with a proposal (the same organisation or a close collaboration with a partner, "
    "a personal or financial interest, or a competing proposal) and take no part in evaluating it."
)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------------------
# Invitations


def find_reviewer_invitation(session: Session, token: str) -> ReviewerInvitation | None:
    if not token or len(token) > 200:
        return None
    return session.scalar(select(ReviewerInvitation).where(ReviewerInvitation.token_sha256 == token_hash(token)))


def invitation_problem(invitation: ReviewerInvitation, now: dt.datetime | None = None) -> str | None:
    """Why this invitation cannot be answered any more, in plain words; None while it can."""
    now = now or utcnow()
    if invitation.status == "accepted":
        return "this invitation has been accepted already; each invitation link works once"
    if invitation.status == "declined":
        return "this invitation was declined; ask the call secretariat if you wish to review after all"
    if now >= invitation.expires_at:
        return (f"this invitation expired on {format_instant(invitation.expires_at, invitation.call.time_zone)}; "
                "ask the call secretariat to invite you again")
    return None


def invite_reviewer(session: Session, actor, call: Call, *, email: str, name: str | None = None,
                    link: Callable[[str], str]) -> ReviewerInvitation:
    """Invite a person to review in the call. `link(token)` builds the absolute URL that is mailed.
    Inviting again while an invitation is pending sends a new link (the old one stops working)."""
    require(actor, "reviewer.manage", call)
    address = normalise_email(email)
    if not address:
        raise InvalidInput("give the e-mail address of the reviewer to invite", "email")
    if len(address) > 254 or not _EMAIL.match(address):
        raise InvalidInput("this is not an e-mail address", "email")
    name = (name or "").strip()
    if len(name) > 200:
        raise InvalidInput("the name is too long (at most 200 characters)", "name")
    user = find_user(session, address)
    if user is None:
        user = create_user(session, actor, email=address, name=name or address.partition("@")[0])
    if user.id in reviewer_ids(session, call):
        raise InvalidInput("this person is a reviewer of this call already", "email")
    now = utcnow()
    token = secrets.token_urlsafe(32)
    invitation = session.scalar(select(ReviewerInvitation).where(
        ReviewerInvitation.call_id == call.id, ReviewerInvitation.user_id == user.id))
    if invitation is None:
        invitation = ReviewerInvitation(call_id=call.id, user_id=user.id)
        session.add(invitation)
        action, before = "reviewer.invited", None
    else:
        action, before = "reviewer.reinvited", {"status": invitation.status,
                                               "expires_at": invitation.expires_at.isoformat()}
    invitation.email, invitation.token_sha256, invitation.status = address, token_hash(token), "invited"
    invitation.invited_by_id, invitation.invited_at = actor.id, now
    invitation.expires_at = now + dt.timedelta(days=INVITATION_DAYS)
    invitation.responded_at, invitation.decline_reason = None, None
    session.flush()
    audit.record(session, actor, action, invitation, call_id=call.id, before=before,
                 after={"email": address, "user_id": user.id, "expires_at": invitation.expires_at.isoformat()})
    outbox.enqueue(
        session, kind="reviewer_invitation", to=address, call_id=call.id,
        dedup_key=f"reviewer_invitation:{invitation.id}:{invitation.token_sha256[:16]}",
        subject=f"[{call.title}] Invitation to review",
        body=(
            f"Dear {user.name},\n\n"
            f"the secretariat of the call {call.title} invites you to serve as an independent expert "
            "reviewer. Reviewers score proposals against the call's criteria, keep them confidential and "
            "declare any conflict of interest.\n\n"
            f"To accept or decline, open this link:\n{link(token)}\n\n"
            f"The link works once and expires on {format_instant(invitation.expires_at, call.time_zone)}.\n"
            "If you did not expect this invitation, you can ignore this message.\n"
        ),
    )
    return invitation


def _claim(session: Session, invitation: ReviewerInvitation, status: str, now: dt.datetime) -> None:
    """Single use even under concurrency: only one request turns a pending invitation into an answer."""
    claimed = session.execute(
        update(ReviewerInvitation)
        .where(ReviewerInvitation.id == invitation.id, ReviewerInvitation.status == "invited",
               ReviewerInvitation.token_sha256 == invitation.token_sha256)
        .values(status=status, responded_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        raise DomainError("this invitation has been answered already; each invitation link works once")
    session.refresh(invitation)


def accept_reviewer_invitation(session: Session, actor, token: str) -> ReviewerProfile:
    """The invited person, logged in with the invited account, accepts: they get the reviewer role in the
    call and a profile started from their account."""
    if actor is None:
        raise AccessDenied("please log in first")
    invitation = find_reviewer_invitation(session, token)
    if invitation is None:
        raise NotFound("this invitation link is not valid; check that you copied all of it")
    if (why := invitation_problem(invitation)) is not None:
        raise DomainError(why)
    if invitation.user_id != actor.id:
        raise AccessDenied(f"this invitation was sent to {invitation.email}; log in with that address to accept it")
    now = utcnow()
    _claim(session, invitation, "accepted", now)
    call = invitation.call
    if actor.email_confirmed_at is None:  # the mailed link proves the address
        actor.email_confirmed_at = now
    grant_role(session, actor, actor, "reviewer", call.id)
    profile = profile_of(session, actor, call)
    if profile is None:
        profile = ReviewerProfile(call_id=call.id, user_id=actor.id, keywords=[],
                                  organisation=actor.organisation, country=actor.country,
                                  email_domain=domain_of(actor.email) or None)
        session.add(profile)
        session.flush()
    audit.record(session, actor, "reviewer.invitation_accepted", invitation, call_id=call.id,
                 before={"status": "invited"}, after={"status": "accepted"})
    return profile


def decline_reviewer_invitation(session: Session, token: str, *, reason: str | None = None) -> ReviewerInvitation:
    """Decline with the mailed link alone (no login needed); the inviter is told."""
    invitation = find_reviewer_invitation(session, token)
    if invitation is None:
        raise NotFound("this invitation link is not valid; check that you copied all of it")
    if (why := invitation_problem(invitation)) is not None:
        raise DomainError(why)
    reason = (reason or "").strip() or None
    if reason is not None and len(reason) > 2000:
        raise InvalidInput("the reason is too long (at most 2,000 characters)", "reason")
    _claim(session, invitation, "declined", utcnow())
    invitation.decline_reason = reason
    call, user = invitation.call, invitation.user
    audit.record(session, user, "reviewer.invitation_declined", invitation, call_id=call.id,
                 before={"status": "invited"}, after={"status": "declined"}, reason=reason)
    inviter = session.get(User, invitation.invited_by_id) if invitation.invited_by_id else None
    if inviter is not None:
        outbox.enqueue(
            session, kind="reviewer_declined", to=inviter.email, call_id=call.id,
            dedup_key=f"reviewer_declined:{invitation.id}:{invitation.responded_at.isoformat()}",
            subject=f"[{call.title}] {user.name} declined to review",
            body=(f"Dear {inviter.name},\n\n{user.name} ({invitation.email}) declined the invitation to review "
                  f"in the call {call.title}.\n" + (f"Their reason: {reason}\n" if reason else "")),
        )
    return invitation


@dataclass(frozen=True)
class PoolRow:
    user_id: int
    name: str
    email: str
    status: str  # "invited" | "accepted" | "declined" | "expired" | "reviewer" (granted without invitation)
    invited_at: dt.datetime | None
    organisation: str | None
    country: str | None
    keywords: list[str]
    declaration_accepted_at: dt.datetime | None
    assignments: int


def reviewer_pool(session: Session, actor, call: Call) -> list[PoolRow]:
    """Everyone invited to or reviewing in the call, for the secretariat, by name."""
    require(actor, "reviewer.manage", call)
    now = utcnow()
    invitations = {i.user_id: i for i in session.scalars(
        select(ReviewerInvitation).where(ReviewerInvitation.call_id == call.id))}
    profiles = {p.user_id: p for p in session.scalars(
        select(ReviewerProfile).where(ReviewerProfile.call_id == call.id))}
    loads = dict(session.execute(
        select(ReviewAssignment.reviewer_id, func.count(ReviewAssignment.id))
        .where(ReviewAssignment.call_id == call.id).group_by(ReviewAssignment.reviewer_id)).all())
    granted = set(reviewer_ids(session, call))
    ids = sorted(set(invitations) | granted)
    # The people, in one statement (only what the pool shows: loading User objects would load their grants).
    people = {u.id: u for u in session.execute(select(User.id, User.name, User.email, User.organisation,
                                                      User.country).where(User.id.in_(ids)))} if ids else {}
    rows = []
    for uid in ids:
        user = people[uid]
        inv, prof = invitations.get(uid), profiles.get(uid)
        if uid in granted:
            status = "accepted" if inv is not None else "reviewer"
        elif inv.status == "invited" and now >= inv.expires_at:
            status = "expired"
        else:
            status = inv.status
        rows.append(PoolRow(
            user_id=uid, name=user.name, email=user.email, status=status,
            invited_at=inv.invited_at if inv else None,
            organisation=(prof.organisation if prof else user.organisation),
            country=(prof.country if prof else user.country),
            keywords=list(prof.keywords or []) if prof else [],
            declaration_accepted_at=prof.declaration_accepted_at if prof else None,
            assignments=loads.get(uid, 0),
        ))
    rows.sort(key=lambda r: (r.name.casefold(), r.user_id))
    return rows


# ---------------------------------------------------------------------------------------------------------
# Profiles and the declaration


def profile_of(session: Session, user: User, call: Call | int) -> ReviewerProfile | None:
    call_id = call if isinstance(call, int) else call.id
    return session.scalar(select(ReviewerProfile).where(
        ReviewerProfile.call_id == call_id, ReviewerProfile.user_id == user.id))


def _ensure_profile(session: Session, user: User, call: Call) -> ReviewerProfile:
    profile = profile_of(session, user, call)
    if profile is None:
        profile = ReviewerProfile(call_id=call.id, user_id=user.id, keywords=[], organisation=user.organisation,
                                  country=user.country, email_domain=domain_of(user.email) or None)
        session.add(profile)
        session.flush()
    return profile


def declaration_accepted(session: Session, user: User | None, call: Call | int) -> bool:
    """The predicate before any proposal text: has this reviewer accepted the declaration in this call?"""
    if user is None:
        return False
    profile = profile_of(session, user, call)
    return profile is not None and profile.declaration_accepted_at is not None


def accept_declaration(session: Session, actor, call: Call, *, confirmed: bool) -> ReviewerProfile:
    """The reviewer accepts the confidentiality and no-conflict declaration (DECLARATION_TEXT)."""
    if actor is None:
        raise AccessDenied("please log in first")
    if actor.id not in reviewer_ids(session, call):
        raise AccessDenied("only reviewers of this call can accept its declaration")
    if not confirmed:
        raise InvalidInput("tick the box to accept the declaration", "confirm")
    profile = _ensure_profile(session, actor, call)
    if profile.declaration_accepted_at is None:
        profile.declaration_accepted_at = utcnow()
        audit.record(session, actor, "reviewer.declaration_accepted", profile, call_id=call.id,
                     after={"accepted_at": profile.declaration_accepted_at.isoformat(), "text": DECLARATION_TEXT})
    return profile


def update_profile(session: Session, actor, call: Call, user: User, *, keywords: str | list[str],
                   organisation: str | None, country: str | None, email_domain: str | None) -> ReviewerProfile:
    """Change a reviewer's profile (the reviewer, or the secretariat). Conflicts are re-detected from it."""
    if user.id not in reviewer_ids(session, call):
        raise InvalidInput("this person is not a reviewer of this call")
    profile = _ensure_profile(session, user, call)
    require(actor, "reviewer.profile", profile)
    words = split_keywords(keywords)
    if len(words) > MAX_KEYWORDS:
        raise InvalidInput(f"give at most {MAX_KEYWORDS} keywords", "keywords")
    if any(len(w) > KEYWORD_MAX_CHARS for w in words):
        raise InvalidInput(f"each keyword may have at most {KEYWORD_MAX_CHARS} characters", "keywords")
    organisation = " ".join((organisation or "").split()) or None
    if organisation and len(organisation) > 300:
        raise InvalidInput("the organisation is too long (at most 300 characters)", "organisation")
    country = (country or "").strip().upper() or None
    if country and not is_known_country(country):
        raise InvalidInput("choose a country from the list", "country")
    domain = (email_domain or "").strip().lower().lstrip("@") or None
    if domain and not _DOMAIN.match(domain):
        raise InvalidInput("give an e-mail domain such as charite.de", "email_domain")
    before = {"keywords": list(profile.keywords or []), "organisation": profile.organisation,
              "country": profile.country, "email_domain": profile.email_domain}
    after = {"keywords": words, "organisation": organisation, "country": country, "email_domain": domain}
    if before != after:
        profile.keywords, profile.organisation, profile.country, profile.email_domain = (
            words, organisation, country, domain)
        audit.record(session, actor, "reviewer.profile_updated", profile, call_id=call.id,
                     before={k: v for k, v in before.items() if v != after[k]},
                     after={k: v for k, v in after.items() if v != before[k]})
        session.flush()
    return profile
