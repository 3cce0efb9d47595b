"""The authorization matrix (issue 8, item 1): every route of the application's URL map × every role, with
the answer each role must get, in one world (tests/web/authz_world.py).

Allowed: a 2xx answer, or a redirect that is not to the login page. Refused: 401 or a redirect to the login
page (anonymous), 403 with a reason, or 404 (an object the role cannot know) — and the body then holds none
of the protected data of the coordinator's proposals (authz_world.MARKERS). No answer is ever a 500.

GET is sent for every rule that accepts it; a POST-only rule gets an empty POST: a refused role must be
refused, an allowed role must get a validation answer (4xx) or a redirect, never a 500. The allowed roles'
empty POSTs run last, after every other check, since some of them change the world (closing a stage...).

Roles with no business with the proposals (NEVER_SEE) get none of the markers in any answer, allowed or
refused, but for what a page shows them by design (SHOWN_BY_DESIGN). The other call's secretariat, using
its own call's URLs with this call's objects (IDs), is refused or sent back with a message, sees nothing, and
changes nothing (authz_world.intact).

A route with no entry in EXPECTED fails test_every_route_has_an_expectation. A real leak or 500 found here
goes into KNOWN_PROBLEMS (the main test leaves it out; there are none today).
"""

from __future__ import annotations

import io

import pytest

from tests.web import authz_world as aw
from workflow.db import Base

ALL = frozenset(aw.ROLES)
SEC = frozenset({"secretariat", "admin"})
ADMIN = frozenset({"admin"})
APPLICANTS = frozenset({"coordinator", "member"})
LOGGED_IN = ALL - {"anonymous"}
REVIEWERS = frozenset({"reviewer", "conflicted_reviewer", "unassigned_reviewer"})
OFFICERS = frozenset({"officer", "other_officer"})
ANY = "any"  # any answer but a 500 (token pages with an unknown token, the login form...)

# Who reads a proposal of the coordinator: its consortium, this call's secretariat, admin, an officer of a
# funder concerned (once it is submitted; the world's call sets officers_read_all_proposals = false) and an
# assigned reviewer who accepted the declaration.
PROPOSAL_READERS = APPLICANTS | SEC | {"officer", "reviewer"}
FUNDERS_AND_SEC = OFFICERS | SEC

