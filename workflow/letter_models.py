"""Tables of the decision letters (issue 6, DOMAIN §7, rule 23): the secretariat's letter template of a call,
one letter per proposal and stage, and the jobs that render a stage's letters into a ZIP.

workflow.letters is the only writer.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from workflow.clock import utcnow
from workflow.db import Base
from workflow.models import Call, Proposal, User

STAGES_SQL = "stage IN ('pre', 'full')"
OUTCOMES_SQL = "outcome IN ('not_eligible', 'not_invited', 'invited', 'funded', 'reserve', 'not_funded')"


class LetterTemplate(Base):
    """The body of a call's decision letters as a Jinja template the secretariat edits (rendered in a
    sandbox); without a row, the built-in default is used."""

    __tablename__ = "letter_template"
    __table_args__ = (UniqueConstraint("call_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(Text)
    source_sha256: Mapped[str] = mapped_column(String(64))
    updated_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    updated_by: Mapped[User] = relationship()


class DecisionLetter(Base):
    """The decision letter of one proposal at one stage (rule 23: exactly one per coordinator and stage).
    Regenerated while unsent; once sent (released to the coordinator) it never changes."""

    __tablename__ = "decision_letter"
    __table_args__ = (
        UniqueConstraint("proposal_id", "stage"),
        CheckConstraint(STAGES_SQL, name="known_stage"),
        CheckConstraint(OUTCOMES_SQL, name="known_outcome"),
        CheckConstraint("sent_at IS NULL OR sent_by_id IS NOT NULL", name="sent_has_sender"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), index=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(8))
    outcome: Mapped[str] = mapped_column(String(16))
    # The coordinator it is addressed to, and their address when it was generated.
    coordinator_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    recipient: Mapped[str] = mapped_column(String(254))
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    template_sha256: Mapped[str] = mapped_column(String(64))
    generated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    generated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))  # None: the command line
    sent_at: Mapped[dt.datetime | None]
    sent_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    outbox_message_id: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    proposal: Mapped[Proposal] = relationship()
    coordinator: Mapped[User] = relationship(foreign_keys=[coordinator_id])

    @property
    def sent(self) -> bool:
        return self.sent_at is not None


class LetterExportJob(Base):
    """Rendering every letter of a stage into one ZIP, in the background. `attempt` grows with each
    (re)start; a run writes only while its attempt is the job's current one, so a restarted job never
    mixes with the run it replaced. The ZIP appears under `file_key` only once complete."""

    __tablename__ = "letter_export_job"
    __table_args__ = (
        CheckConstraint(STAGES_SQL, name="known_stage"),
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="known_status"),
        CheckConstraint("via IN ('web', 'cli')", name="known_via"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(10), default="queued")
    via: Mapped[str] = mapped_column(String(4), default="web")
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    file_key: Mapped[str | None] = mapped_column(String(500))  # under the storage folder (web jobs)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    heartbeat_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]

    call: Mapped[Call] = relationship()
