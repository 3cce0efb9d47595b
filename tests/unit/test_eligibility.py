"""workflow.eligibility: the pure decision about replaceable ineligible partners, and the step's queries and
operations on the database (officer scope, budgets, bulk sign-off, reminders, closing the step)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace as Row

import pytest
from sqlalchemy import func, select

from tests import factories as f
from workflow import audit, eligibility, guards
from workflow.eligibility import (
    blocking_ineligible,
    bulk_sign_off,
    close_eligibility_step,
    closing_preview,
    eligibility_matrix,
    eligibility_outcome,
    findings_note,
    funder_budgets,
    ineligibility_reasons,
    my_funders,
    officer_partner_rows,
    remind_funders,
    replaceable_ineligible_partners,
)
from workflow.errors import AccessDenied, ChangedMeanwhile, DomainError, InvalidInput
from workflow.models import AuditEvent, EligibilityCheck, OutboxMessage, Proposal
from workflow.operations import close_stage, sign_off, transition
from workflow.rules import Violation

# ---------------------------------------------------------------------------------------------------------
# The pure decision


def formal(status="eligible"):
    return Row(partner_id=None, funder_id=None, status=status)


def partner(pid, funder, status="eligible"):
    return Row(partner_id=pid, funder_id=funder, status=status)


TWO_STAGE = f.definition()
STRICT = f.definition(allow_replacing_ineligible_partner=False)
SINGLE = f.definition(two_stage=False)


@pytest.mark.parametrize("checks, settings, stage, coordinator, replaceable", [
    pytest.param([formal(), partner(1, 10), partner(2, 20, "ineligible")], TWO_STAGE, "pre", None, [2],
                 id="one-partner-by-its-own-funder"),
    pytest.param([formal(), partner(1, 10, "ineligible"), partner(2, 20, "ineligible")], TWO_STAGE, "pre", None,
                 [1, 2], id="two-partners"),
    pytest.param([formal("ineligible"), partner(1, 10), partner(2, 20, "ineligible")], TWO_STAGE, "pre", None, [],
                 id="formal-ineligible"),
    pytest.param([formal("pending"), partner(1, 10), partner(2, 20, "ineligible")], TWO_STAGE, "pre", None, [],
                 id="formal-pending"),
    pytest.param([formal(), partner(1, 10, "pending"), partner(2, 20, "ineligible")], TWO_STAGE, "pre", None, [],
                 id="partner-pending"),
    pytest.param([formal(), partner(1, 10), partner(2, 20)], TWO_STAGE, "pre", None, [], id="all-eligible"),
    pytest.param([formal(), partner(2, 20, "ineligible")], TWO_STAGE, "full", None, [], id="full-stage"),
    pytest.param([formal(), partner(2, 20, "ineligible")], STRICT, "pre", None, [], id="setting-off"),
    pytest.param([formal(), partner(2, 20, "ineligible")], SINGLE, "full", None, [], id="single-stage"),
    pytest.param([formal(), partner(1, 10, "ineligible"), partner(2, 20)], TWO_STAGE, "pre", 1, [],
                 id="coordinator-cannot-be-replaced"),
    pytest.param([formal(), partner(1, 10), partner(2, 20, "ineligible")], TWO_STAGE, "pre", 1, [2],
                 id="another-partner-of-the-coordinators-proposal"),
    pytest.param([formal(), Row(partner_id=2, funder_id=20, status="ineligible", partner=Row(funder_id=30))],
                 TWO_STAGE, "pre", None, [], id="verdict-not-by-the-partners-own-funder"),
    pytest.param([formal(), partner(2, None, "ineligible")], TWO_STAGE, "pre", None, [], id="no-funder"),
    pytest.param([], TWO_STAGE, "pre", None, [], id="no-checks"),
])
def test_replaceable_ineligible_partners(checks, settings, stage, coordinator, replaceable):
    got = replaceable_ineligible_partners(checks, settings, stage, coordinator)
    assert [c.partner_id for c in got] == replaceable
    blocking = blocking_ineligible(checks, settings, stage, coordinator)
    ineligible = [c for c in checks if c.status == "ineligible"]
    assert blocking == ([] if replaceable else ineligible)


@pytest.mark.parametrize("checks, settings, kind, extra", [
    ([], TWO_STAGE, "unchecked", {}),
    ([formal("pending"), partner(1, 10, "pending"), partner(2, 20, "ineligible")], TWO_STAGE, "pending",
     {"pending": 2}),
    ([formal(), partner(1, 10)], TWO_STAGE, "eligible", {}),
    ([formal(), partner(1, 10), partner(2, 20, "ineligible")], TWO_STAGE, "conditional", {"replaceable": 1}),
    ([formal(), partner(1, 10), partner(2, 20, "ineligible")], STRICT, "ineligible", {"blocking": 1}),
    ([formal("ineligible"), partner(1, 10), partner(2, 20, "ineligible")], TWO_STAGE, "ineligible", {"blocking": 2}),
])
def test_eligibility_outcome(checks, settings, kind, extra):
    outcome = eligibility_outcome(checks, settings, "pre")
    assert outcome.kind == kind
    if "pending" in extra:
        assert outcome.pending == extra["pending"] and outcome.label == "waits: 2 checks pending"
    if "replaceable" in extra:
        assert len(outcome.replaceable) == 1
        assert outcome.label == "goes on; 1 partner to replace or remove at the full stage"
    if "blocking" in extra:
        assert len(outcome.blocking) == extra["blocking"]


def test_findings_note():
    assert findings_note([]) == ""
    assert findings_note([Violation("a", "too many partners"), Violation("b", "no abstract")]) == \
        "The call rules are not met: too many partners; no abstract."


# ---------------------------------------------------------------------------------------------------------
# On the database


class World:
    def __init__(self, session, frozen, *, close=True, acronyms=("ALPHA", "BETA"), **definition):
        frozen(f.PRE_OPEN)
        self.session = session
        self.call = call = f.make_call(session, **definition)
        self.sec = f.secretariat(session, call)
        self.dfg = f.officer(session, call, "DFG-T")
        self.anr = f.officer(session, call, "ANR-T")
        self.proposals = [f.valid_proposal(session, call, acronym=a) for a in acronyms]
        self.draft = f.valid_proposal(session, call, acronym="DRAFTY")
        for p in self.proposals:
            transition(session, p.coordinator, p.id, "submit")
        session.commit()
        frozen(f.PRE_CLOSED)
        if close:
            close_stage(session, self.sec, call, "pre")
            session.commit()

    def checks(self, acronym=None, proposal=None):
        q = select(EligibilityCheck).order_by(EligibilityCheck.id)
        if acronym == "formal":
            q = q.where(EligibilityCheck.partner_id.is_(None))
        elif acronym:
            q = q.where(EligibilityCheck.funder_id == f.funder(self.session, acronym).id)
        if proposal is not None:
            q = q.where(EligibilityCheck.proposal_id == proposal.id)
        self.session.expire_all()
        return list(self.session.scalars(q))

    def decide(self, proposal, verdicts):
        """{"formal" | partner position: (status, reason)}."""
        for c in self.checks(proposal=proposal):
            key = "formal" if c.partner_id is None else c.partner.position
            if key in verdicts:
                status, reason = verdicts[key]
                c.status, c.reason = status, reason
        self.session.commit()


ALL = {"formal": ("eligible", None), 1: ("eligible", None), 2: ("eligible", None), 3: ("eligible", None),
       4: ("eligible", None)}


def events(session, action):
    return session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)).all()


def test_closing_preview_counts_and_says_what_will_happen(session, frozen):
    w = World(session, frozen, close=False)
    preview = closing_preview(session, w.sec, w.call, "pre")
    assert (preview.submitted, preview.drafts, preview.in_check) == (2, 1, 0)
    assert preview.deadline_passed and not preview.closed
    assert preview.consequence == ("2 submitted proposals go to the eligibility check; "
                                   "1 draft will be marked not submitted.")
    frozen(f.PRE_OPEN)
    assert not closing_preview(session, w.sec, w.call, "pre").deadline_passed
    with pytest.raises(AccessDenied, match="only the call secretariat"):
        closing_preview(session, w.dfg, w.call, "pre")


def test_officer_rows_hold_only_their_funders_partners(session, frozen):
    w = World(session, frozen)
    rows = officer_partner_rows(session, w.dfg, w.call, "pre")
    assert len(rows) == 4 and {r.funder.acronym for r in rows} == {"DFG-T"}
    assert {r.partner.organisation for r in rows} == {"Charité Berlin", "Universität Heidelberg"}
    assert all(r.open and r.status_label == "Pending" for r in rows)
    # an officer of two funders sees both, and may narrow to one
    from workflow.accounts import grant_role

    grant_role(session, None, w.dfg, "officer", w.call.id, f.funder(session, "ANR-T").id)
    session.commit()
    assert {r.funder.acronym for r in officer_partner_rows(session, w.dfg, w.call, "pre")} == {"ANR-T", "DFG-T"}
    only = officer_partner_rows(session, w.dfg, w.call, "pre", funder_id=f.funder(session, "ANR-T").id)
    assert {r.partner.organisation for r in only} == {"Institut Curie"}
    with pytest.raises(AccessDenied, match="not an officer of this funder"):
        officer_partner_rows(session, w.dfg, w.call, "pre", funder_id=f.funder(session, "MOH-T").id)
    with pytest.raises(InvalidInput):
        officer_partner_rows(session, w.dfg, w.call, "pre", status="maybe")
    with pytest.raises(AccessDenied, match="only funder officers"):
        officer_partner_rows(session, w.sec, w.call, "pre")


def test_budget_totals(session, frozen):
    w = World(session, frozen)
    first = w.checks("DFG-T")[0]
    sign_off(session, w.dfg, first.id, "ineligible", "no")
    session.commit()
    [b] = funder_budgets(session, w.call, "pre", my_funders(session, w.dfg, w.call))
    assert (b.committed, b.requested, b.requested_not_ineligible) == (2_000_000, 800_000, 550_000)
    assert b.counts == {"pending": 3, "eligible": 0, "ineligible": 1} and b.partners == 4
    assert b.ratio == pytest.approx(0.4)


def test_bulk_sign_off_all_or_nothing(session, frozen):
    w = World(session, frozen)
    own = w.checks("DFG-T")
    foreign = w.checks("ANR-T")[0]
    with pytest.raises(AccessDenied, match="not funded by your organisation"):
        bulk_sign_off(session, w.dfg, [(own[0].id, None), (foreign.id, None)], "eligible")
    session.rollback()
    assert {c.status for c in w.checks()} == {"pending"}

    stale = [(c.id, c.version) for c in own]
    sign_off(session, w.dfg, own[2].id, "eligible")
    session.commit()
    with pytest.raises(ChangedMeanwhile, match=r"the verdict on TEST-CALL-0002 BETA — Charité Berlin was changed"):
        bulk_sign_off(session, w.dfg, stale, "ineligible", "national rules")
    session.rollback()
    assert [c.status for c in w.checks("DFG-T")] == ["pending", "pending", "eligible", "pending"]

    with pytest.raises(InvalidInput) as no_reason:
        bulk_sign_off(session, w.dfg, [(own[0].id, None)], "ineligible", " ")
    assert no_reason.value.field == "reason"
    with pytest.raises(InvalidInput) as nothing:
        bulk_sign_off(session, w.dfg, [], "eligible")
    assert nothing.value.field == "checks"

    done = bulk_sign_off(session, w.dfg, [(own[0].id, 1), (own[0].id, 1), (own[1].id, None)], "ineligible", "no")
    session.commit()
    assert [c.id for c in done] == [own[0].id, own[1].id]
    assert len(events(session, "eligibility.signed_off")) == 1 + 2
    assert audit.verify(session).ok


def test_bulk_sign_off_names_the_partner_whose_step_is_closed(session, frozen):
    w = World(session, frozen)
    alpha = w.proposals[0]
    w.decide(alpha, ALL)
    close_eligibility_step(session, w.sec, w.call, "pre")
    session.commit()
    own = w.checks("DFG-T")
    with pytest.raises(DomainError, match="TEST-CALL-0001 ALPHA — Charité Berlin: the eligibility step of this "
                                          "proposal is closed"):
        bulk_sign_off(session, w.dfg, [(own[2].id, None), (own[0].id, None)], "ineligible", "late")
    session.rollback()
    assert [c.status for c in w.checks("DFG-T")] == ["eligible", "eligible", "pending", "pending"]


def test_reminders_one_per_officer_per_day_audited(session, frozen):
    w = World(session, frozen)
    second = f.officer(session, w.call, "DFG-T")
    session.commit()
    result = remind_funders(session, w.sec, w.call, "pre", link="http://x.test/funder")
    session.commit()
    assert result.queued == 3 and result.already_today == 0
    assert result.funders_without_officer == ["ISCIII-T"]
    assert "no officer account for ISCIII-T" in result.summary
    mails = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "eligibility_reminder")).all()
    assert sorted(m.to_address for m in mails) == sorted([w.dfg.email, second.email, w.anr.email])
    dfg_mail = next(m for m in mails if m.to_address == w.dfg.email)
    assert "4 partners" in dfg_mail.subject and "http://x.test/funder" in dfg_mail.body_text
    assert dfg_mail.dedup_key == f"eligibility-reminder:{w.call.id}:pre:{w.dfg.id}:2030-03-10"
    [event] = events(session, "eligibility.reminded")
    assert event.after["pending_checks"] == 8 and event.actor_id == w.sec.id

    again = remind_funders(session, w.sec, w.call, "pre")
    session.commit()
    assert (again.queued, again.already_today) == (0, 3)
    assert len(events(session, "eligibility.reminded")) == 1

    # once ANR-T is done and BETA withdrawn, only DFG-T's ALPHA partners remain: the next day, two mails
    for c in w.checks("ANR-T"):
        sign_off(session, w.anr, c.id, "eligible")
    transition(session, w.proposals[1].coordinator, w.proposals[1].id, "withdraw")
    session.commit()
    frozen(f.PRE_CLOSED + dt.timedelta(days=1))
    third = remind_funders(session, w.sec, w.call, "pre")
    session.commit()
    assert third.queued == 2
    newest = session.scalars(select(OutboxMessage).where(OutboxMessage.to_address == w.dfg.email)
                             .order_by(OutboxMessage.id.desc())).first()
    assert "2 partners" in newest.subject and "BETA" not in newest.body_text

    with pytest.raises(AccessDenied):
        remind_funders(session, w.dfg, w.call, "pre")


def test_nothing_pending_reminds_nobody(session, frozen):
    w = World(session, frozen)
    for p in w.proposals:
        w.decide(p, ALL)
    result = remind_funders(session, w.sec, w.call, "pre")
    assert result.queued == 0 and result.summary == "no funder has pending checks; nobody was reminded."
    assert events(session, "eligibility.reminded") == []


def test_close_the_step(session, frozen):
    w = World(session, frozen, acronyms=("ALPHA", "BETA", "GAMMA"), allow_replacing_ineligible_partner=False)
    alpha, beta, third = w.proposals
    w.decide(alpha, ALL)
    w.decide(beta, {**ALL, 2: ("ineligible", "not a research body")})

    with pytest.raises(AccessDenied):
        close_eligibility_step(session, w.dfg, w.call, "pre")
    session.rollback()
    result = close_eligibility_step(session, w.sec, w.call, "pre")
    session.commit()
    assert [e["acronym"] for e in result.summary["eligible"]] == ["ALPHA"]
    assert [e["acronym"] for e in result.summary["ineligible"]] == ["BETA"]
    assert result.summary["ineligible"][0]["reasons"] == [
        {"check": "partner", "partner": "Institut Curie", "funder": "ANR-T", "reason": "not a research body"}]
    assert [(e["acronym"], e["pending"]) for e in result.summary["pending"]] == [("GAMMA", 5)]
    session.expire_all()
    assert [session.get(Proposal, p.id).state for p in (alpha, beta, third)] == [
        "pre_review", "ineligible", "eligibility_check"]
    [event] = events(session, "eligibility.step_closed")
    assert event.id == result.event_id and event.after == result.summary
    assert [r.reason for r in ineligibility_reasons(session, beta, "pre")] == ["not a research body"]
    assert ineligibility_reasons(session, beta, "pre")[0].who == "ANR-T"
    assert audit.verify(session).ok

    m = eligibility_matrix(session, w.sec, w.call, "pre")
    assert [r.proposal.acronym for r in m.open_rows] == ["GAMMA"]
    assert m.pending_formal == 1 and m.pending_for(f.funder(session, "DFG-T").id) == 2
    assert [cf.funder.acronym for cf in m.funders] == ["ANR-T", "DFG-T", "ISCIII-T"]


def test_the_matrix_counters_forecast_what_closing_the_step_does_on_every_page(session, frozen):
    """The forecast above the matrix covers every proposal of the stage, not only the page shown, and
    agrees with each row's own outcome: a partner ineligible for its own funder can be replaced, the
    coordinator's partner cannot."""
    w = World(session, frozen, acronyms=("ALPHA", "BETA", "GAMMA", "DELTA"))
    alpha, beta, gamma, _delta = w.proposals
    w.decide(alpha, {**ALL, 4: ("ineligible", "not eligible for DFG-T")})
    w.decide(beta, {**ALL, 1: ("ineligible", "the coordinator's institution is not eligible")})
    w.decide(gamma, ALL)
    whole = eligibility_matrix(session, w.sec, w.call, "pre")
    assert {r.proposal.acronym: r.outcome.kind for r in whole.rows} == {
        "ALPHA": "conditional", "BETA": "ineligible", "GAMMA": "eligible", "DELTA": "pending"}
    assert whole.summary.forecast == {"conditional": 1, "ineligible": 1, "eligible": 1, "pending": 1}
    page = eligibility_matrix(session, w.sec, w.call, "pre", page=1)
    assert page.summary == whole.summary and page.window.total == 4
    assert (page.summary.open, page.pending_formal, page.pending_for(f.funder(session, "DFG-T").id)) == (4, 1, 2)