# endpoint -> the roles that are allowed (every other role must be refused), or ANY.
EXPECTED: dict[str, frozenset | str] = {
    # Public pages and the account pages (anyone; a token page with an unknown token answers 404).
    "public.index": ALL, "public.call": ALL,
    "auth.login": ALL, "auth.logout": ALL, "auth.register": ALL, "auth.forgot_password": ALL,
    "auth.resend_confirmation": ALL, "auth.check_mail": ALL,
    "auth.confirm_email": ANY, "auth.reset_password": ANY, "applicant.accept_invitation": ANY,
    "reviewer.invitation": ANY, "reviewer.decline": ANY, "secretariat.join": ANY, "secretariat.join_post": ANY,
    # The applicant's pages.
    "applicant.dashboard": LOGGED_IN, "applicant.new_proposal": LOGGED_IN,
    "applicant.proposal": PROPOSAL_READERS, "applicant.decision": APPLICANTS | SEC,
    "applicant.decision_letter": APPLICANTS | SEC, "applicant.documents": PROPOSAL_READERS,
    "applicant.download_document": PROPOSAL_READERS, "applicant.edit": APPLICANTS,
    "applicant.members": {"coordinator"}, "applicant.partner_edit": APPLICANTS, "applicant.partner_move": APPLICANTS,
    "applicant.partner_remove": APPLICANTS, "applicant.partner_new": APPLICANTS, "applicant.rebuttal": APPLICANTS | SEC,
    "applicant.receipts": APPLICANTS | SEC, "applicant.receipt_pdf": APPLICANTS | SEC,
    "applicant.reopen": {"coordinator"}, "applicant.start_full": {"coordinator"}, "applicant.submit": APPLICANTS | SEC,
    # The withdraw page (GET) is shown to whoever reads the proposal; the POST asks for proposal.withdraw.
    # (ZEBRAFISH-SB: the reviewer is not assigned to it.)
    "applicant.withdraw": APPLICANTS | SEC | {"officer"},
    # The funders' eligibility sign-off.
    "funder.index": OFFICERS, "funder.dashboard": OFFICERS, "funder.export": OFFICERS, "funder.bulk": OFFICERS,
    "funder.partner": {"officer"} | SEC, "funder.sign_off_partner": {"officer"},
    # The funding decision.
    "funding.index": FUNDERS_AND_SEC | {"other_secretariat"},
    "funding.call_home": ALL,  # a plain redirect to the scenario, which refuses
    "funding.scenario": FUNDERS_AND_SEC, "funding.budgets": FUNDERS_AND_SEC,
    "funding.funder_budget": {"officer"} | SEC, "funding.increase_budget": {"officer"} | SEC,
    "funding.confirmations_page": FUNDERS_AND_SEC, "funding.confirm": {"officer"},
    "funding.funding_list_export": {"officer"} | SEC,
    "funding.approve": SEC, "funding.approve_post": SEC, "funding.recompute": SEC, "funding.what_if_page": SEC,
    "funding.letters": SEC, "funding.letter_preview": SEC, "funding.letters_export": SEC,
    "funding.letters_send": SEC, "funding.letters_send_post": SEC, "funding.letter_template": SEC,
    "funding.letter_template_post": SEC, "funding.letter_job": SEC, "funding.letter_job_download": SEC,
    "funding.letter_job_restart": SEC,
    # The reviewer's pages.
    "reviewer.home": REVIEWERS, "reviewer.call_page": REVIEWERS, "reviewer.conflicts": REVIEWERS,
    "reviewer.declaration": REVIEWERS, "reviewer.profile": REVIEWERS, "reviewer.declare": REVIEWERS,
    "reviewer.proposal": {"reviewer"} | SEC, "reviewer.review": {"reviewer"},
    "reviewer.reviews": {"reviewer"} | SEC, "reviewer.discussion": {"reviewer"} | SEC,
    # The secretariat's console (this call's secretariat; admin everywhere).
    "secretariat.console_home": SEC | {"other_secretariat"}, "secretariat.calls": SEC | {"other_secretariat"},
    "secretariat.audit_all": ADMIN, "secretariat.audit_verify_all": ADMIN,
    "secretariat.secretariats": ADMIN, "secretariat.secretariats_invite": ADMIN,
    "secretariat.call_new": ADMIN, "secretariat.call_new_form": ADMIN, "secretariat.call_new_upload": ADMIN,
}
SECRETARIAT_OF_THE_CALL = (
    "audit_log audit_verify bulk_mail bulk_mail_post call_home call_replace call_settings call_settings_post "
    "close_stage close_stage_post close_step dashboard definition_toml diagram formal_sign_off mail_home "
    "mail_template mail_template_post mail_template_reset matrix matrix_export open_stage open_stage_post outbox "
    "outbox_resend people people_cancel people_invite people_revoke proposal_bulk proposal_bulk_apply "
    "proposal_checks proposal_export proposal_list remind reviews_assign reviews_assignments reviews_conflicts "
    "reviews_conflicts_detect reviews_consensus reviews_consensus_post reviews_export reviews_home "
    "reviews_invitations reviews_invitations_send reviews_override reviews_panel reviews_panel_apply reviews_pool "
    "reviews_pool_invite reviews_preview reviews_preview_accept reviews_preview_discard reviews_progress "
    "reviews_ranking reviews_ranking_approve reviews_ranking_build reviews_remind reviews_reopen reviews_unassign "
    "step_closed").split()
EXPECTED.update({f"secretariat.{name}": SEC for name in SECRETARIAT_OF_THE_CALL})
EXPECTED = {k: (v if v == ANY else frozenset(v)) for k, v in EXPECTED.items()}

