"""People: users, password hashes (argon2), role grants per call, and the account journeys a person
does alone: registering, confirming the e-mail address, logging in (throttled), resetting the password.

Mailed links carry a single-use token (`secrets.token_urlsafe(32)`); only its SHA-256 is stored
(AccountToken), it is compared by hash, and it is consumed with a conditional UPDATE so two clicks in two
server processes cannot both use it. workflow/ knows no URLs: the web layer passes `AccountLinks`, which
turns a token into the link to mail.

Login throttling lives in the LoginAttempt table so every server process sees the same counts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from workflow import audit, outbox
from workflow.clock import utcnow
from workflow.errors import DomainError, InvalidInput
from workflow.models import AccountToken, LoginAttempt, OutboxMessage, RoleGrant, User

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 500
MAX_NAME_LENGTH = 200
MAX_EMAIL_LENGTH = 254

CONFIRM_EMAIL = "confirm_email"
RESET_PASSWORD = "reset_password"
TOKEN_LIFETIME = {CONFIRM_EMAIL: dt.timedelta(hours=48), RESET_PASSWORD: dt.timedelta(hours=1)}
# At most this many links of one purpose are mailed to one account per hour (no mail bombing).
MAX_TOKENS_PER_HOUR = 3

LOGIN_WINDOW = dt.timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
MAX_ATTEMPTS_PER_IP = 30

# Outbox kinds of the account mails; the first two carry a token in their body.
MAIL_CONFIRM, MAIL_RESET, MAIL_EXISTS = "account.confirm_email", "account.reset_password", "account.exists"
REDACTED = "[This message held a single-use link; its text was removed after delivery.]"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(user: User | None, password: str) -> bool:
    if user is None or not user.password_hash:
        # Spend the same time as a real check so that timing does not reveal which e-mails exist.
        _hasher.hash(password)
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.email) == normalise_email(email)))


def create_user(
    session: Session,
    actor,
    *,
    email: str,
    name: str,
    password: str | None = None,
    confirmed: bool = False,
    is_admin: bool = False,
    organisation: str | None = None,
    country: str | None = None,
) -> User:
    """An account made by someone else (admin, CLI, demo); people register with `register`."""
    email = normalise_email(email)
    if find_user(session, email) is not None:
        raise InvalidInput("an account with this e-mail address exists already", "email")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password needs at least {MIN_PASSWORD_LENGTH} characters", "password")
    user = User(
        email=email, name=name.strip(), password_hash=hash_password(password) if password else None,
        email_confirmed_at=utcnow() if confirmed else None, is_admin=is_admin,
        organisation=organisation, country=country,
    )
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.created", user, after={"email": email, "is_admin": is_admin})
    return user


def grant_role(session: Session, actor, user: User, role: str, call_id: int, funder_id: int | None = None) -> RoleGrant:
    existing = next(
        (g for g in user.grants if g.role == role and g.call_id == call_id and g.funder_id == funder_id), None
    )
    if existing is not None:
        return existing
    grant = RoleGrant(role=role, call_id=call_id, funder_id=funder_id)
    user.grants.append(grant)
    session.flush()
    audit.record(session, actor, "role.granted", user, call_id=call_id,
                 after={"role": role, "call_id": call_id, "funder_id": funder_id})
    return grant


# ---------------------------------------------------------------------------------------------------------
# Input rules shared by registration and password reset


def password_problem(password: str | None, repeated: str | None, email: str | None = None) -> InvalidInput | None:
    """Why this new password cannot be used (as an InvalidInput naming its field), or None."""
    password = password or ""
    if not password:
        return InvalidInput("choose a password", "password")
    if len(password) < MIN_PASSWORD_LENGTH:
        return InvalidInput(f"the password needs at least {MIN_PASSWORD_LENGTH} characters", "password")
    if len(password) > MAX_PASSWORD_LENGTH:
        return InvalidInput(f"the password may have at most {MAX_PASSWORD_LENGTH} characters", "password")
    if email and password.strip().lower() == normalise_email(email):
        return InvalidInput("the password must not be your e-mail address", "password")
    if repeated is not None and repeated != password:
        return InvalidInput("the two passwords are not the same", "confirm")
    return None


def _check_email(email: str) -> str:
    email = normalise_email(email)
    if not email:
        raise InvalidInput("enter your e-mail address", "email")
    local, _, domain = email.rpartition("@")
    if len(email) > MAX_EMAIL_LENGTH or not local or "." not in domain or any(c.isspace() for c in email):
        raise InvalidInput("this is not an e-mail address", "email")
    return email


def _check_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise InvalidInput("enter your name", "name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"the name may have at most {MAX_NAME_LENGTH} characters", "name")
    return name


# ---------------------------------------------------------------------------------------------------------
# Single-use tokens


@dataclass(frozen=True)
class AccountLinks:
    """How the web layer turns a token into a link (workflow/ knows no URLs or base address)."""

    confirm: Callable[[str], str]  # token -> absolute URL of the confirmation page
    reset: Callable[[str], str]  # token -> absolute URL of the new-password form
    login: str
    forgot: str
    resend: str


class TokenRefused(DomainError):
    """A mailed link that cannot be used: `reason` is "unknown", "used" or "expired"."""

    MESSAGES = {
        "unknown": "This link is not valid. Check that you opened the whole link from the e-mail.",
        "used": "This link has already been used. Each link works only once.",
        "expired": "This link has expired.",
    }

    def __init__(self, reason: str, purpose: str, user: User | None = None):
        self.reason, self.purpose, self.user = reason, purpose, user
        super().__init__(self.MESSAGES[reason])


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(session: Session, user: User, purpose: str) -> str:
    """A new single-use token for `user`; returns the token itself, which is never stored."""
    if purpose not in TOKEN_LIFETIME:
        raise ValueError(f"unknown token purpose {purpose!r}")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(AccountToken(user_id=user.id, purpose=purpose, token_sha256=token_digest(token),
                             created_at=now, expires_at=now + TOKEN_LIFETIME[purpose]))
    session.flush()
    return token


def check_token(session: Session, token: str, purpose: str) -> AccountToken:
    """The token row if `token` can be used now for `purpose`; raises TokenRefused otherwise. Uses nothing."""
    row = None
    if token and len(token) <= 100:
        row = session.scalar(select(AccountToken).where(AccountToken.token_sha256 == token_digest(token),
                                                        AccountToken.purpose == purpose))
    if row is None:
        raise TokenRefused("unknown", purpose)
    if row.used_at is not None:
        raise TokenRefused("used", purpose, row.user)
    if utcnow() >= row.expires_at:
        raise TokenRefused("expired", purpose, row.user)
    return row


def _use_token(session: Session, token: str, purpose: str) -> AccountToken:
    """Check and consume the token atomically: of two concurrent uses, exactly one succeeds."""
    row = check_token(session, token, purpose)
    now = utcnow()
    result = session.execute(
        update(AccountToken).where(AccountToken.id == row.id, AccountToken.used_at.is_(None))
        .values(used_at=now).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise TokenRefused("used", purpose, row.user)
    session.refresh(row)
    return row


def _invalidate_tokens(session: Session, user: User, purpose: str) -> int:
    """Mark every outstanding token of this purpose used; returns how many there were."""
    result = session.execute(
        update(AccountToken)
        .where(AccountToken.user_id == user.id, AccountToken.purpose == purpose, AccountToken.used_at.is_(None))
        .values(used_at=utcnow()).execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def _recent_tokens(session: Session, user: User, purpose: str) -> int:
    since = utcnow() - dt.timedelta(hours=1)
    return session.scalar(select(func.count(AccountToken.id)).where(
        AccountToken.user_id == user.id, AccountToken.purpose == purpose, AccountToken.created_at > since)) or 0


def _utc(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).strftime("%d %B %Y, %H:%M UTC")


def _send_confirmation(session: Session, user: User, links: AccountLinks) -> bool:
    if _recent_tokens(session, user, CONFIRM_EMAIL) >= MAX_TOKENS_PER_HOUR:
        return False
    token = issue_token(session, user, CONFIRM_EMAIL)
    expires = utcnow() + TOKEN_LIFETIME[CONFIRM_EMAIL]
    outbox.enqueue(
        session, kind=MAIL_CONFIRM, to=user.email,
        subject="Confirm your e-mail address for Jointcall",
        body=(
            f"Hello {user.name},\n\n"
            "please confirm the e-mail address of your Jointcall account by opening this link:\n\n"
            f"{links.confirm(token)}\n\n"
            f"The link works once and until {_utc(expires)} (48 hours). Opening it also logs you in.\n"
            f"Expired? Ask for a new link here: {links.resend}\n\n"
            "If you did not create this account, ignore this message: the account stays unconfirmed.\n"
        ),
    )
    return True


# ---------------------------------------------------------------------------------------------------------
# Registration and confirmation


@dataclass(frozen=True)
class Registration:
    """What `register` did. The page shows the same answer in both cases (no account enumeration)."""

    user: User | None  # the new account, None when the address belonged to an account already
    created: bool


def register(session: Session, *, name: str, email: str, password: str, confirm: str | None,
             links: AccountLinks) -> Registration:
    """A person creates their own, unconfirmed account; a confirmation link is mailed to them.

    If the address belongs to an account already, nothing is created and the owner is told by mail that
    someone tried to register with it; the caller shows the same "check your mailbox" answer either way.
    """
    name = _check_name(name)
    email = _check_email(email)
    if (problem := password_problem(password, confirm, email)) is not None:
        raise problem
    password_hash = hash_password(password)  # before the lookup, so both answers take the same time
    existing = find_user(session, email)
    if existing is not None:
        _tell_owner(session, existing, links)
        return Registration(None, False)
    # Two concurrent registrations of one address: the second flush raises IntegrityError; the caller
    # rolls back and calls again, and then finds the account.
    user = User(email=email, name=name, password_hash=password_hash, email_confirmed_at=None)
    session.add(user)
    session.flush()
    audit.record(session, user, "user.registered", user, after={"email": email, "name": name})
    _send_confirmation(session, user, links)
    return Registration(user, True)


def _tell_owner(session: Session, user: User, links: AccountLinks) -> None:
    unconfirmed = (
        "Your account is not confirmed yet. To get a new confirmation link, open:\n"
        f"{links.resend}\n\n" if user.email_confirmed_at is None else ""
    )
    outbox.enqueue(
        session, kind=MAIL_EXISTS, to=user.email,
        subject="Someone tried to register with your e-mail address",
        body=(
            f"Hello {user.name},\n\n"
            "someone (perhaps you) tried to create a Jointcall account with this e-mail address. You have an "
            "account already, so nothing was changed and no new account was created.\n\n"
            f"{unconfirmed}"
            f"To log in: {links.login}\n"
            f"Forgot your password? Set a new one here: {links.forgot}\n\n"
            "If it was not you, you can ignore this message.\n"
        ),
    )


def resend_confirmation(session: Session, email: str, links: AccountLinks) -> bool:
    """Mail a new confirmation link if an unconfirmed account has this address. The caller answers the
    same whatever happened; the result (True when a link was queued) is for tests and logs."""
    user = find_user(session, email)
    if user is None or user.email_confirmed_at is not None:
        return False
    return _send_confirmation(session, user, links)


def confirm_email(session: Session, token: str, *, ip: str | None = None) -> User:
    """Confirm the address the token was mailed to. Raises TokenRefused for an unknown, used or expired
    link. With `ip`, records the login the confirmation page performs (it ends a lockout)."""
    row = _use_token(session, token, CONFIRM_EMAIL)
    user = row.user
    _invalidate_tokens(session, user, CONFIRM_EMAIL)  # older links of the same kind are spent too
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
        audit.record(session, user, "user.email_confirmed", user,
                     after={"email": user.email, "email_confirmed_at": user.email_confirmed_at.isoformat()})
    if ip is not None:
        record_login_attempt(session, user.email, ip, succeeded=True)
    return user


# ---------------------------------------------------------------------------------------------------------
# Password reset


def request_password_reset(session: Session, email: str, links: AccountLinks) -> bool:
    """Mail a reset link if an account has this address. The caller answers the same whatever happened;
    the result (True when a link was queued) is for tests and logs."""
    user = find_user(session, email)
    if user is None or _recent_tokens(session, user, RESET_PASSWORD) >= MAX_TOKENS_PER_HOUR:
        return False
    token = issue_token(session, user, RESET_PASSWORD)
    expires = utcnow() + TOKEN_LIFETIME[RESET_PASSWORD]
    outbox.enqueue(
        session, kind=MAIL_RESET, to=user.email,
        subject="Reset your Jointcall password",
        body=(
            f"Hello {user.name},\n\n"
            "someone (perhaps you) asked to reset the password of your Jointcall account. To choose a new "
            "password, open this link:\n\n"
            f"{links.reset(token)}\n\n"
            f"The link works once and until {_utc(expires)} (1 hour).\n"
            f"Expired? Ask for a new one here: {links.forgot}\n\n"
            "If you did not ask for this, ignore this message: your password stays as it is.\n"
        ),
    )
    return True


def reset_password(session: Session, token: str, password: str, confirm: str | None, *,
                   ip: str | None = None) -> User:
    """Set a new password with a reset token. Every other outstanding reset link of the account stops
    working; completing it also proves the mailbox, so an unconfirmed address becomes confirmed.
    With `ip`, records the login that follows (it ends a lockout)."""
    row = check_token(session, token, RESET_PASSWORD)
    if (problem := password_problem(password, confirm, row.user.email)) is not None:
        raise problem
    row = _use_token(session, token, RESET_PASSWORD)
    user = row.user
    others = _invalidate_tokens(session, user, RESET_PASSWORD)
    user.password_hash = hash_password(password)
    after = {"other_reset_links_invalidated": others}
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
        after["email_confirmed_at"] = user.email_confirmed_at.isoformat()
    audit.record(session, user, "user.password_reset", user, after=after)
    if ip is not None:
        record_login_attempt(session, user.email, ip, succeeded=True)
    return user


# ---------------------------------------------------------------------------------------------------------
# Logging in, throttled


@dataclass(frozen=True)
class Lockout:
    """Why login attempts are refused for now, and until when."""

    scope: str  # "email" (too many failures for this address) | "ip" (too many attempts from this client)
    until: dt.datetime

    def minutes_left(self, now: dt.datetime | None = None) -> int:
        return max(1, math.ceil(((self.until - (now or utcnow())).total_seconds()) / 60))

    def message(self, now: dt.datetime | None = None) -> str:
        minutes = self.minutes_left(now)
        when = f"after {self.until.astimezone(dt.UTC):%H:%M} UTC (in {minutes} minute{'s' if minutes != 1 else ''})"
        if self.scope == "ip":
            return f"Too many login attempts from your network. Try again {when}."
        return f"Too many failed login attempts for this e-mail address. Try again {when}."


def set_first_password(session: Session, user: User, password: str, confirm: str | None, *, via: str) -> None:
    """An invited person chooses the password of the account their invitation made for them. Only for an
    account that never had one: the mailed single-use link they followed proves the address; `via` names
    that invitation in the audit log."""
    if user.password_hash:
        raise DomainError("this account has a password already; log in to accept the invitation")
    problem = password_problem(password, confirm, user.email)
    if problem is not None:
        raise problem
    user.password_hash = hash_password(password)
    audit.record(session, user, "user.password_set", user, after={"via": via})


def login_lockout(session: Session, email: str, ip: str) -> Lockout | None:
    """Whether attempts for this address or from this client are refused now.

    The address: 5 failures within the last 15 minutes, counting only failures after its last success.
    The client: 30 attempts of any kind within the last 15 minutes. A lockout ends when enough of those
    attempts are older than 15 minutes. Refused attempts are recorded too, so hammering keeps it shut.
    """
    email, ip = _attempt_key(email, ip)
    since = utcnow() - LOGIN_WINDOW
    from_ip = session.scalars(
        select(LoginAttempt.at).where(LoginAttempt.ip == ip, LoginAttempt.at > since)
        .order_by(LoginAttempt.at.desc()).limit(MAX_ATTEMPTS_PER_IP)
    ).all()
    if len(from_ip) >= MAX_ATTEMPTS_PER_IP:
        return Lockout("ip", from_ip[-1] + LOGIN_WINDOW)
    last_success = session.scalar(
        select(func.max(LoginAttempt.id)).where(LoginAttempt.email == email, LoginAttempt.succeeded.is_(True))
    ) or 0
    failures = session.scalars(
        select(LoginAttempt.at).where(LoginAttempt.email == email, LoginAttempt.succeeded.is_(False),
                                      LoginAttempt.id > last_success, LoginAttempt.at > since)
        .order_by(LoginAttempt.at.desc()).limit(MAX_FAILURES_PER_EMAIL)
    ).all()
    if len(failures) >= MAX_FAILURES_PER_EMAIL:
        return Lockout("email", failures[-1] + LOGIN_WINDOW)
    return None


def _attempt_key(email: str, ip: str | None) -> tuple[str, str]:
    return normalise_email(email)[:MAX_EMAIL_LENGTH], (ip or "unknown")[:64]


def record_login_attempt(session: Session, email: str, ip: str | None, *, succeeded: bool) -> LoginAttempt:
    email, ip = _attempt_key(email, ip)
    attempt = LoginAttempt(email=email, ip=ip, at=utcnow(), succeeded=succeeded)
    session.add(attempt)
    session.flush()
    return attempt


@dataclass(frozen=True)
class LoginResult:
    user: User | None  # the person, when the password was right and no lockout applied
    lockout: Lockout | None = None


def attempt_login(session: Session, email: str, password: str, *, ip: str | None) -> LoginResult:
    """Check a login, throttled per address and per client, and record the attempt. The caller commits
    whatever the outcome, so that failures count across requests and server processes."""
    lockout = login_lockout(session, email, ip)
    if lockout is not None:
        record_login_attempt(session, email, ip, succeeded=False)
        return LoginResult(None, lockout)
    user = find_user(session, email)
    ok = check_password(user, password)
    record_login_attempt(session, email, ip, succeeded=ok)
    return LoginResult(user if ok else None)


def prune_login_attempts(session: Session, older_than: dt.timedelta = dt.timedelta(days=90)) -> int:
    """Delete login attempts older than `older_than` (they no longer matter for throttling)."""
    result = session.execute(delete(LoginAttempt).where(LoginAttempt.at < utcnow() - older_than))
    return result.rowcount or 0


def redact_delivered_links(session: Session) -> int:
    """Replace the body of delivered account mails, which hold a usable link, so the database keeps no
    live token once the mail is out. Returns how many messages were redacted."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.kind.in_((MAIL_CONFIRM, MAIL_RESET, "role_invitation")), OutboxMessage.status == "sent",
               OutboxMessage.body_text != REDACTED)
        .values(body_text=REDACTED).execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def end_sessions(session: Session, user: User) -> None:
    """Log the user out everywhere: every session cookie issued before stops authenticating."""
    user.session_epoch = (user.session_epoch or 0) + 1
    audit.record(session, user, "user.logged_out", user)
