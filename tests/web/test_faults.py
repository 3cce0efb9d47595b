"""Faults: the database failing in the middle of a submit leaves nothing half-done and the page says so
without a stack trace; with the SMTP server down the receipt stays queued and goes out exactly once when
it is back; a bulk PDF export killed mid-way restarts into one complete ZIP; restarting the server loses
no submitted data."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from tests import factories as f
from tests.web.test_letters import check_letters, decided  # noqa: F401  (fixtures)
from tests.web.test_submission import login, text_of
from webapp import create_app
from webapp.cli import main
from workflow.audit import verify
from workflow.models import AuditEvent, AuditHead, OutboxMessage, Proposal, Submission
from workflow.operations import content_hash


@pytest.fixture
def w(session, frozen):
    frozen(f.PRE_OPEN)

    class W:
        pass

    w = W()
    w.session = session
    w.call = f.make_call(session)
    w.proposal = f.valid_proposal(session, w.call, acronym="HELIOS")
    w.coordinator = w.proposal.coordinator
    session.commit()
    w.base = f"/my/proposals/{w.proposal.id}"
    return w


def state_of(session, proposal_id):
    """Everything a submit touches, as the database has it."""
    session.rollback()
    session.expire_all()
    p = session.get(Proposal, proposal_id)
    head = session.get(AuditHead, 1)
    return {
        "proposal": (p.state, p.version),
        "submissions": session.scalar(select(func.count(Submission.id))),
        "audit": (session.scalar(select(func.count(AuditEvent.id))), head.seq, head.hash),
        "outbox": session.execute(select(OutboxMessage.kind, OutboxMessage.to_address, OutboxMessage.status)
                                  .order_by(OutboxMessage.id)).all(),
    }


def submit(client, w):
    return client.post(f"{w.base}/submit", data={"version": str(w.proposal.version), "confirm": "y"})


# ---------------------------------------------------------------------------------------------------------
# The database fails in the middle of the submit


FAILURES = [
    "INSERT INTO submission",
    "INSERT INTO outbox_message",  # the receipt's enqueue
    "UPDATE audit_head",  # the audit append
    "INSERT INTO audit_event",
]


class failing_statement:
    """Makes the database raise on the first statement starting with `prefix` while in the block."""

    def __init__(self, engine, prefix):
        self.engine, self.prefix, self.hits = engine, prefix.upper(), []

    def _fail(self, conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(self.prefix):
            self.hits.append(statement)
            raise OperationalError(statement, parameters, Exception("disk I/O error"))

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._fail)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._fail)
        assert self.hits, f"the request never ran {self.prefix!r}: the fault was not injected"


@pytest.mark.parametrize("failing", FAILURES)
def test_a_database_failure_mid_submit_leaves_no_partial_state(app, client, w, failing):
    login(client, w.coordinator)
    before = state_of(w.session, w.proposal.id)
    with failing_statement(app.extensions["jointcall.engine"], failing):
        with pytest.raises(OperationalError, match="disk I/O error"):
            submit(client, w)
    assert state_of(w.session, w.proposal.id) == before
    assert verify(w.session).ok

    # The database is back: the same submit goes through, once, with its receipt and its audit event.
    assert submit(client, w).status_code == 302
    after = state_of(w.session, w.proposal.id)
    assert after["proposal"][0] == "submitted" and after["submissions"] == 1
    assert [row.kind for row in after["outbox"]] == ["submission_receipt"]
    assert after["audit"][0] > before["audit"][0]
    assert verify(w.session).ok


@pytest.mark.parametrize("failing", FAILURES[:2])
def test_a_database_failure_mid_submit_shows_the_error_page_saying_nothing_changed(app, w, failing):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: the 500 page, not the exception
    client = app.test_client()
    login(client, w.coordinator)
    before = state_of(w.session, w.proposal.id)
    with failing_statement(app.extensions["jointcall.engine"], failing):
        response = submit(client, w)
    assert response.status_code == 500
    page = text_of(response)
    assert "The server could not finish this request. Nothing was changed." in page
    assert "Traceback" not in page and "OperationalError" not in page and "disk I/O" not in page
    assert state_of(w.session, w.proposal.id) == before


# ---------------------------------------------------------------------------------------------------------
# SMTP down at submission time


def test_with_smtp_down_the_receipt_stays_queued_and_goes_out_once_when_it_is_back(
        settings_overrides, w, mailbox, monkeypatch, frozen):
    down = create_app({**settings_overrides, "smtp_port": 1})  # nothing listens there
    down.config["WTF_CSRF_ENABLED"] = False
    try:
        client = down.test_client()
        login(client, w.coordinator)
        response = submit(client, w)
        assert response.status_code == 302  # the applicant is not told about our mail server
        assert "was submitted" in text_of(client.get(w.base))
    finally:
        down.extensions["jointcall.engine"].dispose()
    assert mailbox.messages == []
    w.session.expire_all()
    [receipt] = w.session.scalars(select(OutboxMessage)).all()
    assert (receipt.kind, receipt.to_address, receipt.status) == ("submission_receipt", w.coordinator.email,
                                                                   "queued")

    frozen(f.PRE_OPEN + dt.timedelta(hours=1))  # past any retry back-off
    for key in ("database_url", "smtp_host", "smtp_port", "storage_dir"):
        monkeypatch.setenv(f"JOINTCALL_{key.upper()}", str(settings_overrides[key]))
    sent = CliRunner().invoke(main, ["outbox", "send"], catch_exceptions=False)
    assert sent.exit_code == 0, sent.output
    assert "1 sent" in sent.output
    again = CliRunner().invoke(main, ["outbox", "send"], catch_exceptions=False)
    assert "0 sent" in again.output
    mailbox.wait_for(1)
    assert len(mailbox.messages) == 1
    assert w.coordinator.email in str(mailbox.messages[0]["To"])
    sub = w.session.scalars(select(Submission)).one()
    assert sub.sha256 in mailbox.messages[0].get_body(preferencelist=("plain",)).get_content()
    w.session.expire_all()
    assert w.session.get(OutboxMessage, receipt.id).status == "sent"


# ---------------------------------------------------------------------------------------------------------
# Restarting the server


def test_restarting_the_server_loses_no_submitted_data(settings_overrides, w):
    first = create_app(settings_overrides)
    first.config["WTF_CSRF_ENABLED"] = False
    client = first.test_client()
    login(client, w.coordinator)
    assert submit(client, w).status_code == 302
    first.extensions["jointcall.engine"].dispose()  # the server stops

    second = create_app(settings_overrides)  # and starts again on the same database
    second.config["WTF_CSRF_ENABLED"] = False
    try:
        client = second.test_client()
        login(client, w.coordinator)
        page = text_of(client.get(f"{w.base}/receipts"))
        with second.extensions["jointcall.sessions"]() as s:
            sub = s.scalars(select(Submission)).one()
            assert s.get(Proposal, w.proposal.id).state == "submitted"
            assert sub.sha256 == content_hash(sub.content)
            assert s.scalars(select(OutboxMessage.kind)).all() == ["submission_receipt"]
            assert s.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "proposal.submit")) == 1
            result = verify(s)
            assert result.ok, str(result)
        assert sub.sha256 in page
        pdf = client.get(f"{w.base}/receipts/{sub.id}.pdf")
        assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    finally:
        second.extensions["jointcall.engine"].dispose()


# ---------------------------------------------------------------------------------------------------------
# A bulk PDF export killed mid-way


def test_a_letter_export_killed_mid_way_restarts_into_one_complete_zip(decided, session, database_url, tmp_path):  # noqa: F811
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "letters.zip"
    env = {**os.environ, "JOINTCALL_DATABASE_URL": database_url, "JOINTCALL_STORAGE_DIR": str(tmp_path / "files"),
           "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "webapp.cli", "export-letters", "--call", "test-call", "--stage", "full",
            "--out", str(out), "--processes", "0"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("2 of 6 letters"):
                proc.send_signal(signal.SIGKILL)  # the machine dies mid-export
                break
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert any(line.startswith("2 of 6 letters") for line in seen), "".join(seen)
    assert not out.exists()  # nothing half-written is visible under the ZIP's name
    [leftover] = out_dir.iterdir()  # only the dead attempt's hidden temporary file
    assert leftover.name.startswith(".letters.zip.") and leftover.name.endswith(".part")

    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300,
                           cwd=Path(__file__).resolve().parents[2])
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"wrote {out}" in again.stdout
    assert [p.name for p in out_dir.iterdir()] == ["letters.zip"]  # the leftover was cleaned up
    check_letters(session, decided, out.read_bytes())


def test_the_500_page_is_plain(app, w):
    """The error page a person sees on a fault: the site's layout, no debugging detail."""
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/_boom")
    def boom():
        raise RuntimeError("secret internal detail")

    response = app.test_client().get("/_boom")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "secret internal detail" not in page and "Traceback" not in page
    assert re.search(r"<h1[^>]*>\s*Something went wrong", page)
