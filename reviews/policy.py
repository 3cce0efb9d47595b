"""Access for the review actions: the rules live in workflow/access.py (the one access policy); these
helpers raise the policy's refusal as a domain error for the reviews operations."""

from __future__ import annotations

from workflow import access
from workflow.access import DECLARATION_FIRST, NOT_AVAILABLE, Decision  # noqa: F401  (re-exported)
from workflow.errors import AccessDenied


def decide(actor, action: str, obj) -> Decision:
    return access.can(actor, action, obj)


def require(actor, action: str, obj) -> None:
    decision = decide(actor, action, obj)
    if not decision:
        raise AccessDenied(decision.reason)
