"""Small builders for the reviews tests: a call in review, reviewers with profiles, proposals in a state."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from sqlalchemy import func, select

import reviews  # noqa: F401  (importing the package plugs the reviewer facts and guards in)
from reviews import plugin
from reviews.models import Review, ReviewAssignment, ReviewerProfile
from tests import factories as f
from workflow.accounts import grant_role
from workflow.db import Base
from workflow.models import AuditEvent, OutboxMessage, Partner, Proposal

UTC = dt.UTC
REVIEW_TIME = dt.datetime(2030, 7, 1, 10, 0, tzinfo=UTC)
_n = itertools.count(1)

ALL_SCORES = {"excellence": 4.0, "impact": 3.5, "implementation": 4.0}
ALL_COMMENTS = {"excellence": "Original idea.", "impact": "Clear path to patients.", "implementation": "Feasible."}


@pytest.fixture
def review_tables(engine):
    """Creates the review tables in the test database if the migration does not have them yet (a no-op once
    it does; then this fixture can go), and makes sure the reviews plug-in is installed."""
    Base.metadata.create_all(engine, checkfirst=True)
    plugin.install()


def set_evaluation(call, **settings) -> None:
    """Give this Call object evaluation settings its definition does not have (or other values)."""
    s = call.settings
    call.__dict__["settings"] = s.model_copy(update={"evaluation": s.evaluation.model_copy(update=settings)})


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def events(session, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


def mails(session, kind: str) -> list[OutboxMessage]:
    return list(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)))


def make_reviewer(session, call, name: str = "Rita Reviewer", *, email: str | None = None,
                  keywords=(), organisation: str | None = "Karolinska Institutet", country: str | None = "SE",
                  declared: bool = True):
    n = next(_n)
    user = f.make_user(session, name, email=email or f"reviewer{n}@rev{n}.example.net",
                       organisation=organisation, country=country)
    grant_role(session, None, user, "reviewer", call.id)
    session.add(ReviewerProfile(
        call_id=call.id, user_id=user.id, keywords=list(keywords), organisation=organisation, country=country,
        email_domain=user.email.rpartition("@")[2],
        declaration_accepted_at=REVIEW_TIME if declared else None))
    session.flush()
    return user


DEFAULT_PARTNERS = (
    ("Charité Berlin", "DE", "DFG-T", 250_000),
    ("Institut Curie", "FR", "ANR-T", 300_000),
    ("Hospital Clínic", "ES", "ISCIII-T", 200_000),
)


def make_proposal(session, call, acronym: str = "PRECISE", *, state: str = "under_review", partners=DEFAULT_PARTNERS,
                  keywords: str = "oncology; biomarkers", abstract: str = "We study cancer biomarkers.",
                  title: str | None = None, coordinator=None) -> Proposal:
    n = next(_n)
    coordinator = coordinator or f.make_user(session, f"Coordinator {acronym}")
    proposal = Proposal(call_id=call.id, reference=f"TEST-{n:05d}", acronym=acronym, title=title or f"{acronym} title",
                        abstract=abstract, keywords=keywords, state=state, coordinator_id=coordinator.id)
    session.add(proposal)
    session.flush()
    for pos, (org, country, funder_acronym, amount, *email) in enumerate(partners, start=1):
        fund = f.funder(session, funder_acronym) if funder_acronym else None
        session.add(Partner(proposal_id=proposal.id, position=pos, organisation=org, country=country,
                            funder_id=fund.id if fund else None, own_funded=fund is None, pi_name=f"PI {org}",
                            pi_email=email[0] if email else f"pi{pos}@p{n}-{pos}.example.org",
                            requested_amount=amount, budget={"personnel": amount}))
    session.flush()
    session.refresh(proposal)
    return proposal


def assign(session, proposal, reviewer, *, stage: str = "full") -> ReviewAssignment:
    a = ReviewAssignment(call_id=proposal.call_id, proposal_id=proposal.id, reviewer_id=reviewer.id, stage=stage)
    session.add(a)
    session.flush()
    return a


def submitted_review(session, assignment, scores: dict, comments: dict | None = None,
                     recommendation: str = "recommended") -> Review:
    review = Review(assignment_id=assignment.id, proposal_id=assignment.proposal_id,
                    reviewer_id=assignment.reviewer_id, stage=assignment.stage, scores=dict(scores),
                    comments=dict(comments or ALL_COMMENTS), recommendation=recommendation, status="submitted",
                    submitted_at=REVIEW_TIME)
    session.add(review)
    session.flush()
    return review
