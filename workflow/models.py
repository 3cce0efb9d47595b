"""The domain's tables, grouped by aggregate: calls and funders, people and roles, proposals, audit, outbox.

Money is whole euros (int). Instants are aware UTC datetimes (see workflow.db.UTCDateTime).
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from workflow.callconfig import CallDef
from workflow.clock import utcnow
from workflow.db import Base

# ---------------------------------------------------------------------------------------------------------
# Calls and funders


class Call(Base):
    __tablename__ = "call"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    time_zone: Mapped[str] = mapped_column(String(64))
    phase: Mapped[str] = mapped_column(String(32), default="published")
    # The validated call definition (workflow.callconfig.CallDef) as JSON; the single source of settings.
    definition: Mapped[dict] = mapped_column(JSON)
    definition_sha256: Mapped[str] = mapped_column(String(64))
    # The rebuttal window, set when the secretariat opens it (the call's rebuttal.days long).
    rebuttal_opens_at: Mapped[dt.datetime | None]
    rebuttal_closes_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    stages: Mapped[list[CallStage]] = relationship(
        back_populates="call", cascade="all, delete-orphan", order_by="CallStage.position"
    )
    funders: Mapped[list[CallFunder]] = relationship(back_populates="call", cascade="all, delete-orphan")
    proposals: Mapped[list[Proposal]] = relationship(back_populates="call")

    @cached_property
    def settings(self) -> CallDef:
        return CallDef.model_validate(self.definition)

    @property
    def two_stage(self) -> bool:
        return self.settings.two_stage

    @property
    def has_rebuttal(self) -> bool:
        return self.settings.rebuttal is not None

    def stage(self, kind: str) -> CallStage | None:
        return next((s for s in self.stages if s.kind == kind), None)

    @property
    def first_stage(self) -> CallStage:
        return self.stages[0]


class CallStage(Base):
    __tablename__ = "call_stage"
    __table_args__ = (UniqueConstraint("call_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))  # "pre" | "full"
    position: Mapped[int] = mapped_column(Integer)
    opens_at: Mapped[dt.datetime]
    # Exclusive: a submission at exactly this instant is late.
    deadline: Mapped[dt.datetime]
    # Set when the secretariat closes submission for this stage.
    closed_at: Mapped[dt.datetime | None]

    call: Mapped[Call] = relationship(back_populates="stages")

    def is_open(self, now: dt.datetime) -> bool:
        return self.opens_at <= now < self.deadline and self.closed_at is None


class FundingOrganisation(Base):
    __tablename__ = "funding_organisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    acronym: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str | None] = mapped_column(String(120))


class CallFunder(Base):
    """A funder's participation in one call: its commitment and caps."""

    __tablename__ = "call_funder"
    __table_args__ = (
        UniqueConstraint("call_id", "funder_id"),
        CheckConstraint("committed_budget >= 0", name="budget_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"))
    funder_id: Mapped[int] = mapped_column(ForeignKey("funding_organisation.id"))
    committed_budget: Mapped[int] = mapped_column(BigInteger)
    max_per_partner: Mapped[int | None] = mapped_column(BigInteger)
    max_per_project: Mapped[int | None] = mapped_column(BigInteger)
    eligible_partner_types: Mapped[list] = mapped_column(JSON, default=list)
    national_contact: Mapped[str | None] = mapped_column(String(300))
    national_application_required: Mapped[bool] = mapped_column(Boolean, default=False)

    call: Mapped[Call] = relationship(back_populates="funders")
    funder: Mapped[FundingOrganisation] = relationship(lazy="joined")


# ---------------------------------------------------------------------------------------------------------
# People and roles


class User(Base):
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    email_confirmed_at: Mapped[dt.datetime | None]
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped at logout: every session cookie issued before stops working (cookies are client-side).
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    organisation: Mapped[str | None] = mapped_column(String(300))
    country: Mapped[str | None] = mapped_column(String(2))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    grants: Mapped[list[RoleGrant]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    def __repr__(self) -> str:
        return f"<User {self.email}>"


ROLES = ("secretariat", "officer", "reviewer")


class RoleGrant(Base):
    """A role in one call: secretariat, officer (of one funder) or reviewer. Admin is User.is_admin."""

    __tablename__ = "role_grant"
    __table_args__ = (
        UniqueConstraint("user_id", "role", "call_id", "funder_id"),
        CheckConstraint("role IN ('secretariat', 'officer', 'reviewer')", name="known_role"),
        CheckConstraint("(role = 'officer') = (funder_id IS NOT NULL)", name="officer_has_funder"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20))
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"))
    funder_id: Mapped[int | None] = mapped_column(ForeignKey("funding_organisation.id"))
    granted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="grants")


