"""Mail and audit in the console: a message kind's wording edited with a preview (unknown placeholders and
sandbox escapes refused next to the field), used for the next such message; the outbox with resend for a
failed message; bulk mail previewed, then queued once; the audit log filtered, and its chain verified."""

from __future__ import annotations

import re

from sqlalchemy import select, update

from tests import factories as f
from tests.conftest import body_of
from tests.web.test_console_calls import events, login, plain, text_of  # noqa: F401
from tests.web.test_console_people import deliver
from workflow.models import AuditEvent, OutboxMessage
from workflow.operations import transition
from workflow.outbox import enqueue


def setup(session, frozen):
    frozen(f.PRE_OPEN)
    call = f.make_call(session)
    sec = f.secretariat(session, call)
    session.commit()
    return call, sec


def test_a_template_is_previewed_saved_audited_and_used(app, client, session, frozen, mailbox):
    call, sec = setup(session, frozen)
    login(client, sec)
    url = f"/secretariat/calls/{call.id}/mail/templates/role_invitation"
    page = text_of(client.get(url))
    assert "{{ link }}" in page and "the single-use link (required)" in page
    body = ("Dear {{ recipient.name }},\n\nplease join {{ call.title }} as {{ role }}: {{ link }}\n"
            "(valid until {{ expires }})\n")
    preview = client.post(url, data={"subject": "Join {{ call.title }}", "body": body, "preview": "Preview"})
    assert preview.status_code == 200
    shown = plain(preview)
    assert "Join Test Call 2030" in shown and "Dear Rita Reviewer, please join Test Call 2030 as Reviewer:" in shown
    assert not events(session, "mail.template_saved")  # a preview saves nothing

    typo = client.post(url, data={"subject": "Join", "body": body + "{{ recipent.name }}", "save": "Save"})
    assert typo.status_code == 422
    assert 'id="body-error">unknown placeholder: &#39;recipent&#39; is undefined' in text_of(typo)
    escape = client.post(url, data={"subject": "{{ ''.__class__.__mro__ }}", "body": body, "preview": "Preview"})
    assert escape.status_code == 422 and 'id="subject-error">' in text_of(escape)
    no_link = client.post(url, data={"subject": "Join", "body": "Hello", "save": "Save"})
    assert "the text must contain the placeholder {{ link }}" in plain(no_link)
    word_only = client.post(url, data={"subject": "Join", "body": "Open the link below to join.", "save": "Save"})
    assert "the text must contain the placeholder {{ link }}" in plain(word_only)  # the word is not the link
    assert not events(session, "mail.template_saved")

    saved = client.post(url, data={"subject": "Join {{ call.title }}", "body": body, "save": "Save"})
    assert saved.status_code == 302
    [event] = events(session, "mail.template_saved")
    assert event.actor_id == sec.id and event.after["subject"] == "Join {{ call.title }}"
    assert event.before["customised"] is False
    client.post(f"/secretariat/calls/{call.id}/people/invite", data={"email": "rev@example.org", "role": "reviewer"})
    [mail] = deliver(app, mailbox, 1)
    assert mail["Subject"] == "Join Test Call 2030"
    assert re.search(r"please join Test Call 2030 as Reviewer: http://jointcall\.test/secretariat/join/\S{43}",
                     body_of(mail))
    assert "this call's own" in plain(client.get(f"/secretariat/calls/{call.id}/mail"))
    client.post(url + "/reset")
    assert "default wording" in plain(client.get(url))
    assert len(events(session, "mail.template_reset")) == 1


def test_a_coordinator_wording_may_use_only_what_coordinator_mail_provides(client, session, frozen):
    """Coordinator mail is composed without a `recipient`: a wording using it is refused when saved, rather
    than silently replaced by the default when the real message is sent."""
    call, sec = setup(session, frozen)
    login(client, sec)
    url = f"/secretariat/calls/{call.id}/mail/templates/submission_receipt"
    refused = client.post(url, data={"subject": "Receipt", "body": "Dear {{ recipient.name }}", "save": "Save"})
    assert refused.status_code == 422 and "unknown placeholder" in plain(refused)
    assert not events(session, "mail.template_saved")
    fine = client.post(url, data={"subject": "Receipt", "body": "Dear {{ coordinator.name }}", "save": "Save"})
    assert fine.status_code == 302


