"""The secretariat's console, domain side: call definitions edited as data (create, change while the call's
phase allows it, open a stage now, export as TOML), and the queries behind the console's pages (counts per
state, stage and funder; the proposal list's search, filters, sort and pages; the audit log), plus bulk
transitions that are all-or-nothing.

Every edit of a call goes through CallDef validation and `workflow.calls.load_call`, so the one stored
definition stays the source of truth. Queries run a fixed number of SQL statements whatever the number of
proposals (aggregates and IN-lists, never one query per row).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import case, exists, func, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from workflow import audit, lifecycle
from workflow.access import can
from workflow.callconfig import CallDef, CallDefinitionError, parse_call_definition, stage_name
from workflow.calls import LoadResult, load_call
from workflow.clock import local, utcnow
from workflow.countries import all_countries
from workflow.db import distinct_values
from workflow.errors import DomainError, InvalidInput, NotFound
from workflow.guards import GuardContext, failing_guards
from workflow.lifecycle import STATE_BY_NAME, Variant, stage_of, states_for
from workflow.models import AuditEvent, Call, FundingOrganisation, Partner, Proposal, User
from workflow.operations import transition
from workflow.paging import PER_PAGE, Window, page_number, positive_int
from workflow.proposals import require
from workflow.timefmt import format_instant

CALLS_DIR = Path(__file__).resolve().parent.parent / "config" / "calls"

# States a proposal has reached only after it was submitted (and was not withdrawn).
NOT_SUBMITTED = ("draft", "not_submitted", "withdrawn")
# Once a proposal is in one of these states, reviewing has started: criteria can no longer change.
REVIEW_STARTED = frozenset(s.name for s in lifecycle.STATES) - {
    "draft", "submitted", "not_submitted", "eligibility_check", "ineligible", "withdrawn"}
FUNDING_DECIDED = frozenset({"selected", "reserve", "not_funded", "funded"})


# ---------------------------------------------------------------------------------------------------------
# Call definitions: read, create, change, open a stage


def shipped_definitions() -> dict[str, Path]:
    """The call definitions shipped in config/calls, by file name without .toml."""
    return {p.stem: p for p in sorted(CALLS_DIR.glob("*.toml"))}


def definition_from_toml(raw: bytes, source: str = "uploaded file") -> CallDef:
    """Parse and validate an uploaded definition; problems name the key (CallDefinitionError)."""
    if not raw:
        raise CallDefinitionError(source, [("(file)", "is empty: choose a .toml call definition")])
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise CallDefinitionError(source, [("(file)", "is not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise CallDefinitionError(source, [("(file)", f"is not valid TOML: {exc}")]) from None
    return parse_call_definition(data, source)


def definition_data(definition: CallDef) -> dict:
    """A mutable copy of the definition, with datetimes as naive local datetimes (as in the TOML file)."""
    return copy.deepcopy(definition.model_dump(mode="python"))


def create_call(session: Session, actor, definition: CallDef) -> Call:
    """A new call from a validated definition. Creating calls is an administrator's job (until the policy
    has a `call.create` action)."""
    require(can(actor, "admin"))
    if session.scalar(select(Call.id).where(Call.code == definition.code)) is not None:
        raise CallDefinitionError("call definition", [(
            "code", f"a call with the code {definition.code!r} exists already; change its settings on its "
                    "own page, or choose another code")])
    return load_call(session, actor, definition).call


def from_template(template: CallDef, *, code: str, title: str, time_zone: str,
                  stages: list[tuple[str, dt.datetime | None, dt.datetime | None]]) -> CallDef:
    """A definition made from a template's rules, criteria and funders, with the form's own code, title,
    time zone and stage dates (local wall-clock times in `time_zone`)."""
    data = definition_data(template)
    data.update(code=(code or "").strip(), title=(title or "").strip(), time_zone=(time_zone or "").strip(),
                description="")
    by_kind = {s["kind"]: s for s in data["stages"]}
    new_stages = []
    for kind, opens, deadline in stages:
        stage = copy.deepcopy(by_kind.get(kind) or by_kind.get("full") or {})
        stage["kind"] = kind
        stage["opens"], stage["deadline"] = opens, deadline
        stage["review_deadline"] = None  # the template's belongs to its own dates; set it on the settings page
        new_stages.append(stage)
    data["stages"] = new_stages
    problems = [(f"stages[{i}].{key}", "enter a date and time")
                for i, (_k, opens, deadline) in enumerate(stages)
                for key, value in (("opens", opens), ("deadline", deadline)) if value is None]
    if problems:
        raise CallDefinitionError("call form", problems)
    return parse_call_definition(data, "call form")


def _flat(value, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, v in enumerate(value):
            out.update(_flat(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def definition_diff(old: CallDef, new: CallDef) -> tuple[dict, dict]:
    """(before, after) of the keys that differ, e.g. {"stages[0].deadline": "2030-03-05T17:00:00"}."""
    a, b = _flat(old.model_dump(mode="json")), _flat(new.model_dump(mode="json"))
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return {k: a.get(k) for k in keys}, {k: b.get(k) for k in keys}


def _stage_key(definition: CallDef, kind: str) -> str:
    return f"stages[{[s.kind for s in definition.stages].index(kind)}]"


def change_problems(session: Session, call: Call, new: CallDef, now: dt.datetime | None = None) -> list[tuple[str, str]]:
    """Why the call's phase refuses this new definition, as (key, why) pairs; empty when it may be loaded.

    Dates of a closed stage, the opening of a stage that opened already, a deadline moved into the past,
    consortium rules after the first deadline, criteria once reviewing started, funders with applicants,
    and budgets once funding is decided are frozen."""
    now = now or utcnow()
    old = call.settings
    problems: list[tuple[str, str]] = []
    if new.code != old.code:
        problems.append(("code", f"cannot change: it identifies the call (it is {old.code!r})"))
    states = Counter(dict(session.execute(
        select(Proposal.state, func.count(Proposal.id)).where(Proposal.call_id == call.id).group_by(Proposal.state)
    ).all()))
    has_proposals = sum(states.values()) > 0
    if [s.kind for s in new.stages] != [s.kind for s in old.stages] and has_proposals:
        problems.append(("stages", "the call's stages cannot change once proposals exist"))
        return problems
    for stage in call.stages:
        new_def, old_def = new.stage(stage.kind), old.stage(stage.kind)
        if new_def is None or old_def is None:
            continue
        key = _stage_key(new, stage.kind)
        if stage.closed_at is not None:
            # Reviewing comes after submission closes: the review deadline stays open to change.
            if new_def.model_copy(update={"review_deadline": None}) != old_def.model_copy(update={"review_deadline": None}):
                problems.append((f"{key}.deadline" if new_def.deadline != old_def.deadline else key,
                                 f"submission of this stage closed on {format_instant(stage.closed_at, call.time_zone)}; "
                                 "its settings can no longer change"))
            continue
        if new_def.opens != old_def.opens and now >= stage.opens_at:
            problems.append((f"{key}.opens", "the stage opened on "
                             f"{format_instant(stage.opens_at, call.time_zone)}; its opening can no longer change"))
        if new_def.deadline != old_def.deadline:
            new_deadline = new_def.deadline.replace(tzinfo=new.zone).astimezone(dt.UTC)
            if new_deadline <= now and now >= stage.opens_at:
                problems.append((f"{key}.deadline", "must be in the future: applicants of an open stage cannot lose "
                                 f"time they had (it is now {format_instant(now, call.time_zone)})"))
    first = call.first_stage
    if new.consortium != old.consortium and now >= first.deadline:
        problems.append(("consortium", "the consortium rules cannot change after the first deadline "
                         f"({format_instant(first.deadline, call.time_zone)})"))
    reviewing = sum(n for s, n in states.items() if s in REVIEW_STARTED)
    if new.evaluation != old.evaluation and reviewing:
        problems.append(("evaluation", f"the evaluation criteria cannot change once reviewing started "
                         f"({reviewing} proposal{'s' if reviewing != 1 else ''} in review or later)"))
    if (new.rebuttal is None) != (old.rebuttal is None) and reviewing:
        problems.append(("rebuttal", "a rebuttal step cannot be added or removed once reviewing started"))
    if old.time_zone != new.time_zone and now >= first.opens_at:
        problems.append(("time_zone", "the time zone cannot change once the call has opened"))
    new_funders = {f.acronym: (i, f) for i, f in enumerate(new.funders)}
    removed = [f.acronym for f in old.funders if f.acronym not in new_funders]
    if removed:
        in_use = dict(session.execute(
            select(FundingOrganisation.acronym, func.count(Partner.id))
            .join(Partner, Partner.funder_id == FundingOrganisation.id)
            .join(Proposal, Partner.proposal_id == Proposal.id)
            .where(Proposal.call_id == call.id, FundingOrganisation.acronym.in_(removed))
            .group_by(FundingOrganisation.acronym)
        ).all())
        for acronym in removed:
            if in_use.get(acronym):
                problems.append(("funders", f"{acronym} cannot be removed: {in_use[acronym]} partner"
                                 f"{'s' if in_use[acronym] != 1 else ''} request money from it"))
    decided = sum(n for s, n in states.items() if s in FUNDING_DECIDED)
    if decided:
        for f in old.funders:
            if f.acronym in new_funders:
                i, nf = new_funders[f.acronym]
                for attr in ("committed_budget", "max_per_partner", "max_per_project"):
                    if getattr(nf, attr) != getattr(f, attr):
                        problems.append((f"funders[{i}].{attr}", "the funding list is decided; budgets and "
                                         "caps can no longer change here"))
    return problems


def update_definition(session: Session, actor, call: Call, new, *, reason: str | None = None) -> LoadResult:
    """Replace the call's definition (a CallDef, or data to validate into one) if its phase allows it."""
    require(can(actor, "call.manage", call))
    if not isinstance(new, CallDef):
        new = parse_call_definition(new, "call settings")
    problems = change_problems(session, call, new)
    if problems:
        raise CallDefinitionError("call settings", problems)
    old = call.settings
    before, after = definition_diff(old, new)
    if not after:
        return LoadResult(call, "unchanged")
    result = load_call(session, actor, new)
    audit.record(session, actor, "call.settings_changed", call, call_id=call.id, before=before, after=after,
                 reason=reason)
    return result


