"""Call definitions: the schema of `config/calls/*.toml` and its validation.

A call definition is data, not code. Every number a rule or a guard uses comes from here, so two calls
with different rules run on the same code. Validation errors name the offending key ("funders[3].country")
and say why, so a secretariat can fix the file without reading Python.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from workflow.countries import is_known_country

PARTNER_TYPES = ("academia", "clinical", "industry", "patient_organisation", "other")
PARTNER_TYPE_LABELS = {
    "academia": "Academia",
    "clinical": "Clinical / public health",
    "industry": "Industry / SME",
    "patient_organisation": "Patient organisation",
    "other": "Other",
}
STAGE_KINDS = ("pre", "full")
# A stage's name in every text that names one (the one place for these words; see stage_name).
STAGE_NAMES = {"pre": "pre-proposal", "full": "full proposal"}
DOCUMENT_KINDS = ("project_description", "cv", "letter_of_commitment", "other")

Money = Annotated[int, Field(ge=0, strict=True, description="whole euros")]
Acronym = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9.\-]*$")]


def stage_name(call_or_two_stage, kind: str) -> str:
    """Stage `kind`'s name: "pre-proposal" or "full proposal", or just "proposal" when the call has one stage.
    `call_or_two_stage` is a Call, its CallDef or a lifecycle Variant (anything with `two_stage`),
    or that bool itself."""
    two_stage = call_or_two_stage if isinstance(call_or_two_stage, bool) else call_or_two_stage.two_stage
    return STAGE_NAMES[kind] if two_stage else "proposal"


def at(key: str, message: str) -> ValueError:
    """A cross-field error that belongs to `key` (relative to the model that raises it)."""
    return ValueError(f"@{key}|{message}")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StageDef(Strict):
    kind: Literal["pre", "full"]
    opens: dt.datetime
    deadline: dt.datetime
    # Character limits of the proposal's text fields at this stage.
    title_max_chars: int = Field(300, gt=0)
    abstract_max_chars: int = Field(4000, gt=0)
    # Page limit per uploaded document kind at this stage.
    page_limits: dict[str, int] = Field(default_factory=lambda: {"project_description": 5})
    max_upload_mb: int = Field(10, gt=0, le=100)
    # When the reviews of this stage are due (local time); shown to reviewers, used for reminders and for
    # flagging late reviews. Optional: without it, the deadline given with the latest reminders counts.
    review_deadline: dt.datetime | None = None

    @field_validator("opens", "deadline", "review_deadline", mode="before")
    @classmethod
    def _has_time(cls, value):
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            raise ValueError("give a time as well as the date, e.g. 2024-03-05T17:00:00")
        return value

    @field_validator("opens", "deadline", "review_deadline")
    @classmethod
    def _naive_local(cls, value: dt.datetime | None) -> dt.datetime | None:
        # Deadlines are written in the call's time zone, without an offset; the call attaches the zone.
        if value is not None and value.tzinfo is not None:
            raise ValueError("write the local time without an offset; the call's time_zone applies")
        return value

    @field_validator("page_limits")
    @classmethod
    def _known_kinds(cls, value: dict[str, int]) -> dict[str, int]:
        for kind, pages in value.items():
            if kind not in DOCUMENT_KINDS:
                raise ValueError(f"unknown document kind {kind!r}; use one of {', '.join(DOCUMENT_KINDS)}")
            if pages <= 0:
                raise ValueError(f"page limit for {kind} must be positive")
        return value

    @model_validator(mode="after")
    def _opens_before_deadline(self) -> StageDef:
        if self.opens >= self.deadline:
            raise at("deadline", "the deadline must be after the stage opens")
        if self.review_deadline is not None and self.review_deadline <= self.deadline:
            raise at("review_deadline", "the reviews are due after the submission deadline of the stage")
        return self


class RebuttalDef(Strict):
    days: int = Field(7, gt=0, le=60)
    max_chars: int = Field(6000, gt=0)


class ConsortiumRules(Strict):
    min_funded_partners: int = Field(3, ge=1)
    min_countries: int = Field(3, ge=1)
    min_eu_associated_partners: int = Field(2, ge=0)
    max_partners: int = Field(6, ge=1)
    max_per_country: int = Field(2, ge=1)
    max_own_funded: int = Field(1, ge=0)
    widening_countries: list[str] = Field(default_factory=list)
    widening_bonus: int = Field(0, ge=0)
    coordinator_must_be_funded: bool = True
    max_proposals_per_pi: int = Field(1, ge=1)
    # When true, at the full stage a partner its own funder found ineligible may be replaced or removed.
    allow_replacing_ineligible_partner: bool = True

    @field_validator("widening_countries")
    @classmethod
    def _countries(cls, value: list[str]) -> list[str]:
        for code in value:
            if not is_known_country(code):
                raise ValueError(f"{code!r} is not an ISO 3166 country code")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> ConsortiumRules:
        if self.min_funded_partners > self.max_partners:
            raise at("min_funded_partners", "cannot exceed max_partners")
        if self.min_eu_associated_partners > self.min_funded_partners:
            raise at("min_eu_associated_partners", "cannot exceed min_funded_partners")
        if self.min_countries > self.max_partners:
            raise at("min_countries", "cannot exceed max_partners: no consortium could meet both")
        if self.widening_bonus and not self.widening_countries:
            raise at("widening_bonus", "a bonus needs widening_countries to apply to")
        return self


class CriterionDef(Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    weight: float = Field(1.0, gt=0)
    threshold: float = Field(3.0, ge=0, le=5)
    labels: dict[str, str] = Field(
        default_factory=lambda: {
            "0": "Fails / missing information",
            "1": "Poor",
            "2": "Fair",
            "3": "Good",
            "4": "Very good",
            "5": "Excellent",
        }
    )

    @field_validator("threshold")
    @classmethod
    def _half_points(cls, value: float) -> float:
        if (value * 2) != int(value * 2):
            raise ValueError("thresholds are in half points (0, 0.5, ..., 5)")
        return value


class EvaluationDef(Strict):
    criteria: list[CriterionDef] = Field(min_length=1)
    total_threshold: float = Field(10.0, ge=0)
    reviewers_per_proposal: int = Field(3, ge=1)
    score_step: Literal[0.5] = 0.5
    tie_break: list[str] = Field(default_factory=list)
    # A reviewer from the same country as a partner is conflicted (besides organisation, domain, PI).
    conflict_same_country: bool = False
    # Reviewers see the other reviews of a proposal only after submitting their own.
    hide_other_reviews_until_submitted: bool = True
    # Reviewer names are shown to other reviewers and the panel (never to applicants).
    show_reviewer_names: bool = False

    @model_validator(mode="after")
    def _coherent(self) -> EvaluationDef:
        keys = [c.key for c in self.criteria]
        if len(set(keys)) != len(keys):
            raise at("criteria", "criterion keys must be unique")
        for key in self.tie_break:
            if key not in keys:
                raise at("tie_break", f"names {key!r}, which is not a criterion key")
        if self.total_threshold > self.max_total:
            raise at("total_threshold", f"is above the highest possible weighted total ({self.max_total:g})")
        return self

    @property
    def max_total(self) -> float:
        """The weighted total of full marks: the total is the weighted sum of criterion scores."""
        return 5 * sum(c.weight for c in self.criteria)
        return self


class FunderDef(Strict):
    acronym: Acronym
    name: str = Field(min_length=1, max_length=300)
    country: str
    region: str | None = Field(None, max_length=120)
    committed_budget: Money
    max_per_partner: Money | None = None
    max_per_project: Money | None = None
    eligible_partner_types: list[str] = Field(default_factory=lambda: list(PARTNER_TYPES))
    national_contact: str | None = Field(None, max_length=300)
    national_application_required: bool = False

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        if not is_known_country(value):
            raise ValueError(f"{value!r} is not an ISO 3166 country code")
        return value

    @field_validator("eligible_partner_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        for item in value:
            if item not in PARTNER_TYPES:
                raise ValueError(f"unknown partner type {item!r}; use one of {', '.join(PARTNER_TYPES)}")
        return value

    @model_validator(mode="after")
    def _caps(self) -> FunderDef:
        if self.max_per_partner is not None and self.max_per_project is not None \
                and self.max_per_partner > self.max_per_project:
            raise at("max_per_partner", "cannot exceed max_per_project")
        for key in ("max_per_partner", "max_per_project"):
            cap = getattr(self, key)
            if cap is not None and cap > self.committed_budget:
                raise at(key, "cannot exceed committed_budget")
        return self


class CallDef(Strict):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,60}$")
    title: str = Field(min_length=1)
    description: str = ""
    time_zone: str = "Europe/Brussels"
    currency: Literal["EUR"] = "EUR"
    stages: list[StageDef] = Field(min_length=1, max_length=2)
    rebuttal: RebuttalDef | None = None
    consortium: ConsortiumRules = Field(default_factory=ConsortiumRules)
    evaluation: EvaluationDef
    funders: list[FunderDef] = Field(min_length=1)
    # Whether funder officers may read every proposal of the call, not only their own partners'.
    officers_read_all_proposals: bool = True
    # The EU top-up kept for gap filling (mixed-mode funding), in whole euros; 0 = none.
    gap_pot: Money = 0
    # Countries counted as EU Member States or Associated Countries (rule 5); empty = the built-in list.
    eu_associated_countries: list[str] = Field(default_factory=list)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"{value!r} is not an IANA time zone such as Europe/Paris") from None
        return value

    @field_validator("eu_associated_countries")
    @classmethod
    def _eu_countries(cls, value: list[str]) -> list[str]:
        for code in value:
            if not is_known_country(code):
                raise ValueError(f"{code!r} is not an ISO 3166 country code")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> CallDef:
        kinds = [s.kind for s in self.stages]
        if kinds not in (["pre", "full"], ["full"]):
            raise at("stages", "must be [pre, full] (two-stage) or [full] (single-stage), in that order")
        if len(self.stages) == 2 and self.stages[0].deadline >= self.stages[1].opens:
            raise at("stages[1].opens", "the full stage must open after the pre-proposal deadline")
        seen: dict[str, int] = {}
        for i, f in enumerate(self.funders):
            folded = f.acronym.casefold()
            if folded in seen:
                raise at(f"funders[{i}].acronym", f"repeats {self.funders[seen[folded]].acronym!r}; "
                         "funder acronyms must be unique")
            seen[folded] = i
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def two_stage(self) -> bool:
        return len(self.stages) == 2

    def stage(self, kind: str) -> StageDef | None:
        return next((s for s in self.stages if s.kind == kind), None)


class CallDefinitionError(Exception):
    """A call definition that cannot be used; `problems` lists (key, why) pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {key}: {why}" for key, why in problems)
        super().__init__(f"{source} is not a valid call definition:\n{lines}")


def _key(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, str) and part.startswith(("function-after[", "function-before[")):
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(file)"


def parse_call_definition(data: dict, source: str = "call definition") -> CallDef:
    try:
        return CallDef.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg, key = err["msg"], _key(err["loc"])
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, ") :]
            if msg.startswith("@") and "|" in msg:
                sub, msg = msg[1:].split("|", 1)
                key = f"{key}.{sub}" if key != "(file)" and not sub.startswith("[") else (
                    sub if key == "(file)" else key + sub)
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling)"
            problems.append((key, msg))
        raise CallDefinitionError(source, problems) from None


def load_call_file(path: str | Path) -> CallDef:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CallDefinitionError(str(path), [("(file)", f"cannot be read: {exc.strerror}")]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise CallDefinitionError(str(path), [("(file)", "is not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise CallDefinitionError(str(path), [("(file)", f"is not valid TOML: {exc}")]) from None
    return parse_call_definition(data, str(path))
