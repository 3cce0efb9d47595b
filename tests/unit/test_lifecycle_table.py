"""The proposal lifecycle table (workflow.lifecycle.TRANSITIONS), checked as data: no database.

For each of the four call variants (two-stage or single-stage, with or without rebuttal) the table must
describe a machine that builds, whose rows only name states of that variant, where every open state can
end, final states are final, withdrawal is possible exactly from the withdrawable states, and whose
diagram draws what the table says.
"""

from __future__ import annotations

import re
from collections import deque

import pytest

from workflow import lifecycle
from workflow.lifecycle import (
    ALL_VARIANTS,
    COORDINATOR,
    FINAL_STATES,
    SECRETARIAT,
    STATE_BY_NAME,
    STATES,
    TRANSITIONS,
    WITHDRAWABLE,
    Variant,
    available_triggers,
    machine_for,
    mermaid,
    rows,
    stage_of,
    states_for,
    transitions_for,
)


def variant_id(variant: Variant) -> str:
    return f"{'two' if variant.two_stage else 'single'}-stage-{'with' if variant.rebuttal else 'no'}-rebuttal"


VARIANTS = pytest.mark.parametrize("variant", ALL_VARIANTS, ids=variant_id)

TWO_STAGE_ONLY = {"pre_review", "not_invited", "invited", "full_draft", "full_submitted",
                  "full_eligibility_check", "full_ineligible"}
PRE_STAGE_STATES = {"draft", "submitted", "eligibility_check", "ineligible", "pre_review", "not_invited"}


def names(variant: Variant) -> set[str]:
    return {s.name for s in states_for(variant)}