class AccountToken(Base):
    """A single-use, expiring token mailed to a person: confirm an e-mail, reset a password."""

    __tablename__ = "account_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))  # "confirm_email" | "reset_password"
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)  # only the hash is stored
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship()


class LoginAttempt(Base):
    """Recent login attempts, kept to throttle password guessing across all server processes."""

    __tablename__ = "login_attempt"
    __table_args__ = (Index("ix_login_attempt_email_at", "email", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    ip: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    succeeded: Mapped[bool] = mapped_column(Boolean, default=False)


# ---------------------------------------------------------------------------------------------------------
# Proposals


class Proposal(Base):
    __tablename__ = "proposal"
    __table_args__ = (UniqueConstraint("call_id", "reference"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id"), index=True)
    reference: Mapped[str] = mapped_column(String(40))  # e.g. "EPPERMED-JTC2024-0007", shown to people
    acronym: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(500), default="")
    abstract: Mapped[str] = mapped_column(Text, default="")
    keywords: Mapped[str] = mapped_column(String(500), default="")
    topic: Mapped[str] = mapped_column(String(200), default="")
    duration_months: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(32), index=True, default="draft")
    coordinator_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Optimistic lock: every UPDATE checks and bumps it, so a concurrent change is detected, never lost.
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    call: Mapped[Call] = relationship(back_populates="proposals")
    coordinator: Mapped[User] = relationship()
    partners: Mapped[list[Partner]] = relationship(
        back_populates="proposal", cascade="all, delete-orphan", order_by="Partner.position"
    )
    members: Mapped[list[ProposalMember]] = relationship(
        back_populates="proposal", cascade="all, delete-orphan"
    )
    submissions: Mapped[list[Submission]] = relationship(
        back_populates="proposal", cascade="all, delete-orphan", order_by="Submission.id"
    )

    @property
    def coordinator_partner(self) -> Partner | None:
        return self.partners[0] if self.partners else None


class ProposalMember(Base):
    """A co-applicant (partner PI) the coordinator invited to view and edit the proposal."""

    __tablename__ = "proposal_member"
    __table_args__ = (UniqueConstraint("proposal_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    can_edit: Mapped[bool] = mapped_column(Boolean, default=True)
    added_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    proposal: Mapped[Proposal] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


class ProposalInvitation(Base):
    """The coordinator's invitation of a partner PI by e-mail; accepted, it becomes a ProposalMember."""

    __tablename__ = "proposal_invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    can_edit: Mapped[bool] = mapped_column(Boolean, default=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    accepted_at: Mapped[dt.datetime | None]
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    revoked_at: Mapped[dt.datetime | None]

    proposal: Mapped[Proposal] = relationship()


class Rebuttal(Base):
    """The coordinator's one response to the reviews, written in the rebuttal window."""

    __tablename__ = "rebuttal"

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id", ondelete="CASCADE"), unique=True)
    text: Mapped[str] = mapped_column(Text)
    submitted_at: Mapped[dt.datetime]
    submitted_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))


class ChangeApproval(Base):
    """The secretariat's recorded approval (for the CSC) of consortium changes between the stages."""

    __tablename__ = "change_approval"

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id", ondelete="CASCADE"), index=True)
    approved_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    approved_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    justification: Mapped[str] = mapped_column(Text)


class Partner(Base):
    __tablename__ = "partner"
    __table_args__ = (
        CheckConstraint("requested_amount >= 0", name="request_not_negative"),
        CheckConstraint("NOT (own_funded AND funder_id IS NOT NULL)", name="own_funded_has_no_funder"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 1 = coordinator
    organisation: Mapped[str] = mapped_column(String(300))
    partner_type: Mapped[str] = mapped_column(String(32), default="academia")
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str | None] = mapped_column(String(120))
    funder_id: Mapped[int | None] = mapped_column(ForeignKey("funding_organisation.id"), index=True)
    own_funded: Mapped[bool] = mapped_column(Boolean, default=False)
    pi_name: Mapped[str] = mapped_column(String(200))
    pi_email: Mapped[str] = mapped_column(String(254))
    requested_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    # {cost category: whole euros}; requested_amount is its sum.
    budget: Mapped[dict] = mapped_column(JSON, default=dict)
    # Two co-applicants editing one partner: the second save is refused instead of silently replacing
    # the first (every UPDATE checks and bumps it).
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}

    proposal: Mapped[Proposal] = relationship(back_populates="partners")
    funder: Mapped[FundingOrganisation | None] = relationship(lazy="joined")

    @property
    def requests_funding(self) -> bool:
        return not self.own_funded and self.funder_id is not None


# Rule 11 (a PI in at most N proposals) counts a PI's proposals by lower(e-mail) on every proposal page and
# submission: without this index that is a scan of every partner of the call.
Index("ix_partner_pi_email_lower", func.lower(Partner.pi_email))


class Submission(Base):
    """A frozen snapshot of a proposal at submission; the latest of a stage counts, earlier ones are kept."""

    __tablename__ = "submission"

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(8))
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, ... within the stage
    submitted_at: Mapped[dt.datetime]
    submitted_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    content: Mapped[dict] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))
    # The full-stage submission points at the pre-proposal it grew from.
    previous_stage_submission_id: Mapped[int | None] = mapped_column(ForeignKey("submission.id"))

    proposal: Mapped[Proposal] = relationship(back_populates="submissions")


