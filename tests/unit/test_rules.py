"""Unit tests of the consortium and text rules (DOMAIN.md §2 and §9 rules 4-11, 14).

Pure functions on plain objects: no database, no Flask. Each rule is tested at its limit (passes) and
one beyond it (fails), and the message must carry the numbers a coordinator needs to fix the proposal.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from workflow.callconfig import CallDef
from workflow.rules import FunderInfo, Violation, blocking, check_consortium, check_texts

# --------------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------------

BMBF, ANR, ISCIII, MOH, SAMRC, ETAG, CIHR = 1, 2, 3, 4, 5, 6, 7

FUNDERS: dict[int, FunderInfo] = {
    BMBF: FunderInfo(BMBF, "BMBF", "DE", None, None, None, ()),
    ANR: FunderInfo(ANR, "ANR", "FR", None, None, None, ()),
    ISCIII: FunderInfo(ISCIII, "ISCIII", "ES", None, None, None, ()),
    MOH: FunderInfo(MOH, "IT-MoH", "IT", None, None, None, ()),
    SAMRC: FunderInfo(SAMRC, "SAMRC", "ZA", None, None, None, ()),
    ETAG: FunderInfo(ETAG, "ETAg", "EE", None, None, None, ()),
    CIHR: FunderInfo(CIHR, "CIHR", "CA", None, None, None, ()),
}
FUNDER_BY_COUNTRY = {f.country: f.id for f in FUNDERS.values()}


@dataclass
class Partner:
    position: int
    country: str
    funder_id: int | None = None
    own_funded: bool = False
    organisation: str = ""
    partner_type: str = "academia"
    region: str | None = None
    pi_name: str = ""
    pi_email: str = ""
    requested_amount: int = 100_000


def partner(position: int, country: str, *, own_funded: bool = False, **kw) -> Partner:
    """A partner whose funder is the call's funder of its country, unless it brings its own funding."""
    kw.setdefault("funder_id", None if own_funded else FUNDER_BY_COUNTRY.get(country))
    kw.setdefault("organisation", f"Org {position}")
    kw.setdefault("pi_name", f"PI {position}")
    kw.setdefault("pi_email", f"pi{position}@example.org")
    if own_funded:
        kw.setdefault("requested_amount", 0)
    return Partner(position=position, country=country, own_funded=own_funded, **kw)


def consortium(*countries: str, own: tuple[str, ...] = ()) -> list[Partner]:
    """Funded partners from `countries` (in order, the first is the coordinator), then own-funded ones."""
    out = [partner(i, c) for i, c in enumerate(countries, start=1)]
    out += [partner(len(out) + i, c, own_funded=True) for i, c in enumerate(own, start=1)]
    return out


@dataclass
class Proposal:
    acronym: str | None = "PMTEST"
    title: str | None = "A title"
    abstract: str | None = "An abstract."
    duration_months: int | None = 36


def make_call(consortium_rules: dict | None = None, **top) -> CallDef:
    data = {
        "code": "test-call",
        "title": "Test call",
        "stages": [
            {"kind": "pre", "opens": "2024-01-12T09:00:00", "deadline": "2024-03-05T17:00:00",
             "title_max_chars": 100, "abstract_max_chars": 500},
            {"kind": "full", "opens": "2024-05-20T09:00:00", "deadline": "2024-06-20T17:00:00",
             "title_max_chars": 200, "abstract_max_chars": 1000},
        ],
        "evaluation": {"criteria": [{"key": "excellence", "name": "Excellence"},
                                    {"key": "impact", "name": "Impact"},
                                    {"key": "implementation", "name": "Quality and efficiency"}]},
        "funders": [{"acronym": "ANR", "name": "Agence nationale de la recherche", "country": "FR",
                     "committed_budget": 1_000_000}],
        "consortium": consortium_rules or {},
    }
    data.update(top)
    return CallDef.model_validate(data)


def check(partners, rules: dict | None = None, funders=None, others=None, **top) -> list[Violation]:
    return check_consortium(partners, make_call(rules, **top), FUNDERS if funders is None else funders, others)


def codes(violations) -> list[str]:
    return [v.code for v in violations]


def one(violations, code: str) -> Violation:
    found = [v for v in violations if v.code == code]
    assert len(found) == 1, f"expected exactly one {code!r}, got {violations}"
    return found[0]


