"""The proposal lifecycle, declared once as a table, and the `transitions` machine built from it.

Read TRANSITIONS top to bottom: it is the whole lifecycle. Each row says which trigger moves a proposal
from which states to which state, which guards must pass (workflow.guards) and who may fire it
(checked by workflow.access). `needs` drops a row from call variants without that feature: a single-stage
call has no pre-proposal stage, a call without rebuttal goes from review straight to the panel.

The review guards (enough_reviews, consensus_recommends, consensus_not_recommended, ranking_approved) are
registered by reviews/ when that package is imported (reviews.plugin); workflow/ never imports it. Without
it they fail closed: the invitation and panel steps are refused with "the check ... is not available".

`fire()` is the only way a proposal's state changes; operations call it inside their transaction.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from functools import cache

from transitions import Machine

from workflow.errors import GuardFailed, TransitionNotAllowed

# Feature flags a row may need.
TWO_STAGE, SINGLE_STAGE, REBUTTAL, NO_REBUTTAL = "two_stage", "single_stage", "rebuttal", "no_rebuttal"

COORDINATOR, SECRETARIAT = "coordinator", "secretariat"


@dataclass(frozen=True)
class State:
    name: str
    label: str
    needs: frozenset[str] = frozenset()
    final: bool = False


@dataclass(frozen=True)
class Transition:
    trigger: str
    sources: tuple[str, ...]
    dest: str
    guards: tuple[str, ...] = ()
    who: tuple[str, ...] = ()
    needs: frozenset[str] = frozenset()
    label: str = ""


def _t(trigger, sources, dest, guards=(), who=(SECRETARIAT,), needs=(), label=""):
    sources = (sources,) if isinstance(sources, str) else tuple(sources)
    return Transition(trigger, sources, dest, tuple(guards), tuple(who), frozenset(needs), label or trigger)


_2 = (TWO_STAGE,)

STATES: tuple[State, ...] = (
    State("draft", "Draft"),
    State("submitted", "Submitted"),
    State("not_submitted", "Not submitted", final=True),
    State("eligibility_check", "Eligibility check"),
    State("ineligible", "Ineligible", final=True),
    State("pre_review", "Pre-proposal review", frozenset(_2)),
    State("not_invited", "Not invited", frozenset(_2), final=True),
    State("invited", "Invited to full proposal", frozenset(_2)),
    State("full_draft", "Full proposal draft", frozenset(_2)),
    State("full_submitted", "Full proposal submitted", frozenset(_2)),
    State("full_eligibility_check", "Full proposal eligibility check", frozenset(_2)),
    State("full_ineligible", "Full proposal ineligible", frozenset(_2), final=True),
    State("under_review", "Under review"),
    State("rebuttal", "Rebuttal", frozenset({REBUTTAL})),
    State("panel", "Panel"),
    State("not_recommended", "Not recommended", final=True),
    State("recommended", "Recommended"),
    State("selected", "Selected for funding"),
    State("reserve", "Reserve list"),
    State("not_funded", "Not funded", final=True),
    State("funded", "Funded", final=True),
    State("withdrawn", "Withdrawn", final=True),
)

# States a coordinator may still withdraw from: everything before a funding decision.
WITHDRAWABLE = (
    "draft", "submitted", "eligibility_check", "pre_review", "invited", "full_draft", "full_submitted",
    "full_eligibility_check", "under_review", "rebuttal", "panel", "recommended", "reserve", "selected",
)  # fmt: skip

#   trigger                  from                                  to                        guards                                      who / needs
TRANSITIONS: tuple[Transition, ...] = (
    _t("submit",             "draft",                              "submitted",              ("stage_open", "consortium_valid"),         (COORDINATOR,)),
    _t("reopen",             "submitted",                          "draft",                  ("stage_open",),                            (COORDINATOR,)),
    _t("close_submission",   "submitted",                          "eligibility_check",      ("stage_closed",)),
    _t("lapse",              "draft",                              "not_submitted",          ("stage_closed",)),
    _t("declare_eligible",   "eligibility_check",                  "pre_review",             ("checks_all_eligible",),                   needs=_2),
    _t("declare_eligible",   "eligibility_check",                  "under_review",           ("checks_all_eligible",),                   needs=(SINGLE_STAGE,)),
    _t("declare_ineligible", "eligibility_check",                  "ineligible",             ("checks_found_ineligible",)),
    _t("invite",             "pre_review",                         "invited",                ("ranking_approved",),                      needs=_2),
    _t("not_invite",         "pre_review",                         "not_invited",            ("ranking_approved",),                      needs=_2),
    _t("start_full",         "invited",                            "full_draft",             ("stage_open",),                            (COORDINATOR,), _2),
    _t("submit_full",        "full_draft",                         "full_submitted",         ("stage_open", "consortium_valid", "changes_approved"), (COORDINATOR,), _2),
    _t("reopen_full",        "full_submitted",                     "full_draft",             ("stage_open",),                            (COORDINATOR,), _2),
    _t("close_submission",   "full_submitted",                     "full_eligibility_check", ("stage_closed",),                          needs=_2),
    _t("lapse",              ("invited", "full_draft"),            "not_submitted",          ("stage_closed",),                          needs=_2),
    _t("declare_eligible",   "full_eligibility_check",             "under_review",           ("checks_all_eligible",),                   needs=_2),
    _t("declare_ineligible", "full_eligibility_check",             "full_ineligible",        ("checks_found_ineligible",),               needs=_2),
    _t("open_rebuttal",      "under_review",                       "rebuttal",               (),                                         needs=(REBUTTAL,)),
    _t("close_rebuttal",     "rebuttal",                           "panel",                  (),                                         needs=(REBUTTAL,)),
    _t("send_to_panel",      "under_review",                       "panel",                  (),                                         needs=(NO_REBUTTAL,)),
    _t("recommend",          "panel",                              "recommended",            ("enough_reviews", "consensus_recommends")),
    _t("not_recommend",      "panel",                              "not_recommended",        ("enough_reviews", "consensus_not_recommended")),
    _t("select",             ("recommended", "reserve"),           "selected"),
    _t("place_in_reserve",   ("recommended", "selected"),          "reserve"),
    _t("not_fund",           ("recommended", "reserve", "selected"), "not_funded"),
    _t("fund",               "selected",                           "funded"),
    _t("withdraw",           WITHDRAWABLE,                         "withdrawn",              (),                                         (COORDINATOR, SECRETARIAT)),
)  # fmt: skip

STATE_BY_NAME = {s.name: s for s in STATES}
FINAL_STATES = frozenset(s.name for s in STATES if s.final)


@dataclass(frozen=True)
class Variant:
    """A call's lifecycle features."""

    two_stage: bool = True
    rebuttal: bool = True

    @property
    def features(self) -> frozenset[str]:
        return frozenset(
            {TWO_STAGE if self.two_stage else SINGLE_STAGE, REBUTTAL if self.rebuttal else NO_REBUTTAL}
        )

    @classmethod
    def of(cls, call) -> Variant:
        return cls(two_stage=call.two_stage, rebuttal=call.has_rebuttal)


