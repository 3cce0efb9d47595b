"""Review tables: the reviewer pool (invitations, profiles), conflicts of interest, who reviews which
proposal and what they wrote, the panel's consensus and the ranking list.

Assignment logic, conflicts, aggregation and ranking build on these (reviews/ imports workflow, never the
web layer).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from workflow.clock import utcnow
from workflow.db import Base
from workflow.models import Call, Proposal, User


class ReviewAssignment(Base):
    __tablename__ = "review_assignment"
    __table_args__ = (UniqueConstraint("proposal_id", "reviewer_id", "stage"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), index=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    stage: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(10), default="manual")  # "manual" | "auto"
    explanation: Mapped[dict | None] = mapped_column(JSON)
    assigned_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    assigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    proposal: Mapped[Proposal] = relationship()
    reviewer: Mapped[User] = relationship(foreign_keys=[reviewer_id])


class KeptPreview(Base):
    """An automatic assignment preview as it was computed, so that its pages can be read without computing
    it again (seconds at call scale). Not domain state: accepting computes the assignment again and
    compares; a kept preview lasts a day and each secretariat member keeps one per stage."""

    __tablename__ = "assignment_preview"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(8))
    params: Mapped[dict] = mapped_column(JSON)
    data: Mapped[dict] = mapped_column(JSON)  # AssignmentPreview.to_dict()
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class Review(Base):
    """One reviewer's scores (0-5 in half points per criterion), comments and recommendation."""

    __tablename__ = "review"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'submitted')", name="known_status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("review_assignment.id", ondelete="CASCADE"),
                                               unique=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    stage: Mapped[str] = mapped_column(String(8))
    scores: Mapped[dict] = mapped_column(JSON, default=dict)     # {criterion key: 0..5 in 0.5 steps}
    comments: Mapped[dict] = mapped_column(JSON, default=dict)   # {criterion key: text}
    recommendation: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="draft")
    submitted_at: Mapped[dt.datetime | None]
    # Shown (anonymised) to the applicants once the secretariat releases it, e.g. for the rebuttal.
    released_to_applicants: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    assignment: Mapped[ReviewAssignment] = relationship()


class ReviewerInvitation(Base):
    """The secretariat's invitation of a person to review in a call; the token is mailed, only its hash kept."""

    __tablename__ = "reviewer_invitation"
    __table_args__ = (
        UniqueConstraint("call_id", "user_id"),
        CheckConstraint("status IN ('invited', 'accepted', 'declined')", name="known_status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)  # a new invitation replaces it
    status: Mapped[str] = mapped_column(String(10), default="invited")
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    invited_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    responded_at: Mapped[dt.datetime | None]
    decline_reason: Mapped[str | None] = mapped_column(Text)

    call: Mapped[Call] = relationship()
    user: Mapped[User] = relationship(foreign_keys=[user_id])


class ReviewerProfile(Base):
    """A reviewer's expertise and affiliation in one call, and when they accepted the confidentiality and
    no-conflict declaration (no proposal text is shown before)."""

    __tablename__ = "reviewer_profile"
    __table_args__ = (UniqueConstraint("call_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    keywords: Mapped[list] = mapped_column(JSON, default=list)  # expertise keywords, as typed
    organisation: Mapped[str | None] = mapped_column(String(300))
    country: Mapped[str | None] = mapped_column(String(2))
    email_domain: Mapped[str | None] = mapped_column(String(254))
    declaration_accepted_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship()


class Conflict(Base):
    """A conflict of interest between a reviewer and a proposal: declared by the reviewer or detected by a
    rule, each with its reason in words. The secretariat may override it with a recorded justification."""

    __tablename__ = "conflict"
    __table_args__ = (
        UniqueConstraint("reviewer_id", "proposal_id", "rule"),
        CheckConstraint("source IN ('declared', 'detected')", name="known_source"),
        CheckConstraint("overridden_at IS NULL OR override_justification IS NOT NULL",
                        name="override_has_justification"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(10))
    # "declared" or the detection rule: same_organisation, same_email_domain, is_applicant, same_country.
    rule: Mapped[str] = mapped_column(String(30))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    overridden_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    override_justification: Mapped[str | None] = mapped_column(Text)
    overridden_at: Mapped[dt.datetime | None]

    reviewer: Mapped[User] = relationship(foreign_keys=[reviewer_id])
    proposal: Mapped[Proposal] = relationship()


class PanelConsensus(Base):
    """The panel's consensus on one proposal at one stage, entered by the secretariat."""

    __tablename__ = "panel_consensus"
    __table_args__ = (
        UniqueConstraint("proposal_id", "stage"),
        CheckConstraint("recommendation IN ('recommended', 'recommended_if_funds', 'not_recommended')",
                        name="known_recommendation"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), index=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(8))
    scores: Mapped[dict] = mapped_column(JSON, default=dict)  # {criterion key: 0..5 in 0.5 steps}
    weighted_total: Mapped[float] = mapped_column(Float)
    recommendation: Mapped[str] = mapped_column(String(24))
    summary: Mapped[str] = mapped_column(Text)
    entered_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    entered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    proposal: Mapped[Proposal] = relationship()


class RankingList(Base):
    """The ranking of one stage of a call; approval (by the CSC, recorded by the secretariat) freezes it."""

    __tablename__ = "ranking_list"
    __table_args__ = (
        UniqueConstraint("call_id", "stage"),
        CheckConstraint("status IN ('draft', 'approved')", name="known_status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(10), default="draft")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    approved_at: Mapped[dt.datetime | None]

    call: Mapped[Call] = relationship()
    entries: Mapped[list[RankingEntry]] = relationship(
        back_populates="ranking", cascade="all, delete-orphan", order_by="RankingEntry.rank"
    )


class RankingEntry(Base):
    __tablename__ = "ranking_entry"
    __table_args__ = (
        UniqueConstraint("ranking_id", "rank"),
        UniqueConstraint("ranking_id", "proposal_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ranking_id: Mapped[int] = mapped_column(ForeignKey("ranking_list.id", ondelete="CASCADE"), index=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    total: Mapped[float] = mapped_column(Float)
    # Why this entry is below the one above it, in words ("tied on total 12.0; higher Excellence (4.5 vs 4)").
    tie_break_note: Mapped[str] = mapped_column(Text, default="")

    ranking: Mapped[RankingList] = relationship(back_populates="entries")
    proposal: Mapped[Proposal] = relationship()
