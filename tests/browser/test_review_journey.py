"""The review of the pre-proposals in Chromium: the secretariat invites a reviewer, who sets a password from
the mailed link, accepts the declaration, declares a conflict with one proposal, reviews another and cannot
open the conflicted one; the secretariat runs the automatic assignment (preview, accept), enters the
panel's consensus, approves the ranking list and sends the invitations to the full stage."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

from playwright.sync_api import Page, expect
from sqlalchemy import select

from reviews.models import Conflict, RankingList, Review, ReviewAssignment
from reviews.scoring import submit_review
from tests import factories as f
from tests.browser.conftest import log_in, log_out
from tests.conftest import body_of
from tests.unit.reviews_helpers import make_proposal, make_reviewer
from workflow.accounts import grant_role
from workflow.models import Proposal

RITA_PASSWORD = "a long reviewer passphrase"
NOW = dt.datetime(2030, 4, 2, 9, 0, tzinfo=dt.UTC)
HEIDELBERG = (("Universität Heidelberg", "DE", "DFG-T", 200_000), ("Institut Curie", "FR", "ANR-T", 300_000),
              ("Hospital Clínic", "ES", "ISCIII-T", 100_000))
COMMENTS = {"excellence": "Sound hypothesis.", "impact": "Useful for clinics.", "implementation": "Feasible plan."}



def flash(page: Page):
    return page.locator("[role=status], [role=alert]").first


def test_review_of_the_pre_proposals_from_invitation_to_the_full_stage(page: Page, live_server, session, frozen,
                                                                       shot, mailbox, app, mail):
    page.set_default_timeout(10_000)
    frozen(NOW)
    call = f.make_call(session)
    sam = f.make_user(session, "Sam Secretariat", email="sam@jcs.example.org")
    grant_role(session, None, sam, "secretariat", call.id)
    xena, yves = (make_reviewer(session, call, name, email=email, keywords=kw, organisation=org, country=country)
                  for name, email, kw, org, country in (
                      ("Xena Xu", "xena@leiden.example.nl", ["oncology"], "Universiteit Leiden", "NL"),
                      ("Yves Yilmaz", "yves@porto.example.pt", ["diabetes"], "Universidade do Porto", "PT")))
    # Zoltan works in Heidelberg, a partner of BETAGEN: a detected conflict.
    zoltan = make_reviewer(session, call, "Zoltan Zima", email="zoltan@uni-heidelberg.example.de",
                           keywords=["oncology"], organisation="Universität Heidelberg", country="DE")
    coord_a = f.make_user(session, "Ada Alpha", email="ada@alpha.example.org")
    coord_b = f.make_user(session, "Bo Beta", email="bo@beta.example.org")
    alpha = make_proposal(session, call, "ALPHA", state="pre_review", coordinator=coord_a,
                          title="Aldehyde biomarkers in leukaemia", keywords="oncology; leukaemia",
                          abstract="We follow aldehyde dehydrogenase in leukaemic stem cells.")
    beta = make_proposal(session, call, "BETAGEN", state="pre_review", coordinator=coord_b, partners=HEIDELBERG,
                         title="Beta cells regrown in vivo", keywords="diabetes; regeneration",
                         abstract="Regenerating pancreatic beta cells with small molecules.")
    session.commit()

    # 1. The secretariat invites Rita by e-mail.
    log_in(page, live_server, sam.email)
    page.goto(live_server + f"/secretariat/calls/{call.id}/reviews/pool")
    page.get_by_label("E-mail address of the reviewer").fill("rita@ki.example.se")
    page.get_by_label("Name (optional)").fill("Rita Reviewer")
    page.get_by_role("button", name="Send the invitation").click()
    expect(flash(page)).to_contain_text("Invitation sent to rita@ki.example.se")
    expect(page.locator("#pool")).to_contain_text("Rita Reviewer")
    shot("review-1-pool")
    log_out(page)

    # 2. Rita opens the mailed link, chooses her password, accepts, then accepts the declaration.
    (invitation,) = mail.wait(to="rita@ki.example.se")
    link = re.search(r"https?://\S+", body_of(invitation)).group(0)
    page.goto(live_server + urlsplit(link).path)
    expect(page.locator("#invitation-summary")).to_contain_text("Test Call 2030")
    page.get_by_label("Choose a password").fill(RITA_PASSWORD)
    page.get_by_label("Repeat the password").fill(RITA_PASSWORD)
    shot("review-2-invitation")
    page.get_by_role("button", name="Set the password and accept").click()
    expect(page.get_by_role("heading", name="Confidentiality and no-conflict declaration")).to_be_visible()
    expect(page.locator("#whoami")).to_have_text("Rita Reviewer")
    page.get_by_label("I have read the declaration above and accept it").check()
    page.get_by_role("button", name="Accept the declaration").click()
    expect(flash(page)).to_contain_text("you accepted the confidentiality and no-conflict declaration")
    page.get_by_role("link", name="Edit your profile").click()
    page.get_by_label("Expertise keywords").fill("diabetes; regeneration; islet transplantation")
    page.get_by_label("Organisation", exact=True).fill("Karolinska Institutet")
    page.get_by_label("Country", exact=True).select_option("SE")
    page.get_by_role("button", name="Save the profile").click()
    expect(flash(page)).to_contain_text("Your profile is saved.")

    # 3. She declares a conflict with ALPHA, seeing only acronyms, titles and partner organisations.
    page.get_by_role("link", name="Declare a conflict of interest").click()
    expect(page.locator("#declaration-list")).to_contain_text("Institut Curie")
    expect(page.locator("#declaration-list")).not_to_contain_text("aldehyde dehydrogenase")
    page.get_by_label("What is your conflict with ALPHA?").fill("I co-supervise a PhD student with its coordinator.")
    shot("review-3-declare-conflict")
    page.get_by_role("button", name="Declare a conflict with ALPHA").click()
    expect(flash(page)).to_contain_text("Your conflict of interest with ALPHA is recorded")
    log_out(page)
    rita = session.scalar(select(Conflict).where(Conflict.proposal_id == alpha.id, Conflict.rule == "declared")).reviewer

    # 4. The secretariat sees both conflicts and runs the automatic assignment: preview, then accept.
    log_in(page, live_server, sam.email)
    page.goto(live_server + f"/secretariat/calls/{call.id}/reviews/conflicts")
    expect(page.locator("#conflicts")).to_contain_text("I co-supervise a PhD student with its coordinator.")
    expect(page.locator("#conflicts")).to_contain_text("works at Universität Heidelberg, a partner of this proposal")
    page.get_by_role("link", name="Reviews overview").click()
    page.locator("#stage-pre").get_by_role("link", name="Assignment").click()
    page.get_by_label("Load cap: most proposals per reviewer").fill("2")
    page.get_by_role("button", name="Preview the automatic assignment").click()
    expect(page.locator("#preview-summary")).to_contain_text("Nothing is assigned yet. 6 new assignments proposed")
    pairs = page.locator("#preview-pairs tbody tr")
    expect(pairs).to_have_count(6)
    expect(page.locator(f"tr.pair[data-proposal='{beta.id}'][data-reviewer='{rita.id}']")).to_contain_text(
        "shares keywords: diabetes, regeneration")
    expect(page.locator(f"tr.pair[data-proposal='{alpha.id}'][data-reviewer='{rita.id}']")).to_have_count(0)
    expect(page.locator(f"tr.pair[data-proposal='{beta.id}'][data-reviewer='{zoltan.id}']")).to_have_count(0)
    expect(page.locator("#all-covered")).to_contain_text("Every proposal gets 3 reviewers")
    shot("review-4-assignment-preview")
    page.get_by_role("button", name="Accept this assignment").click()
    expect(flash(page)).to_contain_text("6 assignments written; 4 reviewers were told by e-mail.")
    expect(page.locator(f"#proposal-{beta.id}")).to_contain_text("Rita Reviewer")
    shot("review-5-assigned")
    log_out(page)

    # 5. Rita reviews BETAGEN: the form says what is missing, next to the field; then she submits.
    log_in(page, live_server, "rita@ki.example.se", RITA_PASSWORD)
    page.goto(live_server + "/review/")
    page.get_by_role("link", name="Test Call 2030").click()
    expect(page.locator("#assignments")).to_contain_text("BETAGEN")
    expect(page.locator("#assignments")).not_to_contain_text("ALPHA")
    page.get_by_role("link", name="Read BETAGEN").click()
    expect(page.locator("#proposal-texts")).to_contain_text("Regenerating pancreatic beta cells")
    page.get_by_role("link", name="Write your review").click()
    for name, score in (("Excellence", "4.5"), ("Impact", "4"), ("Quality and efficiency of the implementation", "3.5")):
        page.get_by_label(f"Score for {name}").select_option(score)
    page.get_by_label("Comment on Excellence").fill("Original approach with strong preliminary data.")
    page.get_by_label("Comment on Impact").fill("Could spare patients daily insulin.")
    page.get_by_label("Your recommendation").select_option("recommended")
    page.get_by_role("button", name="Submit review").click()
    expect(page.locator("#comment_implementation-error")).to_have_text(
        "write a comment on Quality and efficiency of the implementation")
    expect(page.get_by_label("Comment on Excellence")).to_have_value("Original approach with strong preliminary data.")
    shot("review-6-review-form-errors")
    page.get_by_label("Comment on Quality and efficiency of the implementation").fill("The work plan is realistic.")
    page.get_by_role("button", name="Submit review").click()
    expect(flash(page)).to_contain_text("Your review of BETAGEN is submitted and locked.")
    expect(page.locator("#own-review")).to_contain_text("Could spare patients daily insulin.")

    # 6. She cannot open ALPHA: "not available", and nothing of it on the page.
    for path in (f"/review/proposals/{alpha.id}", f"/review/proposals/{alpha.id}/reviews",
                 f"/review/proposals/{alpha.id}/discussion"):
        response = page.goto(live_server + path)
        assert response.status == 403
        expect(page.locator("#error-message")).to_contain_text("not available")
        html = page.content()
        assert "ALPHA" not in html and "Aldehyde" not in html and "leukaemi" not in html
    shot("review-7-not-available")
    log_out(page)

    # The other reviewers submit their reviews (through the same operations).
    session.expire_all()
    grades = {alpha.id: {"excellence": 3, "impact": 3, "implementation": 3},
              beta.id: {"excellence": 4, "impact": 4.5, "implementation": 4}}
    for reviewer in (xena, yves, zoltan):
        for a in session.scalars(select(ReviewAssignment).where(ReviewAssignment.reviewer_id == reviewer.id)):
            submit_review(session, reviewer, a, scores=grades[a.proposal_id], comments=COMMENTS,
                          recommendation="recommended")
    session.commit()
    assert session.scalar(select(Review).where(Review.reviewer_id == rita.id)).status == "submitted"

    # 7. The secretariat enters the panel's consensus on both proposals.
    log_in(page, live_server, sam.email)
    page.goto(live_server + f"/secretariat/calls/{call.id}/reviews/pre/panel")
    expect(page.locator(f"#panel-{beta.id}")).to_contain_text("4.5, 4, 4")
    shot("review-8-panel")
    for proposal, scores, recommendation, summary in (
            (beta, ("4.5", "4", "4"), "Recommended", "Original and feasible; strong clinical relevance."),
            (alpha, ("3", "2.5", "3"), "Not recommended", "Impact is not made clear.")):
        page.get_by_role("link", name=f"Enter the consensus on {proposal.acronym}").click()
        expect(page.locator("#reviews-side-by-side")).to_be_visible()
        for name, score in zip(("Excellence", "Impact", "Quality and efficiency of the implementation"), scores,
                               strict=True):
            page.get_by_label(f"Consensus score for {name}").select_option(score)
        page.get_by_label(recommendation, exact=True).check()
        page.get_by_label("The panel's summary (the applicants read it)").fill(summary)
        if proposal is beta:
            shot("review-9-consensus")
        page.get_by_role("button", name="Save the consensus").click()
        expect(flash(page)).to_contain_text(f"The panel's consensus on {proposal.acronym} is recorded")

    # 8. The ranking list: built with its reasons, approved, frozen.
    page.locator("#stage-nav").get_by_role("link", name="Ranking").click()
    page.get_by_role("button", name="Build the ranking list").click()
    expect(page.locator("#rank-1")).to_contain_text("BETAGEN")
    expect(page.locator("#rank-2")).to_contain_text("total 8.5, below BETAGEN (12.5)")
    page.get_by_role("button", name="Approve the ranking list (freeze)").click()
    expect(page.locator("#ranking-status")).to_contain_text("the list is frozen")
    shot("review-10-ranking-approved")

    # 9. The invitations: the budget of the invited set per funder, then the messages go out.
    page.get_by_role("link", name="Choose the proposals to invite").click()
    expect(page.get_by_label("Invite BETAGEN")).to_be_checked()
    expect(page.get_by_label("Invite ALPHA")).not_to_be_checked()
    expect(page.locator("#budget-DFG-T")).to_contain_text("€200,000")
    expect(page.locator("#budget-DFG-T")).to_contain_text("€2,000,000")
    shot("review-11-invitations")
    page.get_by_role("button", name="Send the invitations and the not-invited messages").click()
    expect(flash(page)).to_contain_text("1 proposal is invited to the full stage and 1 is not invited")
    expect(page.locator("#decided")).to_contain_text("BETAGEN: Invited to full proposal")
    shot("review-12-invitations-sent")

    session.expire_all()
    assert session.get(Proposal, beta.id).state == "invited"
    assert session.get(Proposal, alpha.id).state == "not_invited"
    assert session.scalar(select(RankingList.status)) == "approved"
    (invited,) = mail.wait(to="bo@beta.example.org")
    assert "invited to the full-proposal stage" in body_of(invited)
    (not_invited,) = mail.wait(to="ada@alpha.example.org")
    assert "was not invited to the full stage" in body_of(not_invited)
