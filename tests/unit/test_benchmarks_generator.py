"""The benchmark generator (benchmarks/generate.py) at a small size: it writes what it was asked for, the
same data for the same seed, and data the application itself would accept (the call's consortium rules,
lifecycle states, submission hashes, eligibility verdicts, half-point reviews from non-conflicted
reviewers, budgets, an intact audit chain)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, inspect, select, text

import reviews  # noqa: F401  (the review tables and the reviewer facts)
from benchmarks.generate import GeneratorOutdated, check_rows, generate
from reviews.models import Conflict, Review, ReviewAssignment
from workflow.audit import verify
from workflow.calls import funder_infos
from workflow.db import make_engine, make_session_factory
from workflow.funding_models import FundingLine
from workflow.lifecycle import STATES
from workflow.models import Call, CallFunder, EligibilityCheck, Proposal, RoleGrant, Submission
from workflow.operations import content_hash
from workflow.rules import check_consortium, check_texts

ASKED = {"proposals": 40, "partners": 230, "reviewers": 15, "reviews": 130}


def _dump(url: str) -> str:
    """A digest of every row of every table, in primary-key order."""
    engine = make_engine(url)
    digest = hashlib.sha256()
    with engine.connect() as conn:
        for table in sorted(inspect(conn).get_table_names()):
            rows = conn.execute(text(f"SELECT * FROM {table} ORDER BY 1")).all()
            digest.update(json.dumps([table, [list(r) for r in rows]], default=str).encode())
    engine.dispose()
    return digest.hexdigest()


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    summary = generate(f"sqlite:///{folder / 'a.db'}", seed=7, **ASKED)
    engine = make_engine(summary.url)
    session = make_session_factory(engine)()
    yield summary, session, folder
    session.close()
    engine.dispose()


def test_counts_are_as_asked(generated):
    summary, session, _ = generated
    call = session.get(Call, summary.call_id)
    assert session.scalar(select(func.count(Proposal.id))) == 40
    assert sum(len(p.partners) for p in session.scalars(select(Proposal))) == 230
    assert session.scalar(select(func.count(CallFunder.id)).where(CallFunder.call_id == call.id)) == 35
    assert session.scalar(select(func.count(RoleGrant.id)).where(RoleGrant.role == "reviewer")) == 15
    assert session.scalar(select(func.count(Review.id))) == 130
    assert {k: summary.counts[k] for k in ASKED} == ASKED and summary.counts["funders"] == 35


def test_same_seed_same_data_other_seed_other_data(generated):
    summary, _, folder = generated
    again = generate(f"sqlite:///{folder / 'b.db'}", seed=7, **ASKED)
    other = generate(f"sqlite:///{folder / 'c.db'}", seed=8, **ASKED)
    assert _dump(again.url) == _dump(summary.url)
    assert _dump(other.url) != _dump(summary.url)


def test_every_consortium_follows_the_call_rules(generated):
    summary, session, _ = generated
    call = session.get(Call, summary.call_id)
    infos = funder_infos(call)
    pis = Counter()
    for proposal in session.scalars(select(Proposal)):
        problems = [v for v in check_consortium(proposal.partners, call.settings, infos)
                    + check_texts(proposal, call.settings, "pre") if v.blocking]
        assert problems == [], (proposal.reference, [v.message for v in problems])
        pis.update(p.pi_email.lower() for p in proposal.partners)
    assert max(pis.values()) == 1  # each PI in one proposal (rule 11)
    sizes = Counter(len(p.partners) for p in session.scalars(select(Proposal)))
    assert set(sizes) <= {4, 5, 6, 7} and len(sizes) > 1


def test_states_submissions_checks_reviews_and_budgets_are_consistent(generated):
    summary, session, _ = generated
    call = session.get(Call, summary.call_id)
    states = Counter(session.scalars(select(Proposal.state)))
    assert set(states) <= {s.name for s in STATES}
    assert states["ineligible"] == 4 and states["not_invited"] == 32  # 10 % found ineligible, 10 % invited

    for sub in session.scalars(select(Submission)):
        assert sub.sha256 == content_hash(sub.content)
    checks = defaultdict(list)
    for c in session.scalars(select(EligibilityCheck).where(EligibilityCheck.stage == "pre")):
        checks[c.proposal_id].append(c)
    for proposal in session.scalars(select(Proposal)):
        mine = checks[proposal.id]
        funded = [p for p in proposal.partners if p.requests_funding]
        assert len(mine) == 1 + len(funded)  # the secretariat's formal check and one per funded partner
        if proposal.state == "ineligible":
            assert any(c.status == "ineligible" and c.reason for c in mine)
        else:
            assert all(c.status == "eligible" for c in mine)

    criteria = [c.key for c in call.settings.evaluation.criteria]
    conflicted = {(c.reviewer_id, c.proposal_id) for c in session.scalars(select(Conflict))}
    per_stage = Counter()
    for review in session.scalars(select(Review)):
        assert set(review.scores) == set(criteria) and all(review.comments[k] for k in criteria)
        assert all(v * 2 == int(v * 2) and 0 <= v <= 5 for v in review.scores.values())
        assert (review.reviewer_id, review.proposal_id) not in conflicted
        per_stage[(review.proposal_id, review.stage)] += 1
    assert min(per_stage.values()) >= 3
    assert session.scalar(select(func.count(ReviewAssignment.id))) == 130

    budgets = {cf.funder_id: cf.committed_budget for cf in call.funders}
    spent = Counter()
    for line in session.scalars(select(FundingLine)):
        spent[line.funder_id] += line.amount - line.from_gap_pot
    assert all(spent[f] <= budgets[f] for f in spent)  # rule 22
    assert verify(session).ok


def test_the_assignment_snapshot_has_every_proposal_under_review_and_nobody_assigned(tmp_path):
    summary = generate(f"sqlite:///{tmp_path / 'assign.db'}", 20, reviewers=8, snapshot="assignment")
    engine = make_engine(summary.url)
    with make_session_factory(engine)() as session:
        assert set(session.scalars(select(Proposal.state))) == {"pre_review"}
        assert session.scalar(select(func.count(ReviewAssignment.id))) == 0
        assert session.scalar(select(func.count(Conflict.id))) > 0
        assert verify(session).ok
    engine.dispose()


def test_rows_that_no_longer_fit_the_models_are_refused():
    table = Table("thing", MetaData(), Column("id", Integer, primary_key=True),
                  Column("name", String, nullable=False))
    with pytest.raises(GeneratorOutdated, match="required column name"):
        check_rows(table, [{"id": 1}])
    with pytest.raises(GeneratorOutdated, match="no column colour"):
        check_rows(table, [{"id": 1, "name": "a", "colour": "red"}])
    check_rows(table, [{"id": 1, "name": "a"}])
