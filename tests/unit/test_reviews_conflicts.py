"""Conflicts of interest: each detection rule with its reason, declaring, overriding, and what a
conflicted reviewer can no longer do (reviews.conflicts, reviews.plugin, reviews.policy; DOMAIN rule 17)."""

from __future__ import annotations

import pytest

from reviews import assignment as asg
from reviews import conflicts as co
from reviews.models import Conflict, Review, ReviewAssignment
from reviews.policy import decide
from tests import factories as f
from tests.unit.reviews_helpers import (
    ALL_SCORES,
    assign,
    count,
    events,
    mails,
    make_proposal,
    make_reviewer,
    review_tables,  # noqa: F401  (fixture)
    set_evaluation,
    submitted_review,
)
from workflow.access import can
from workflow.errors import AccessDenied, DomainError, InvalidInput
from workflow.models import ProposalMember

pytestmark = pytest.mark.usefixtures("review_tables")

PARTNERS = (
    ("Charité – Universitätsmedizin Berlin", "DE", "DFG-T", 250_000, "anna.schmidt@charite.de"),
    ("Institut Curie", "FR", "ANR-T", 300_000, "marc.durand@curie.fr"),
    ("Hospital Clínic", "ES", "ISCIII-T", 200_000, "pi@gmail.com"),
)


def detect(reviewer: co.ReviewerInfo, *, same_country=False, applicants=frozenset(), coordinator=None):
    proposal = co.ProposalInfo(1, tuple(co.PartnerInfo(o, c, e) for o, c, _f, _a, e in PARTNERS),
                               frozenset(applicants), coordinator)
    return [(d.rule, d.reason) for d in co.detect(reviewer, proposal, same_country=same_country)]


def who(org=None, country=None, email="rev@uu.se", domain=None, uid=7):
    return co.ReviewerInfo(uid, email, org, country, domain)


# ---------------------------------------------------------------------------------------------------------
# The rules, pure


def test_same_organisation_ignores_case_and_spaces():
    assert detect(who(org="  institut   CURIE ")) == [
        ("same_organisation", "works at Institut Curie, a partner of this proposal")]
    assert detect(who(org="Institut Curie Paris")) == []


def test_same_email_domain_counts_subdomains_but_not_public_mail_providers():
    assert detect(who(email="lea@charite.de")) == [
        ("same_email_domain", "has an e-mail address at charite.de, like the PI of Charité – Universitätsmedizin Berlin")]
    assert detect(who(email="x@med.charite.de"))[0][0] == "same_email_domain"
    assert detect(who(email="x@uu.se", domain="curie.fr"))[0][1] == (
        "has an e-mail address at curie.fr, like the PI of Institut Curie")
    # A gmail reviewer and a gmail PI share nothing but a mail provider.
    assert detect(who(email="someone@gmail.com")) == []
    assert detect(who(email="x@notcharite.de")) == []


def test_a_pi_coordinator_or_co_applicant_of_the_proposal_is_conflicted():
    assert detect(who(email="Marc.Durand@curie.fr", domain="uu.se")) == [
        ("is_applicant", "is the PI of Institut Curie in this proposal")]
    assert detect(who(uid=7), coordinator=7, applicants={7}) == [
        ("is_applicant", "is the coordinator of this proposal")]
    assert detect(who(uid=7), applicants={3, 7}, coordinator=3) == [
        ("is_applicant", "is a co-applicant of this proposal")]


def test_same_country_only_when_the_call_says_so():
    assert detect(who(country="DE")) == []
    assert detect(who(country="DE"), same_country=True) == [
        ("same_country", "is from Germany, like the partner Charité – Universitätsmedizin Berlin")]


def test_several_rules_give_several_reasons():
    rules = [r for r, _ in detect(who(org="Institut Curie", email="marc.durand@curie.fr", country="FR"),
                                  same_country=True)]
    assert rules == ["same_organisation", "same_email_domain", "is_applicant", "same_country"]


# ---------------------------------------------------------------------------------------------------------
# In the database


@pytest.fixture
def w(session, frozen):
    frozen(f.FULL_CLOSED)
    call = f.make_call(session)
    world = type("W", (), {})()
    world.session, world.call, world.sec = session, call, f.secretariat(session, call)
    world.proposal = make_proposal(session, call, "PGX", partners=PARTNERS)
    world.curie = make_reviewer(session, call, "Claire Curie", organisation="Institut Curie", country="FR")
    world.free = make_reviewer(session, call, "Sven Free", organisation="Uppsala University", country="SE")
    session.commit()
    return world


def test_detected_conflicts_are_live_stored_on_request_and_listed_for_the_secretariat(w):
    assert co.is_conflicted(w.session, w.curie, w.proposal)
    assert not co.is_conflicted(w.session, w.free, w.proposal)
    summary = co.detect_conflicts(w.session, w.sec, w.call)
    w.session.commit()
    assert (summary.added, summary.removed, summary.active) == (1, 0, 1)
    (row,) = w.session.query(Conflict).all()
    assert (row.source, row.rule, row.reason) == ("detected", "same_organisation",
                                                  "works at Institut Curie, a partner of this proposal")
    (listed,) = co.call_conflicts(w.session, w.sec, w.call)
    assert (listed.reviewer_name, listed.label, listed.status) == ("Claire Curie", "same organisation as a partner",
                                                                   "active")
    # The partner leaves: the stored detection goes with it.
    curie = next(p for p in w.proposal.partners if p.organisation == "Institut Curie")
    w.proposal.partners.remove(curie)
    w.session.commit()
    assert not co.is_conflicted(w.session, w.curie, w.proposal)
    assert co.detect_conflicts(w.session, w.sec, w.call).removed == 1
    assert count(w.session, Conflict) == 0