def apply_settings(call: Call, *, title: str | None = None, description: str | None = None,
                   stages: dict[str, tuple] | None = None,
                   funders: dict[str, dict[str, int | None]] | None = None) -> dict:
    """The call's definition data with the settings form's values put in (validated later, as a whole).
    `stages` maps a stage kind to (opens, deadline) or (opens, deadline, review deadline or None)."""
    data = definition_data(call.settings)
    if title is not None:
        data["title"] = title.strip()
    if description is not None:
        data["description"] = description.strip()
    for s in data["stages"]:
        if stages and s["kind"] in stages:
            s["opens"], s["deadline"], *review = stages[s["kind"]]
            if review:
                s["review_deadline"] = review[0]
    for fd in data["funders"]:
        for attr, value in ((funders or {}).get(fd["acronym"]) or {}).items():
            fd[attr] = value
    return data


@dataclass(frozen=True)
class StageStatus:
    kind: str
    label: str
    opens_at: dt.datetime
    deadline: dt.datetime
    closed_at: dt.datetime | None
    status: str  # "scheduled" | "open" | "deadline passed" | "closed"

    @property
    def can_open_now(self) -> bool:
        return self.status == "scheduled"

    @property
    def can_close(self) -> bool:
        return self.status == "deadline passed"


def stage_statuses(call: Call, now: dt.datetime | None = None) -> list[StageStatus]:
    now = now or utcnow()
    out = []
    for s in call.stages:
        if s.closed_at is not None:
            status = "closed"
        elif now < s.opens_at:
            status = "scheduled"
        elif now < s.deadline:
            status = "open"
        else:
            status = "deadline passed"
        out.append(StageStatus(s.kind, stage_name(call, s.kind), s.opens_at, s.deadline, s.closed_at, status))
    return out