def test_the_outbox_shows_failed_mail_and_resends_it(app, client, session, frozen):
    call, sec = setup(session, frozen)
    sent = enqueue(session, kind="bulk", to="a@example.org", subject="Hello A", body="text A", call_id=call.id)
    failed = enqueue(session, kind="decision", to="b@example.org", subject="Hello B", body="text B", call_id=call.id)
    enqueue(session, kind="bulk", to="c@example.org", subject="Other call", body="x", call_id=call.id + 99)
    session.flush()
    session.execute(update(OutboxMessage).where(OutboxMessage.id == sent.id).values(status="sent"))
    session.execute(update(OutboxMessage).where(OutboxMessage.id == failed.id).values(
        status="failed", attempts=8, last_error="SMTPRecipientsRefused: 550 no such user"))
    session.commit()
    login(client, sec)
    page = plain(client.get(f"/secretariat/calls/{call.id}/outbox"))
    assert "Failed (1)" in page and "Sent (1)" in page and "Other call" not in page
    assert "8 attempts: SMTPRecipientsRefused: 550 no such user" in page
    failed_only = text_of(client.get(f"/secretariat/calls/{call.id}/outbox", query_string={"status": "failed"}))
    assert f'id="message-{failed.id}"' in failed_only and f'id="message-{sent.id}"' not in failed_only
    response = client.post(f"/secretariat/calls/{call.id}/outbox/{failed.id}/resend")
    assert response.status_code == 302
    session.expire_all()
    again = session.get(OutboxMessage, failed.id)
    assert again.status == "queued" and again.attempts == 0
    [resent] = events(session, "mail.resent")
    assert resent.before["status"] == "failed" and resent.after["to"] == "b@example.org"
    refused = client.post(f"/secretariat/calls/{call.id}/outbox/{sent.id}/resend")
    assert "only failed messages can be sent again; this one is sent" in plain(client.get(refused.headers["Location"]))


def test_invitation_links_are_not_shown_in_the_outbox(client, session, frozen):
    call, sec = setup(session, frozen)
    login(client, sec)
    client.post(f"/secretariat/calls/{call.id}/people/invite", data={"email": "rev@example.org", "role": "reviewer"})
    page = text_of(client.get(f"/secretariat/calls/{call.id}/outbox"))
    assert "rev@example.org" in page and "/secretariat/join/" not in page


def test_bulk_mail_to_filtered_coordinators_is_previewed_then_queued_once(client, session, frozen):
    call, sec = setup(session, frozen)
    alpha = f.valid_proposal(session, call, acronym="ALPHA")
    beta = f.valid_proposal(session, call, acronym="BETA")
    f.valid_proposal(session, call, acronym="GAMMA")
    for p in (alpha, beta):
        transition(session, p.coordinator, p.id, "submit")
    session.commit()
    login(client, sec)
    form = client.get(f"/secretariat/calls/{call.id}/mail/bulk", query_string={"state": "submitted"})
    query = re.search(r'name="query" type="hidden" value="([^"]*)"', form.get_data(as_text=True)).group(1)
    assert query == "state=submitted"
    data = {"target": "coordinators", "query": query, "subject": "About {{ proposal.acronym }}",
            "body": "Dear {{ recipient.name }},\n{{ proposal.reference }} is {{ proposal.state }}.\n"}
    preview = client.post(f"/secretariat/calls/{call.id}/mail/bulk", data={**data, "preview": "Preview"})
    shown = plain(preview)
    assert "the first of 2 messages (nothing is queued yet)" in shown
    assert "About ALPHA" in shown and f"{alpha.reference} is Submitted." in shown
    assert "Queue the 2 messages" in shown
    assert not session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "bulk")).all()
    sent = client.post(f"/secretariat/calls/{call.id}/mail/bulk", data={**data, "send": "Send"})
    assert sent.status_code == 302
    session.expire_all()
    queued = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "bulk")).all()
    assert sorted((m.to_address, m.subject) for m in queued) == sorted(
        [(alpha.coordinator.email, "About ALPHA"), (beta.coordinator.email, "About BETA")])
    [event] = events(session, "mail.bulk_queued")
    assert event.after["recipients"] == 2 and event.after["queued"] == 2 and event.after["filter"] == "state=submitted"
    client.post(f"/secretariat/calls/{call.id}/mail/bulk", data={**data, "send": "Send"})
    session.expire_all()
    assert len(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "bulk")).all()) == 2
    bad = client.post(f"/secretariat/calls/{call.id}/mail/bulk",
                      data={**data, "body": "{{ proposal.budget }}", "preview": "Preview"})
    assert bad.status_code == 422 and "unknown placeholder" in plain(bad)


def test_bulk_mail_to_a_role(client, session, frozen):
    call, sec = setup(session, frozen)
    f.officer(session, call, "DFG-T")
    f.officer(session, call, "ANR-T")
    session.commit()
    login(client, sec)
    data = {"target": "officer", "query": "", "subject": "Sign-off opens", "body": "Hello {{ recipient.name }}"}
    preview = plain(client.post(f"/secretariat/calls/{call.id}/mail/bulk", data={**data, "preview": "Preview"}))
    assert "Hello Officer" in preview and "the first of 2 messages" in preview
    client.post(f"/secretariat/calls/{call.id}/mail/bulk", data={**data, "send": "Send"})
    assert len(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "bulk")).all()) == 2
    empty = client.post(f"/secretariat/calls/{call.id}/mail/bulk", data={**data, "target": "reviewer",
                                                                            "preview": "Preview"})
    assert empty.status_code == 422 and "nobody would get this message" in plain(empty)