ALL_VARIANTS = tuple(Variant(t, r) for t in (True, False) for r in (True, False))


def states_for(variant: Variant) -> list[State]:
    return [s for s in STATES if s.needs <= variant.features]


@cache
def transitions_for(variant: Variant) -> tuple[Transition, ...]:
    """The rows of this variant, each with its sources limited to the variant's states."""
    names = {s.name for s in states_for(variant)}
    out = []
    for t in TRANSITIONS:
        if t.needs <= variant.features:
            sources = tuple(s for s in t.sources if s in names)
            if sources:
                out.append(replace(t, sources=sources))
    return tuple(out)


def stage_of(state: str, variant: Variant) -> str:
    """Which submission stage a proposal in `state` belongs to ("pre" or "full")."""
    if not variant.two_stage:
        return "full"
    return "pre" if state in ("draft", "submitted", "eligibility_check", "ineligible", "pre_review",
                              "not_invited") else "full"  # fmt: skip


def rows(variant: Variant, trigger: str, source: str) -> list[Transition]:
    return [t for t in transitions_for(variant) if t.trigger == trigger and source in t.sources]


def available_triggers(variant: Variant, source: str) -> list[str]:
    seen: dict[str, None] = {}
    for t in transitions_for(variant):
        if source in t.sources:
            seen[t.trigger] = None
    return list(seen)


