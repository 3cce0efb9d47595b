"""Submitting, resubmitting, withdrawing, the full proposal, receipts, the rebuttal and the decisions, as an
applicant does it in the browser (Flask test client), with the receipt mail on a real SMTP server."""

from __future__ import annotations

import datetime as dt
import html
import io
import re

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from reviews.models import Review, ReviewAssignment
from reviews.release import open_rebuttal
from tests import factories as f
from webapp.mail import deliver_pending
from workflow import submission as ops
from workflow.models import EligibilityCheck, ProposalMember, Rebuttal, Submission
from workflow.proposals import PartnerData, add_partner

UTC = dt.UTC


def text_of(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(response.get_data(as_text=True)))


def words(response) -> str:
    """The page's text as a person reads it: inline tags dropped, other tags as spaces."""
    text = response.get_data(as_text=True)
    text = re.sub(r"</?(strong|span|em|a|code|b|i)\b[^>]*>", "", text)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


def login(client, user):
    response = client.post("/login", data={"email": user.email, "password": "correct horse battery"})
    assert response.status_code == 302, "login failed"


def logout(client):
    client.post("/logout")


def submissions(session, proposal=None) -> int:
    query = select(func.count(Submission.id))
    if proposal is not None:
        query = query.where(Submission.proposal_id == proposal.id)
    return session.scalar(query)