def plain(message: str) -> str:
    """Amounts are grouped with a narrow no-break space; compare with ordinary spaces."""
    return message.replace("\u202f", " ")


# --------------------------------------------------------------------------------------------------
# A valid consortium
# --------------------------------------------------------------------------------------------------


def test_valid_four_partners_from_three_countries_has_no_violations():
    partners = consortium("DE", "DE", "FR", "ES")
    assert check(partners) == []
    assert check_consortium(partners, make_call(), FUNDERS, {"pi1@example.org": 0}) == []


# --------------------------------------------------------------------------------------------------
# Rule 4: enough funded partners, from enough participating countries
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("countries, ok", [
    (("DE", "FR", "ES", "IT"), True),
    (("DE", "FR", "ES"), True),  # exactly at the minimum
    (("DE", "FR"), False),       # one short
])
def test_min_funded_partners(countries, ok):
    violations = check(consortium(*countries), {"min_countries": 1, "min_eu_associated_partners": 0})
    if ok:
        assert "min_funded_partners" not in codes(violations)
    else:
        v = one(violations, "min_funded_partners")
        assert v.blocking and v.field == "partners"
        assert v.message == "at least 3 partners requesting funding are needed; you have 2"


def test_min_funded_partners_ignores_own_funded_partners():
    violations = check(consortium("DE", "FR", own=("ES",)), {"min_countries": 1})
    assert "you have 2" in one(violations, "min_funded_partners").message


def test_min_funded_partners_singular_message():
    rules = {"min_funded_partners": 1, "min_countries": 1, "min_eu_associated_partners": 0}
    v = one(check(consortium(own=("DE",)), rules | {"coordinator_must_be_funded": False}),
            "min_funded_partners")
    assert v.message == "at least 1 partner requesting funding is needed; you have 0"


@pytest.mark.parametrize("countries, ok", [
    (("DE", "FR", "ES", "IT"), True),
    (("DE", "FR", "ES"), True),        # exactly three countries
    (("DE", "DE", "FR", "FR"), False),  # four partners, two countries
])
def test_min_countries(countries, ok):
    violations = check(consortium(*countries))
    if ok:
        assert "min_countries" not in codes(violations)
    else:
        assert one(violations, "min_countries").message == (
            "partners from at least 3 participating countries are needed; you have 2"
        )


def test_min_countries_ignores_own_funded_partners():
    violations = check(consortium("DE", "DE", "FR", own=("ES",)))
    assert "you have 2" in one(violations, "min_countries").message
    assert "min_funded_partners" not in codes(violations)


def test_min_countries_counts_only_participating_countries():
    # The US partner asks for funding, but no funder of the call is from the US.
    partners = consortium("DE", "FR") + [partner(3, "US", funder_id=None)]
    violations = check(partners)
    assert "funder_missing" in codes(violations)
    assert "you have 2" in one(violations, "min_countries").message


# --------------------------------------------------------------------------------------------------
# Rule 5: partners in EU Member States or Associated Countries
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("countries, own, eu_list, have", [
    (("DE", "FR", "ZA"), (), [], None),         # exactly two in the EU
    (("DE", "ZA", "ZA"), (), [], 1),            # one short
    (("ZA", "ZA", "DE"), ("FR",), [], 1),       # an own-funded EU partner does not count
    (("DE", "CA", "ZA"), (), [], None),         # Canada is a Horizon Europe Associated Country
    (("DE", "CA", "ZA"), (), ["DE", "FR"], 1),  # ...unless the call's own list leaves it out
    (("CA", "ZA", "ZA"), (), ["CA"], 1),        # the call's list replaces the built-in one
    (("CA", "DE", "ZA"), (), ["CA", "ZA"], None),
])
def test_min_eu_associated(countries, own, eu_list, have):
    violations = check(consortium(*countries, own=own), {"min_countries": 1},
                       eu_associated_countries=eu_list)
    if have is None:
        assert "min_eu_associated" not in codes(violations)
    else:
        v = one(violations, "min_eu_associated")
        assert v.message == (
            "at least 2 partners requesting funding must be in EU Member States or Associated Countries; "
            f"you have {have}"
        )