# ---------------------------------------------------------------------------------------------------------
# The transitions.Machine, built once per variant.


@dataclass
class _Bound:
    """What the machine sees: a thin stand-in for a Proposal row, so the ORM object gets no extra attributes."""

    proposal: object
    ctx: object = None

    @property
    def state(self) -> str:
        return self.proposal.state

    @state.setter
    def state(self, value: str) -> None:
        self.proposal.state = value


def _condition(guard_names: tuple[str, ...]):
    def check(event) -> bool:
        from workflow.guards import failing_guards

        bound = event.model
        return not failing_guards(guard_names, bound.proposal, bound.ctx)

    return check


@dataclass
class _MachineEntry:
    machine: Machine
    lock: threading.Lock = field(default_factory=threading.Lock)


@cache
def machine_for(variant: Variant) -> _MachineEntry:
    machine = Machine(
        model=[],
        states=[s.name for s in states_for(variant)],
        transitions=[
            {"trigger": t.trigger, "source": list(t.sources), "dest": t.dest, "conditions": [_condition(t.guards)]}
            for t in transitions_for(variant)
        ],
        initial="draft",
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=False,
        model_attribute="state",
    )
    return _MachineEntry(machine)


def fire(proposal, trigger: str, variant: Variant, ctx) -> tuple[str, str]:
    """Move `proposal` by `trigger`, or raise a domain error saying why not. Returns (before, after).

    Guards are evaluated first to give the reasons; the machine evaluates the same guards again when it
    fires, so the table stays the single authority.
    """
    from workflow.guards import failing_guards

    before = proposal.state
    candidates = rows(variant, trigger, before)
    if not candidates:
        raise TransitionNotAllowed(before, trigger, STATE_BY_NAME.get(before, State(before, before)).label)
    reasons: list[str] = []
    for row in candidates:
        failed = failing_guards(row.guards, proposal, ctx)
        if not failed:
            break
        reasons.extend(failed)
    else:
        raise GuardFailed(before, trigger, reasons)

    entry = machine_for(variant)
    bound = _Bound(proposal, ctx)
    with entry.lock:
        entry.machine.add_model(bound, initial=before)
        try:
            moved = getattr(bound, trigger)()
        finally:
            entry.machine.remove_model(bound)
    if not moved:  # a guard changed its mind between the two evaluations
        raise GuardFailed(before, trigger, failing_guards(candidates[0].guards, proposal, ctx) or ["a guard failed"])
    return before, proposal.state


# ---------------------------------------------------------------------------------------------------------
# The diagram, drawn from the same table.


def mermaid(variant: Variant = Variant()) -> str:
    lines = ["stateDiagram-v2", "    [*] --> draft"]
    for t in transitions_for(variant):
        for source in t.sources:
            if t.trigger == "withdraw":
                continue
            lines.append(f"    {source} --> {t.dest} : {t.trigger}")
    withdraw = next(t for t in transitions_for(variant) if t.trigger == "withdraw")
    lines.append(f"    note right of withdrawn : withdraw — from {', '.join(withdraw.sources)}")
    for state in states_for(variant):
        if state.final:
            lines.append(f"    {state.name} --> [*]")
    return "\n".join(lines)
