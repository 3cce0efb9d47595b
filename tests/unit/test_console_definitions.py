"""Call definitions in the console's domain: the TOML export reads back to the same definition (shipped
files, odd strings, a single-stage call without rebuttal), and what a call's phase forbids changing."""

from __future__ import annotations

import datetime as dt
import tomllib

import pytest

from tests import factories as f
from workflow.callconfig import CallDefinitionError, load_call_file, parse_call_definition
from workflow.console import apply_settings, change_problems, definition_data, shipped_definitions, to_toml
from workflow.operations import close_stage, transition


@pytest.mark.parametrize("name", sorted(shipped_definitions()))
def test_shipped_definitions_round_trip_through_toml(name):
    definition = load_call_file(shipped_definitions()[name])
    text = to_toml(definition)
    assert parse_call_definition(tomllib.loads(text)) == definition


def test_odd_strings_and_variants_round_trip():
    data = definition_data(f.definition(two_stage=False, rebuttal=False))
    data["title"] = 'Quotes " and \\ backslashes, tabs\t, newlines\nand ünïcödé — “typographic”'
    data["description"] = "line one\nline two = not a key\n[not a table]"
    data["funders"][0]["national_contact"] = "Dr. X <x@example.org>; tel. +33 1 23"
    definition = parse_call_definition(data)
    text = to_toml(definition)
    assert "[rebuttal]" not in text and text.count("[[stages]]") == 1
    assert parse_call_definition(tomllib.loads(text)) == definition


def test_label_keys_that_are_not_bare_are_quoted():
    data = definition_data(f.definition())
    data["evaluation"]["criteria"][0]["labels"] = {"0": "Fails", "0.5": "Half a point", "fünf": "Five"}
    definition = parse_call_definition(data)
    text = to_toml(definition)
    assert '0 = "Fails"' in text and '"0.5" = "Half a point"' in text and '"fünf" = "Five"' in text
    assert parse_call_definition(tomllib.loads(text)) == definition


def test_the_phase_freezes_what_has_happened(session, frozen):
    frozen(f.PRE_OPEN)
    call = f.make_call(session)
    sec = f.secretariat(session, call)
    proposal = f.valid_proposal(session, call)
    transition(session, proposal.coordinator, proposal.id, "submit")

    def problems(**changes):
        data = apply_settings(call, **{k: v for k, v in changes.items() if k in ("title", "stages", "funders")})
        for key, value in changes.items():
            if key not in ("title", "stages", "funders"):
                data[key] = value
        return change_problems(session, call, parse_call_definition(data))

    assert problems(title="New title") == []
    pre = call.settings.stage("pre")
    assert [k for k, _ in problems(stages={"pre": (dt.datetime(2030, 1, 11, 9), pre.deadline)})] == ["stages[0].opens"]
    assert problems(stages={"pre": (pre.opens, dt.datetime(2030, 3, 12, 17))}) == []  # extend an open stage
    assert [k for k, _ in problems(stages={"pre": (pre.opens, dt.datetime(2030, 1, 20, 17))})] == \
        ["stages[0].deadline"]  # into the past
    assert [k for k, _ in problems(code="another-code")] == ["code"]
    assert [k for k, _ in problems(time_zone="Europe/Berlin")] == ["time_zone"]
    assert problems(consortium={**definition_data(call.settings)["consortium"], "max_partners": 5}) == []
    frozen(f.PRE_CLOSED)
    close_stage(session, sec, call, "pre")
    keys = [k for k, _ in problems(consortium={**definition_data(call.settings)["consortium"], "max_partners": 5},
                                   stages={"pre": (pre.opens, dt.datetime(2030, 3, 12, 17))})]
    assert keys == ["stages[0].deadline", "consortium"]
    # Reviewing follows the closing of submission: the review deadline of a closed stage can still be set.
    assert problems(stages={"pre": (pre.opens, pre.deadline, dt.datetime(2030, 4, 30, 17))}) == []
    evaluation = definition_data(call.settings)["evaluation"]
    evaluation["total_threshold"] = 9.0
    assert problems(evaluation=evaluation) == []  # nobody is reviewing yet


def test_invalid_data_names_the_key():
    data = definition_data(f.definition())
    data["funders"][2]["max_per_project"] = 900_000
    with pytest.raises(CallDefinitionError) as err:
        parse_call_definition(data)
    assert err.value.problems == [("funders[2].max_per_project", "cannot exceed committed_budget")]