# (endpoint, role) -> why this case is a known problem of the application (xfail, strict).
KNOWN_PROBLEMS: dict[tuple[str, str], str] = {}

# Roles with no business with the coordinator's proposals: none of the markers in ANY answer they get, allowed
# or refused (the applicant dashboard, the reviewer's call page, the other funder's dashboard...)...
NEVER_SEE = frozenset({"anonymous", "outsider", "other_officer", "conflicted_reviewer", "unassigned_reviewer",
                       "other_secretariat"})
# ...except what a page shows them by design: the call's reviewers declare conflicts from the acronym, the
# title and the partner organisations (not the abstract, the PIs, the amounts or the reviews); every officer
# of the call follows the funding scenario (acronyms and amounts, not the PIs).
SHOWN_BY_DESIGN = {
    "reviewer.conflicts": {"ZEBRAFISH", "Quokka-lit", aw.ORGANISATION},
    "funding.scenario": {"ZEBRAFISH", "271,828", "271 828", "271828"},
}

# Roles that see a form's page but may not send it.
POST_REFUSED: dict[str, frozenset] = {
    # Only the coordinator submits (lifecycle: submit, submit_full); the coordinator or the secretariat withdraws.
    "applicant.withdraw": frozenset({"officer", "member"}),
    "applicant.submit": SEC | {"member"},
}

# URL arguments naming an object that belongs to one call.
OBJECT_ARGUMENTS = {"proposal_id", "check_id", "job_id", "confirmation_id", "document_id", "partner_id",
                    "submission_id", "reviewer_id", "grant_id", "invitation_id", "message_id", "event_id",
                    "assignment_id", "review_id"}

# The reviews are not released to the applicants in this world (no rebuttal window, no letter with them): the
# consortium never reads the comments nor learns who the reviewers are.
REVIEW_SECRETS = ("Grumpulous", "Rita Reviewer", "Carl Conflicted", "Otto Utrecht", "Olga Leiden")

# Pages that answer the allowed roles with a validation message (4xx) in this world's state.
STATE_MESSAGE = {"secretariat.reviews_preview"}

# POST-only rules whose allowed roles are not sent the empty POST (it would start background work).
REFUSALS_ONLY = {"funding.letters_export"}


@pytest.fixture(autouse=True)
def all_tables(engine):
    """The letter and review tables, in case the migration does not have them yet (as test_letters does)."""
    from reviews import plugin

    Base.metadata.create_all(engine, checkfirst=True)
    plugin.install()


def rules(app):
    return [r for r in app.url_map.iter_rules() if r.endpoint != "static"]


def url_args(w: aw.World, rule) -> dict:
    ep = rule.endpoint
    p = w.p
    proposal = {
        "applicant.edit": p["draft"], "applicant.members": p["draft"], "applicant.partner_edit": p["draft"],
        "applicant.partner_move": p["draft"], "applicant.partner_remove": p["draft"],
        "applicant.partner_new": p["draft"], "applicant.submit": p["draft"], "applicant.withdraw": p["sent"],
        "applicant.reopen": p["sent"], "applicant.receipts": p["sent"], "applicant.receipt_pdf": p["sent"],
        "applicant.decision": p["funded"], "applicant.decision_letter": p["funded"],
        "funding.letter_preview": p["funded"], "secretariat.proposal_checks": p["main"],
    }.get(ep, p["main"])
    values = {
        "code": w.call.code, "what": "registered", "token": "no-such-token-" + "x" * 20,
        "call_id": w.call.id, "kind": "full", "fmt": "csv", "check_id": w.ids["check"],
        "funder_id": w.ids["dfg"],
        "stage": "full", "proposal_id": proposal.id, "job_id": w.ids["job"],
        "confirmation_id": w.ids.get("confirmation", 0), "document_id": w.ids["document"],
        "partner_id": p["draft"].partners[1].id, "submission_id": w.ids["submission"],
        "reviewer_id": w.users["conflicted_reviewer"].id, "grant_id": w.ids["grant"],
        "invitation_id": w.ids["invitation"], "message_id": w.ids["message"], "event_id": w.ids["event"],
        "assignment_id": w.ids["spare_assignment"], "review_id": w.ids["review"],
    }
    if ep.startswith("secretariat.mail_template"):
        values["kind"] = "submission_receipt"
    if ep == "secretariat.reviews_export":
        values["what"] = "reviews"
    return {name: values[name] for name in rule.arguments}


