"""Small shared pieces of reviews/: stages, review states, the call's reviewers, settings with defaults."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.errors import InvalidInput
from workflow.lifecycle import Variant, stage_of
from workflow.models import Call, Proposal, RoleGrant, User

# The proposal state in which a stage's reviews are written.
REVIEW_STATE = {"pre": "pre_review", "full": "under_review"}
# Full-stage states from the rebuttal on: reviewers can no longer change their reviews (rule 18).
AFTER_REBUTTAL = frozenset({
    "rebuttal", "panel", "recommended", "not_recommended", "selected", "reserve", "not_funded", "funded",
})
MIN_REVIEWS = 3  # DOMAIN rule 16 and §1 step 8: at least three independent experts per proposal


def evaluation_setting(call: Call, key: str, default):
    """A call setting of the evaluation section that workflow/callconfig.py may not define yet."""
    return getattr(call.settings.evaluation, key, default)


def proposal_stage(proposal: Proposal) -> str:
    return stage_of(proposal.state, Variant.of(proposal.call))


def check_stage(call: Call, stage: str | None) -> str:
    """The stage asked for, or the call's last stage; refused if the call has no such stage."""
    stage = stage or call.settings.stages[-1].kind
    if stage not in ("pre", "full") or call.settings.stage(stage) is None:
        raise InvalidInput(f"this call has no {stage} stage", "stage")
    return stage


def reviewer_ids(session: Session, call: Call) -> list[int]:
    return list(session.scalars(
        select(RoleGrant.user_id).where(RoleGrant.call_id == call.id, RoleGrant.role == "reviewer")
        .order_by(RoleGrant.user_id)
    ))


def secretariat_users(session: Session, call: Call) -> list[User]:
    return list(session.scalars(
        select(User).join(RoleGrant, RoleGrant.user_id == User.id)
        .where(RoleGrant.call_id == call.id, RoleGrant.role == "secretariat").order_by(User.id)
    ))


def email_domain(email: str | None) -> str:
    return (email or "").rpartition("@")[2].strip().lower()


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def fmt_score(value: float | None) -> str:
    """3.0 -> '3', 3.5 -> '3.5', 12.25 -> '12.25'."""
    if value is None:
        return "–"
    return f"{value:.2f}".rstrip("0").rstrip(".")
