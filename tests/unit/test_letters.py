"""Decision letters in the domain (workflow.letters; DOMAIN §7, rule 23): which letter each proposal gets at
each stage, letters only after the approval, exactly one letter per coordinator and stage (a sent letter
never changes), sending through the outbox, the template's guard rails, and export jobs that a restart
supersedes cleanly."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from tests import factories as f
from workflow import audit
from workflow import funding_ops as fops
from workflow.errors import AccessDenied, ChangedMeanwhile, DomainError, InvalidInput
from workflow.models import OutboxMessage, Partner, Proposal, Submission

UTC = dt.UTC


@pytest.fixture(autouse=True)
def wl():
    """workflow.letters."""
    from workflow import letters

    return letters


def proposal(session, call, acronym: str, n: int, state: str, *, submitted=("pre",), funder: str = "DFG-T",
             amount: int = 100_000):
    coordinator = f.make_user(session, f"Coordinator {acronym}")
    funder_id = f.funder(session, funder).id
    p = Proposal(call_id=call.id, reference=f"TEST-{n:04d}", acronym=acronym, title=acronym,
                 coordinator_id=coordinator.id, state=state)
    p.partners.append(Partner(position=1, organisation=f"{acronym} lab", country="DE", funder_id=funder_id,
                              pi_name=f"PI {acronym}", pi_email=f"{acronym.lower()}@example.org",
                              requested_amount=amount))
    for stage in submitted:
        p.submissions.append(Submission(stage=stage, number=1, submitted_at=f.PRE_OPEN, submitted_by_id=coordinator.id,
                                        content={}, sha256="0" * 64))
    session.add(p)
    session.flush()
    session.refresh(p)
    return p


@pytest.fixture
def call(session):
    c = f.make_call(session)
    session.commit()
    return c


# ---------------------------------------------------------------------------------------------------------
# Which letter


@pytest.mark.parametrize("state, submitted, pre, full", [
    ("ineligible", ("pre",), "not_eligible", None),
    ("not_invited", ("pre",), "not_invited", None),
    ("invited", ("pre",), "invited", None),
    ("full_draft", ("pre",), "invited", None),
    ("full_ineligible", ("pre", "full"), "invited", "not_eligible"),
    ("under_review", ("pre", "full"), "invited", None),
    ("not_recommended", ("pre", "full"), "invited", "not_funded"),
    ("recommended", ("pre", "full"), "invited", None),
    ("selected", ("pre", "full"), "invited", None),  # waits for the funders' confirmations
    ("reserve", ("pre", "full"), "invited", "reserve"),
    ("not_funded", ("pre", "full"), "invited", "not_funded"),
    ("funded", ("pre", "full"), "invited", "funded"),
    ("not_submitted", ("pre",), "invited", None),  # invited, then never submitted the full proposal
    ("not_submitted", (), None, None),  # never submitted the pre-proposal
    ("pre_review", ("pre",), None, None),
    ("withdrawn", ("pre",), None, None),
])
def test_the_letter_each_state_gets_at_each_stage(session, call, state, submitted, pre, full, wl):
    p = proposal(session, call, "X", 1, state, submitted=submitted)
    assert (wl.letter_outcome(p, "pre"), wl.letter_outcome(p, "full")) == (pre, full)


def test_the_letters_page_overview_agrees_with_the_stage_letters_page_by_page(session, call, wl):
    """letters_overview (the letters page: outcomes from columns, a page of rows) against stage_letters (the
    export and sending: whole objects), at both stages, over 64 proposals in every state (two pages)."""
    import hashlib

    from workflow.letter_models import DecisionLetter

    cases = [("ineligible", ("pre",)), ("not_invited", ("pre",)), ("invited", ("pre",)), ("full_draft", ("pre",)),
             ("full_ineligible", ("pre", "full")), ("under_review", ("pre", "full")),
             ("not_recommended", ("pre", "full")), ("recommended", ("pre", "full")), ("selected", ("pre", "full")),
             ("reserve", ("pre", "full")), ("not_funded", ("pre", "full")), ("funded", ("pre", "full")),
             ("not_submitted", ("pre",)), ("not_submitted", ()), ("pre_review", ("pre",)), ("withdrawn", ("pre",))]
    sec = f.secretariat(session, call)
    made = [proposal(session, call, f"P{n}", n, cases[n % len(cases)][0], submitted=cases[n % len(cases)][1])
            for n in range(64)]
    pdf = b"%PDF-1.4 made up for the test"
    # Letters as exports and sendings left them: some for the outcome of today, some for another one.
    for p, stage, outcome, sent in [(made[2], "pre", "invited", True), (made[1], "pre", "invited", True),
                                    (made[18], "pre", "not_invited", False), (made[0], "pre", "not_eligible", False),
                                    (made[11], "full", "funded", True), (made[9], "full", "funded", True),
                                    (made[10], "full", "reserve", False), (made[27], "full", "funded", False)]:
        session.add(DecisionLetter(call_id=call.id, proposal_id=p.id, stage=stage, outcome=outcome,
                                   coordinator_id=p.coordinator_id, recipient="c@example.org", pdf=pdf,
                                   sha256=hashlib.sha256(pdf).hexdigest(), size_bytes=len(pdf),
                                   template_sha256="0" * 64, sent_at=f.PRE_OPEN if sent else None,
                                   sent_by_id=sec.id if sent else None))
    session.commit()
    for stage in ("pre", "full"):
        view = wl.stage_letters(session, call, stage)
        expected = [(p.reference, o, view.status(p, o), view.letters[p.id].sent_at if p.id in view.letters else None)
                    for p, o in view.items]
        first = wl.letters_overview(session, call, stage)
        pages = [first] + [wl.letters_overview(session, call, stage, n) for n in range(2, first.window.pages + 1)]
        got = [(r.proposal.reference, r.outcome, r.status, r.sent_at) for o in pages for r in o.rows]
        assert got == expected and len(first.rows) == min(50, len(expected))
        statuses = [status for _ref, _o, status, _at in expected]
        assert (first.total, first.counts) == (len(view.items), view.counts)
        assert first.status_counts == {s: statuses.count(s) for s in wl.LETTER_STATUSES}
        assert first.to_send == len(view.to_send)
        assert first.waiting == [(p.reference, p.acronym, why) for p, why in view.waiting]
        assert first.sent_outdated == [(p.reference, p.acronym, view.letters[p.id].outcome, o) for p, o in view.items
                                       if view.status(p, o) == "sent, outdated"]
        assert first.problem == view.problem
    # Every status occurs somewhere, so the comparison above covered each.
    seen = {r.status for stage in ("pre", "full") for page in (1, 2)
            for r in wl.letters_overview(session, call, stage, page).rows}
    assert seen == set(wl.LETTER_STATUSES)
    assert wl.letters_overview(session, call, "pre").window.pages == 2


def test_a_single_stage_call_has_letters_of_its_one_stage_only(session, wl):
    call = f.make_call(session, two_stage=False, code="single")
    p = proposal(session, call, "S", 1, "ineligible", submitted=("full",))
    assert (wl.letter_outcome(p, "pre"), wl.letter_outcome(p, "full")) == (None, wl.NOT_ELIGIBLE)
    assert wl.stage_name(call, "full") == "proposal"
    assert wl.stage_problem(session, call, "pre") == "this call has no pre stage"


# ---------------------------------------------------------------------------------------------------------
# Rule 23


def test_funding_stage_letters_only_after_the_approval_and_pre_stage_letters_once_all_are_decided(session, call, wl):
    sec = f.secretariat(session, call)
    rec = proposal(session, call, "REC", 1, "recommended", submitted=("pre", "full"))
    waiting = proposal(session, call, "WAIT", 2, "pre_review")
    session.commit()
    assert "(rule 23)" in wl.stage_problem(session, call, "full")
    assert "1 pre-proposal still waits for the eligibility or invitation decision" in wl.stage_problem(session, call, "pre")
    with pytest.raises(DomainError, match="rule 23"):
        wl.create_export_job(session, sec, call, "full")

    waiting.state = "not_invited"
    fops.approve_funding_list(session, sec, call, [rec.id], "CSC meeting")
    session.commit()
    assert wl.stage_problem(session, call, "pre") is None and wl.stage_problem(session, call, "full") is None
    view = wl.stage_letters(session, call, "full")
    assert [(p.acronym, o) for p, o in view.items] == []  # REC is selected: it waits for its funder
    assert [(p.acronym, why) for p, why in view.waiting] == [
        ("REC", "selected for funding; waiting for the funders' confirmations")]
    assert [(p.acronym, o) for p, o in wl.stage_letters(session, call, "pre").items] == [
        ("REC", wl.INVITED), ("WAIT", wl.NOT_INVITED)]


# ---------------------------------------------------------------------------------------------------------
# One letter per coordinator and stage


@pytest.fixture
def reserve_world(session, call, wl):
    """One proposal on the reserve list after the approval, and an export job of the full stage."""
    w = type("W", (), {})()
    w.sec = f.secretariat(session, call)
    big = proposal(session, call, "BIG", 1, "recommended", submitted=("pre", "full"), funder="ANR-T",
                   amount=1_500_000)  # all of ANR-T's budget
    w.p = proposal(session, call, "RES", 2, "recommended", submitted=("pre", "full"), funder="ANR-T")
    w.call = call
    fops.approve_funding_list(session, w.sec, call, [big.id, w.p.id], "CSC meeting")
    w.job = wl.create_export_job(session, w.sec, call, "full")
    session.commit()
    assert w.p.state == "reserve"
    return w


def test_a_letter_is_replaced_while_unsent_and_frozen_once_sent(session, reserve_world, wl):
    w = reserve_world
    first = wl.store_letter(session, w.job, w.p, wl.RESERVE, b"%PDF-first", "t" * 64)
    again = wl.store_letter(session, w.job, w.p, wl.RESERVE, b"%PDF-second", "t" * 64)
    session.commit()
    assert first.id == again.id and again.pdf == b"%PDF-second" and again.size_bytes == 11
    with pytest.raises(DomainError, match="changed while its letter was rendered"):
        wl.store_letter(session, w.job, w.p, wl.FUNDED, b"%PDF", "t" * 64)
    session.rollback()

    sent = wl.send_letters(session, w.sec, w.call, "full", link_for=lambda p: f"https://x.test/{p.id}")
    session.commit()
    assert [x.id for x in sent] == [first.id] and sent[0].sent_at is not None
    with pytest.raises(DomainError, match="is kept as sent"):
        wl.store_letter(session, w.job, w.p, wl.RESERVE, b"%PDF-third", "t" * 64)
    session.rollback()
    # The database holds exactly one letter per proposal and stage, whatever the code does.
    from workflow.letter_models import DecisionLetter

    session.add(DecisionLetter(call_id=w.call.id, proposal_id=w.p.id, stage="full", outcome=wl.RESERVE,
                               coordinator_id=w.p.coordinator_id, recipient="x@example.org", pdf=b"x", sha256="0" * 64,
                               size_bytes=1, template_sha256="0" * 64))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_sending_queues_one_message_per_coordinator_and_audits_it(session, reserve_world, wl):
    w = reserve_world
    wl.store_letter(session, w.job, w.p, wl.RESERVE, b"%PDF-1", "t" * 64)
    session.commit()
    with pytest.raises(AccessDenied, match="only the call secretariat"):
        wl.send_letters(session, w.p.coordinator, w.call, "full", link_for=str)
    wl.send_letters(session, w.sec, w.call, "full", link_for=lambda p: f"https://jointcall.test/my/proposals/{p.id}/decision")
    session.commit()
    [message] = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "decision_letter")).all()
    assert message.to_address == w.p.coordinator.email
    assert message.subject == "[Test Call 2030] Decision on your full proposal TEST-0002 RES"
    assert f"https://jointcall.test/my/proposals/{w.p.id}/decision" in message.body_text
    assert "on the reserve list" in message.body_text
    with pytest.raises(DomainError, match="no generated letter is waiting to be sent"):
        wl.send_letters(session, w.sec, w.call, "full", link_for=str)
    assert [x.stage for x in wl.released_letters(session, w.p)] == ["full"]
    assert audit.verify(session).ok


# ---------------------------------------------------------------------------------------------------------
# The template


def test_the_template_is_the_secretariats_bounded_and_versioned(session, call, wl):
    sec, officer = f.secretariat(session, call), f.officer(session, call, "ANR-T")
    with pytest.raises(AccessDenied, match="only the call secretariat"):
        wl.save_template(session, officer, call, "<p>Hello</p>")
    with pytest.raises(InvalidInput, match="at most 20,000") as err:
        wl.save_template(session, sec, call, "x" * 20_001)
    assert err.value.field == "source"
    with pytest.raises(InvalidInput, match="the template is empty"):
        wl.save_template(session, sec, call, " \r\n ")
    row = wl.save_template(session, sec, call, "<p>Hello</p>\r\n")
    session.commit()
    assert (row.source, row.version) == ("<p>Hello</p>\n", 1)
    wl.save_template(session, sec, call, "<p>Hi</p>", expected_version=1)
    session.commit()
    with pytest.raises(ChangedMeanwhile):
        wl.save_template(session, sec, call, "<p>Stale</p>", expected_version=1)


# ---------------------------------------------------------------------------------------------------------
# Export jobs


def test_a_restart_supersedes_the_run_it_replaces(session, reserve_world, frozen, wl):
    w = reserve_world
    job = w.job
    now = dt.datetime(2030, 10, 1, 12, 0, tzinfo=UTC)
    frozen(now)
    assert wl.job_started(session, job.id, 1, total=1)
    session.commit()
    session.expire_all()
    # While it runs and reports, it cannot be restarted, and a second export of the stage is the same job.
    with pytest.raises(DomainError, match="still running"):
        wl.restart_export_job(session, w.sec, session.get(type(job), job.id))
    assert wl.create_export_job(session, w.sec, w.call, "full").id == job.id
    # The server stops; two minutes later the job is stale, so it can be restarted.
    frozen(now + dt.timedelta(minutes=2))
    session.expire_all()
    assert wl.job_is_stale(session.get(type(job), job.id))
    restarted = wl.restart_export_job(session, w.sec, session.get(type(job), job.id))
    session.commit()
    assert (restarted.attempt, restarted.status, restarted.done) == (2, "queued", 0)
    # The old run, should it wake up, changes nothing.
    assert not wl.job_progress(session, job.id, 1, 1)
    assert not wl.job_finished(session, job.id, 1, file_key="x.zip", size_bytes=1, sha256="0" * 64, letters=[])
    assert not wl.job_failed(session, job.id, 1, "late")
    assert wl.job_started(session, job.id, 2, total=1) and wl.job_progress(session, job.id, 2, 1)
    assert wl.job_finished(session, job.id, 2, file_key="x.zip", size_bytes=1, sha256="0" * 64, letters=[])
    session.commit()
    session.expire_all()
    done = session.get(type(job), job.id)
    assert (done.status, done.done, done.file_key) == ("done", 1, "x.zip")
    with pytest.raises(DomainError, match="this export is complete"):
        wl.restart_export_job(session, w.sec, done)
    with pytest.raises(AccessDenied):
        wl.create_export_job(session, w.p.coordinator, w.call, "full")
    assert session.scalar(select(func.count()).select_from(type(job))) == 1