def test_min_eu_associated_zero_switches_rule_off():
    assert "min_eu_associated" not in codes(check(consortium("ZA", "ZA", "CA"), {
        "min_countries": 1, "min_eu_associated_partners": 0}, eu_associated_countries=["DE"]))


# --------------------------------------------------------------------------------------------------
# Rule 6: consortium size, with the widening bonus
# --------------------------------------------------------------------------------------------------

SIX = ("DE", "DE", "FR", "FR", "ES", "ES")


@pytest.mark.parametrize("countries, rules, message", [
    (SIX, {}, None),                                                      # exactly 6
    (SIX + ("IT",), {}, "at most 6 partners are allowed; you have 7"),    # one too many
    # A widening partner raises the limit to 7 ...
    (SIX + ("EE",), {"widening_countries": ["EE"], "widening_bonus": 1}, None),
    (SIX + ("EE", "IT"), {"widening_countries": ["EE"], "widening_bonus": 1},
     "at most 7 partners are allowed (6 + 1 because a partner comes from Estonia); you have 8"),
    # ... but only when such a partner is there.
    (SIX + ("IT",), {"widening_countries": ["EE"], "widening_bonus": 1},
     "at most 6 partners are allowed; you have 7"),
    # A widening country with no bonus changes nothing.
    (SIX + ("EE",), {"widening_countries": ["EE"], "widening_bonus": 0},
     "at most 6 partners are allowed; you have 7"),
    # A lower limit from the call.
    (("DE", "FR", "ES", "IT"), {"max_partners": 4}, None),
    (("DE", "FR", "ES", "IT", "EE"), {"max_partners": 4}, "at most 4 partners are allowed; you have 5"),
])
def test_max_partners(countries, rules, message):
    violations = check(consortium(*countries), rules)
    if message is None:
        assert "max_partners" not in codes(violations)
    else:
        assert one(violations, "max_partners").message == message


def test_max_partners_counts_own_funded_partners():
    violations = check(consortium(*SIX, own=("US",)))
    assert one(violations, "max_partners").message == "at most 6 partners are allowed; you have 7"


# --------------------------------------------------------------------------------------------------
# Rule 7: partners per country, own-funded ones included
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("countries, own, rules, message", [
    (("DE", "DE", "FR", "ES"), (), {}, None),  # exactly two from Germany
    (("DE", "DE", "DE", "FR", "ES"), (), {},
     "at most 2 partners per country are allowed; Germany has 3"),
    (("DE", "DE", "FR", "ES"), ("DE",), {},     # the own-funded German partner counts
     "at most 2 partners per country are allowed; Germany has 3"),
    (("DE", "DE", "FR", "ES"), ("DE",), {"max_per_country": 3}, None),
    (("DE", "DE", "DE", "FR", "ES"), ("DE",), {"max_per_country": 3},
     "at most 3 partners per country are allowed; Germany has 4"),
    (("DE", "FR", "ES"), (), {"max_per_country": 1}, None),
    (("DE", "FR", "FR", "ES"), (), {"max_per_country": 1},
     "at most 1 partner per country is allowed; France has 2"),
])
def test_max_per_country(countries, own, rules, message):
    violations = check(consortium(*countries, own=own), rules)
    if message is None:
        assert "max_per_country" not in codes(violations)
    else:
        assert one(violations, "max_per_country").message == message


def test_max_per_country_reports_each_country():
    violations = check(consortium("DE", "DE", "DE", "FR", "FR", "FR"))
    assert [v.message.rsplit("; ", 1)[1] for v in violations if v.code == "max_per_country"] == [
        "Germany has 3", "France has 3"]


# --------------------------------------------------------------------------------------------------
# Rule 8: own-funded partners
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("own, rules, message", [
    (("US",), {}, None),  # exactly one
    (("US", "JP"), {}, "at most 1 partner with own funding is allowed; you have 2"),
    (("US", "JP"), {"max_own_funded": 2}, None),
    (("US", "JP", "BR"), {"max_own_funded": 2}, "at most 2 partners with own funding are allowed; you have 3"),
    ((), {"max_own_funded": 0}, None),
    (("US",), {"max_own_funded": 0}, "at most 0 partners with own funding are allowed; you have 1"),
])
def test_max_own_funded(own, rules, message):
    violations = check(consortium("DE", "FR", "ES", own=own), rules)
    if message is None:
        assert violations == []
    else:
        assert one(violations, "max_own_funded").message == message


