"""Small, explicit test data: a call definition with a handful of funders, users, proposals."""

from __future__ import annotations

import copy
import datetime as dt
import itertools

from workflow.accounts import create_user, grant_role
from workflow.callconfig import CallDef
from workflow.calls import load_call
from workflow.models import Call, FundingOrganisation
from workflow.proposals import PartnerData, add_partner, create_proposal, update_proposal

UTC = dt.UTC

BASE_DEFINITION = {
    "code": "test-call",
    "title": "Test Call 2030",
    "time_zone": "Europe/Paris",
    "stages": [
        {"kind": "pre", "opens": "2030-01-10T09:00:00", "deadline": "2030-03-05T17:00:00"},
        {"kind": "full", "opens": "2030-05-20T09:00:00", "deadline": "2030-06-20T17:00:00"},
    ],
    "rebuttal": {"days": 7, "max_chars": 6000},
    "consortium": {},
    "evaluation": {
        "criteria": [
            {"key": "excellence", "name": "Excellence"},
            {"key": "impact", "name": "Impact"},
            {"key": "implementation", "name": "Quality and efficiency of the implementation"},
        ],
        "total_threshold": 10,
        "tie_break": ["excellence", "impact"],
    },
    "funders": [
        {"acronym": "DFG-T", "name": "German Test Funder", "country": "DE", "committed_budget": 2_000_000,
         "max_per_partner": 300_000},
        {"acronym": "ANR-T", "name": "French Test Funder", "country": "FR", "committed_budget": 1_500_000},
        {"acronym": "ISCIII-T", "name": "Spanish Test Funder", "country": "ES", "committed_budget": 800_000,
         "max_per_project": 400_000},
        {"acronym": "MOH-T", "name": "Italian Test Funder", "country": "IT", "committed_budget": 600_000},
        {"acronym": "CIHR-T", "name": "Canadian Test Funder", "country": "CA", "committed_budget": 500_000},
    ],
}

# In the middle of the pre-proposal stage, after its deadline, in the full stage, after the full deadline.
PRE_OPEN = dt.datetime(2030, 2, 1, 12, 0, tzinfo=UTC)
PRE_CLOSED = dt.datetime(2030, 3, 10, 12, 0, tzinfo=UTC)
FULL_OPEN = dt.datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
FULL_CLOSED = dt.datetime(2030, 6, 25, 12, 0, tzinfo=UTC)

_counter = itertools.count(1)


def definition(*, two_stage: bool = True, rebuttal: bool = True, code: str = "test-call", **consortium) -> CallDef:
    data = copy.deepcopy(BASE_DEFINITION)
    data["code"] = code
    if not two_stage:
        data["stages"] = [{"kind": "full", "opens": "2030-01-10T09:00:00", "deadline": "2030-03-05T17:00:00"}]
    if not rebuttal:
        data.pop("rebuttal")
    data["consortium"].update(consortium)
    return CallDef.model_validate(data)


def make_call(session, **kwargs) -> Call:
    return load_call(session, None, definition(**kwargs)).call


def make_user(session, name: str = "Test User", email: str | None = None, **kwargs):
    n = next(_counter)
    email = email or f"user{n}@example.org"
    return create_user(session, None, email=email, name=name, password="correct horse battery",
                       confirmed=True, **kwargs)


def funder(session, acronym: str) -> FundingOrganisation:
    from sqlalchemy import select

    return session.scalar(select(FundingOrganisation).where(FundingOrganisation.acronym == acronym))


def secretariat(session, call: Call):
    user = make_user(session, "Sam Secretariat")
    grant_role(session, None, user, "secretariat", call.id)
    return user


def officer(session, call: Call, acronym: str):
    user = make_user(session, f"Officer {acronym}")
    grant_role(session, None, user, "officer", call.id, funder(session, acronym).id)
    return user


def valid_proposal(session, call: Call, coordinator=None, *, acronym: str = "PRECISE", pi_prefix: str | None = None):
    """A complete draft with four partners from three countries that breaks no rule of BASE_DEFINITION."""
    coordinator = coordinator or make_user(session, "Cora Coordinator")
    proposal = create_proposal(session, coordinator, call, acronym=acronym, title="Precision oncology for all")
    update_proposal(session, coordinator, proposal, abstract="We study things.", duration_months=36,
                    keywords="oncology; biomarkers")
    prefix = pi_prefix or f"p{next(_counter)}"
    for org, country, fund, amount in (
        ("Charité Berlin", "DE", "DFG-T", 250_000),
        ("Institut Curie", "FR", "ANR-T", 300_000),
        ("Hospital Clínic", "ES", "ISCIII-T", 200_000),
        ("Universität Heidelberg", "DE", "DFG-T", 150_000),
    ):
        add_partner(session, coordinator, proposal, PartnerData(
            organisation=org, country=country, pi_name=f"PI {org}", pi_email=f"{prefix}.{country.lower()}.{amount}@example.org",
            funder_id=funder(session, fund).id, budget={"personnel": amount},
        ))
    return proposal