class Document(Base):
    __tablename__ = "document"

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id", ondelete="CASCADE"), index=True)
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partner.id", ondelete="SET NULL"))
    stage: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer, default=1)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100), default="application/pdf")
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    page_count: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    uploaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class EligibilityCheck(Base):
    """One check of one stage: the secretariat's formal check (partner_id NULL) or a funder's sign-off."""

    __tablename__ = "eligibility_check"
    __table_args__ = (
        UniqueConstraint("proposal_id", "stage", "partner_id", "funder_id"),
        CheckConstraint("status IN ('pending', 'eligible', 'ineligible')", name="known_status"),
        CheckConstraint("status != 'ineligible' OR reason IS NOT NULL", name="ineligible_has_reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id", ondelete="CASCADE"), index=True)
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partner.id", ondelete="CASCADE"))
    funder_id: Mapped[int | None] = mapped_column(ForeignKey("funding_organisation.id"), index=True)
    stage: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    reason: Mapped[str | None] = mapped_column(Text)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    decided_at: Mapped[dt.datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    partner: Mapped[Partner | None] = relationship()
    proposal: Mapped[Proposal] = relationship()


# ---------------------------------------------------------------------------------------------------------
# Audit and outbox


class AuditHead(Base):
    """One row: the last sequence number and hash of the audit chain. Updating it serialises appends."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class AuditEvent(Base):
    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_object", "object_type", "object_id"),
        # A call's log newest first, its count, and its filter lists of actions and object types
        # (workflow.db.distinct_values walks the last two): none reads the whole log.
        Index("ix_audit_event_call_seq", "call_id", "seq"),
        Index("ix_audit_event_call_action", "call_id", "action"),
        Index("ix_audit_event_call_type", "call_id", "object_type"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    at: Mapped[dt.datetime]
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True)  # no FK: audit outlives users
    actor_label: Mapped[str] = mapped_column(String(300))
    action: Mapped[str] = mapped_column(String(80), index=True)
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[int | None] = mapped_column(Integer)
    call_id: Mapped[int | None] = mapped_column(Integer)
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class OutboxMessage(Base):
    """An e-mail waiting to go out; written in the same transaction as the change that caused it."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'sending', 'sent', 'failed')", name="known_status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(60), index=True)
    # Makes the same event queue one message only (e.g. "receipt:submission:42").
    dedup_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    attachments: Mapped[list] = mapped_column(JSON, default=list)
    call_id: Mapped[int | None] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(10), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[dt.datetime | None]
    # Set when a sender claims the message (status "sending"); a stale claim goes back to the queue.
    claimed_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