@pytest.mark.parametrize("funded, rules, needs_core", [
    (("DE", "FR", "ES"), {}, False),                  # rule 4 holds without the own-funded partner
    (("DE", "FR"), {}, True),                         # two funded partners only
    (("DE", "DE", "FR"), {}, True),                   # three funded partners, but from two countries
    (("DE", "FR"), {"min_funded_partners": 2, "min_countries": 2}, False),
])
def test_own_funded_needs_core(funded, rules, needs_core):
    violations = check(consortium(*funded, own=("US",)), rules)
    assert ("own_funded_needs_core" in codes(violations)) is needs_core
    if needs_core:
        # The rule 4 violation next to it carries the numbers.
        assert {"min_funded_partners", "min_countries"} & set(codes(violations))
        assert "own funding" in one(violations, "own_funded_needs_core").message


def test_no_own_funded_partner_no_needs_core_violation():
    assert "own_funded_needs_core" not in codes(check(consortium("DE", "FR")))


# --------------------------------------------------------------------------------------------------
# Rule 9: the coordinator requests funding
# --------------------------------------------------------------------------------------------------


def test_coordinator_must_not_be_own_funded():
    # Listed out of order: the coordinator is the partner with the lowest position.
    partners = [partner(2, "DE"), partner(3, "FR"), partner(4, "ES"), partner(1, "US", own_funded=True)]
    v = one(check(partners), "coordinator_funded")
    assert v.blocking
    assert "partner 1" in v.message and "coordinator" in v.message


def test_funded_coordinator_with_an_own_funded_partner_passes():
    assert check(consortium("DE", "FR", "ES", own=("US",))) == []


def test_coordinator_rule_can_be_switched_off():
    partners = [partner(1, "US", own_funded=True), partner(2, "DE"), partner(3, "FR"), partner(4, "ES")]
    assert check(partners, {"coordinator_must_be_funded": False}) == []


def test_no_partners_no_coordinator_violation():
    assert "coordinator_funded" not in codes(check([]))


# --------------------------------------------------------------------------------------------------
# Rule 10: each funded partner's funder
# --------------------------------------------------------------------------------------------------


def test_funder_missing():
    partners = consortium("DE", "FR", "ES")
    partners[1].funder_id = None
    v = one(check(partners), "funder_missing")
    assert v.field == "partners[2].funder"
    assert v.message.startswith("partner 2 (Org 2): ")


def test_own_funded_partner_needs_no_funder():
    assert "funder_missing" not in codes(check(consortium("DE", "FR", "ES", own=("US",))))


def test_funder_not_in_call():
    partners = consortium("DE", "FR", "ES")
    partners[2].funder_id = 99
    v = one(check(partners), "funder_not_in_call")
    assert v.field == "partners[3].funder"
    assert v.message == "partner 3 (Org 3): its funder does not take part in this call"


def test_funder_country_mismatch():
    partners = consortium("DE", "FR", "ES")
    partners[1].funder_id = BMBF  # a French partner asking the German funder
    v = one(check(partners), "funder_country")
    assert v.message == "partner 2 (Org 2): BMBF funds partners in Germany only"


SMWK = 8
REGIONAL = FUNDERS | {SMWK: FunderInfo(SMWK, "SMWK", "DE", "Saxony", None, None, ())}


@pytest.mark.parametrize("region, ok", [
    ("Saxony", True),
    ("saxony", True),      # case-insensitive
    ("  SAXONY ", True),   # and tolerant of stray spaces
    ("Bavaria", False),
    (None, False),
    ("", False),
])
def test_regional_funder(region, ok):
    partners = [partner(1, "DE", funder_id=SMWK, region=region), partner(2, "FR"), partner(3, "ES")]
    violations = check(partners, funders=REGIONAL)
    if ok:
        assert violations == []
    else:
        v = one(violations, "funder_region")
        assert v.field == "partners[1].region"
        assert v.message == "partner 1 (Org 1): SMWK funds partners in Saxony only"


