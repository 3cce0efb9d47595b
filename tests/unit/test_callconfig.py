"""Call definitions: the shipped files validate, and broken ones are refused with the offending key named.

Invalid variants are built from the shipped EP PerMed file (tomllib → mutate the dict →
`parse_call_definition`), so each case differs from a valid definition in exactly one place.
File-level problems (syntax, encoding, missing file) go through `load_call_file` on pytest's tmp_path.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from workflow.callconfig import (
    DOCUMENT_KINDS,
    PARTNER_TYPES,
    CallDef,
    CallDefinitionError,
    load_call_file,
    parse_call_definition,
)
from workflow.clock import from_local
from workflow.countries import EU_OR_ASSOCIATED, is_known_country

CALLS_DIR = Path(__file__).resolve().parents[2] / "config" / "calls"
EPPERMED = CALLS_DIR / "eppermed-jtc2024.toml"
SINGLE = CALLS_DIR / "sample-single-stage.toml"

EU_LABELS = {
    "0": "Fails / missing information",
    "1": "Poor",
    "2": "Fair",
    "3": "Good",
    "4": "Very good",
    "5": "Excellent",
}
ACRONYM_RE = re.compile(r"^[A-Za-z0-9.-]+$")
UTC = dt.UTC


def raw(path: Path = EPPERMED) -> dict:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def problems_of(data: dict) -> list[tuple[str, str]]:
    with pytest.raises(CallDefinitionError) as info:
        parse_call_definition(data, "x.toml")
    assert info.value.source == "x.toml"
    assert info.value.problems, "a CallDefinitionError must list at least one problem"
    return info.value.problems


def funder_index(data: dict, acronym: str) -> int:
    return next(i for i, f in enumerate(data["funders"]) if f["acronym"] == acronym)


# ---------------------------------------------------------------------------------------------------------
# The shipped files


@pytest.mark.parametrize("path", sorted(CALLS_DIR.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_call_file_validates(path: Path) -> None:
    call = load_call_file(path)
    assert isinstance(call, CallDef)


def test_both_sample_files_are_shipped() -> None:
    assert EPPERMED.is_file()
    assert SINGLE.is_file()


@pytest.fixture(scope="module")
def eppermed() -> CallDef:
    return load_call_file(EPPERMED)


@pytest.fixture(scope="module")
def single() -> CallDef:
    return load_call_file(SINGLE)


class TestEpPerMed2024:
    @pytest.fixture
    def call(self, eppermed: CallDef) -> CallDef:
        return eppermed

    def test_identity(self, call: CallDef) -> None:
        assert call.code == "eppermed-jtc2024"
        assert "EP PerMed" in call.title and "2024" in call.title
        assert call.description.strip()
        assert call.time_zone == "Europe/Paris"
        assert call.currency == "EUR"

    def test_two_stages_with_the_published_calendar(self, call: CallDef) -> None:
        assert call.two_stage
        assert [s.kind for s in call.stages] == ["pre", "full"]
        pre, full = call.stage("pre"), call.stage("full")
        assert pre.opens == dt.datetime(2024, 1, 12, 0, 0)
        assert pre.deadline == dt.datetime(2024, 3, 5, 17, 0)
        assert full.opens == dt.datetime(2024, 5, 20, 0, 0)
        assert full.deadline == dt.datetime(2024, 6, 20, 17, 0)
        # Written as naive local times; the call's zone applies.
        assert all(s.opens.tzinfo is None and s.deadline.tzinfo is None for s in call.stages)

    def test_deadlines_in_utc(self, call: CallDef) -> None:
        # 17:00 CET (UTC+1) in March, 17:00 CEST (UTC+2) in June.
        assert from_local(call.stage("pre").deadline, call.time_zone) == dt.datetime(
            2024, 3, 5, 16, 0, tzinfo=UTC
        )
        assert from_local(call.stage("full").deadline, call.time_zone) == dt.datetime(
            2024, 6, 20, 15, 0, tzinfo=UTC
        )
        assert from_local(call.stage("pre").opens, call.time_zone) == dt.datetime(
            2024, 1, 11, 23, 0, tzinfo=UTC
        )

    def test_stage_limits(self, call: CallDef) -> None:
        pre, full = call.stage("pre"), call.stage("full")
        assert pre.abstract_max_chars == 2000
        assert full.abstract_max_chars == 4000
        assert pre.page_limits == {"project_description": 5, "cv": 2, "letter_of_commitment": 2}
        assert full.page_limits == {"project_description": 20, "cv": 2, "letter_of_commitment": 2}
        assert pre.max_upload_mb == full.max_upload_mb == 10
        assert 0 < pre.title_max_chars <= 300

    def test_rebuttal(self, call: CallDef) -> None:
        assert call.rebuttal is not None
        assert (call.rebuttal.days, call.rebuttal.max_chars) == (7, 6000)

    def test_consortium_rules(self, call: CallDef) -> None:
        c = call.consortium
        assert (c.min_funded_partners, c.min_countries, c.min_eu_associated_partners) == (3, 3, 2)
        assert (c.max_partners, c.max_per_country, c.max_own_funded) == (6, 2, 1)
        assert set(c.widening_countries) == {"EE", "LV", "LT", "SK", "PL", "RO", "HR"}
        assert c.widening_bonus == 1
        assert c.coordinator_must_be_funded is True
        assert c.max_proposals_per_pi == 1

    def test_evaluation(self, call: CallDef) -> None:
        ev = call.evaluation
        assert [(k.key, k.name) for k in ev.criteria] == [
            ("excellence", "Excellence"),
            ("impact", "Impact"),
            ("implementation", "Quality and efficiency of the implementation"),
        ]
        assert {k.weight for k in ev.criteria} == {1.0}
        assert {k.threshold for k in ev.criteria} == {3.0}
        assert all(k.labels == EU_LABELS for k in ev.criteria)
        assert ev.total_threshold == 10
        assert ev.reviewers_per_proposal == 3
        assert ev.tie_break == ["excellence", "impact"]
        assert ev.score_step == 0.5

    def test_funders(self, call: CallDef) -> None:
        funders = call.funders
        assert len(funders) >= 24
        acronyms = [f.acronym for f in funders]
        assert len(set(acronyms)) == len(acronyms)
        assert len({a.casefold() for a in acronyms}) == len(acronyms)
        for f in funders:
            assert ACRONYM_RE.match(f.acronym), f.acronym
            assert is_known_country(f.country), f.acronym
            assert f.committed_budget > 0, f.acronym
            assert f.eligible_partner_types, f.acronym
            assert set(f.eligible_partner_types) <= set(PARTNER_TYPES), f.acronym
            assert f.national_contact and re.search(r"<[^@<>\s]+@[^@<>\s]+\.example>$", f.national_contact), (
                f.acronym
            )
            if f.region is not None:
                assert re.fullmatch(r"[A-Za-z]+(-[A-Za-z]+)*", f.region), f.region
            for cap in (f.max_per_partner, f.max_per_project):
                assert cap is None or 0 < cap <= f.committed_budget, f.acronym
            if f.max_per_partner is not None and f.max_per_project is not None:
                assert f.max_per_partner <= f.max_per_project, f.acronym

    def test_funders_named_in_the_domain_notes(self, call: CallDef) -> None:
        by_acronym = {f.acronym: f for f in call.funders}
        expected = {
            "ANR": "FR", "BMBF": "DE", "BMG": "DE", "SMWK": "DE", "HRB": "IE", "SFI": "IE", "VLAIO": "BE",
            "F.R.S.-FNRS": "BE", "FCT": "PT", "AZV-CR": "CZ", "ISCIII": "ES", "NKFIH": "HU", "RCN": "NO",
            "SAMRC": "ZA", "FWF": "AT", "CIHR": "CA", "FRQS": "CA", "IT-MoH": "IT", "FRRB": "IT",
            "ETAg": "EE", "AKA": "FI", "VR": "SE", "IFD": "DK", "FNR": "LU", "NCBR": "PL",
            "UEFISCDI": "RO", "TUBITAK": "TR", "LCS": "LV", "SAS": "SK",
        }  # fmt: skip
        for acronym, country in expected.items():
            assert by_acronym[acronym].country == country, acronym
        regions = {a: by_acronym[a].region for a in ("SMWK", "VLAIO", "F.R.S.-FNRS", "FRQS", "FRRB")}
        assert regions == {
            "SMWK": "Saxony",
            "VLAIO": "Flanders",
            "F.R.S.-FNRS": "Wallonia-Brussels",
            "FRQS": "Quebec",
            "FRRB": "Lombardy",
        }
        assert by_acronym["BMBF"].committed_budget == 4_500_000
        azv = by_acronym["AZV-CR"]
        assert (azv.committed_budget, azv.max_per_project) == (500_000, 250_000)
        assert azv.national_application_required
        assert by_acronym["VR"].max_per_project == 450_000
        assert by_acronym["VR"].national_application_required
        # Some funders exclude industry or patient organisations; some have no caps.
        assert any("industry" not in f.eligible_partner_types for f in call.funders)
        assert any("patient_organisation" not in f.eligible_partner_types for f in call.funders)
        assert any(f.max_per_partner is None and f.max_per_project is None for f in call.funders)
        # Non-EU/associated funders exist (South Africa), so rule 5 matters.
        assert any(f.country not in EU_OR_ASSOCIATED for f in call.funders)

    def test_total_budget_is_plausible(self, call: CallDef) -> None:
        total = sum(f.committed_budget for f in call.funders)
        assert 38_000_000 <= total <= 46_000_000

    def test_widening_countries_have_a_funder_or_are_known(self, call: CallDef) -> None:
        assert all(is_known_country(c) for c in call.consortium.widening_countries)
        funded = {f.country for f in call.funders}
        assert {"EE", "LV", "SK", "PL", "RO", "HR"} <= funded


class TestSingleStageSample:
    @pytest.fixture
    def call(self, single: CallDef) -> CallDef:
        return single

    def test_single_full_stage_without_rebuttal(self, call: CallDef) -> None:
        assert not call.two_stage
        assert [s.kind for s in call.stages] == ["full"]
        assert call.stage("pre") is None
        assert call.rebuttal is None
        assert call.time_zone == "Europe/Berlin"
        full = call.stage("full")
        assert full.opens.year == full.deadline.year == 2025
        assert full.opens < full.deadline
        assert set(full.page_limits) <= set(DOCUMENT_KINDS)

    def test_rules_differ_from_eppermed(self, call: CallDef) -> None:
        c = call.consortium
        assert (c.min_funded_partners, c.min_countries, c.max_partners, c.max_own_funded) == (2, 2, 5, 0)
        assert c.coordinator_must_be_funded
        assert c != load_call_file(EPPERMED).consortium

    def test_weighted_criteria(self, call: CallDef) -> None:
        weights = {k.key: k.weight for k in call.evaluation.criteria}
        assert weights == {"excellence": 2.0, "impact": 1.0}
        assert call.evaluation.total_threshold <= 5 * len(call.evaluation.criteria)
        assert set(call.evaluation.tie_break) <= set(weights)

    def test_funders(self, call: CallDef) -> None:
        assert 4 <= len(call.funders) <= 8
        acronyms = [f.acronym for f in call.funders]
        assert len(set(acronyms)) == len(acronyms)
        assert all(ACRONYM_RE.match(a) for a in acronyms)


def test_shared_funders_are_described_identically_in_every_call() -> None:
    # Funding organisations are stored once per acronym; loading a call overwrites name/country/region,
    # so two calls must not disagree about the same organisation.
    seen: dict[str, tuple[str, str, str | None, str]] = {}
    for path in sorted(CALLS_DIR.glob("*.toml")):
        for f in load_call_file(path).funders:
            identity = (f.name, f.country, f.region)
            if f.acronym in seen:
                assert seen[f.acronym][:3] == identity, f"{f.acronym}: {path.name} vs {seen[f.acronym][3]}"
            else:
                seen[f.acronym] = (*identity, path.name)


def test_parse_accepts_the_raw_dict() -> None:
    call = parse_call_definition(raw(), "x.toml")
    assert call == load_call_file(EPPERMED)


def test_definition_is_frozen() -> None:
    call = load_call_file(EPPERMED)
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError for frozen models
        call.code = "other"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------------------
# Invalid definitions: each mutation breaks one thing; the problem names the key and says why.


def _rename(mapping: dict, old: str, new: str) -> None:
    mapping[new] = mapping.pop(old)


def _set(path: tuple, value) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        target = data
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return mutate


def _funder(acronym: str, key: str, value) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        data["funders"][funder_index(data, acronym)][key] = value

    return mutate


def _swap_stages(data: dict) -> None:
    data["stages"].reverse()


def _duplicate_acronym(data: dict) -> None:
    data["funders"][funder_index(data, "SFI")]["acronym"] = "HRB"


def _drop_pre_stage_keep_kind_pre(data: dict) -> None:
    data["stages"] = [data["stages"][0]]


PARIS_SUMMER = dt.timezone(dt.timedelta(hours=2))

# (id, mutation, expected key, fragments that must all appear in the reason, case-insensitively)
INVALID_CASES = [
    (
        "unknown-top-level-key",
        lambda d: _rename(d, "time_zone", "timezone"),
        "timezone",
        ["unknown key", "spelling"],
    ),
    (
        "unknown-nested-key",
        lambda d: _rename(d["consortium"], "max_partners", "max_partner"),
        "consortium.max_partner",
        ["unknown key"],
    ),
    (
        "unknown-stage-key",
        lambda d: _rename(d["stages"][1], "abstract_max_chars", "abstract_max_char"),
        "stages[1].abstract_max_char",
        ["unknown key"],
    ),
    (
        "unknown-funder-key",
        lambda d: _rename(d["funders"][3], "committed_budget", "comitted_budget"),
        "funders[3].comitted_budget",
        ["unknown key"],
    ),
    ("missing-evaluation", lambda d: d.pop("evaluation"), "evaluation", ["field required"]),
    ("missing-funders", lambda d: d.pop("funders"), "funders", ["field required"]),
    ("missing-code", lambda d: d.pop("code"), "code", ["field required"]),
    (
        "missing-stage-deadline",
        lambda d: d["stages"][0].pop("deadline"),
        "stages[0].deadline",
        ["field required"],
    ),
    (
        "missing-funder-budget",
        lambda d: d["funders"][0].pop("committed_budget"),
        "funders[0].committed_budget",
        ["field required"],
    ),
    (
        "missing-criteria",
        lambda d: d["evaluation"].pop("criteria"),
        "evaluation.criteria",
        ["field required"],
    ),
    (
        "bad-time-zone",
        _set(("time_zone",), "Europe/Pariss"),
        "time_zone",
        ["Europe/Pariss", "not an IANA time zone"],
    ),
    ("utc-offset-as-time-zone", _set(("time_zone",), "CET+1"), "time_zone", ["not an IANA time zone"]),
    ("bad-code", _set(("code",), "EP PerMed 2024"), "code", ["pattern"]),
    ("empty-title", _set(("title",), ""), "title", ["at least 1 character"]),
    ("currency-not-eur", _set(("currency",), "USD"), "currency", ["EUR"]),
    (
        "deadline-before-opens",
        _set(("stages", 0, "deadline"), dt.datetime(2024, 1, 5, 17, 0)),
        "stages[0].deadline",
        ["deadline must be after the stage opens"],
    ),
    (
        "deadline-equals-opens",
        _set(("stages", 1, "deadline"), dt.datetime(2024, 5, 20, 0, 0)),
        "stages[1].deadline",
        ["deadline must be after the stage opens"],
    ),
    (
        "deadline-with-offset",
        _set(("stages", 1, "deadline"), dt.datetime(2024, 6, 20, 17, 0, tzinfo=PARIS_SUMMER)),
        "stages[1].deadline",
        ["without an offset", "time_zone"],
    ),
    (
        "opens-with-utc-offset",
        _set(("stages", 0, "opens"), dt.datetime(2024, 1, 12, 0, 0, tzinfo=UTC)),
        "stages[0].opens",
        ["without an offset"],
    ),
    ("deadline-not-a-date", _set(("stages", 0, "deadline"), "soon"), "stages[0].deadline", ["datetime"]),
    ("stages-in-wrong-order", _swap_stages, "stages", ["must be [pre, full]", "in that order"]),
    ("single-pre-stage", _drop_pre_stage_keep_kind_pre, "stages", ["must be", "[full]"]),
    ("unknown-stage-kind", _set(("stages", 0, "kind"), "preliminary"), "stages[0].kind", ["'pre' or 'full'"]),
    ("no-stages", _set(("stages",), []), "stages", ["at least 1 item"]),
    (
        "three-stages",
        lambda d: d["stages"].append(copy.deepcopy(d["stages"][1])),
        "stages",
        ["at most 2 items"],
    ),
    (
        "full-opens-before-pre-deadline",
        _set(("stages", 1, "opens"), dt.datetime(2024, 3, 1, 0, 0)),
        "stages[1].opens",
        ["full stage must open after the pre-proposal deadline"],
    ),
    (
        "full-opens-at-pre-deadline",
        _set(("stages", 1, "opens"), dt.datetime(2024, 3, 5, 17, 0)),
        "stages[1].opens",
        ["full stage must open after the pre-proposal deadline"],
    ),
    (
        "unknown-document-kind",
        _set(("stages", 0, "page_limits", "budget_table"), 2),
        "stages[0].page_limits",
        ["unknown document kind 'budget_table'", "project_description"],
    ),
    (
        "zero-page-limit",
        _set(("stages", 1, "page_limits", "cv"), 0),
        "stages[1].page_limits",
        ["page limit for cv must be positive"],
    ),
    ("upload-too-large", _set(("stages", 0, "max_upload_mb"), 500), "stages[0].max_upload_mb", ["100"]),
    (
        "zero-title-limit",
        _set(("stages", 0, "title_max_chars"), 0),
        "stages[0].title_max_chars",
        ["greater than 0"],
    ),
    ("duplicate-funder-acronym", _duplicate_acronym, "funders[5].acronym", ["acronyms must be unique", "HRB"]),
    (
        "unknown-funder-country",
        _funder("SMWK", "country", "XX"),
        "funders[3].country",
        ["'XX'", "ISO 3166"],
    ),
    (
        "lower-case-country",
        _funder("SMWK", "country", "de"),
        "funders[3].country",
        ["'de'", "ISO 3166"],
    ),
    (
        "country-name-not-code",
        _funder("ANR", "country", "France"),
        "funders[0].country",
        ["'France'", "ISO 3166"],
    ),
    (
        "unknown-partner-type",
        _funder("BMG", "eligible_partner_types", ["academia", "sme"]),
        "funders[2].eligible_partner_types",
        ["unknown partner type 'sme'", "industry"],
    ),
    (
        "negative-budget",
        _funder("BMBF", "committed_budget", -4_500_000),
        "funders[1].committed_budget",
        ["greater than or equal to 0"],
    ),
    (
        "negative-cap",
        _funder("ANR", "max_per_partner", -1),
        "funders[0].max_per_partner",
        ["greater than or equal to 0"],
    ),
    (
        "fractional-budget",
        _funder("BMBF", "committed_budget", 4_500_000.5),
        "funders[1].committed_budget",
        ["valid integer"],
    ),
    ("empty-funder-list", _set(("funders",), []), "funders", ["at least 1 item"]),
    (
        "threshold-not-half-point",
        _set(("evaluation", "criteria", 1, "threshold"), 3.25),
        "evaluation.criteria[1].threshold",
        ["half points"],
    ),
    (
        "threshold-above-scale",
        _set(("evaluation", "criteria", 0, "threshold"), 5.5),
        "evaluation.criteria[0].threshold",
        ["less than or equal to 5"],
    ),
    (
        "zero-weight",
        _set(("evaluation", "criteria", 2, "weight"), 0),
        "evaluation.criteria[2].weight",
        ["greater than 0"],
    ),
    (
        "bad-criterion-key",
        _set(("evaluation", "criteria", 0, "key"), "Excellence"),
        "evaluation.criteria[0].key",
        ["pattern"],
    ),
    (
        "duplicate-criterion-key",
        _set(("evaluation", "criteria", 2, "key"), "impact"),
        "evaluation.criteria",
        ["criterion keys must be unique"],
    ),
    (
        "tie-break-unknown-criterion",
        _set(("evaluation", "tie_break"), ["excellence", "novelty"]),
        "evaluation.tie_break",
        ["'novelty'", "not a criterion key"],
    ),
    (
        "total-threshold-above-maximum",
        _set(("evaluation", "total_threshold"), 15.5),
        "evaluation.total_threshold",
        ["above the highest possible weighted total (15)"],
    ),
    ("no-criteria", _set(("evaluation", "criteria"), []), "evaluation.criteria", ["at least 1 item"]),
    (
        "min-funded-above-max-partners",
        _set(("consortium", "min_funded_partners"), 7),
        "consortium.min_funded_partners",
        ["cannot exceed max_partners"],
    ),
    (
        "eu-minimum-above-funded-minimum",
        _set(("consortium", "min_eu_associated_partners"), 4),
        "consortium.min_eu_associated_partners",
        ["cannot exceed min_funded_partners"],
    ),
    (
        "unknown-widening-country",
        _set(("consortium", "widening_countries"), ["EE", "Latvia"]),
        "consortium.widening_countries",
        ["'Latvia'", "ISO 3166"],
    ),
    ("negative-own-funded", _set(("consortium", "max_own_funded"), -1), "consortium.max_own_funded", ["0"]),
    (
        "reviews-due-before-submission-closes",
        _set(("stages", 0, "review_deadline"), dt.datetime(2024, 3, 1, 12, 0)),
        "stages[0].review_deadline",
        ["due after the submission deadline"],
    ),
    ("rebuttal-zero-days", _set(("rebuttal", "days"), 0), "rebuttal.days", ["greater than 0"]),
    ("rebuttal-too-long", _set(("rebuttal", "days"), 90), "rebuttal.days", ["less than or equal to 60"]),
    (
        "rebuttal-unknown-key",
        _set(("rebuttal", "max_characters"), 6000),
        "rebuttal.max_characters",
        ["unknown key"],
    ),
]


@pytest.mark.parametrize(
    ("mutate", "key", "fragments"),
    [pytest.param(m, k, f, id=i) for i, m, k, f in INVALID_CASES],
)
def test_invalid_definition_names_key_and_reason(mutate, key: str, fragments: list[str]) -> None:
    data = raw()
    mutate(data)
    problems = problems_of(data)
    keys = [k for k, _ in problems]
    assert key in keys, f"expected a problem at {key!r}, got {problems}"
    reason = " | ".join(why for k, why in problems if k == key)
    for fragment in fragments:
        assert fragment.lower() in reason.lower(), f"{fragment!r} not in reason {reason!r}"


def test_invalid_cases_have_unique_ids() -> None:
    ids = [case[0] for case in INVALID_CASES]
    assert len(ids) == len(set(ids))


def test_misspelt_required_key_reports_both_the_typo_and_the_missing_key() -> None:
    data = raw()
    _rename(data["funders"][3], "committed_budget", "comitted_budget")
    problems = dict(problems_of(data))
    assert problems["funders[3].comitted_budget"] == "unknown key (check the spelling)"
    assert problems["funders[3].committed_budget"] == "Field required"


def test_several_problems_are_reported_together() -> None:
    data = raw()
    data["time_zone"] = "Mars/Olympus"
    data["funders"][0]["country"] = "XX"
    data["funders"][1]["committed_budget"] = -1
    data["stages"][0]["kind"] = "draft"
    problems = problems_of(data)
    keys = {k for k, _ in problems}
    assert {"time_zone", "funders[0].country", "funders[1].committed_budget", "stages[0].kind"} <= keys


def test_value_error_prefix_is_stripped() -> None:
    data = raw()
    data["funders"][0]["country"] = "XX"
    for _, why in problems_of(data):
        assert not why.startswith("Value error")


def test_error_message_lists_source_and_problems() -> None:
    data = raw()
    data["funders"][3]["country"] = "XX"
    with pytest.raises(CallDefinitionError) as info:
        parse_call_definition(data, "calls/broken.toml")
    text = str(info.value)
    assert text.startswith("calls/broken.toml is not a valid call definition:")
    assert "\n  funders[3].country: 'XX' is not an ISO 3166 country code" in text


def test_rebuttal_may_be_omitted() -> None:
    data = raw()
    del data["rebuttal"]
    assert parse_call_definition(data, "x.toml").rebuttal is None


def test_consortium_defaults_apply_when_omitted() -> None:
    data = raw()
    del data["consortium"]
    c = parse_call_definition(data, "x.toml").consortium
    assert (c.min_funded_partners, c.min_countries, c.max_partners, c.max_per_country, c.max_own_funded) == (
        3, 3, 6, 2, 1,
    )  # fmt: skip


def test_single_stage_sample_rejects_rebuttal_typo_and_bad_weights() -> None:
    data = raw(SINGLE)
    data["rebutal"] = {"days": 7}
    data["evaluation"]["criteria"][0]["weight"] = -2
    problems = dict(problems_of(data))
    assert problems["rebutal"] == "unknown key (check the spelling)"
    assert "greater than 0" in problems["evaluation.criteria[0].weight"]


def test_single_stage_total_threshold_limit_is_the_weighted_maximum() -> None:
    data = raw(SINGLE)
    data["evaluation"]["total_threshold"] = 15.5  # weights 2 + 1, so the weighted maximum is 15
    assert ("evaluation.total_threshold", "is above the highest possible weighted total (15)") in problems_of(data)
    data["evaluation"]["total_threshold"] = 15
    parse_call_definition(data, "x.toml")


# ---------------------------------------------------------------------------------------------------------
# File-level problems


def only_problem(path: Path) -> tuple[str, str]:
    with pytest.raises(CallDefinitionError) as info:
        load_call_file(path)
    assert info.value.source == str(path)
    assert len(info.value.problems) == 1, info.value.problems
    return info.value.problems[0]


def test_invalid_toml_syntax(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('code = "eppermed-jtc2024"\ntitle = \n', encoding="utf-8")
    key, why = only_problem(path)
    assert key == "(file)"
    assert why.startswith("is not valid TOML")
    assert "line 2" in why


def test_table_declared_twice(tmp_path: Path) -> None:
    path = tmp_path / "twice.toml"
    path.write_text(
        EPPERMED.read_text(encoding="utf-8") + "\n[consortium]\nmax_partners = 7\n", encoding="utf-8"
    )
    key, why = only_problem(path)
    assert key == "(file)"
    assert "is not valid TOML" in why and "twice" in why


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('title = "Appel à projets"\n'.encode("latin-1"))
    assert only_problem(path) == ("(file)", "is not UTF-8 text")


def test_missing_file(tmp_path: Path) -> None:
    key, why = only_problem(tmp_path / "does-not-exist.toml")
    assert key == "(file)"
    assert why.startswith("cannot be read")
    assert "No such file" in why


def test_directory_instead_of_file(tmp_path: Path) -> None:
    key, why = only_problem(tmp_path)
    assert key == "(file)"
    assert why.startswith("cannot be read")


def test_empty_file_lists_the_required_keys(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(CallDefinitionError) as info:
        load_call_file(path)
    missing = {k for k, why in info.value.problems if why == "Field required"}
    assert missing == {"code", "title", "stages", "evaluation", "funders"}


def test_schema_errors_from_a_file_carry_its_path(tmp_path: Path) -> None:
    path = tmp_path / "bad-zone.toml"
    path.write_text(
        EPPERMED.read_text(encoding="utf-8").replace('"Europe/Paris"', '"Paris"', 1), encoding="utf-8"
    )
    with pytest.raises(CallDefinitionError) as info:
        load_call_file(path)
    assert info.value.source == str(path)
    assert info.value.problems == [("time_zone", "'Paris' is not an IANA time zone such as Europe/Paris")]


def test_round_trip_through_a_file(tmp_path: Path) -> None:
    path = tmp_path / "copy.toml"
    path.write_bytes(EPPERMED.read_bytes())
    assert load_call_file(path) == load_call_file(EPPERMED)


# ---------------------------------------------------------------------------------------------------------
# Gaps found in review of workflow/callconfig.py, now fixed.


def test_time_zone_naming_a_zone_directory_is_a_definition_error() -> None:
    data = raw()
    data["time_zone"] = "Europe"
    assert problems_of(data)[0][0] == "time_zone"


def test_deadline_without_a_time_is_refused() -> None:
    data = raw()
    data["stages"][0]["deadline"] = dt.date(2024, 3, 5)
    assert problems_of(data)[0][0] == "stages[0].deadline"


@pytest.mark.parametrize("code", ["EU", "UN", "ZZ"])
def test_pseudo_territory_codes_are_not_countries(code: str) -> None:
    data = raw()
    data["funders"][0]["country"] = code
    assert problems_of(data)[0][0] == "funders[0].country"


def test_eu_associated_countries_are_validated() -> None:
    data = raw()
    data["eu_associated_countries"] = ["FR", "XX"]
    assert problems_of(data)[0][0] == "eu_associated_countries"


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        pytest.param(_swap_stages, "stages", id="stage-order"),
        pytest.param(_duplicate_acronym, "funders[5].acronym", id="duplicate-acronym"),
        pytest.param(_set(("evaluation", "tie_break"), ["novelty"]), "evaluation.tie_break", id="tie-break"),
        pytest.param(
            _set(("consortium", "min_funded_partners"), 7), "consortium.min_funded_partners", id="min-funded"
        ),
    ],
)
def test_cross_field_errors_name_the_specific_key(mutate, key: str) -> None:
    data = raw()
    mutate(data)
    assert key in [k for k, _ in problems_of(data)]
