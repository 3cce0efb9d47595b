"""Tables of the funding decision (DOMAIN §4, rules 21-22): budget increases, the approved funding list and
its revisions, the per-partner funding lines, and each funder's confirmation of its own partners.

Money is whole euros (BigInteger). workflow.funding_ops is the only writer.
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from workflow.clock import utcnow
from workflow.db import Base
from workflow.funding import Scenario
from workflow.models import FundingOrganisation, Partner, Proposal, User


class BudgetIncrease(Base):
    """Money a funder adds to its commitment in a call; the funder's budget is committed + all increases."""

    __tablename__ = "budget_increase"
    __table_args__ = (CheckConstraint("amount > 0", name="increase_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), index=True)
    funder_id: Mapped[int] = mapped_column(ForeignKey("funding_organisation.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text, default="")
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    funder: Mapped[FundingOrganisation] = relationship(lazy="joined")
    recorded_by: Mapped[User] = relationship()


class FundingScenario(Base):
    """A frozen funding list: revision 1 is the steering committee's approval; each later revision is the
    recomputation after a funder declined (or a selected consortium withdrew). Exactly one revision of a
    call is "current"; earlier ones are kept, "superseded"."""

    __tablename__ = "funding_scenario"
    __table_args__ = (
        UniqueConstraint("call_id", "revision"),
        CheckConstraint("status IN ('current', 'superseded')", name="known_status"),
        CheckConstraint("cause IN ('approval', 'decline', 'recompute')", name="known_cause"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default="current")
    cause: Mapped[str] = mapped_column(String(12))
    # The approval's record (e.g. "CSC meeting of 12 September 2030, minutes item 4"), or why it was recomputed.
    note: Mapped[str] = mapped_column(Text)
    # workflow.funding.Scenario.to_dict(): every proposal's status, reasons and amounts, every funder's budget.
    # Read when first asked for (.scenario): most pages only ask whether the list is approved, and when, and
    # the whole ranking takes milliseconds to decode.
    result: Mapped[dict] = mapped_column(JSON, deferred=True)
    result_sha256: Mapped[str] = mapped_column(String(64))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Who recorded the steering committee's approval of the list, and when (copied to later revisions).
    approved_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    approved_at: Mapped[dt.datetime]

    lines: Mapped[list[FundingLine]] = relationship(
        back_populates="scenario", cascade="all, delete-orphan", order_by="FundingLine.id"
    )

    @cached_property
    def scenario(self) -> Scenario:
        """The stored result as a workflow.funding.Scenario (a revision never changes once written)."""
        return Scenario.from_dict(self.result)


class FundingLine(Base):
    """One funded partner of a selected proposal in one revision: its funder and amount (rule 22), and the
    part the gap pot pays. Decision letters and the per-funder exports read these."""

    __tablename__ = "funding_line"
    __table_args__ = (
        UniqueConstraint("scenario_id", "partner_id"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint("from_gap_pot >= 0 AND from_gap_pot <= amount", name="gap_pot_within_amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scenario_id: Mapped[int] = mapped_column(ForeignKey("funding_scenario.id", ondelete="CASCADE"), index=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id", ondelete="CASCADE"), index=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partner.id", ondelete="CASCADE"))
    funder_id: Mapped[int] = mapped_column(ForeignKey("funding_organisation.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    from_gap_pot: Mapped[int] = mapped_column(BigInteger, default=0)

    scenario: Mapped[FundingScenario] = relationship(back_populates="lines")
    proposal: Mapped[Proposal] = relationship()
    partner: Mapped[Partner] = relationship()
    funder: Mapped[FundingOrganisation] = relationship(lazy="joined")

    @property
    def from_budget(self) -> int:
        return self.amount - self.from_gap_pot


class FundingConfirmation(Base):
    """A funder's confirmation (or decline, with a reason) of the funding of its own partners in one selected
    proposal. Opened "pending" when the proposal is selected in the approved list; "cancelled" when another
    funder's decline leaves the proposal unfunded first."""

    __tablename__ = "funding_confirmation"
    __table_args__ = (
        UniqueConstraint("proposal_id", "funder_id"),
        CheckConstraint("status IN ('pending', 'confirmed', 'declined', 'cancelled')", name="known_status"),
        CheckConstraint("status != 'declined' OR reason IS NOT NULL", name="declined_has_reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), index=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id", ondelete="CASCADE"), index=True)
    funder_id: Mapped[int] = mapped_column(ForeignKey("funding_organisation.id"), index=True)
    # The revision that asked for it, and the funder's total for this proposal in it (budget + gap pot).
    scenario_id: Mapped[int] = mapped_column(ForeignKey("funding_scenario.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    reason: Mapped[str | None] = mapped_column(Text)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    decided_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    proposal: Mapped[Proposal] = relationship()
    funder: Mapped[FundingOrganisation] = relationship(lazy="joined")