TYPED = FUNDERS | {BMBF: FunderInfo(BMBF, "BMBF", "DE", None, None, None, ("academia", "clinical"))}


@pytest.mark.parametrize("partner_type, ok", [
    ("academia", True), ("clinical", True), ("industry", False), ("patient_organisation", False),
])
def test_funder_partner_type(partner_type, ok):
    partners = [partner(1, "DE", partner_type=partner_type), partner(2, "FR"), partner(3, "ES")]
    violations = check(partners, funders=TYPED)
    if ok:
        assert violations == []
    else:
        v = one(violations, "funder_partner_type")
        assert v.field == "partners[1].partner_type"
        assert v.message.startswith("partner 1 (Org 1): BMBF does not fund ")
        assert partner_type.split("_")[0] in v.message


def test_empty_eligible_types_means_every_type():
    partners = [partner(1, "DE", partner_type="industry"), partner(2, "FR", partner_type="other"),
                partner(3, "ES", partner_type="patient_organisation")]
    assert check(partners) == []


CAPPED = FUNDERS | {BMBF: FunderInfo(BMBF, "BMBF", "DE", None, 250_000, 400_000, ())}


@pytest.mark.parametrize("amount, ok", [(249_999, True), (250_000, True), (250_001, False)])
def test_max_per_partner(amount, ok):
    partners = [partner(1, "DE", requested_amount=amount), partner(2, "FR"), partner(3, "ES")]
    violations = check(partners, funders=CAPPED)
    if ok:
        assert violations == []
    else:
        v = one(violations, "max_per_partner")
        assert v.field == "partners[1].budget"
        assert plain(v.message) == (
            "partner 1 (Org 1): requests €250 001, above BMBF's limit of €250 000 per partner")


@pytest.mark.parametrize("amounts, ok", [
    ((200_000, 200_000), True),    # exactly the project cap
    ((200_000, 200_001), False),   # one euro above
    ((150_000, 250_001), False),   # both caps broken at once
])
def test_max_per_project_sums_the_funders_partners(amounts, ok):
    partners = [partner(1, "DE", requested_amount=amounts[0]), partner(2, "DE", requested_amount=amounts[1]),
                partner(3, "FR", requested_amount=900_000), partner(4, "ES", requested_amount=900_000)]
    violations = check(partners, funders=CAPPED)
    if ok:
        assert violations == []
    else:
        v = one(violations, "max_per_project")
        total = f"{sum(amounts):,}".replace(",", " ")
        assert plain(v.message) == (
            f"the partners funded by BMBF request €{total} together, above its limit of €400 000 per project")


def test_max_per_project_ignores_own_funded_and_other_funders():
    partners = [partner(1, "DE", requested_amount=250_000), partner(2, "FR", requested_amount=250_000),
                partner(3, "ES"), partner(4, "DE", own_funded=True, requested_amount=250_000)]
    assert check(partners, funders=CAPPED) == []


def test_national_application_is_a_warning_only():
    funders = FUNDERS | {ANR: FunderInfo(ANR, "ANR", "FR", None, None, None, (), national_application_required=True)}
    violations = check(consortium("DE", "FR", "ES"), funders=funders)
    v = one(violations, "national_application")
    assert v.blocking is False
    assert v.field == "partners[2].funder"
    assert "ANR" in v.message and "partner 2" in v.message
    assert blocking(violations) == []


# --------------------------------------------------------------------------------------------------
# Rule 11: one PI per partner, and a PI in at most N proposals of the call
# --------------------------------------------------------------------------------------------------


def test_same_pi_twice_in_one_proposal():
    partners = consortium("DE", "FR", "ES")
    partners[0].pi_email = "Alice@Example.org"
    partners[2].pi_email = " alice@example.ORG"
    v = one(check(partners), "pi_twice")
    assert v.message == "alice@example.org is the PI of 2 partners; each partner needs its own PI"


def test_distinct_pis_pass():
    assert "pi_twice" not in codes(check(consortium("DE", "FR", "ES")))