def open_stage_now(session: Session, actor, call: Call, kind: str) -> dt.datetime:
    """Open a scheduled stage now: its opening moves to the current minute (in the call's zone). Returns
    the new opening instant. Refused when the stage is open or closed already."""
    require(can(actor, "call.manage", call))
    stage = call.stage(kind)
    if stage is None:
        raise NotFound(f"this call has no {kind} stage")
    now = utcnow()
    status = next(s for s in stage_statuses(call, now) if s.kind == kind)
    if status.status != "scheduled":
        raise DomainError(f"the {status.label} stage is {status.status} already; there is nothing to open")
    opens_local = local(now, call.time_zone).replace(second=0, microsecond=0, tzinfo=None)
    data = definition_data(call.settings)
    for s in data["stages"]:
        if s["kind"] == kind:
            s["opens"] = opens_local
    update_definition(session, actor, call, data, reason=f"{kind} stage opened now")
    stage = call.stage(kind)
    audit.record(session, actor, "stage.opened", object_type="call_stage", object_id=stage.id, call_id=call.id,
                 after={"stage": kind, "opens_at": stage.opens_at.isoformat()})
    return stage.opens_at


# ---------------------------------------------------------------------------------------------------------
# TOML export: a small serialiser for CallDef's data (tomllib reads it back to the same definition)

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key) -> str:
    key = str(key)
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError("TOML export: NaN and infinity are not call settings")
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return value.isoformat()
        return value.isoformat(timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        # JSON's escapes (\" \\ \n \t \uXXXX ...) are valid in TOML basic strings.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None) + " }"
    raise TypeError(f"TOML export: cannot write {type(value).__name__}")


def _is_table_array(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _emit(lines: list[str], table: dict, path: list[str]) -> None:
    scalars = [(k, v) for k, v in table.items() if v is not None and not isinstance(v, dict) and not _is_table_array(v)]
    tables = [(k, v) for k, v in table.items() if isinstance(v, dict)]
    arrays = [(k, v) for k, v in table.items() if _is_table_array(v)]
    for k, v in scalars:
        lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    for k, v in tables:
        lines.extend(["", "[" + ".".join(_toml_key(p) for p in [*path, k]) + "]"])
        _emit(lines, v, [*path, k])
    for k, items in arrays:
        for item in items:
            lines.extend(["", "[[" + ".".join(_toml_key(p) for p in [*path, k]) + "]]"])
            _emit(lines, item, [*path, k])


def to_toml(definition: CallDef) -> str:
    """The definition as a TOML call file; times are local wall-clock times in the call's time zone."""
    data = definition.model_dump(mode="python", exclude_none=True)
    lines = ["# " + " ".join(definition.title.split()), "# Exported from Jointcall. Times are local times in the call's time_zone;",
             "# deadlines are exclusive instants. Budgets are whole euros.", ""]
    _emit(lines, data, [])
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


# ---------------------------------------------------------------------------------------------------------
# Counts: per state, per stage, per funder (the dashboard and the state diagram)


def state_counts(session: Session, call: Call) -> Counter:
    return Counter(dict(session.execute(
        select(Proposal.state, func.count(Proposal.id)).where(Proposal.call_id == call.id).group_by(Proposal.state)
    ).all()))


@dataclass(frozen=True)
class FunderFigures:
    funder: FundingOrganisation
    committed: int
    max_per_partner: int | None
    max_per_project: int | None
    partners: int  # partners requesting money from this funder, in submitted proposals
    proposals: int
    requested: int
    draft_partners: int  # the same, in drafts
    draft_requested: int

    @property
    def ratio(self) -> float | None:
        return self.requested / self.committed if self.committed else None


@dataclass(frozen=True)
class Dashboard:
    call: Call
    now: dt.datetime
    states: Counter
    stages: list[StageStatus]
    funders: list[FunderFigures]
    variant: Variant

    @property
    def total(self) -> int:
        return sum(self.states.values())

    @property
    def submitted(self) -> int:
        return sum(n for s, n in self.states.items() if s not in NOT_SUBMITTED)

    def state_rows(self) -> list[tuple[str, str, int]]:
        """(state, label, count) for every state of the call's lifecycle, in lifecycle order."""
        return [(s.name, s.label, self.states.get(s.name, 0)) for s in states_for(self.variant)]

    def by_stage(self) -> list[tuple[str, list[tuple[str, str, int]]]]:
        groups: dict[str, list] = {}
        for row in self.state_rows():
            if row[0] == "withdrawn":
                groups.setdefault("any", []).append(row)
            else:
                groups.setdefault(stage_of(row[0], self.variant), []).append(row)
        return list(groups.items())

    @property
    def max_state_count(self) -> int:
        return max(self.states.values(), default=0) or 1

    @property
    def max_money(self) -> int:
        return max([f.requested for f in self.funders] + [f.committed for f in self.funders] + [1])

    @property
    def committed_total(self) -> int:
        return sum(f.committed for f in self.funders)

    @property
    def requested_total(self) -> int:
        return sum(f.requested for f in self.funders)


def dashboard(session: Session, actor, call: Call) -> Dashboard:
    """The call's figures in four statements: state counts, the call's funders, two funder aggregates."""
    require(can(actor, "call.manage", call))
    states = state_counts(session, call)
    group = case((Proposal.state == "draft", "draft"), (Proposal.state.notin_(NOT_SUBMITTED), "submitted"),
                 else_="other")
    rows = session.execute(
        select(Partner.funder_id, group.label("grp"), func.count(Partner.id),
               func.count(func.distinct(Partner.proposal_id)), func.coalesce(func.sum(Partner.requested_amount), 0))
        .join(Proposal, Partner.proposal_id == Proposal.id)
        .where(Proposal.call_id == call.id, Partner.funder_id.is_not(None), Partner.own_funded.is_(False))
        .group_by(Partner.funder_id, group)
    ).all()
    figures: dict[tuple[int, str], tuple[int, int, int]] = {
        (fid, grp): (n, props, int(req)) for fid, grp, n, props, req in rows}
    funders = []
    for cf in sorted(call.funders, key=lambda cf: cf.funder.acronym.lower()):
        n, props, req = figures.get((cf.funder_id, "submitted"), (0, 0, 0))
        dn, _dp, dreq = figures.get((cf.funder_id, "draft"), (0, 0, 0))
        funders.append(FunderFigures(cf.funder, cf.committed_budget, cf.max_per_partner, cf.max_per_project,
                                     n, props, req, dn, dreq))
    return Dashboard(call, utcnow(), states, stage_statuses(call), funders, Variant.of(call))


# ---------------------------------------------------------------------------------------------------------
# The proposal list: search, filters, sort, pages


SORTS = ("reference", "acronym", "title", "state", "coordinator", "partners", "requested", "updated")
SCOPES = {"": "All proposals", "submitted": "Submitted (not drafts, not lapsed, not withdrawn)"}


@dataclass(frozen=True)
class ProposalFilter:
    q: str = ""
    state: str = ""
    funder_id: int | None = None
    country: str = ""
    scope: str = ""
    sort: str = "reference"
    desc: bool = False
    page: int = 1

    @classmethod
    def from_args(cls, args) -> ProposalFilter:
        """From a query string (a Werkzeug MultiDict or a dict); unknown values fall back to the defaults."""
        def get(name, default=""):
            value = args.get(name, default)
            return value if isinstance(value, str) else default

        funder = get("funder")
        page = get("page", "1")
        sort = get("sort", "reference")
        state = get("state")
        country = get("country").strip().upper()
        return cls(
            q=get("q").strip()[:200],
            state=state if state in STATE_BY_NAME else "",
            funder_id=positive_int(funder),
            country=country if re.fullmatch(r"[A-Z]{2}", country) else "",
            scope=get("scope") if get("scope") in SCOPES else "",
            sort=sort if sort in SORTS else "reference",
            desc=get("dir") == "desc",
            page=page_number(page),
        )

    def args(self, **changes) -> dict:
        """The query-string arguments that reproduce this filter (with `changes`), without defaults."""
        values = {"q": self.q, "state": self.state, "funder": self.funder_id or "", "country": self.country,
                  "scope": self.scope, "sort": "" if self.sort == "reference" else self.sort,
                  "dir": "desc" if self.desc else "", "page": self.page if self.page > 1 else ""}
        values.update(changes)
        return {k: v for k, v in values.items() if v not in ("", None)}

    @property
    def active(self) -> bool:
        return bool(self.q or self.state or self.funder_id or self.country or self.scope)


def _like(value: str) -> str:
    return "%" + value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _partners_count():
    return (select(func.count(Partner.id)).where(Partner.proposal_id == Proposal.id)
            .correlate(Proposal).scalar_subquery())


def _requested_sum():
    return (select(func.coalesce(func.sum(Partner.requested_amount), 0)).where(Partner.proposal_id == Proposal.id)
            .correlate(Proposal).scalar_subquery())


def _conditions(call: Call, f: ProposalFilter) -> list:
    where = [Proposal.call_id == call.id]
    if f.state:
        where.append(Proposal.state == f.state)
    if f.scope == "submitted":
        where.append(Proposal.state.notin_(NOT_SUBMITTED))
    if f.funder_id:
        where.append(exists().where(Partner.proposal_id == Proposal.id, Partner.funder_id == f.funder_id,
                                    Partner.own_funded.is_(False)))
    if f.country:
        where.append(exists().where(Partner.proposal_id == Proposal.id, Partner.country == f.country))
    if f.q:
        pattern = _like(f.q)
        needle = f.q.strip().lower()
        countries = [code for code, name in all_countries() if needle in name.lower()]

        def like(col):
            return func.lower(col).like(pattern, escape="\\")

        partner_match = [like(Partner.organisation), like(Partner.pi_name), like(Partner.pi_email),
                         func.lower(Partner.country) == needle,
                         Partner.funder_id.in_(select(FundingOrganisation.id).where(
                             or_(like(FundingOrganisation.acronym), like(FundingOrganisation.name))))]
        if countries:
            partner_match.append(Partner.country.in_(countries))
        where.append(or_(
            like(Proposal.reference), like(Proposal.acronym), like(Proposal.title),
            Proposal.coordinator_id.in_(select(User.id).where(or_(like(User.name), like(User.email)))),
            exists().where(Partner.proposal_id == Proposal.id, or_(*partner_match)),
        ))
    return where


def _order(f: ProposalFilter):
    column = {
        "reference": Proposal.reference, "acronym": func.lower(Proposal.acronym), "title": func.lower(Proposal.title),
        "state": Proposal.state, "coordinator": func.lower(User.name), "partners": _partners_count(),
        "requested": _requested_sum(), "updated": Proposal.updated_at,
    }[f.sort]
    return [column.desc() if f.desc else column.asc(), Proposal.id.desc() if f.desc else Proposal.id.asc()]


@dataclass(frozen=True)
class ProposalRow:
    proposal: Proposal

    @property
    def partners(self) -> list[Partner]:
        return self.proposal.partners

    @property
    def requested(self) -> int:
        return sum(p.requested_amount for p in self.proposal.partners)

    def requested_from(self, funder_id: int | None) -> int:
        return sum(p.requested_amount for p in self.proposal.partners
                   if funder_id and p.funder_id == funder_id and not p.own_funded)

    @property
    def countries(self) -> list[str]:
        return sorted({p.country for p in self.proposal.partners})

    @property
    def funders(self) -> list[str]:
        return sorted({p.funder.acronym for p in self.proposal.partners if p.funder is not None and not p.own_funded})


@dataclass(frozen=True)
class ProposalPage(Window):
    """One page of the filtered list (the window over the whole of it, and its rows)."""

    filter: ProposalFilter | None = None
    rows: list[ProposalRow] = field(default_factory=list)


def _load(session: Session, stmt) -> list[ProposalRow]:
    proposals = session.scalars(
        stmt.options(selectinload(Proposal.partners), joinedload(Proposal.coordinator))
    ).unique().all()
    return [ProposalRow(p) for p in proposals]


def search_proposals(session: Session, actor, call: Call, f: ProposalFilter, per_page: int = PER_PAGE) -> ProposalPage:
    """One page of the filtered, sorted list: three statements (count, page with coordinators, partners)."""
    require(can(actor, "call.manage", call))
    where = _conditions(call, f)
    total = session.scalar(select(func.count(Proposal.id)).where(*where)) or 0
    window = Window(total, f.page, per_page)
    stmt = window.apply(select(Proposal).join(User, Proposal.coordinator_id == User.id).where(*where)
                        .order_by(*_order(f)))
    return ProposalPage(total, f.page, per_page, filter=f, rows=_load(session, stmt))


def filtered_proposals(session: Session, actor, call: Call, f: ProposalFilter) -> list[ProposalRow]:
    """Every proposal the filter selects, in its order (no pages): the exports and bulk actions. Two
    statements whatever their number: the proposals with their coordinators, then every partner of them
    at once (selectinload would send one statement per 500 proposals)."""
    require(can(actor, "call.manage", call))
    where = _conditions(call, f)
    proposals = session.scalars(
        select(Proposal).join(User, Proposal.coordinator_id == User.id).where(*where).order_by(*_order(f))
        # The coordinators' own roles are not needed here, and would load in chunks of 500 people.
        .options(joinedload(Proposal.coordinator).lazyload(User.grants))
    ).unique().all()
    selected = select(Proposal.id).join(User, Proposal.coordinator_id == User.id).where(*where)
    partners: dict[int, list[Partner]] = {p.id: [] for p in proposals}
    for partner in session.scalars(select(Partner).where(Partner.proposal_id.in_(selected))
                                   .order_by(Partner.proposal_id, Partner.position)):
        partners[partner.proposal_id].append(partner)
    for proposal in proposals:
        set_committed_value(proposal, "partners", partners[proposal.id])
    return [ProposalRow(p) for p in proposals]


EXPORT_HEADER = ["Reference", "Acronym", "Title", "State", "Coordinator", "Coordinator e-mail", "Partners",
                 "Countries", "Funders", "Partner organisations", "PIs", "Requested (EUR)", "Last change (UTC)"]


def export_rows(rows: list[ProposalRow]) -> list[list]:
    return [[
        r.proposal.reference, r.proposal.acronym, r.proposal.title,
        STATE_BY_NAME[r.proposal.state].label if r.proposal.state in STATE_BY_NAME else r.proposal.state,
        r.proposal.coordinator.name, r.proposal.coordinator.email, len(r.partners), ", ".join(r.countries),
        ", ".join(r.funders), "; ".join(p.organisation for p in r.partners),
        "; ".join(f"{p.pi_name} <{p.pi_email}>" for p in r.partners), r.requested,
        r.proposal.updated_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M"),
    ] for r in rows]


# ---------------------------------------------------------------------------------------------------------
# Bulk transitions: all or nothing


# Triggers the secretariat may fire on several proposals at once from the list. The eligibility step and
# the stage closing have their own pages (they do more than fire a transition).
BULK_TRIGGERS = {
    "invite": "Invite to the full-proposal stage",
    "not_invite": "Do not invite to the full-proposal stage",
}


def bulk_triggers(call: Call) -> dict[str, tuple[str, list[str], str]]:
    """{trigger: (label, source states, destination)} of the bulk actions this call's lifecycle has."""
    out = {}
    for t in lifecycle.transitions_for(Variant.of(call)):
        if t.trigger in BULK_TRIGGERS and t.trigger not in out:
            out[t.trigger] = (BULK_TRIGGERS[t.trigger], list(t.sources), t.dest)
    return out


@dataclass
class BulkLine:
    proposal: Proposal
    allowed: bool
    why: str = ""


@dataclass
class BulkPlan:
    trigger: str
    label: str
    dest: str
    lines: list[BulkLine] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.lines) and all(line.allowed for line in self.lines)

    @property
    def refused(self) -> list[BulkLine]:
        return [line for line in self.lines if not line.allowed]


def _ids(values) -> list[int]:
    out = []
    for v in values:
        try:
            out.append(int(v))
        except (TypeError, ValueError):
            continue
    return list(dict.fromkeys(out))


def bulk_plan(session: Session, actor, call: Call, trigger: str, proposal_ids) -> BulkPlan:
    """What firing `trigger` on these proposals would do, proposal by proposal, without doing it."""
    require(can(actor, "call.manage", call))
    options = bulk_triggers(call)
    if trigger not in options:
        raise InvalidInput("choose an action this call allows", "trigger")
    ids = _ids(proposal_ids)
    if not ids:
        raise InvalidInput("select at least one proposal", "proposal_ids")
    label, sources, dest = options[trigger]
    proposals = session.scalars(select(Proposal).where(Proposal.call_id == call.id, Proposal.id.in_(ids))
                                .order_by(Proposal.reference)).all()
    if len(proposals) != len(ids):
        raise NotFound("some selected proposals are not in this call")
    plan = BulkPlan(trigger, label, dest)
    variant = Variant.of(call)
    ctx = GuardContext(session=session, now=utcnow(), actor=actor)
    for p in proposals:
        rows = lifecycle.rows(variant, trigger, p.state)
        if not rows:
            label_ = STATE_BY_NAME[p.state].label if p.state in STATE_BY_NAME else p.state
            plan.lines.append(BulkLine(p, False, f"it is in state {label_}"))
        elif not (d := can(actor, f"proposal.{trigger}", p)):
            plan.lines.append(BulkLine(p, False, d.reason))
        elif all(failing_guards(row.guards, p, ctx) for row in rows):
            plan.lines.append(BulkLine(p, False, "; ".join(failing_guards(rows[0].guards, p, ctx))))
        else:
            plan.lines.append(BulkLine(p, True))
    return plan


class BulkRefused(DomainError):
    """One proposal of a bulk action was refused; nothing of the batch may be kept (the caller rolls back)."""


def bulk_transition(session: Session, actor, call: Call, trigger: str, items: list[tuple[int, int | None]],
                    reason: str | None = None) -> int:
    """Fire `trigger` on every (proposal id, version seen) or raise BulkRefused naming the first proposal
    that cannot move; the caller then rolls the whole batch back. Returns how many moved."""
    require(can(actor, "call.manage", call))
    if trigger not in bulk_triggers(call):
        raise InvalidInput("choose an action this call allows", "trigger")
    if not items:
        raise InvalidInput("select at least one proposal", "proposal_ids")
    ids = [pid for pid, _v in items]
    refs = dict(session.execute(select(Proposal.id, Proposal.reference)
                                .where(Proposal.call_id == call.id, Proposal.id.in_(ids))).all())
    if len(refs) != len(set(ids)):
        raise NotFound("some selected proposals are not in this call")
    moved = 0
    for pid, version in items:
        try:
            transition(session, actor, pid, trigger, reason=reason, expected_version=version)
        except DomainError as err:
            raise BulkRefused(f"{refs[pid]}: {err}. Nothing was changed.") from err
        moved += 1
    audit.record(session, actor, "proposal.bulk", object_type="call", object_id=call.id, call_id=call.id,
                 after={"trigger": trigger, "proposals": sorted(ids), "count": moved}, reason=reason)
    return moved


# ---------------------------------------------------------------------------------------------------------
# The audit log


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    object_type: str = ""
    object_id: int | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    page: int = 1

    @classmethod
    def from_args(cls, args) -> AuditFilter:
        def get(name):
            value = args.get(name, "")
            return value.strip() if isinstance(value, str) else ""

        def day(name):
            try:
                value = dt.date.fromisoformat(get(name)) if get(name) else None
            except ValueError:
                return None
            # a day the search can add one to and place in a time zone
            return value if value is None or dt.date(2, 1, 1) <= value <= dt.date(9998, 12, 31) else None

        page, oid = get("page"), get("object_id")
        return cls(actor=get("actor")[:200], action=get("action")[:80], object_type=get("object_type")[:40],
                   object_id=positive_int(oid), since=day("since"), until=day("until"),
                   page=page_number(page))

    def args(self, **changes) -> dict:
        values = {"actor": self.actor, "action": self.action, "object_type": self.object_type,
                  "object_id": self.object_id or "", "since": self.since.isoformat() if self.since else "",
                  "until": self.until.isoformat() if self.until else "", "page": self.page if self.page > 1 else ""}
        values.update(changes)
        return {k: v for k, v in values.items() if v not in ("", None)}


@dataclass(frozen=True)
class AuditPage(Window):
    filter: AuditFilter | None = None
    events: list[AuditEvent] = field(default_factory=list)


def _audit_conditions(call: Call | None, f: AuditFilter, zone: str) -> list:
    from zoneinfo import ZoneInfo

    where = []
    if call is not None:
        where.append(AuditEvent.call_id == call.id)
    if f.actor:
        where.append(func.lower(AuditEvent.actor_label).like(_like(f.actor), escape="\\"))
    if f.action:
        where.append(or_(AuditEvent.action == f.action, AuditEvent.action.like(f.action.rstrip(".") + ".%")))
    if f.object_type:
        where.append(AuditEvent.object_type == f.object_type)
    if f.object_id is not None:
        where.append(AuditEvent.object_id == f.object_id)
    tz = ZoneInfo(zone)
    if f.since:
        where.append(AuditEvent.at >= dt.datetime.combine(f.since, dt.time(), tz).astimezone(dt.UTC))
    if f.until:  # the whole day named
        where.append(AuditEvent.at < dt.datetime.combine(f.until + dt.timedelta(days=1), dt.time(), tz)
                     .astimezone(dt.UTC))
    return where


def audit_log(session: Session, actor, call: Call | None, f: AuditFilter, per_page: int = PER_PAGE) -> AuditPage:
    """Events of one call (its secretariat), or of everything (an administrator), newest first."""
    if call is None:
        require(can(actor, "admin"))
    else:
        require(can(actor, "audit.view", call))
    where = _audit_conditions(call, f, call.time_zone if call is not None else "UTC")
    # count(*), not count(id): PostgreSQL then counts from the index alone.
    total = session.scalar(select(func.count()).select_from(AuditEvent).where(*where)) or 0
    window = Window(total, f.page, per_page)
    events = session.scalars(window.apply(select(AuditEvent).where(*where).order_by(AuditEvent.seq.desc()))).all()
    return AuditPage(total, f.page, per_page, filter=f, events=list(events))


def audit_vocabulary(session: Session, call: Call | None) -> tuple[list[str], list[str]]:
    """The actions and object types that occur (for the filter's select boxes)."""
    where = [AuditEvent.call_id == call.id] if call is not None else []
    return (distinct_values(session, AuditEvent.action, *where),
            distinct_values(session, AuditEvent.object_type, *where))


def verify_audit(session: Session, actor, call: Call | None):
    """Walk the whole hash chain (workflow.audit.verify) for someone allowed to read the log."""
    if call is None:
        require(can(actor, "admin"))
    else:
        require(can(actor, "audit.view", call))
    return audit.verify(session)


def calls_of(session: Session, actor) -> list[Call]:
    """The calls this person runs: all for an administrator, else those they are secretariat of."""
    if actor is None:
        return []
    stmt = select(Call).order_by(Call.created_at.desc(), Call.id.desc())
    if not actor.is_admin:
        ids = [g.call_id for g in actor.grants if g.role == "secretariat"]
        if not ids:
            return []
        stmt = stmt.where(Call.id.in_(ids))
    return list(session.scalars(stmt))
