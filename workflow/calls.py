"""Loading and reading calls: a validated call definition becomes Call, CallStage and CallFunder rows.

Loading the same definition twice changes nothing; loading a changed one updates the call and audits it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow import audit
from workflow.callconfig import CallDef
from workflow.clock import from_local
from workflow.models import Call, CallFunder, CallStage, FundingOrganisation
from workflow.rules import FunderInfo


def definition_json(definition: CallDef) -> dict:
    return definition.model_dump(mode="json")


def definition_hash(definition: CallDef) -> str:
    text = json.dumps(definition_json(definition), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class LoadResult:
    call: Call
    outcome: str  # "created" | "updated" | "unchanged"


def load_call(session: Session, actor, definition: CallDef) -> LoadResult:
    digest = definition_hash(definition)
    call = session.scalar(select(Call).where(Call.code == definition.code))
    if call is not None and call.definition_sha256 == digest:
        return LoadResult(call, "unchanged")
    outcome = "updated" if call is not None else "created"
    if call is None:
        call = Call(code=definition.code)
        session.add(call)
    before = {"definition_sha256": call.definition_sha256} if outcome == "updated" else None
    call.title = definition.title
    call.time_zone = definition.time_zone
    call.definition = definition_json(definition)
    call.definition_sha256 = digest
    call.__dict__.pop("settings", None)  # drop the cached parsed settings

    existing_stages = {s.kind: s for s in call.stages}
    for position, stage_def in enumerate(definition.stages, start=1):
        stage = existing_stages.pop(stage_def.kind, None)
        if stage is None:
            stage = CallStage(kind=stage_def.kind)
            call.stages.append(stage)
        stage.position = position
        stage.opens_at = from_local(stage_def.opens, definition.time_zone)
        stage.deadline = from_local(stage_def.deadline, definition.time_zone)
    for leftover in existing_stages.values():
        call.stages.remove(leftover)

    existing_funders = {cf.funder.acronym: cf for cf in call.funders}
    for fdef in definition.funders:
        org = session.scalar(select(FundingOrganisation).where(FundingOrganisation.acronym == fdef.acronym))
        if org is None:
            org = FundingOrganisation(acronym=fdef.acronym, name=fdef.name, country=fdef.country, region=fdef.region)
            session.add(org)
        else:
            org.name, org.country, org.region = fdef.name, fdef.country, fdef.region
        cf = existing_funders.pop(fdef.acronym, None)
        if cf is None:
            cf = CallFunder(funder=org)
            call.funders.append(cf)
        cf.committed_budget = fdef.committed_budget
        cf.max_per_partner = fdef.max_per_partner
        cf.max_per_project = fdef.max_per_project
        cf.eligible_partner_types = list(fdef.eligible_partner_types)
        cf.national_contact = fdef.national_contact
        cf.national_application_required = fdef.national_application_required
    for leftover in existing_funders.values():
        call.funders.remove(leftover)
    session.flush()
    audit.record(session, actor, f"call.{outcome}", call, before=before,
                 after={"definition_sha256": digest, "title": call.title}, call_id=call.id)
    return LoadResult(call, outcome)


def funder_infos(call: Call) -> dict[int, FunderInfo]:
    return {
        cf.funder_id: FunderInfo(
            id=cf.funder_id,
            acronym=cf.funder.acronym,
            country=cf.funder.country,
            region=cf.funder.region,
            max_per_partner=cf.max_per_partner,
            max_per_project=cf.max_per_project,
            eligible_partner_types=tuple(cf.eligible_partner_types or ()),
            national_application_required=cf.national_application_required,
        )
        for cf in call.funders
    }


def get_call(session: Session, code: str) -> Call | None:
    return session.scalar(select(Call).where(Call.code == code))