@pytest.mark.parametrize("max_per_pi, others, message", [
    (1, 0, None),
    (1, 1, "alice@example.org is already a PI in 1 other proposal of this call; "
           "a PI may be in at most 1 proposal"),
    (2, 1, None),
    (2, 2, "alice@example.org is already a PI in 2 other proposals of this call; "
           "a PI may be in at most 2 proposals"),
])
def test_max_proposals_per_pi(max_per_pi, others, message):
    partners = consortium("DE", "FR", "ES")
    partners[1].pi_email = "Alice@Example.ORG"  # compared lower-case with the keys of other_proposals_per_pi
    violations = check(partners, {"max_proposals_per_pi": max_per_pi}, others={"alice@example.org": others})
    if message is None:
        assert violations == []
    else:
        assert one(violations, "max_proposals_per_pi").message == message


def test_other_pis_in_other_proposals_do_not_matter():
    violations = check(consortium("DE", "FR", "ES"), others={"someone.else@example.org": 5})
    assert violations == []


# --------------------------------------------------------------------------------------------------
# check_texts (rule 14 for text fields)
# --------------------------------------------------------------------------------------------------


def test_complete_proposal_has_no_text_violations():
    assert check_texts(Proposal(), make_call(), "pre") == []


@pytest.mark.parametrize("field, value, code", [
    ("acronym", "", "acronym_missing"),
    ("acronym", None, "acronym_missing"),
    ("acronym", "   ", "acronym_missing"),
    ("title", "", "title_missing"),
    ("title", None, "title_missing"),
    ("title", " \n ", "title_missing"),
    ("abstract", "", "abstract_missing"),
    ("abstract", None, "abstract_missing"),
    ("duration_months", None, "duration_missing"),
    ("duration_months", 0, "duration_missing"),
])
def test_missing_text_fields(field, value, code):
    violations = check_texts(Proposal(**{field: value}), make_call(), "pre")
    assert codes(violations) == [code]
    assert violations[0].field == field
    assert violations[0].blocking


def test_everything_missing():
    violations = check_texts(Proposal(None, None, None, None), make_call(), "full")
    assert codes(violations) == ["acronym_missing", "title_missing", "abstract_missing", "duration_missing"]


@pytest.mark.parametrize("stage, field, length, message", [
    ("pre", "title", 100, None),
    ("pre", "title", 101, "the title has 101 characters; at most 100 are allowed"),
    ("full", "title", 200, None),
    ("full", "title", 201, "the title has 201 characters; at most 200 are allowed"),
    ("pre", "abstract", 500, None),
    ("pre", "abstract", 501, "the abstract has 501 characters; at most 500 are allowed"),
    ("full", "abstract", 1000, None),
    ("full", "abstract", 1001, "the abstract has 1001 characters; at most 1000 are allowed"),
    # An unknown stage falls back to the last stage of the call.
    ("rebuttal", "title", 200, None),
    ("rebuttal", "title", 201, "the title has 201 characters; at most 200 are allowed"),
])
def test_text_length_limits(stage, field, length, message):
    violations = check_texts(Proposal(**{field: "x" * length}), make_call(), stage)
    if message is None:
        assert violations == []
    else:
        assert codes(violations) == [f"{field}_too_long"]
        assert violations[0].message == message
        assert violations[0].field == field


def test_single_stage_call_uses_its_only_stage():
    call = make_call(stages=[{"kind": "full", "opens": "2024-05-20T09:00:00",
                              "deadline": "2024-06-20T17:00:00", "title_max_chars": 50}])
    assert check_texts(Proposal(title="x" * 50), call, "pre") == []
    assert codes(check_texts(Proposal(title="x" * 51), call, "pre")) == ["title_too_long"]


# --------------------------------------------------------------------------------------------------
# blocking()
# --------------------------------------------------------------------------------------------------


def test_blocking_filters_warnings_out():
    hard = Violation("max_partners", "too many")
    soft = Violation("national_application", "also apply nationally", blocking=False)
    assert blocking([soft, hard, soft]) == [hard]
    assert blocking([soft]) == []
    assert blocking([]) == []


def test_blocking_keeps_blocking_violations_next_to_warnings():
    funders = FUNDERS | {ANR: FunderInfo(ANR, "ANR", "FR", None, None, None, (), national_application_required=True)}
    violations = check(consortium("DE", "FR"), funders=funders)
    assert set(codes(violations)) == {"min_funded_partners", "min_countries", "national_application"}
    assert codes(blocking(violations)) == ["min_funded_partners", "min_countries"]
