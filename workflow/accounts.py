"""People: users, password hashes (argon2) and role grants per call."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workflow import audit
from workflow.clock import utcnow
from workflow.errors import InvalidInput
from workflow.models import RoleGrant, User

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10


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