def variants(w: aw.World, rule) -> list[tuple[dict, frozenset | str | None]]:
    """The URLs to try for a rule, each with its own expectation (None: the rule's): every format of an
    export, and the objects of another funder (ANR-T) where a funder's object is named — the DFG-T officer
    is refused those."""
    ep = rule.endpoint
    out = [({}, None)]
    if "fmt" in rule.arguments:
        out = [({"fmt": f}, None) for f in (("html", "pdf") if ep == "funding.letter_preview" else ("csv", "xlsx"))]
    if "check_id" in rule.arguments:
        out.append(({"check_id": w.ids["anr_check"]}, SEC if ep == "funder.partner" else frozenset()))
    if "confirmation_id" in rule.arguments:
        out.append(({"confirmation_id": w.ids["anr_confirmation"]}, frozenset()))
    if "funder_id" in rule.arguments:
        out.append(({"funder_id": w.ids["anr"]} | dict(out[0][0]), SEC))
    return out


def classify(response) -> str:
    status = response.status_code
    location = response.headers.get("Location", "")
    if status >= 500:
        return "500"
    if status == 401 or (300 <= status < 400 and "/login" in location):
        return "login"
    if status in (403, 404):
        return "refused"
    if status < 400:
        return "allowed"
    return f"{status}"


def body_text(response) -> str:
    """What the answer says, spreadsheets and PDFs included (their text is compressed)."""
    data = response.get_data()
    if data.startswith(b"%PDF"):
        from pypdf import PdfReader

        return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)
    if data.startswith(b"PK") and "spreadsheet" in response.headers.get("Content-Type", ""):
        import openpyxl

        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
        return "\n".join(str(v) for sheet in book for row in sheet.iter_rows(values_only=True) for v in row
                         if v is not None)
    return data.decode("utf-8", "replace")


def leaks(response) -> list[str]:
    body = body_text(response)
    return [m for m in aw.MARKERS if m in body]


def test_every_route_has_an_expectation(app):
    endpoints = {r.endpoint for r in rules(app)}
    assert sorted(endpoints - EXPECTED.keys()) == [], "routes without an entry in the authorization matrix"
    assert sorted(EXPECTED.keys() - endpoints) == [], "entries of the matrix for routes that no longer exist"


