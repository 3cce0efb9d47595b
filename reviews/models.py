"""Review tables: who reviews which proposal, and what they wrote.

Assignment logic, conflicts, aggregation and ranking build on these (reviews/ imports workflow, never the
web layer).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from workflow.clock import utcnow
from workflow.db import Base
from workflow.models import Proposal, User


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