def edges(variant: Variant, *, with_withdraw: bool = True) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {s: set() for s in names(variant)}
    for t in transitions_for(variant):
        if t.trigger == "withdraw" and not with_withdraw:
            continue
        for source in t.sources:
            graph[source].add(t.dest)
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, queue = {start}, deque([start])
    while queue:
        for nxt in graph[queue.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


# ---------------------------------------------------------------------------------------------------------
# The table itself


def test_there_are_four_distinct_variants():
    assert len(set(ALL_VARIANTS)) == 4
    assert {(v.two_stage, v.rebuttal) for v in ALL_VARIANTS} == {(True, True), (True, False),
                                                                   (False, True), (False, False)}


def test_state_names_are_unique_and_every_state_has_a_label():
    assert len(STATE_BY_NAME) == len(STATES)
    assert all(s.label.strip() for s in STATES)


def test_every_row_names_a_known_actor_and_known_states():
    for t in TRANSITIONS:
        assert t.who, f"{t.trigger}: nobody may fire it"
        assert set(t.who) <= {COORDINATOR, SECRETARIAT}, t
        assert t.dest in STATE_BY_NAME, t
        assert all(s in STATE_BY_NAME for s in t.sources), t
        assert t.sources, t


def test_every_guard_named_in_the_table_is_registered():
    from workflow import guards

    named = {g for t in TRANSITIONS for g in t.guards}
    assert named <= set(guards._GUARDS), f"guards without an implementation: {named - set(guards._GUARDS)}"


def test_withdrawable_states_exist_and_are_not_final():
    assert set(WITHDRAWABLE) <= set(STATE_BY_NAME)
    assert not set(WITHDRAWABLE) & FINAL_STATES


# ---------------------------------------------------------------------------------------------------------
# Per variant


@VARIANTS
def test_the_machine_builds_with_the_variants_states_and_triggers(variant):
    machine = machine_for(variant).machine
    assert set(machine.states) == names(variant)
    assert set(machine.events) == {t.trigger for t in transitions_for(variant)}
    assert machine.initial == "draft"
    for state in names(variant):
        assert set(machine.get_triggers(state)) == set(available_triggers(variant, state)), state


@VARIANTS
def test_states_of_the_variant(variant):
    states = names(variant)
    assert {"draft", "submitted", "not_submitted", "eligibility_check", "ineligible", "under_review", "panel",
            "recommended", "not_recommended", "selected", "reserve", "not_funded", "funded",
            "withdrawn"} <= states
    if variant.two_stage:
        assert TWO_STAGE_ONLY <= states
    else:
        assert not TWO_STAGE_ONLY & states, "a single-stage call has no pre-proposal review or full stage"
    assert ("rebuttal" in states) is variant.rebuttal


@VARIANTS
def test_every_row_of_the_variant_stays_inside_the_variant(variant):
    states = names(variant)
    for t in transitions_for(variant):
        assert set(t.sources) <= states, f"{t.trigger}: source not in the variant: {set(t.sources) - states}"
        assert t.dest in states, f"{t.trigger}: destination {t.dest} not in the variant"


@VARIANTS
def test_a_trigger_from_a_state_has_one_row_at_most(variant):
    """Otherwise which destination a trigger leads to would depend on the order of the rows."""
    for state in names(variant):
        for trigger in available_triggers(variant, state):
            assert len(rows(variant, trigger, state)) == 1, (state, trigger)


@VARIANTS
def test_every_state_is_reachable_from_draft(variant):
    assert reachable(edges(variant), "draft") == names(variant)


@VARIANTS
def test_every_open_state_can_reach_a_final_state(variant):
    graph = edges(variant)
    for state in names(variant) - FINAL_STATES:
        assert reachable(graph, state) & FINAL_STATES, f"{state} can never end"


@VARIANTS
def test_every_open_state_can_end_without_being_withdrawn(variant):
    graph = edges(variant, with_withdraw=False)
    for state in names(variant) - FINAL_STATES:
        assert reachable(graph, state) & (FINAL_STATES - {"withdrawn"}), f"{state} ends only by withdrawal"


@VARIANTS
def test_final_states_have_no_way_out(variant):
    for state in names(variant) & FINAL_STATES:
        assert available_triggers(variant, state) == [], state
        assert machine_for(variant).machine.get_triggers(state) == [], state


@VARIANTS
def test_open_states_have_a_way_out(variant):
    for state in names(variant) - FINAL_STATES:
        assert available_triggers(variant, state), state


@VARIANTS
def test_withdraw_is_possible_from_each_withdrawable_state_and_never_from_a_final_one(variant):
    states = names(variant)
    for state in WITHDRAWABLE:
        if state in states:
            assert "withdraw" in available_triggers(variant, state), state
            (row,) = rows(variant, "withdraw", state)
            assert row.dest == "withdrawn"
            assert set(row.who) == {COORDINATOR, SECRETARIAT}
    for state in states & FINAL_STATES:
        assert "withdraw" not in available_triggers(variant, state), state


@VARIANTS
def test_mermaid_draws_every_row_of_the_variant(variant):
    text = mermaid(variant)
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert "    [*] --> draft" in lines
    expected = {
        f"    {source} --> {t.dest} : {t.trigger}"
        for t in transitions_for(variant) if t.trigger != "withdraw" for source in t.sources
    }
    drawn = {line for line in lines if re.fullmatch(r"    \w+ --> \w+ : \w+", line)}
    assert drawn == expected
    # Withdrawal is drawn as one note rather than an arrow from every state; it names each state.
    (note,) = [line for line in lines if "withdraw" in line and line.lstrip().startswith("note")]
    for state in WITHDRAWABLE:
        if state in names(variant):
            assert re.search(rf"\b{state}\b", note), state
    finals = {f"    {s} --> [*]" for s in names(variant) & FINAL_STATES}
    assert finals <= set(lines)
    assert {line for line in lines if line.endswith("--> [*]")} == finals


@VARIANTS
def test_mermaid_of_a_variant_names_no_state_outside_it(variant):
    foreign = set(STATE_BY_NAME) - names(variant)
    mentioned = set(re.findall(r"\b[a-z_]+\b", mermaid(variant)))
    assert not foreign & mentioned, f"the diagram names {sorted(foreign & mentioned)}"


def test_mermaid_defaults_to_the_two_stage_call_with_rebuttal():
    assert mermaid() == mermaid(Variant(two_stage=True, rebuttal=True))


@VARIANTS
def test_stage_of(variant):
    for state in names(variant):
        expected = ("pre" if state in PRE_STAGE_STATES else "full") if variant.two_stage else "full"
        assert stage_of(state, variant) == expected, state


def test_stage_of_examples():
    two, single = Variant(two_stage=True), Variant(two_stage=False)
    assert stage_of("draft", two) == "pre"
    assert stage_of("pre_review", two) == "pre"
    assert stage_of("invited", two) == "full"
    assert stage_of("full_draft", two) == "full"
    assert stage_of("draft", single) == "full"
    assert stage_of("eligibility_check", single) == "full"


@VARIANTS
def test_variant_features(variant):
    features = variant.features
    assert (lifecycle.TWO_STAGE in features) is variant.two_stage
    assert (lifecycle.SINGLE_STAGE in features) is not variant.two_stage
    assert (lifecycle.REBUTTAL in features) is variant.rebuttal
    assert (lifecycle.NO_REBUTTAL in features) is not variant.rebuttal


@VARIANTS
def test_declare_eligible_leads_to_the_variants_next_step(variant):
    (row,) = rows(variant, "declare_eligible", "eligibility_check")
    assert row.dest == ("pre_review" if variant.two_stage else "under_review")
    assert bool(rows(variant, "open_rebuttal", "under_review")) is variant.rebuttal
    assert bool(rows(variant, "send_to_panel", "under_review")) is not variant.rebuttal


# ---------------------------------------------------------------------------------------------------------
# The review guards (DOMAIN.md rules 16 and 19, and the pre-stage invitations following the ranking)


@VARIANTS
def test_the_panel_and_the_invitations_are_guarded_by_the_reviews(variant):
    def guards_of(trigger: str, source: str) -> tuple[str, ...]:
        (row,) = rows(variant, trigger, source)
        return row.guards

    assert guards_of("recommend", "panel") == ("enough_reviews", "consensus_recommends")
    assert guards_of("not_recommend", "panel") == ("enough_reviews", "consensus_not_recommended")
    if variant.two_stage:
        assert guards_of("invite", "pre_review") == ("ranking_approved",)
        assert guards_of("not_invite", "pre_review") == ("ranking_approved",)
    # A not recommended proposal never reaches funding (rule 19).
    assert not reachable(edges(variant), "not_recommended") & {"recommended", "selected", "funded"}


def test_without_the_reviews_package_workflow_stays_apart_and_the_review_guards_fail_closed():
    """A fresh interpreter: importing every module of workflow/ loads nothing from reviews/ (nor Flask or
    the web layer), and then a review guard refuses instead of letting the proposal through."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\n"
        "import importlib, pkgutil, workflow\n"
        "for m in pkgutil.iter_modules(workflow.__path__):\n"
        "    importlib.import_module('workflow.' + m.name)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('reviews', 'webapp', 'flask', 'weasyprint'))\n"
        "assert not loaded, loaded\n"
        "from workflow.guards import failing_guards\n"
        "names = ('enough_reviews', 'consensus_recommends', 'consensus_not_recommended', 'ranking_approved')\n"
        "for reason in failing_guards(names, None, None):\n"
        "    print(reason)\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "the check 'enough_reviews' is not available in this installation",
        "the check 'consensus_recommends' is not available in this installation",
        "the check 'consensus_not_recommended' is not available in this installation",
        "the check 'ranking_approved' is not available in this installation",
    ]
