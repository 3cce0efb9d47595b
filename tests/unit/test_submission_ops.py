"""Submitting, reopening, withdrawing, the full proposal with its consortium-change rule, the rebuttal and
the outcome in plain words (workflow.submission; DOMAIN.md rules 1, 3, 12, 13, 18, 24)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from reviews.models import Review, ReviewAssignment
from reviews.release import open_rebuttal, released_reviews
from tests import factories as f
from workflow import audit
from workflow import submission as ops
from workflow.errors import AccessDenied, ChangedMeanwhile, DomainError, GuardFailed, InvalidInput
from workflow.models import (
    AuditEvent,
    ChangeApproval,
    EligibilityCheck,
    OutboxMessage,
    Partner,
    ProposalMember,
    Rebuttal,
    Submission,
    User,
)
from workflow.proposals import PartnerData, add_partner, remove_partner, update_partner

UTC = dt.UTC
SECOND = dt.timedelta(seconds=1)


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def mails(session, kind: str) -> list[OutboxMessage]:
    return list(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)))


@pytest.fixture
def world(session, frozen):
    frozen(f.PRE_OPEN)

    class World:
        pass

    w = World()
    w.session = session
    w.call = f.make_call(session)
    w.sec = f.secretariat(session, w.call)
    w.proposal = f.valid_proposal(session, w.call)
    w.coordinator = w.proposal.coordinator
    w.member = f.make_user(session, "Mia Member")
    session.add(ProposalMember(proposal_id=w.proposal.id, user_id=w.member.id, can_edit=True))
    session.commit()
    return w


def submit(w, actor=None, **kwargs):
    kwargs.setdefault("expected_version", w.proposal.version)
    sub = ops.submit(w.session, actor or w.coordinator, w.proposal.id, **kwargs)
    w.session.commit()
    return sub


# ---------------------------------------------------------------------------------------------------------
# Submit, reopen, resubmit


def test_the_coordinator_submits_and_a_snapshot_with_receipt_mail_is_written(world):
    sub = submit(world)
    assert world.proposal.state == "submitted"
    assert (sub.stage, sub.number, len(sub.sha256)) == ("pre", 1, 64)
    (receipt,) = mails(world.session, "submission_receipt")
    assert receipt.to_address == world.coordinator.email
    assert receipt.attachments == [{"kind": "receipt", "submission_id": sub.id}]


def test_a_member_cannot_submit_and_nothing_is_submitted(world):
    with pytest.raises(AccessDenied, match="only the coordinator can do this for the consortium"):
        submit(world, world.member)
    world.session.rollback()
    assert count(world.session, Submission) == 0
    assert world.proposal.state == "draft"


def test_submitting_needs_the_confirmation(world):
    with pytest.raises(InvalidInput) as refused:
        submit(world, confirmed=False)
    assert refused.value.field == "confirm"
    world.session.rollback()
    assert count(world.session, Submission) == 0


def test_a_submission_confirmed_on_an_outdated_page_is_refused(world):
    seen = world.proposal.version
    world.proposal.title = "Changed by a co-applicant meanwhile"
    world.session.commit()
    with pytest.raises(ChangedMeanwhile, match="changed by someone else meanwhile"):
        submit(world, expected_version=seen)
    world.session.rollback()
    assert count(world.session, Submission) == 0


def test_after_the_deadline_the_submission_is_refused_with_the_deadline(world, frozen):
    frozen(dt.datetime(2030, 3, 5, 16, 0, tzinfo=UTC))  # 17:00 in Paris: exclusive
    with pytest.raises(GuardFailed, match="the deadline passed on 5 March 2030, 17:00 CET"):
        submit(world)
    world.session.rollback()
    assert count(world.session, Submission) == 0


def test_reopen_and_resubmit_keeps_both_submissions_and_the_latest_counts(world, frozen):
    first = submit(world)
    frozen(f.PRE_OPEN + dt.timedelta(hours=1))
    ops.reopen(world.session, world.coordinator, world.proposal.id, expected_version=world.proposal.version)
    world.session.commit()
    assert world.proposal.state == "draft"
    world.proposal.title = "A better title"
    world.session.commit()
    second = submit(world)
    assert (first.number, second.number) == (1, 2)
    assert first.sha256 != second.sha256
    assert ops.latest_submission(world.session, world.proposal, "pre").id == second.id
    assert count(world.session, Submission, Submission.proposal_id == world.proposal.id) == 2
    assert len(mails(world.session, "submission_receipt")) == 2


def test_reopening_after_the_deadline_is_refused(world, frozen):
    submit(world)
    frozen(f.PRE_CLOSED)
    with pytest.raises(GuardFailed, match="the deadline passed"):
        ops.reopen(world.session, world.coordinator, world.proposal.id, expected_version=world.proposal.version)


# ---------------------------------------------------------------------------------------------------------
# Withdraw


def test_withdrawal_needs_a_reason_and_a_confirmation(world):
    with pytest.raises(InvalidInput) as no_reason:
        ops.withdraw(world.session, world.coordinator, world.proposal.id, reason="  ",
                     expected_version=world.proposal.version)
    assert no_reason.value.field == "reason"
    with pytest.raises(InvalidInput) as no_confirm:
        ops.withdraw(world.session, world.coordinator, world.proposal.id, reason="PI moved",
                     expected_version=world.proposal.version, confirmed=False)
    assert no_confirm.value.field == "confirm"
    world.session.rollback()
    assert world.proposal.state == "draft"


def test_the_coordinator_withdraws_with_the_reason_audited_and_mailed(world):
    submit(world)
    ops.withdraw(world.session, world.coordinator, world.proposal.id, reason="The PI moved abroad",
                 expected_version=world.proposal.version)
    world.session.commit()
    assert world.proposal.state == "withdrawn"
    event = world.session.scalar(select(AuditEvent).where(AuditEvent.action == "proposal.withdraw"))
    assert event.reason == "The PI moved abroad" and event.before == {"state": "submitted"}
    (mail,) = mails(world.session, "withdrawn")
    assert "The PI moved abroad" in mail.body_text
    assert count(world.session, Submission) == 1  # kept
    (outcome,) = ops.outcome_of(world.session, world.proposal)
    assert outcome.status.startswith("Withdrawn") and outcome.reasons == ["Reason given: The PI moved abroad"]


def test_a_member_cannot_withdraw(world):
    with pytest.raises(AccessDenied):
        ops.withdraw(world.session, world.member, world.proposal.id, reason="no", expected_version=None)


@pytest.mark.parametrize("state", ["funded", "not_funded", "not_invited", "withdrawn"])
def test_no_withdrawal_after_a_decision(world, state):
    world.proposal.state = state
    world.session.commit()
    with pytest.raises(DomainError):
        ops.withdraw(world.session, world.coordinator, world.proposal.id, reason="too late",
                     expected_version=world.proposal.version)


# ---------------------------------------------------------------------------------------------------------
# The full proposal and consortium changes (rule 13 with rule 12's exception)


def invited(w, frozen, *, ineligible_partner: int | None = None, other_funder: bool = False):
    """Submit the pre-proposal, mark it invited (optionally with a partner its funder found ineligible),
    and start the full proposal in the full stage."""
    submit(w)
    w.proposal.state = "invited"
    if ineligible_partner is not None:
        partner = w.proposal.partners[ineligible_partner]
        funder_id = partner.funder_id
        if other_funder:
            funder_id = f.funder(w.session, "MOH-T").id
        w.session.add(EligibilityCheck(proposal_id=w.proposal.id, partner_id=partner.id, funder_id=funder_id,
                                       stage="pre", status="ineligible", reason="not a research organisation"))
    w.session.commit()
    frozen(f.FULL_OPEN)
    ops.start_full(w.session, w.coordinator, w.proposal.id, expected_version=w.proposal.version)
    w.session.commit()


def submit_full(w):
    return submit(w)


NEW_PARTNER = dict(organisation="Karolinska Institutet", country="IT", pi_name="Ines Italiano",
                   pi_email="ines@example.org", partner_type="academia")


def add_new(w, **overrides):
    data = {**NEW_PARTNER, **overrides}
    data["funder_id"] = f.funder(w.session, "MOH-T").id
    data.setdefault("budget", {"personnel": 100_000})
    partner = add_partner(w.session, w.coordinator, w.proposal, PartnerData(**data))
    w.session.commit()
    return partner


def test_start_full_keeps_the_texts_and_partners_and_records_the_baseline(world, frozen):
    partners_before = [(p.organisation, p.pi_email) for p in world.proposal.partners]
    invited(world, frozen)
    assert world.proposal.state == "full_draft"
    assert world.proposal.title == "Precision oncology for all"
    assert [(p.organisation, p.pi_email) for p in world.proposal.partners] == partners_before
    event = world.session.scalar(select(AuditEvent).where(AuditEvent.action == ops.BASELINE_ACTION))
    assert event.after["ineligible_partners"] == []


def test_an_unchanged_consortium_submits_the_full_proposal(world, frozen):
    invited(world, frozen)
    sub = submit_full(world)
    assert (sub.stage, world.proposal.state) == ("full", "full_submitted")
    pre = ops.latest_submission(world.session, world.proposal, "pre")
    assert sub.previous_stage_submission_id == pre.id


def test_an_added_partner_blocks_the_full_submission_until_the_secretariat_approves(world, frozen):
    invited(world, frozen)
    add_new(world)
    with pytest.raises(GuardFailed) as refused:
        submit_full(world)
    world.session.rollback()
    assert ("partner Karolinska Institutet (Italy, PI ines@example.org) was added after the pre-proposal; "
            "changes need the call secretariat's approval") in str(refused.value)
    changes = ops.consortium_changes(world.session, world.proposal)
    assert [(c.kind, c.organisation, c.exempt) for c in changes.pending] == [
        ("added", "Karolinska Institutet", False)]

    with pytest.raises(AccessDenied, match="only the call secretariat can approve consortium changes"):
        ops.approve_changes(world.session, world.coordinator, world.proposal, "we want it")
    with pytest.raises(InvalidInput) as empty:
        ops.approve_changes(world.session, world.sec, world.proposal, "   ")
    assert empty.value.field == "justification"
    world.session.rollback()

    approval = ops.approve_changes(world.session, world.sec, world.proposal,
                                   "The CSC agreed: the new partner brings the patient cohort.")
    world.session.commit()
    assert approval.approved_by_id == world.sec.id
    event = world.session.scalar(select(AuditEvent).where(AuditEvent.action == ops.APPROVAL_ACTION))
    assert event.reason.startswith("The CSC agreed") and "Karolinska" in event.after["changes"][0]
    assert mails(world.session, "changes_approved")[0].to_address == world.coordinator.email
    assert audit.verify(world.session).ok

    sub = submit_full(world)
    assert sub.stage == "full" and world.proposal.state == "full_submitted"


def test_a_change_after_the_approval_needs_a_new_approval(world, frozen):
    invited(world, frozen)
    add_new(world)
    ops.approve_changes(world.session, world.sec, world.proposal, "approved by the CSC")
    world.session.commit()
    remove_partner(world.session, world.coordinator, world.proposal.partners[3])
    world.session.commit()
    with pytest.raises(GuardFailed, match="the consortium changed after the call secretariat's approval"):
        submit_full(world)
    world.session.rollback()
    ops.approve_changes(world.session, world.sec, world.proposal, "approved again")
    world.session.commit()
    assert submit_full(world).stage == "full"


def test_a_replaced_pi_is_a_change(world, frozen):
    invited(world, frozen)
    partner = world.proposal.partners[2]
    update_partner(world.session, world.coordinator, partner, PartnerData(
        organisation=partner.organisation, country=partner.country, pi_name="New PI",
        pi_email="new.pi@example.org", funder_id=partner.funder_id, budget=dict(partner.budget)))
    world.session.commit()
    kinds = sorted(c.kind for c in ops.consortium_changes(world.session, world.proposal).pending)
    assert kinds == ["added", "removed"]
    with pytest.raises(GuardFailed, match="new.pi@example.org\\) was added after the pre-proposal"):
        submit_full(world)


def test_cosmetic_differences_are_not_changes(world, frozen):
    invited(world, frozen)
    partner = world.proposal.partners[1]
    update_partner(world.session, world.coordinator, partner, PartnerData(
        organisation="  institut   CURIE ", country=partner.country, pi_name=partner.pi_name,
        pi_email=partner.pi_email.upper(), funder_id=partner.funder_id, budget={"personnel": 250_000}))
    world.session.commit()
    assert ops.consortium_changes(world.session, world.proposal).changes == []
    assert submit_full(world).stage == "full"


def test_removing_a_partner_its_own_funder_found_ineligible_needs_no_approval(world, frozen):
    invited(world, frozen, ineligible_partner=3)
    remove_partner(world.session, world.coordinator, world.proposal.partners[3])
    world.session.commit()
    (change,) = ops.consortium_changes(world.session, world.proposal).changes
    assert change.kind == "removed" and change.exempt
    assert "found ineligible by DFG-T at the pre-proposal stage" in change.note
    assert submit_full(world).stage == "full"


def test_replacing_a_partner_its_own_funder_found_ineligible_needs_no_approval(world, frozen):
    invited(world, frozen, ineligible_partner=3)
    remove_partner(world.session, world.coordinator, world.proposal.partners[3])
    add_new(world)
    changes = ops.consortium_changes(world.session, world.proposal)
    assert [(c.kind, c.exempt) for c in changes.changes] == [("removed", True), ("added", True)]
    assert submit_full(world).stage == "full"


def test_replacing_in_place_a_partner_found_ineligible_needs_no_approval(world, frozen):
    invited(world, frozen, ineligible_partner=2)
    partner = world.proposal.partners[2]
    update_partner(world.session, world.coordinator, partner, PartnerData(
        organisation="Universidad de Navarra", country="ES", pi_name="Nora N", pi_email="nora@example.org",
        funder_id=partner.funder_id, budget={"personnel": 200_000}))
    world.session.commit()
    assert submit_full(world).stage == "full"


def test_only_one_replacement_per_ineligible_partner_is_free(world, frozen):
    invited(world, frozen, ineligible_partner=3)
    remove_partner(world.session, world.coordinator, world.proposal.partners[3])
    add_new(world)
    add_new(world, organisation="Università di Bologna", pi_email="bo@example.org", pi_name="Bo")
    with pytest.raises(GuardFailed) as refused:
        submit_full(world)
    assert "Università di Bologna" in str(refused.value) and "Karolinska" not in str(refused.value)


def test_an_ineligibility_found_by_another_funder_gives_no_exception(world, frozen):
    invited(world, frozen, ineligible_partner=3, other_funder=True)
    remove_partner(world.session, world.coordinator, world.proposal.partners[3])
    world.session.commit()
    with pytest.raises(GuardFailed, match="was removed since the pre-proposal; changes need"):
        submit_full(world)


def test_the_exception_is_a_setting_of_the_call(session, frozen):
    frozen(f.PRE_OPEN)

    class W:
        pass

    w = W()
    w.session = session
    w.call = f.make_call(session, code="strict-call", allow_replacing_ineligible_partner=False)
    w.sec = f.secretariat(session, w.call)
    w.proposal = f.valid_proposal(session, w.call)
    w.coordinator = w.proposal.coordinator
    session.commit()
    invited(w, frozen, ineligible_partner=3)
    remove_partner(session, w.coordinator, w.proposal.partners[3])
    session.commit()
    with pytest.raises(GuardFailed, match="changes need the call secretariat's approval"):
        submit_full(w)


def test_nothing_to_approve_is_refused(world, frozen):
    invited(world, frozen)
    with pytest.raises(InvalidInput, match="no changes that need approval"):
        ops.approve_changes(world.session, world.sec, world.proposal, "just in case")
    assert count(world.session, ChangeApproval) == 0


# ---------------------------------------------------------------------------------------------------------
# The rebuttal (rule 18)

REVIEW_TEXT = {"excellence": "Strong idea.", "impact": "Unclear path to patients.", "implementation": "Fine."}


def under_review(w, *, reviewers=("Rolf Reviewer", "Rhea Reviewer")):
    w.proposal.state = "under_review"
    w.session.commit()
    for name in reviewers:
        reviewer = f.make_user(w.session, name)
        assignment = ReviewAssignment(call_id=w.call.id, proposal_id=w.proposal.id, reviewer_id=reviewer.id,
                                      stage="full")
        w.session.add(assignment)
        w.session.flush()
        w.session.add(Review(assignment_id=assignment.id, proposal_id=w.proposal.id, reviewer_id=reviewer.id,
                             stage="full", scores={"excellence": 4.5, "impact": 3, "implementation": 4},
                             comments=REVIEW_TEXT, status="submitted", recommendation="Fund it."))
    draft_reviewer = f.make_user(w.session, "Dora Draft")
    assignment = ReviewAssignment(call_id=w.call.id, proposal_id=w.proposal.id, reviewer_id=draft_reviewer.id,
                                  stage="full")
    w.session.add(assignment)
    w.session.flush()
    w.session.add(Review(assignment_id=assignment.id, proposal_id=w.proposal.id, reviewer_id=draft_reviewer.id,
                         stage="full", status="draft"))
    w.session.commit()


OPENED = dt.datetime(2030, 8, 19, 7, 0, tzinfo=UTC)


def opened(w, frozen):
    under_review(w)
    frozen(OPENED)
    result = open_rebuttal(w.session, w.sec, w.call)
    w.session.commit()
    return result


def test_the_secretariat_opens_the_window_which_releases_reviews_and_mails_coordinators(world, frozen):
    result = opened(world, frozen)
    assert (world.call.rebuttal_opens_at, world.call.rebuttal_closes_at) == (OPENED, OPENED + dt.timedelta(days=7))
    assert result.proposals == [world.proposal.id] and result.reviews_released == 2
    assert world.proposal.state == "rebuttal"
    (mail,) = mails(world.session, "rebuttal_open")
    assert mail.to_address == world.coordinator.email
    assert "26 August 2030, 09:00 CEST" in mail.body_text and "6,000 characters" in mail.body_text
    shown = released_reviews(world.session, world.proposal)
    assert [r.label for r in shown] == ["Reviewer 1", "Reviewer 2"]  # the draft review is not released
    assert shown[0].criteria[1].name == "Impact" and shown[0].criteria[1].comment == "Unclear path to patients."


def test_only_the_secretariat_opens_the_window_and_only_once(world, frozen):
    under_review(world)
    frozen(OPENED)
    with pytest.raises(AccessDenied, match="only the call secretariat"):
        open_rebuttal(world.session, world.coordinator, world.call)
    world.session.rollback()
    open_rebuttal(world.session, world.sec, world.call)
    world.session.commit()
    with pytest.raises(DomainError, match="opened already"):
        open_rebuttal(world.session, world.sec, world.call)


def test_a_rebuttal_inside_the_window_is_recorded_audited_and_acknowledged(world, frozen):
    opened(world, frozen)
    frozen(OPENED + dt.timedelta(days=7) - SECOND)  # the last second of the window
    rebuttal = ops.submit_rebuttal(world.session, world.coordinator, world.proposal, "Thank you.\r\nWe clarify.")
    world.session.commit()
    assert rebuttal.text == "Thank you.\nWe clarify."
    event = world.session.scalar(select(AuditEvent).where(AuditEvent.action == "proposal.rebuttal_submitted"))
    assert event.after == {"proposal_id": world.proposal.id, "characters": 22}
    assert mails(world.session, "rebuttal_receipt")[0].to_address == world.coordinator.email


def test_a_rebuttal_at_the_end_of_the_window_is_refused(world, frozen):
    opened(world, frozen)
    frozen(OPENED + dt.timedelta(days=7))  # exclusive end
    with pytest.raises(DomainError, match="the rebuttal window closed on 26 August 2030, 09:00 CEST"):
        ops.submit_rebuttal(world.session, world.coordinator, world.proposal, "Too late.")
    world.session.rollback()
    assert count(world.session, Rebuttal) == 0


def test_a_rebuttal_before_the_window_is_refused(world):
    under_review(world)
    with pytest.raises(DomainError, match="not open yet"):
        ops.submit_rebuttal(world.session, world.coordinator, world.proposal, "Early.")


def test_the_character_limit_counts_line_breaks_once(world, frozen):
    opened(world, frozen)
    with pytest.raises(InvalidInput) as refused:
        ops.submit_rebuttal(world.session, world.coordinator, world.proposal, "x" * 6001)
    assert refused.value.field == "text"
    assert str(refused.value) == "your rebuttal has 6,001 characters; at most 6,000 are allowed"
    world.session.rollback()
    text = "x" * 2999 + "\r\n" + "y" * 3000  # 6,000 characters once the line break counts as one
    assert len(ops.submit_rebuttal(world.session, world.coordinator, world.proposal, text).text) == 6000


def test_one_rebuttal_per_proposal(world, frozen):
    opened(world, frozen)
    ops.submit_rebuttal(world.session, world.coordinator, world.proposal, "First.")
    world.session.commit()
    with pytest.raises(DomainError, match="already submitted .* only one is allowed per proposal"):
        ops.submit_rebuttal(world.session, world.coordinator, world.proposal, "Second.")
    world.session.rollback()
    assert count(world.session, Rebuttal) == 1


def test_only_the_coordinator_rebuts(world, frozen):
    opened(world, frozen)
    with pytest.raises(AccessDenied, match="only the coordinator can write the rebuttal"):
        ops.submit_rebuttal(world.session, world.member, world.proposal, "From a partner.")
    with pytest.raises(InvalidInput):
        ops.submit_rebuttal(world.session, world.coordinator, world.proposal, "   ")


def test_closing_the_window_moves_the_proposals_to_the_panel(world, frozen):
    opened(world, frozen)
    with pytest.raises(DomainError, match="open until"):
        ops.close_rebuttal_window(world.session, world.sec, world.call)
    frozen(OPENED + dt.timedelta(days=7))
    assert ops.close_rebuttal_window(world.session, world.sec, world.call) == 1
    world.session.commit()
    assert world.proposal.state == "panel"


# ---------------------------------------------------------------------------------------------------------
# The outcome, in plain words


def outcomes(w) -> list[tuple[str, str]]:
    return [(o.title, o.status) for o in ops.outcome_of(w.session, w.proposal)]


def test_outcome_of_an_ineligible_pre_proposal_gives_the_recorded_reasons(world):
    submit(world)
    world.proposal.state = "ineligible"
    partner = world.proposal.partners[1]
    world.session.add_all([
        EligibilityCheck(proposal_id=world.proposal.id, stage="pre", status="ineligible",
                         reason="the budget table is missing"),
        EligibilityCheck(proposal_id=world.proposal.id, stage="pre", partner_id=partner.id,
                         funder_id=partner.funder_id, status="ineligible", reason="industry partners are not funded"),
    ])
    world.session.commit()
    (pre,) = ops.outcome_of(world.session, world.proposal)
    assert (pre.title, pre.status, pre.final) == ("Pre-proposal", "Not eligible", True)
    assert pre.reasons == ["Call secretariat (formal check): the budget table is missing",
                           "ANR-T, for Institut Curie: industry partners are not funded"]


@pytest.mark.parametrize("state, expected", [
    ("draft", [("Pre-proposal", "Not submitted yet")]),
    ("submitted", [("Pre-proposal", "Submitted; the eligibility check follows the deadline")]),
    ("pre_review", [("Pre-proposal", "Eligible; under evaluation")]),
    ("not_invited", [("Pre-proposal", "Eligible, but not invited to submit a full proposal")]),
    ("invited", [("Pre-proposal", ops.INVITED), ("Full proposal", "Invited; the full proposal has not been started")]),
    ("not_recommended", [("Pre-proposal", ops.INVITED),
                         ("Full proposal", "Not recommended for funding by the evaluation panel")]),
    ("selected", [("Pre-proposal", ops.INVITED), ("Full proposal",
                  "Selected for funding; the national funding organisations will contact the partners")]),
    ("reserve", [("Pre-proposal", ops.INVITED),
                 ("Full proposal", "On the reserve list: funded only if money becomes available")]),
    ("not_funded", [("Pre-proposal", ops.INVITED), ("Full proposal", "Recommended, but not funded")]),
    ("funded", [("Pre-proposal", ops.INVITED), ("Full proposal", "Funded")]),
])
def test_outcome_per_state(world, state, expected):
    world.proposal.state = state
    world.session.commit()
    assert outcomes(world) == expected


def test_outcome_of_a_lapsed_proposal_says_which_stage_was_missed(world):
    world.proposal.state = "not_submitted"
    world.session.commit()
    assert outcomes(world) == [("Pre-proposal", "Not submitted before the deadline")]
    world.proposal.state = "draft"
    world.session.commit()
    submit(world)
    world.proposal.state = "not_submitted"
    world.session.commit()
    assert outcomes(world) == [("Pre-proposal", ops.INVITED), ("Full proposal", "Not submitted before the deadline")]


def test_outcome_of_a_reopened_draft(world, frozen):
    submit(world)
    ops.reopen(world.session, world.coordinator, world.proposal.id, expected_version=world.proposal.version)
    world.session.commit()
    assert outcomes(world) == [("Pre-proposal", "Reopened for changes; submit it again before the deadline")]


# ---------------------------------------------------------------------------------------------------------
# Two people editing one partner


def _same_partner_with(partner, **changes) -> PartnerData:
    data = PartnerData(organisation=partner.organisation, country=partner.country, pi_name=partner.pi_name,
                       pi_email=partner.pi_email, partner_type=partner.partner_type, region=partner.region,
                       funder_id=partner.funder_id, own_funded=partner.own_funded, budget=dict(partner.budget))
    for key, value in changes.items():
        setattr(data, key, value)
    return data


def test_a_partner_edit_from_an_outdated_form_is_refused_and_changes_nothing(world):
    partner = world.proposal.partners[1]
    shown = partner.version
    update_partner(world.session, world.coordinator, partner, _same_partner_with(partner, pi_name="First Save"))
    world.session.commit()
    with pytest.raises(ChangedMeanwhile):
        update_partner(world.session, world.coordinator, partner, _same_partner_with(partner, pi_name="Second"),
                       expected_version=shown)
    world.session.rollback()
    assert world.session.get(Partner, partner.id).pi_name == "First Save"


def test_two_saves_racing_on_one_partner_cannot_both_win(world, session_factory):
    partner_id = world.proposal.partners[1].id
    first, second = session_factory(), session_factory()
    try:
        a, b = first.get(Partner, partner_id), second.get(Partner, partner_id)
        coordinator, member = first.get(User, world.coordinator.id), second.get(User, world.member.id)
        shown_to_b = b.version  # both forms were shown before either was saved
        update_partner(first, coordinator, a, _same_partner_with(a, pi_name="From A"), expected_version=a.version)
        first.commit()
        with pytest.raises(ChangedMeanwhile):  # B's check passed on what B had read; its UPDATE finds no row
            update_partner(second, member, b, _same_partner_with(b, pi_name="From B"), expected_version=shown_to_b)
        second.rollback()
    finally:
        first.close()
        second.close()
    world.session.expire_all()
    assert world.session.get(Partner, partner_id).pi_name == "From A"