def test_a_replaceable_partner_is_held_while_the_lifecycle_guard_refuses_it(session, frozen, monkeypatch):
    """Until workflow/guards.py lets declare_eligible through for replaceable partners, such a proposal stays
    in the eligibility check with the guard's reason instead of being declared ineligible."""
    monkeypatch.setitem(guards._GUARDS, "checks_all_eligible", lambda p, ctx: "a check found a partner ineligible")
    w = World(session, frozen)
    alpha = w.proposals[0]
    w.decide(alpha, {**ALL, 4: ("ineligible", "not eligible for DFG-T")})
    result = close_eligibility_step(session, w.sec, w.call, "pre")
    session.commit()
    assert [e["acronym"] for e in result.summary["held"]] == ["ALPHA"]
    assert "a check found a partner ineligible" in result.summary["held"][0]["why"]
    session.expire_all()
    assert session.get(Proposal, alpha.id).state == "eligibility_check"
    assert events(session, "proposal.declare_ineligible") == []


def test_proposed_guard_change_lets_a_replaceable_partner_through(session, frozen, monkeypatch):
    """The one-line change proposed for guards.checks_all_eligible / checks_found_ineligible."""
    def all_eligible(p, ctx):
        checks = guards._checks(p, ctx)
        if any(c.status == "pending" for c in checks) or not checks:
            return "pending"
        return "ineligible" if eligibility.blocking_ineligible_checks(p, checks) else None

    def found_ineligible(p, ctx):
        checks = guards._checks(p, ctx)
        if any(c.status == "pending" for c in checks):
            return "pending"
        return None if eligibility.blocking_ineligible_checks(p, checks) else "none blocking"

    monkeypatch.setitem(guards._GUARDS, "checks_all_eligible", all_eligible)
    monkeypatch.setitem(guards._GUARDS, "checks_found_ineligible", found_ineligible)
    w = World(session, frozen)
    alpha, beta = w.proposals
    w.decide(alpha, {**ALL, 4: ("ineligible", "not eligible for DFG-T")})
    w.decide(beta, {**ALL, 1: ("ineligible", "the coordinator's institution is not eligible")})
    result = close_eligibility_step(session, w.sec, w.call, "pre")
    session.commit()
    assert [e["acronym"] for e in result.summary["conditional"]] == ["ALPHA"]
    assert result.summary["conditional"][0]["replace"][0]["partner"] == "Universität Heidelberg"
    assert [e["acronym"] for e in result.summary["ineligible"]] == ["BETA"]  # the coordinator cannot be replaced
    session.expire_all()
    assert session.get(Proposal, alpha.id).state == "pre_review"
    assert session.get(Proposal, beta.id).state == "ineligible"
    [declared] = events(session, "proposal.declare_eligible")
    assert "Universität Heidelberg (DFG-T): not eligible for DFG-T" in declared.reason
    to_alpha = session.scalars(select(OutboxMessage).where(OutboxMessage.to_address == alpha.coordinator.email,
                                                           OutboxMessage.kind == "eligible_replace_partner")).all()
    assert len(to_alpha) == 1 and "replace or remove that partner" in to_alpha[0].body_text


