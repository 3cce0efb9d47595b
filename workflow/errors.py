"""Domain errors. Each carries a message a person can act on; pages show it as it is."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every refusal the domain gives; `str(err)` is fit to show to the user."""


class TransitionNotAllowed(DomainError):
    def __init__(self, state: str, trigger: str, state_label: str | None = None):
        self.state, self.trigger = state, trigger
        super().__init__(
            f"'{trigger}' is not possible for a proposal in state '{state}'"
            + (f" ({state_label})" if state_label and state_label != state else "")
        )


class GuardFailed(DomainError):
    def __init__(self, state: str, trigger: str, reasons: list[str]):
        self.state, self.trigger, self.reasons = state, trigger, list(reasons)
        super().__init__(f"cannot '{trigger}' from '{state}': " + "; ".join(self.reasons))


class AccessDenied(DomainError):
    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class ChangedMeanwhile(DomainError):
    def __init__(self, what: str = "this proposal"):
        super().__init__(f"{what} was changed by someone else meanwhile; reload the page and try again")


class NotFound(DomainError):
    pass


class InvalidInput(DomainError):
    """Bad input to an operation; `field` names the form field it belongs to, when there is one."""

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        super().__init__(message)