def run_matrix(app, session, frozen, storage_dir, only: set[tuple[str, str]] | None = None) -> list[tuple]:
    """Every route × every role in one world; returns the failures as (endpoint, role, message)."""
    w = aw.build(session, storage_dir, frozen)
    aw.approve_and_confirm(app, w, session)
    clients = {}
    for role in aw.ROLES:
        clients[role] = app.test_client()
        if role != "anonymous":
            aw.login(clients[role], w.users[role])
    adapter = app.url_map.bind("jointcall.test")
    failures, later = [], []
    for rule in sorted(rules(app), key=lambda r: r.rule):
        ep = rule.endpoint
        method = "GET" if "GET" in rule.methods else "POST"
        for (variant, special), role in [(v, r) for v in variants(w, rule) for r in aw.ROLES]:
            if only is not None and (ep, role) not in only:
                continue
            expected = EXPECTED.get(ep, frozenset()) if special is None else special
            url = adapter.build(ep, url_args(w, rule) | variant)
            if method == "POST" and (expected == ANY or role in expected):
                if ep not in REFUSALS_ONLY:
                    later.append((ep, url, role))
                continue
            response = clients[role].open(url, method=method, data={})
            problem = check(ep, role, expected, classify(response), response, method)
            if problem:
                failures.append((ep, role, f"{method} {url} as {role}: {problem}"))
            if method == "GET" and "POST" in rule.methods:
                # The form's POST too: refused to whoever may not even see the page, and to POST_REFUSED.
                post_expected = expected if expected == ANY else expected - POST_REFUSED.get(ep, frozenset())
                if post_expected == ANY or role in post_expected:
                    later.append((ep, url, role))
                    continue
                response = clients[role].post(url, data={})
                problem = check(ep, role, post_expected, classify(response), response, "POST")
                if problem:
                    failures.append((ep, role, f"POST {url} as {role}: {problem}"))
    # The other call's secretariat, in its own call's URLs naming this call's objects: refused, nothing shown.
    for rule in sorted(rules(app), key=lambda r: r.rule):
        ep = rule.endpoint
        if "call_id" not in rule.arguments or not (set(rule.arguments) & OBJECT_ARGUMENTS):
            continue
        if only is not None and (ep, "other_secretariat/cross-call") not in only:
            continue
        method = "GET" if "GET" in rule.methods else "POST"
        url = adapter.build(ep, url_args(w, rule) | variants(w, rule)[0][0] | {"call_id": w.other_call.id})
        # A form's POST may answer with a redirect to the other call's page and a message saying no such object.
        data = {"confirm": "y", "reason": "cross-call"}
        response = clients["other_secretariat"].open(url, method=method, data=data)
        shown = leaks(response)
        redirected = method == "POST" and 300 <= response.status_code < 400
        if redirected:
            landing = clients["other_secretariat"].get(response.headers["Location"])
            shown += leaks(landing)
        if not (classify(response) == "refused" or redirected) or shown:
            failures.append((ep, "other_secretariat/cross-call",
                             f"{method} {url} as the other call's secretariat, with this call's object: expected "
                             f"refused, got {response.status_code} {shown or ''}"))
    failures += [("(world)", "other_secretariat/cross-call", f"after the cross-call requests: {problem}")
                 for problem in aw.intact(session, w)]
    # The allowed roles' empty POSTs, last (they may change the world); logging out at the very end.
    for ep, url, role in sorted(later, key=lambda t: (t[0] == "auth.logout", t)):
        response = clients[role].post(url, data={})
        if response.status_code >= 500:
            failures.append((ep, role, f"POST {url} as {role}: an empty POST of an allowed role got a 500"))
    return failures


def test_the_authorization_matrix(app, session, frozen, settings_overrides):
    failures = [message for ep, role, message in run_matrix(app, session, frozen, settings_overrides["storage_dir"])
                if (ep, role) not in KNOWN_PROBLEMS]
    assert failures == [], f"{len(failures)} answers break the authorization matrix:\n" + "\n".join(failures)


GENERIC_403 = "have the permission to access the requested resource"  # werkzeug's text when no reason is given


def check(ep, role, expected, got, response, method) -> str | None:
    if got == "500":
        return "got a 500"
    if role in NEVER_SEE:
        found = [m for m in leaks(response) if m not in SHOWN_BY_DESIGN.get(ep, ())]
        if found:
            return f"answered {response.status_code} and shows {found}"
    if role in APPLICANTS:
        body = body_text(response)
        found = [m for m in REVIEW_SECRETS if m in body]
        if found:
            return f"answered {response.status_code} and shows the unreleased reviews: {found}"
    if expected == ANY:
        return None
    if role in expected:
        if ep in STATE_MESSAGE and 400 <= response.status_code < 500:
            return None
        return None if got == "allowed" else f"expected allowed, got {got} ({response.status_code})"
    if got not in ("login", "refused"):
        return f"expected refused, got {got} ({response.status_code} {response.headers.get('Location', '')})"
    if role == "anonymous" and got != "login" and response.status_code != 404:
        return f"expected the login page, got {response.status_code}"
    found = leaks(response)
    if found:
        return f"refused ({response.status_code}) but the answer shows {found}"
    if response.status_code == 403 and GENERIC_403 in response.get_data(as_text=True):
        return "refused with 403 but without a reason (the generic text)"
    return None