def test_single_stage_call_goes_to_review(session, frozen):
    frozen(f.PRE_OPEN)
    call = f.make_call(session, two_stage=False)
    sec = f.secretariat(session, call)
    p = f.valid_proposal(session, call)
    transition(session, p.coordinator, p.id, "submit")
    session.commit()
    frozen(f.PRE_CLOSED)
    close_stage(session, sec, call, "full")
    for c in session.scalars(select(EligibilityCheck)):
        c.status = "eligible"
    result = close_eligibility_step(session, sec, call, "full")
    session.commit()
    assert [e["state"] for e in result.summary["eligible"]] == ["under_review"]
    assert session.scalar(select(func.count(EligibilityCheck.id)).where(EligibilityCheck.stage == "full")) == 5


def test_reminders_use_the_wording_the_secretariat_saved(session, frozen):
    from workflow import mail_templates

    w = World(session, frozen)
    mail_templates.save(session, w.sec, w.call, "reminder",
                        "[{{ call.title }}] {{ funder }}: {{ pending }} sign-offs due",
                        "Hello {{ recipient.name }}, {{ pending }} partners of {{ funder }} wait: {{ link }}\n")
    session.commit()
    remind_funders(session, w.sec, w.call, "pre", link="http://x.test/funder")
    session.commit()
    mail = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "eligibility_reminder",
                                                       OutboxMessage.to_address == w.dfg.email)).one()
    assert mail.subject == f"[{w.call.title}] DFG-T: 4 sign-offs due"
    assert mail.body_text == f"Hello {w.dfg.name}, 4 partners of DFG-T wait: http://x.test/funder\n"