def test_same_country_is_a_conflict_only_with_the_call_setting(w):
    german = make_reviewer(w.session, w.call, "Hans Deutsch", organisation="Universität Bonn", country="DE")
    assert not co.is_conflicted(w.session, german, w.proposal)
    set_evaluation(w.call, conflict_same_country=True)
    assert co.is_conflicted(w.session, german, w.proposal)
    (view,) = co.pair_conflicts(w.session, german, w.proposal)
    assert view.reason == "is from Germany, like the partner Charité – Universitätsmedizin Berlin"


def test_a_co_applicant_reviewer_is_conflicted(w):
    w.session.add(ProposalMember(proposal_id=w.proposal.id, user_id=w.free.id))
    w.session.commit()
    w.session.refresh(w.proposal)
    assert [v.reason for v in co.pair_conflicts(w.session, w.free, w.proposal)] == [
        "is a co-applicant of this proposal"]


def test_a_conflicted_reviewer_cannot_open_the_proposal_its_reviews_or_write(w):
    a = assign(w.session, w.proposal, w.curie)  # assigned before the conflict was known
    w.session.commit()
    for action in ("proposal.view", "document.download"):
        assert can(w.curie, action, w.proposal).reason == "this proposal is not available to you"
    assert decide(w.curie, "proposal.reviews", w.proposal).reason == "this proposal is not available to you"
    assert decide(w.curie, "review.write", a).reason == "this proposal is not available to you"
    # The same words as for a reviewer who is simply not assigned: nothing is revealed.
    assert decide(w.free, "proposal.reviews", w.proposal).reason == "this proposal is not available to you"
    # ... and the reviewer's list does not show it.
    from reviews.scoring import my_assignments

    assert my_assignments(w.session, w.curie, w.call) == []


def test_the_secretariat_overrides_with_a_recorded_justification(w):
    with pytest.raises(InvalidInput, match="give the justification"):
        co.override_conflict(w.session, w.sec, w.curie, w.proposal, justification="  ")
    with pytest.raises(AccessDenied, match="only the call secretariat can override"):
        co.override_conflict(w.session, w.free, w.curie, w.proposal, justification="fine")
    rows = co.override_conflict(w.session, w.sec, w.curie, w.proposal,
                                justification="Different department; no joint work in 10 years.")
    w.session.commit()
    assert [(r.rule, r.overridden_by_id) for r in rows] == [("same_organisation", w.sec.id)]
    assert not co.is_conflicted(w.session, w.curie, w.proposal)
    (event,) = events(w.session, "conflict.overridden")
    assert event.reason == "Different department; no joint work in 10 years."
    assert event.before["reason"] == "works at Institut Curie, a partner of this proposal"
    # Now Claire may be assigned and may open it (she has accepted the declaration).
    a = asg.assign_reviewer(w.session, w.sec, w.proposal, w.curie)
    assert can(w.curie, "proposal.view", w.proposal)
    assert decide(w.curie, "review.write", a)
    # Overridden rows stay on the list, marked so.
    assert [r.status for r in co.call_conflicts(w.session, w.sec, w.call)] == ["overridden"]
    with pytest.raises(InvalidInput, match="no conflict with this proposal to override"):
        co.override_conflict(w.session, w.sec, w.curie, w.proposal, justification="again")


def test_an_override_does_not_cover_a_conflict_that_arises_later(w):
    co.override_conflict(w.session, w.sec, w.curie, w.proposal, justification="Different department.")
    set_evaluation(w.call, conflict_same_country=True)  # Claire is French, like Institut Curie
    assert co.is_conflicted(w.session, w.curie, w.proposal)


def test_a_reviewer_declares_a_conflict_and_is_withdrawn_from_the_proposal(w):
    a = assign(w.session, w.proposal, w.free)
    submitted_review(w.session, a, ALL_SCORES)
    w.session.commit()
    items = co.proposals_for_declaration(w.session, w.free, w.call)
    assert [(i.acronym, i.organisations, i.declared) for i in items] == [
        ("PGX", ["Charité – Universitätsmedizin Berlin", "Institut Curie", "Hospital Clínic"], False)]
    assert not hasattr(items[0], "abstract")
    with pytest.raises(InvalidInput, match="say in a few words"):
        co.declare_conflict(w.session, w.free, w.proposal, reason=" ")
    row = co.declare_conflict(w.session, w.free, w.proposal, reason="I co-authored two papers with the coordinator.")
    w.session.commit()
    assert (row.source, row.rule) == ("declared", "declared")
    assert co.is_conflicted(w.session, w.free, w.proposal)
    assert count(w.session, ReviewAssignment) == 0 and count(w.session, Review) == 0
    (withdrawn,) = events(w.session, "review.assignment_withdrawn")
    assert withdrawn.before["review"]["scores"] == ALL_SCORES  # what was written stays on record
    (told,) = mails(w.session, "reviewer_conflict")
    assert told.to_address == w.sec.email
    assert co.proposals_for_declaration(w.session, w.free, w.call)[0].declared
    with pytest.raises(InvalidInput, match="not available"):
        asg.assign_reviewer(w.session, w.sec, w.proposal, w.free)


def test_declaring_needs_the_declaration_and_a_reviewer(w):
    undeclared = make_reviewer(w.session, w.call, "Una Undeclared", declared=False)
    with pytest.raises(DomainError, match="accept the confidentiality"):
        co.declare_conflict(w.session, undeclared, w.proposal, reason="x")
    with pytest.raises(DomainError, match="accept the confidentiality"):
        co.proposals_for_declaration(w.session, undeclared, w.call)
    with pytest.raises(AccessDenied, match="only reviewers of this call"):
        co.declare_conflict(w.session, w.sec, w.proposal, reason="x")
