"""Tables of the secretariat's console: invitations to a role in a call, and the editable mail templates.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from workflow.clock import utcnow
from workflow.db import Base
from workflow.models import Call, FundingOrganisation


class RoleInvitation(Base):
    """A person invited by e-mail to a role in a call; accepted, it becomes a RoleGrant of their account.

    Only the SHA-256 of the mailed single-use token is stored."""

    __tablename__ = "role_invitation"
    __table_args__ = (
        CheckConstraint("role IN ('secretariat', 'officer', 'reviewer')", name="known_role"),
        CheckConstraint("(role = 'officer') = (funder_id IS NOT NULL)", name="officer_has_funder"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))
    funder_id: Mapped[int | None] = mapped_column(ForeignKey("funding_organisation.id"))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    accepted_at: Mapped[dt.datetime | None]
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    revoked_at: Mapped[dt.datetime | None]

    call: Mapped[Call] = relationship()
    funder: Mapped[FundingOrganisation | None] = relationship(lazy="joined")

    @property
    def pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None


class MailTemplate(Base):
    """The secretariat's wording of one kind of message in one call (Jinja, sandboxed, plain text)."""

    __tablename__ = "mail_template"
    __table_args__ = (UniqueConstraint("call_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(60))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