def test_without_a_saved_wording_reminders_are_the_default_wording_of_the_reminder_kind(session, frozen):
    """The default the console's mail page shows (workflow.mail_templates.KINDS) is the text that is sent."""
    from workflow import mail_templates

    w = World(session, frozen)
    for c in w.checks("ANR-T")[1:]:
        sign_off(session, w.anr, c.id, "eligible")  # ANR-T has one partner left: the singular
    session.commit()
    remind_funders(session, w.sec, w.call, "pre", link="http://x.test/funder")
    session.commit()
    mail = session.scalars(select(OutboxMessage).where(OutboxMessage.to_address == w.anr.email,
                                                       OutboxMessage.kind == "eligibility_reminder")).one()
    kind = mail_templates.KINDS["reminder"]
    line = "- TEST-CALL-0001 ALPHA: Institut Curie (PI PI Institut Curie), requesting €300,000 from ANR-T"
    assert (mail.subject, mail.body_text) == mail_templates.render_text(kind.subject, kind.body, {
        "call": {"title": w.call.title}, "recipient": {"name": w.anr.name}, "stage": "pre-proposal",
        "funder": "ANR-T", "pending": 1, "partners": line, "link": "http://x.test/funder"})
    assert mail.subject == "[Test Call 2030] Reminder: 1 partner waiting for your eligibility sign-off"
    assert mail.body_text == (
        f"Dear {w.anr.name},\n\nthe eligibility check of the pre-proposal stage of Test Call 2030 is waiting for "
        f"your sign-off on 1 partner requesting funding from ANR-T:\n\n{line}\n\nPlease sign them off as eligible "
        "or not eligible under your national or regional rules:\nhttp://x.test/funder\n")

    # once the secretariat saved its own wording, the next day's reminder uses it
    mail_templates.save(session, w.sec, w.call, "reminder", "{{ pending }} due ({{ stage }})",
                        "{{ partners }}\n{{ link }}\n")
    session.commit()
    frozen(f.PRE_CLOSED + dt.timedelta(days=1))
    remind_funders(session, w.sec, w.call, "pre", link="http://x.test/funder")
    session.commit()
    newest = session.scalars(select(OutboxMessage).where(OutboxMessage.to_address == w.anr.email)
                             .order_by(OutboxMessage.id.desc())).first()
    assert (newest.subject, newest.body_text) == ("1 due (pre-proposal)", f"{line}\nhttp://x.test/funder\n")