def test_the_audit_log_filters_and_verifies_its_chain(client, session, frozen):
    call, sec = setup(session, frozen)
    f.valid_proposal(session, call, acronym="ALPHA")
    session.commit()
    login(client, sec)
    url = f"/secretariat/calls/{call.id}/audit"
    everything = client.get(url)
    call_events = session.scalars(select(AuditEvent).where(AuditEvent.call_id == call.id)).all()
    assert f"{len(call_events)} events" in plain(everything)
    created = client.get(url, query_string={"action": "proposal.created"})
    rows = re.findall(r'<tr id="event-(\d+)">', created.get_data(as_text=True))
    expected = [e.seq for e in call_events if e.action == "proposal.created"]
    assert list(map(int, rows)) == sorted(expected, reverse=True) and len(rows) == 1
    # The filter lists name what happened in this call, each once, in order; another call's events are not there.
    from workflow import audit

    audit.record(session, sec, "elsewhere.happened", call_id=call.id + 1000, object_type="other_thing", object_id=1)
    session.commit()
    html = client.get(url).get_data(as_text=True)
    options = {name: re.findall(r"<option(?: selected)?>([^<]+)</option>",
                                re.search(rf'<select[^>]* id="{name}"[^>]*>(.*?)</select>', html, re.S).group(1))
               for name in ("action", "object_type")}
    assert options["action"] == sorted({e.action for e in call_events})
    assert options["object_type"] == sorted({e.object_type for e in call_events})
    assert "elsewhere.happened" not in html and "other_thing" not in html
    by_actor = client.get(url, query_string={"actor": "cora"})
    assert all("Cora Coordinator" in a for a in re.findall(r"<td>([^<]*&lt;[^<]*)</td>",
                                                            by_actor.get_data(as_text=True)))
    assert "0 events" in plain(client.get(url, query_string={"since": "2031-01-01"}))
    assert f"{len(call_events)} events" in plain(client.get(url, query_string={"since": "2030-02-01",
                                                                               "until": "2030-02-01"}))
    verified = client.post(url + "/verify")
    assert "Audit chain verified: audit chain intact" in plain(client.get(verified.headers["Location"]))
    session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(reason="tampered"))
    session.commit()
    broken = client.post(url + "/verify")
    page = plain(client.get(broken.headers["Location"]))
    assert "Audit chain BROKEN: audit chain broken at event #2: its content was modified" in page
    officer = f.officer(session, call, "DFG-T")
    session.commit()
    login(client, officer)
    assert client.get(url).status_code == 403
    assert client.get("/secretariat/audit").status_code == 403


def test_the_reminder_page_shows_the_default_wording_that_is_sent(client, session, frozen):
    """With nothing saved, the page's text is the reminder kind's default (which remind_funders sends), and
    that default passes its own check: every placeholder it uses is one the funder reminder provides."""
    from workflow.mail_templates import KINDS

    call, sec = setup(session, frozen)
    login(client, sec)
    url = f"/secretariat/calls/{call.id}/mail/templates/reminder"
    page = client.get(url).get_data(as_text=True)
    kind = KINDS["reminder"]
    assert re.search(r'<textarea[^>]*name="body"[^>]*>\s*(.*?)</textarea>', page, re.S).group(1) == (
        kind.body.replace("'", "&#39;").replace('"', "&#34;"))
    assert all(f"{{{{ {name} }}}}" in page for name in ("stage", "funder", "pending", "partners", "link"))
    preview = client.post(url, data={"subject": kind.subject, "body": kind.body, "preview": "Preview"})
    assert preview.status_code == 200
    assert "the eligibility check of the pre-proposal stage of Test Call 2030 is waiting for your sign-off on " \
           "2 partners requesting funding from ANR:" in plain(preview)


def test_bulk_mail_renders_each_message_once_per_request(client, session, frozen, monkeypatch):
    from workflow import mail_templates

    call, sec = setup(session, frozen)
    f.officer(session, call, "DFG-T")
    f.officer(session, call, "ANR-T")
    session.commit()
    login(client, sec)
    rendered = []
    real = mail_templates.render_text
    monkeypatch.setattr(mail_templates, "render_text",
                        lambda subject, body, context: rendered.append(context["recipient"]["email"])
                        or real(subject, body, context))
    data = {"target": "officer", "query": "", "subject": "Sign-off opens", "body": "Hello {{ recipient.name }}"}
    client.post(f"/secretariat/calls/{call.id}/mail/bulk", data={**data, "preview": "Preview"})
    assert len(rendered) == 2 and len(set(rendered)) == 2  # the preview checks every message of the batch
    rendered.clear()
    assert client.post(f"/secretariat/calls/{call.id}/mail/bulk", data={**data, "send": "Send"}).status_code == 302
    assert len(rendered) == 2 and len(set(rendered)) == 2
    assert len(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "bulk")).all()) == 2