def pdf_text(data: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def compact(text: str) -> str:
    return "".join(text.split())


@pytest.fixture
def w(session, frozen, app):
    frozen(f.PRE_OPEN)

    class W:
        pass

    w = W()
    w.session, w.app = session, app
    w.call = f.make_call(session)
    w.sec = f.secretariat(session, w.call)
    w.officer = f.officer(session, w.call, "ANR-T")
    w.proposal = f.valid_proposal(session, w.call, acronym="HELIOS")
    w.coordinator = w.proposal.coordinator
    w.member = f.make_user(session, "Mia Member")
    session.add(ProposalMember(proposal_id=w.proposal.id, user_id=w.member.id, can_edit=True))
    w.outsider = f.make_user(session, "Olivia Outsider")
    session.commit()
    w.base = f"/my/proposals/{w.proposal.id}"
    return w


def confirm_and_submit(client, w, **extra):
    data = {"version": str(w.proposal.version), "confirm": "y", **extra}
    return client.post(f"{w.base}/submit", data=data)


def refresh(w):
    w.session.expire_all()
    return w.proposal


# ---------------------------------------------------------------------------------------------------------
# Submitting


def test_the_confirmation_page_shows_deadline_time_left_and_the_confirmation(client, w):
    login(client, w.coordinator)
    response = client.get(f"{w.base}/submit")
    assert "Submit the pre-proposal — HELIOS" in words(response)
    assert "Deadline: 5 March 2030, 17:00 CET (32 days 4 h left)." in words(response)
    page = text_of(response)
    assert ('<label class="form-check-label" for="confirm">I confirm that the consortium agrees to submit this '
            "proposal and that its content is complete and correct.</label>") in page
    assert f'name="version" type="hidden" value="{w.proposal.version}"' in page
    assert '<button class="btn btn-primary" type="submit" name="submit" value="Submit">Submit the pre-proposal</button>' in page


def test_the_coordinator_submits_and_lands_on_the_proposal_with_the_message(client, w):
    login(client, w.coordinator)
    response = confirm_and_submit(client, w)
    assert response.status_code == 302 and response.headers["Location"].endswith(w.base)
    sub = w.session.scalars(select(Submission)).one()
    assert (refresh(w).state, sub.stage, sub.number) == ("submitted", "pre", 1)
    page = text_of(client.get(w.base))
    assert "Your pre-proposal was submitted (submission no. 1)." in page
    assert sub.sha256 in page
    assert "Reopen to make changes" in page


def test_without_the_confirmation_nothing_is_submitted(client, w):
    login(client, w.coordinator)
    response = client.post(f"{w.base}/submit", data={"version": str(w.proposal.version)})
    assert response.status_code == 422
    assert ('id="confirm-error">tick the box to confirm that the consortium submits this proposal'
            in text_of(response))
    assert submissions(w.session) == 0


def test_a_member_sees_the_submit_button_disabled_with_the_reason_and_cannot_submit(client, w):
    login(client, w.member)
    page = text_of(client.get(f"{w.base}/submit"))
    assert 'disabled aria-describedby="submit-why">Submit the pre-proposal</button>' in page
    assert 'id="submit-why">Only the coordinator can do this for the consortium.' in page
    overview = text_of(client.get(w.base))
    assert 'id="submit-button" disabled aria-describedby="submit-why"' in overview
    assert "Only the coordinator can do this for the consortium." in overview
    refused = confirm_and_submit(client, w)
    assert refused.status_code == 403
    assert "only the coordinator can do this for the consortium" in text_of(refused)
    assert submissions(w.session) == 0 and refresh(w).state == "draft"


def test_outsiders_see_nothing(client, w):
    login(client, w.outsider)
    assert client.get(f"{w.base}/submit").status_code == 403
    assert confirm_and_submit(client, w).status_code == 403
    assert submissions(w.session) == 0


def test_a_submit_without_the_csrf_token_is_refused_and_nothing_is_submitted(client, w):
    login(client, w.coordinator)
    w.app.config["WTF_CSRF_ENABLED"] = True
    response = confirm_and_submit(client, w)
    assert response.status_code == 400
    assert "This form was not sent from this site or has expired" in text_of(response)
    assert submissions(w.session) == 0 and refresh(w).state == "draft"


def test_a_change_made_meanwhile_is_shown_and_the_page_then_shows_the_current_version(client, w):
    login(client, w.coordinator)
    seen = w.proposal.version
    w.proposal.title = "Changed by a co-applicant in another tab"
    w.session.commit()
    response = client.post(f"{w.base}/submit", data={"version": str(seen), "confirm": "y"})
    assert response.status_code == 409
    page = text_of(response)
    assert "this proposal was changed by someone else meanwhile; reload the page and try again" in page
    assert "Changed by a co-applicant in another tab" in page
    assert submissions(w.session) == 0
    current = re.search(r'name="version" type="hidden" value="(\d+)"', page).group(1)
    assert int(current) == refresh(w).version
    assert client.post(f"{w.base}/submit", data={"version": current, "confirm": "y"}).status_code == 302
    assert submissions(w.session) == 1


def test_blocking_violations_are_listed_and_refuse_the_submission(client, w):
    w.proposal.abstract = ""
    w.session.commit()
    login(client, w.coordinator)
    page = words(client.get(f"{w.base}/submit"))
    assert "The proposal cannot be submitted until these are fixed: write the abstract" in page
    assert "Not possible now: the proposal breaks the call's rules listed below." in page
    refused = confirm_and_submit(client, w)
    assert refused.status_code == 422
    assert "The pre-proposal was not submitted: write the abstract." in text_of(refused)
    assert submissions(w.session) == 0


# ---------------------------------------------------------------------------------------------------------
# The receipt


def test_the_receipt_mail_arrives_with_a_pdf_naming_the_acronym_and_the_sha256(client, w, mailbox):
    login(client, w.coordinator)
    assert confirm_and_submit(client, w).status_code == 302
    with w.app.app_context():  # as `jointcall outbox send` runs it
        deliver_pending(w.app.extensions["jointcall.sessions"], w.app.config["JOINTCALL"])
    mailbox.wait_for(1)
    (message,) = mailbox.to(w.coordinator.email)
    sub = w.session.scalars(select(Submission)).one()
    assert "HELIOS: receipt of your pre-proposal" in message["Subject"]
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == f"receipt-{w.proposal.reference}-pre-1.pdf"
    text = pdf_text(attachment.get_content())
    assert "HELIOS" in text
    assert sub.sha256 in compact(text)


def test_receipts_are_listed_and_downloaded_by_the_consortium_and_the_secretariat_only(client, w):
    login(client, w.coordinator)
    confirm_and_submit(client, w)
    sub = w.session.scalars(select(Submission)).one()
    page = text_of(client.get(f"{w.base}/receipts"))
    assert sub.sha256 in page and "counts" in page
    url = f"{w.base}/receipts/{sub.id}.pdf"
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    text = pdf_text(response.data)
    assert "HELIOS" in text and sub.sha256 in compact(text)
    assert "5 February 2030" not in text and "1 February 2030, 13:00:00 CET" in text
    for who, status in ((w.member, 200), (w.sec, 200), (w.officer, 403), (w.outsider, 403)):
        logout(client)
        login(client, who)
        assert client.get(url).status_code == status, who.name


def test_resubmission_keeps_both_submissions_and_the_latest_counts(client, w, frozen):
    login(client, w.coordinator)
    confirm_and_submit(client, w)
    frozen(f.PRE_OPEN + dt.timedelta(days=1))
    reopened = client.post(f"{w.base}/reopen", data={"version": str(refresh(w).version)})
    assert reopened.status_code == 302 and refresh(w).state == "draft"
    assert "Your earlier submission is kept, but only a new submission before the deadline will count" in words(
        client.get(w.base))
    assert confirm_and_submit(client, w).status_code == 302
    first, second = w.session.scalars(select(Submission).order_by(Submission.id)).all()
    assert (first.number, second.number) == (1, 2)
    page = text_of(client.get(f"{w.base}/receipts"))
    rows = re.findall(r"<tr> <td>Pre-proposal</td> <td>(\d)</td>.*?<td>(<strong>counts</strong>|replaced by a later "
                      r"submission)</td>", page)
    assert rows == [("2", "<strong>counts</strong>"), ("1", "replaced by a later submission")]
    for sub in (first, second):
        assert client.get(f"{w.base}/receipts/{sub.id}.pdf").status_code == 200


# ---------------------------------------------------------------------------------------------------------
# Withdrawal


def test_withdrawal_asks_for_a_reason_and_a_confirmation(client, w):
    login(client, w.coordinator)
    page = text_of(client.get(f"{w.base}/withdraw"))
    assert '<label class="form-label" for="reason">Reason for withdrawing</label>' in page
    assert "I confirm that the consortium withdraws this proposal. This cannot be undone." in page
    version = str(w.proposal.version)
    no_reason = client.post(f"{w.base}/withdraw", data={"version": version, "confirm": "y", "reason": ""})
    assert no_reason.status_code == 422 and 'id="reason-error">say why the proposal is withdrawn' in text_of(no_reason)
    no_confirm = client.post(f"{w.base}/withdraw", data={"version": version, "reason": "PI left"})
    assert no_confirm.status_code == 422
    assert re.search(r'id="reason"[^>]*>\s*PI left</textarea>', text_of(no_confirm))  # what was typed is kept
    assert 'id="confirm-error">tick the box to confirm the withdrawal' in text_of(no_confirm)
    assert refresh(w).state == "draft"
    done = client.post(f"{w.base}/withdraw", data={"version": version, "reason": "PI left", "confirm": "y"})
    assert done.status_code == 302 and refresh(w).state == "withdrawn"
    decision = text_of(client.get(f"{w.base}/decision"))
    assert "Withdrawn by the consortium or the call secretariat" in decision and "Reason given: PI left" in decision


def test_a_member_cannot_withdraw(client, w):
    login(client, w.member)
    response = client.post(f"{w.base}/withdraw", data={"version": str(w.proposal.version), "reason": "x",
                                                        "confirm": "y"})
    assert response.status_code == 403 and refresh(w).state == "draft"


# ---------------------------------------------------------------------------------------------------------
# The full proposal


def invite(w, frozen):
    ops.submit(w.session, w.coordinator, w.proposal.id, expected_version=w.proposal.version)
    w.proposal.state = "invited"
    w.session.commit()
    frozen(f.FULL_OPEN)


def test_start_the_full_proposal_prefilled_then_submit_it(client, w, frozen):
    invite(w, frozen)
    login(client, w.coordinator)
    overview = text_of(client.get(w.base))
    assert "Start the full proposal" in overview and "20 June 2030, 17:00 CEST" in overview
    started = client.post(f"{w.base}/start-full", data={"version": str(refresh(w).version)})
    assert started.status_code == 302 and refresh(w).state == "full_draft"
    page = words(client.get(f"{w.base}/submit"))
    assert "Submit the full proposal — HELIOS" in page
    assert "Deadline: 20 June 2030, 17:00 CEST (19 days 3 h left)" in page
    assert "Charité Berlin" in page and "Precision oncology for all" in page  # carried over
    assert confirm_and_submit(client, w).status_code == 302
    assert refresh(w).state == "full_submitted"
    assert [s.stage for s in w.session.scalars(select(Submission).order_by(Submission.id))] == ["pre", "full"]


def test_a_consortium_change_waits_for_the_secretariats_approval(client, w, frozen):
    invite(w, frozen)
    login(client, w.coordinator)
    client.post(f"{w.base}/start-full", data={"version": str(refresh(w).version)})
    add_partner(w.session, w.coordinator, refresh(w), PartnerData(
        organisation="Ospedale San Raffaele", country="IT", pi_name="Ida Italiano", pi_email="ida@example.org",
        funder_id=f.funder(w.session, "MOH-T").id, budget={"personnel": 100_000}))
    w.session.commit()

    page = words(client.get(f"{w.base}/submit"))
    assert ("partner Ospedale San Raffaele (Italy, PI ida@example.org) was added after the pre-proposal — "
            "needs the call secretariat's approval") in page
    assert "Not possible now: the consortium changes listed below need the call secretariat's approval." in page
    overview = words(client.get(w.base))
    assert "needs the call secretariat's approval" in overview
    refused = confirm_and_submit(client, w)
    assert refused.status_code == 422
    assert ("The full proposal was not submitted: partner Ospedale San Raffaele (Italy, PI ida@example.org) was "
            "added after the pre-proposal; changes need the call secretariat's approval.") in text_of(refused)
    assert refresh(w).state == "full_draft"

    ops.approve_changes(w.session, w.sec, refresh(w), "The CSC agreed on 1 June 2030.")
    w.session.commit()
    page = text_of(client.get(f"{w.base}/submit"))
    assert "— approved by the call secretariat" in page
    assert confirm_and_submit(client, w).status_code == 302
    assert refresh(w).state == "full_submitted"


# ---------------------------------------------------------------------------------------------------------
# The rebuttal

OPENED = dt.datetime(2030, 8, 19, 7, 0, tzinfo=UTC)  # 09:00 in Paris
REVIEWERS = (("Rolf Reviewerson", "rolf.reviewerson@example.org"), ("Rhea Revere", "rhea.revere@example.org"))


def in_rebuttal(w, frozen):
    w.proposal.state = "under_review"
    w.session.commit()
    for i, (name, email) in enumerate(REVIEWERS):
        reviewer = f.make_user(w.session, name, email=email)
        assignment = ReviewAssignment(call_id=w.call.id, proposal_id=w.proposal.id, reviewer_id=reviewer.id,
                                      stage="full")
        w.session.add(assignment)
        w.session.flush()
        w.session.add(Review(
            assignment_id=assignment.id, proposal_id=w.proposal.id, reviewer_id=reviewer.id, stage="full",
            scores={"excellence": 4.5 - i, "impact": 3, "implementation": 4}, status="submitted",
            comments={"excellence": f"Comment on excellence {i + 1}.", "impact": "Impact is unclear.",
                      "implementation": "Feasible."},
            recommendation="Worth funding." if i == 0 else "Borderline."))
    w.session.commit()
    frozen(OPENED)
    open_rebuttal(w.session, w.sec, w.call)
    w.session.commit()


def test_the_rebuttal_page_shows_anonymised_reviews_scores_and_the_window(client, w, frozen):
    in_rebuttal(w, frozen)
    login(client, w.coordinator)
    response = client.get(f"{w.base}/rebuttal")
    assert "The rebuttal window is open until 26 August 2030, 09:00 CEST (7 days 0 h left)." in words(response)
    page = text_of(response)
    assert "Reviewer 1" in page and "Reviewer 2" in page
    assert "<td>Excellence</td><td class=\"text-end\">4.5</td><td class=\"review-comment\">Comment on excellence 1." \
           "</td>" in page.replace("> <", "><")
    assert "3.5" in page and "Impact is unclear." in page and "Borderline." in page
    for name, email in REVIEWERS:
        for part in (name, email, name.split()[1]):
            assert part not in response.get_data(as_text=True)
    assert '<label class="form-label" for="text">Your rebuttal</label>' in page
    assert "0 of 6,000 characters used" in page and 'maxlength="6000"' in page
    assert "Submit the rebuttal" in page


def test_the_coordinator_submits_one_rebuttal_inside_the_window(client, w, frozen):
    in_rebuttal(w, frozen)
    login(client, w.coordinator)
    done = client.post(f"{w.base}/rebuttal", data={"text": "We thank the reviewers.\r\nOn impact: ..."})
    assert done.status_code == 302 and done.headers["Location"].endswith(w.base)
    (rebuttal,) = w.session.scalars(select(Rebuttal)).all()
    assert rebuttal.text == "We thank the reviewers.\nOn impact: ..."
    page = text_of(client.get(f"{w.base}/rebuttal"))
    assert "Your rebuttal was submitted." in page
    assert "We thank the reviewers." in page and "Submit the rebuttal</button>" not in page
    second = client.post(f"{w.base}/rebuttal", data={"text": "And one more thing."})
    assert second.status_code == 422
    assert "only one is allowed per proposal" in text_of(second)
    assert w.session.scalar(select(func.count(Rebuttal.id))) == 1


def test_an_over_long_rebuttal_is_refused_with_the_count_and_the_text_kept(client, w, frozen):
    in_rebuttal(w, frozen)
    login(client, w.coordinator)
    response = client.post(f"{w.base}/rebuttal", data={"text": "a" * 6001})
    assert response.status_code == 422
    page = text_of(response)
    assert 'id="text-error">your rebuttal has 6,001 characters; at most 6,000 are allowed' in page
    assert "6,001 of 6,000 characters used" in page and "a" * 6001 in page
    assert w.session.scalar(select(func.count(Rebuttal.id))) == 0


def test_a_rebuttal_after_the_window_is_refused(client, w, frozen):
    in_rebuttal(w, frozen)
    login(client, w.coordinator)
    frozen(OPENED + dt.timedelta(days=7))
    page = text_of(client.get(f"{w.base}/rebuttal"))
    assert "The rebuttal window closed on 26 August 2030, 09:00 CEST." in page
    assert "Submit the rebuttal</button>" not in page
    response = client.post(f"{w.base}/rebuttal", data={"text": "Late answer."})
    assert response.status_code == 422
    assert "the rebuttal window closed on 26 August 2030, 09:00 CEST" in text_of(response)
    assert w.session.scalar(select(func.count(Rebuttal.id))) == 0


def test_a_rebuttal_before_the_window_is_refused(client, w):
    w.proposal.state = "under_review"
    w.session.commit()
    login(client, w.coordinator)
    assert "The rebuttal window is not open yet." in text_of(client.get(f"{w.base}/rebuttal"))
    response = client.post(f"{w.base}/rebuttal", data={"text": "Early answer."})
    assert response.status_code == 422 and "the rebuttal window is not open yet" in text_of(response)


def test_members_read_the_reviews_but_only_the_coordinator_rebuts(client, w, frozen):
    in_rebuttal(w, frozen)
    login(client, w.member)
    page = text_of(client.get(f"{w.base}/rebuttal"))
    assert "Reviewer 1" in page
    assert "Only the coordinator can write the rebuttal for the consortium." in page
    assert client.post(f"{w.base}/rebuttal", data={"text": "From a partner."}).status_code == 403
    logout(client)
    login(client, w.officer)
    assert client.get(f"{w.base}/rebuttal").status_code == 403
    assert w.session.scalar(select(func.count(Rebuttal.id))) == 0


# ---------------------------------------------------------------------------------------------------------
# Decisions


def test_the_decision_page_gives_the_outcome_and_reasons_in_plain_words(client, w):
    ops.submit(w.session, w.coordinator, w.proposal.id, expected_version=w.proposal.version)
    w.proposal.state = "ineligible"
    partner = w.proposal.partners[2]
    w.session.add(EligibilityCheck(proposal_id=w.proposal.id, stage="pre", partner_id=partner.id,
                                   funder_id=partner.funder_id, status="ineligible",
                                   reason="the host is not a research institution"))
    w.session.commit()
    login(client, w.member)
    page = text_of(client.get(f"{w.base}/decision"))
    assert "Pre-proposal" in page and "Not eligible" in page
    assert "ISCIII-T, for Hospital Clínic: the host is not a research institution" in page
    assert "The decision letter will be available here once the secretariat releases it." in page
    overview = text_of(client.get(w.base))
    assert 'id="outcome-panel"' in overview and "Not eligible" in overview
    logout(client)
    login(client, w.officer)
    assert client.get(f"{w.base}/decision").status_code == 403


def test_the_decision_page_for_a_funded_proposal(client, w):
    w.proposal.state = "funded"
    w.session.commit()
    login(client, w.coordinator)
    page = text_of(client.get(f"{w.base}/decision"))
    assert "Eligible, and invited to submit a full proposal" in page
    assert "Full proposal" in page and "<strong>Funded</strong>" in page
