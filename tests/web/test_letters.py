"""Decision letters in the browser (Flask test client) and on the command line: rule 23 (only after the
approval), the ZIP export with its progress page (rendered by a Pool of 2 processes in a background
thread), a failed or interrupted export restarted cleanly without a half-written ZIP ever visible,
`jointcall export-letters`, the letters read back with pypdf (coordinator, amounts of the database,
non-ASCII names), the template sandbox, no remote fetches, previews, and sending the letters after
previewing the mail, down to the coordinator's download.

The call: the funding world of test_funding_pages after the approval; ONE and FOUR funded (every funder
confirmed), TWO declined by ANR-T (not funded; THREE is then selected and waits for its funders), FIVE
on the reserve list; SIX was not recommended by the panel and SEVEN was found ineligible at the full stage.
"""

from __future__ import annotations

import datetime as dt
import http.server
import io
import re
import threading
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from pypdf import PdfReader
from sqlalchemy import func, select

from tests import factories as f
from tests.web.test_funding_pages import approve, build_world, confirm, login, words
from webapp.mail import deliver_pending
from workflow.funding_models import FundingLine, FundingScenario
from workflow.models import AuditEvent, EligibilityCheck, OutboxMessage, Partner, Proposal

UTC = dt.UTC


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def extra_proposal(session, w, acronym: str, n: int, state: str, coordinator: str):
    user = f.make_user(session, coordinator, email=f"coordinator.{acronym.lower()}@example.org")
    p = Proposal(call=w.call, reference=f"TEST-{n:04d}", acronym=acronym, title=f"{acronym}: precision medicine",
                 coordinator=user, state=state)
    p.partners.append(Partner(position=1, organisation=f"Universität Wien ({acronym})", country="AT",
                              funder_id=w.fid["DFG-T"], pi_name=coordinator, pi_email=f"{acronym.lower()}@example.org",
                              requested_amount=100_000, budget={"personnel": 100_000}))
    session.add(p)
    session.flush()
    return p


@pytest.fixture
def decided(client, session):
    """The world above, decided (see the module docstring)."""
    w = build_world(session)
    w.p["SIX"] = extra_proposal(session, w, "SIX", 6, "not_recommended", "Ágnes Kovács")
    w.p["SEVEN"] = extra_proposal(session, w, "SEVEN", 7, "full_ineligible", "Mário Conceição")
    session.add(EligibilityCheck(proposal_id=w.p["SEVEN"].id, stage="full", status="ineligible",
                                 reason="the consortium has only two eligible partners"))
    session.commit()
    assert approve(client, w).status_code == 302
    for acronym, funders in (("ONE", ("DFG-T", "ANR-T", "ISCIII-T")), ("FOUR", ("DFG-T", "ISCIII-T"))):
        for funder in funders:
            assert confirm(client, w, acronym, funder).status_code == 302
    assert confirm(client, w, "TWO", "ANR-T", "decline", "the partner lost its accreditation").status_code == 302
    assert w.states() == {"ONE": "funded", "TWO": "not_funded", "THREE": "selected", "FOUR": "funded",
                          "FIVE": "reserve", "SIX": "not_recommended", "SEVEN": "full_ineligible"}
    login(client, w.sec)
    return w


LETTERS = {"ONE": "funded", "TWO": "not_funded", "FOUR": "funded", "FIVE": "reserve", "SIX": "not_funded",
           "SEVEN": "not_eligible"}  # THREE waits for its funders' confirmations


def wait_for_job(session, job_id: int, states=("done", "failed"), timeout: float = 90.0):
    from workflow.letter_models import LetterExportJob

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        session.rollback()
        session.expire_all()
        job = session.get(LetterExportJob, job_id)
        if job.status in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"the export job did not finish: {job.status} {job.done}/{job.total} {job.error}")


def start_export(client, w, stage: str = "full") -> int:
    response = client.post(f"/funding/calls/{w.call.id}/letters/{stage}/export")
    assert response.status_code == 302, response.get_data(as_text=True)
    match = re.search(r"/funding/letter-jobs/(\d+)$", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def check_letters(session, w, archive: bytes) -> dict[str, str]:
    """Every letter of the ZIP names its coordinator and, if funded, the database's amounts; returns the texts."""
    from workflow.letters import OUTCOME_LABELS

    texts = {}
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        names = zf.namelist()
        assert len(names) == len(set(names)) == len(LETTERS)
        for acronym, outcome in LETTERS.items():
            p = w.p[acronym]
            [name] = [n for n in names if n.startswith(f"{p.reference}-full-")]
            assert name == f"{p.reference}-full-{acronym}.pdf"
            text = flat(pdf_text(zf.read(name)))
            texts[acronym] = text
            assert p.coordinator.name in text, (acronym, text[:300])  # "Zoë García", "Łucja Wójcik", ...
            assert f"Dear {p.coordinator.name}," in text
            assert p.reference in text
            assert f"Decision letter {p.reference} · full proposal stage · {OUTCOME_LABELS[outcome]}" in text
    return texts


# ---------------------------------------------------------------------------------------------------------
# Rule 23 and the pages


def test_letters_of_the_funding_stage_wait_for_the_approval(client, session):
    w = build_world(session)
    login(client, w.sec)
    page = client.get(f"/funding/calls/{w.call.id}/letters")
    assert page.status_code == 200
    assert "the steering committee's approval of the funding list has not been recorded yet" in words(page)
    assert "rule 23" in words(page) and "Generate the letters" not in words(page)
    refused = client.post(f"/funding/calls/{w.call.id}/letters/full/export", follow_redirects=True)
    assert "letters are generated only after it (rule 23)" in words(refused)
    from workflow.letter_models import LetterExportJob

    assert session.scalar(select(func.count()).select_from(LetterExportJob)) == 0
    # Only the secretariat manages letters.
    login(client, w.officers["ANR-T"])
    assert client.get(f"/funding/calls/{w.call.id}/letters").status_code == 403


def test_the_letters_page_lists_one_letter_per_decided_proposal(client, decided):
    page = client.get(f"/funding/calls/{decided.call.id}/letters")
    text = words(page)
    assert "6 letters: 2 funded, 1 not eligible, 2 not funded, 1 on the reserve list." in text
    assert "By status: 6 not generated." in text
    assert "TEST-0003 THREE: selected for funding; waiting for the funders' confirmations" in text
    rows = re.findall(r'<tr id="letter-(TEST-\d+)" data-status="([^"]+)"', page.get_data(as_text=True))
    assert rows == [(decided.p[a].reference, "not generated") for a in ("ONE", "TWO", "FOUR", "FIVE", "SIX", "SEVEN")]


def test_the_letters_page_tells_generated_sent_and_outdated_letters_apart(client, session, decided):
    """Letters stored as an export and a sending would have, some for a decision that changed since."""
    import hashlib

    from workflow.letter_models import DecisionLetter

    pdf = b"%PDF-1.4 made up for the test"

    def letter(acronym, outcome, sent):
        p = decided.p[acronym]
        session.add(DecisionLetter(call_id=decided.call.id, proposal_id=p.id, stage="full", outcome=outcome,
                                   coordinator_id=p.coordinator_id, recipient=p.coordinator.email, pdf=pdf,
                                   sha256=hashlib.sha256(pdf).hexdigest(), size_bytes=len(pdf),
                                   template_sha256="0" * 64, sent_at=dt.datetime(2030, 1, 2, 9, tzinfo=UTC) if sent
                                   else None, sent_by_id=decided.sec.id if sent else None))

    letter("ONE", "funded", sent=True)       # sent
    letter("TWO", "reserve", sent=False)     # generated before TWO's decline: outdated
    letter("FOUR", "reserve", sent=True)     # sent, and FOUR is funded now: sent, outdated
    letter("FIVE", "reserve", sent=False)    # generated
    session.commit()
    page = client.get(f"/funding/calls/{decided.call.id}/letters")
    text = words(page)
    assert "By status: 2 not generated · 1 outdated · 1 generated · 1 sent · 1 sent, outdated." in text
    rows = dict(re.findall(r'<tr id="letter-(TEST-\d+)" data-status="([^"]+)"', page.get_data(as_text=True)))
    assert rows == {decided.p["ONE"].reference: "sent", decided.p["TWO"].reference: "outdated",
                    decided.p["FOUR"].reference: "sent, outdated", decided.p["FIVE"].reference: "generated",
                    decided.p["SIX"].reference: "not generated", decided.p["SEVEN"].reference: "not generated"}
    assert (f"{decided.p['FOUR'].reference} FOUR: sent “on the reserve list”, now “funded”"
            in words(page)), text
    assert "Preview the mail and send the letters" in text  # FIVE's letter waits to be sent


# ---------------------------------------------------------------------------------------------------------
# The export


def test_the_zip_export_shows_progress_and_holds_one_correct_letter_per_proposal(client, decided, session, app):
    job_id = start_export(client, decided)
    job = wait_for_job(session, job_id)
    assert job.status == "done", job.error
    page = client.get(f"/funding/letter-jobs/{job_id}")
    assert "6 of 6 letters." in words(page) and "Download the ZIP (6 letters)" in words(page)
    assert "Refresh" not in page.headers  # finished: the page stops refreshing itself
    download = client.get(f"/funding/letter-jobs/{job_id}/download")
    assert download.status_code == 200 and download.mimetype == "application/zip"
    assert 'filename=test-call-full-letters.zip' in download.headers["Content-Disposition"]
    texts = check_letters(session, decided, download.data)

    # Funded letters: the per-partner table holds exactly the database's amounts (FundingLine).
    for acronym in ("ONE", "FOUR"):
        lines = session.scalars(select(FundingLine).join(FundingScenario).where(
            FundingScenario.status == "current", FundingLine.proposal_id == decided.p[acronym].id)).all()
        assert lines
        for ln in lines:
            assert f"{ln.funder.acronym} – {ln.funder.name}" in texts[acronym]
            assert f"{ln.partner.organisation}" in texts[acronym]
        amounts = re.findall(r"€[\d,]+", texts[acronym].split("Granted", 1)[1].split("Total", 1)[0])
        assert sorted(amounts) == sorted(f"€{ln.amount:,}" for ln in lines)
        total = sum(ln.amount for ln in lines)
        assert f"Total €{total:,}" in texts[acronym]
    assert "€1,300,000" in texts["ONE"] and "Łucja Wójcik" in texts["TWO"] and "Jürgen Groß" in texts["FOUR"]
    assert "not be funded" in texts["TWO"] and "reserve list at position" in texts["FIVE"]
    assert "not eligible" in texts["SEVEN"] and "the consortium has only two eligible partners" in texts["SEVEN"]
    # Kept as generated letters; audited with every letter's fingerprint.
    from workflow.letter_models import DecisionLetter

    letters = session.scalars(select(DecisionLetter)).all()
    assert sorted((x.proposal.acronym, x.outcome) for x in letters) == sorted(LETTERS.items())
    assert all(x.sent_at is None for x in letters)
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "letters.exported")).all()
    assert event.after["letters"] == 6 and event.actor_id == decided.sec.id
    # Nothing half-written or temporary is left next to the ZIP.
    folder = Path(app.config["JOINTCALL"]["storage_dir"]) / "letters" / "test-call"
    assert [p.name for p in folder.iterdir()] == [f"test-call-full-letters-{job_id}.zip"]


def test_the_progress_page_refreshes_itself_while_the_job_runs(client, decided, session):
    from workflow.letters import create_export_job

    job = create_export_job(session, decided.sec, decided.call, "full")  # queued; no thread runs it here
    session.commit()
    page = client.get(f"/funding/letter-jobs/{job.id}")
    assert page.status_code == 200 and page.headers["Refresh"] == "2"
    assert '<meta http-equiv="refresh" content="2">' in page.get_data(as_text=True)
    assert "0 of 0 letters (counting the letters)." in words(page)
    assert "<script" not in page.get_data(as_text=True)
    # Asking again while it is queued gives the same job, not a second one.
    assert start_export(client, decided) == job.id
    assert client.get(f"/funding/letter-jobs/{job.id}/download").status_code == 404


def test_a_failed_export_leaves_no_zip_and_restarts_cleanly(client, decided, session, app, monkeypatch):
    from webapp import letters as L

    app.config["JOINTCALL"]["letter_processes"] = 0  # render in the job's thread, so the failure can be staged
    real, calls = L.pdf_of_html, []

    def flaky(html):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the renderer crashed")
        return real(html)

    monkeypatch.setattr(L, "pdf_of_html", flaky)
    job_id = start_export(client, decided)
    job = wait_for_job(session, job_id)
    assert job.status == "failed" and "RuntimeError: the renderer crashed" in job.error
    folder = Path(app.config["JOINTCALL"]["storage_dir"]) / "letters" / "test-call"
    assert list(folder.iterdir()) == []  # neither a ZIP nor a temporary file
    page = client.get(f"/funding/letter-jobs/{job_id}")
    assert "The export failed: RuntimeError: the renderer crashed. No ZIP was kept." in words(page)
    assert client.get(f"/funding/letter-jobs/{job_id}/download").status_code == 404

    monkeypatch.setattr(L, "pdf_of_html", real)
    response = client.post(f"/funding/letter-jobs/{job_id}/restart", follow_redirects=True)
    assert "The export was started again from the first letter." in words(response)
    job = wait_for_job(session, job_id)
    assert (job.status, job.attempt, job.done, job.total) == ("done", 2, 6, 6)
    check_letters(session, decided, client.get(f"/funding/letter-jobs/{job_id}/download").data)


def test_an_interrupted_export_is_shown_and_restarted(client, decided, session, app, frozen):
    from workflow.letter_models import LetterExportJob

    app.config["JOINTCALL"]["letter_processes"] = 0
    now = dt.datetime(2030, 10, 14, 9, 0, tzinfo=UTC)
    frozen(now)
    # A server stopped mid-export ten minutes ago: the job says running, a temporary file is left behind.
    job = LetterExportJob(call_id=decided.call.id, stage="full", status="running", via="web", attempt=1, total=6,
                          done=2, created_by_id=decided.sec.id, created_at=now - dt.timedelta(minutes=12),
                          started_at=now - dt.timedelta(minutes=11), heartbeat_at=now - dt.timedelta(minutes=10))
    session.add(job)
    session.commit()
    folder = Path(app.config["JOINTCALL"]["storage_dir"]) / "letters" / "test-call"
    folder.mkdir(parents=True)
    leftover = folder / f".test-call-full-letters-{job.id}.zip.{job.id}-1.part"
    leftover.write_bytes(b"PK\x03\x04 half a zip")

    page = client.get(f"/funding/letter-jobs/{job.id}")
    assert "Interrupted" in words(page) and "The export stopped before it finished" in words(page)
    assert "Refresh" not in page.headers
    assert client.get(f"/funding/letter-jobs/{job.id}/download").status_code == 404
    client.post(f"/funding/letter-jobs/{job.id}/restart")
    job = wait_for_job(session, job.id)
    assert (job.status, job.attempt) == ("done", 2)
    assert not leftover.exists()
    assert [p.name for p in folder.iterdir()] == [f"test-call-full-letters-{job.id}.zip"]


def test_the_export_letters_command_writes_the_same_zip(client, decided, session, tmp_path, monkeypatch, database_url):
    from webapp.cli import main

    monkeypatch.setenv("JOINTCALL_DATABASE_URL", database_url)
    monkeypatch.setenv("JOINTCALL_STORAGE_DIR", str(tmp_path / "files"))
    out = tmp_path / "out" / "letters.zip"
    out.parent.mkdir()
    result = CliRunner().invoke(main, ["export-letters", "--call", "test-call", "--stage", "full", "--out", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "0 of 6 letters" in result.output and "6 of 6 letters" in result.output
    assert f"wrote {out}" in result.output
    check_letters(session, decided, out.read_bytes())
    assert [p.name for p in out.parent.iterdir()] == ["letters.zip"]

    result = CliRunner().invoke(main, ["export-letters", "--call", "nope", "--out", str(out)])
    assert result.exit_code == 1 and "there is no call 'nope'" in result.output
    result = CliRunner().invoke(main, ["export-letters", "--call", "test-call", "--stage", "pre", "--out",
                                       str(tmp_path / "pre.zip")])
    assert result.exit_code == 1 and "no proposal has a decision letter at the pre-proposal stage yet" in result.output
    assert not (tmp_path / "pre.zip").exists()


def test_the_command_refuses_before_the_approval(session, tmp_path, monkeypatch, database_url, settings_overrides):
    from webapp.cli import main

    build_world(session)
    monkeypatch.setenv("JOINTCALL_DATABASE_URL", database_url)
    result = CliRunner().invoke(main, ["export-letters", "--call", "test-call", "--out", str(tmp_path / "x.zip")])
    assert result.exit_code == 1 and "(rule 23)" in result.output
    assert not (tmp_path / "x.zip").exists()


# ---------------------------------------------------------------------------------------------------------
# One letter in the browser


def test_a_letter_is_previewed_as_html_and_as_pdf(client, decided):
    one = decided.p["ONE"]
    base = f"/funding/calls/{decided.call.id}/letters/full/{one.id}"
    page = client.get(base + ".html")
    assert page.status_code == 200 and page.mimetype == "text/html"
    body = page.get_data(as_text=True)
    assert "Dear Zoë García," in body and "€700,000" in body and "/static/css/letter.css" in body
    assert "<script" not in body and "style=" not in body
    pdf = client.get(base + ".pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert "Zoë García" in pdf_text(pdf.data)
    # THREE has no letter yet; an officer may not preview letters.
    missing = client.get(f"/funding/calls/{decided.call.id}/letters/full/{decided.p['THREE'].id}.html")
    assert missing.status_code == 409 and "has no decision letter at the full proposal stage yet" in words(missing)
    login(client, decided.officers["ANR-T"])
    assert client.get(base + ".pdf").status_code == 403


# ---------------------------------------------------------------------------------------------------------
# The template: a sandbox


@pytest.mark.parametrize("source, message", [
    ("<p>{{ ''.__class__ }}</p>", "not allowed in a letter template: access to attribute '__class__' of 'str' "
                                  "object is unsafe."),
    ("{{ proposal.__class__.__mro__ }}", "not allowed in a letter template: access to attribute '__class__'"),
    ("{{ cycler.__init__.__globals__ }}", "not allowed in a letter template"),
    ("{% for r in reasons %}{{ r.__class__ }}{% endfor %}", "not allowed in a letter template"),
    ("{{ reviews.append(1) }}", "not allowed in a letter template: access to attribute 'append' of 'list'"),
    ("{% include 'base.html' %}", "letter templates cannot include, import or extend other templates"),
    ("<p>Dear {{ coordinator.nam }}</p>", "has no attribute 'nam'"),
    ("<p>{{ nobody }}</p>", "'nobody' is undefined"),
    ("<p>{% if outcome == 'funded' %}</p>", "line 1: Unexpected end of template"),
    ("a\nb\n{{ 'x' * 100000 }}", "repeating text more than 10,000 times is not allowed"),
    ("{{ 2 ** 100000 }}", "the power operator is not available"),
    ("{% for i in range(1000000) %}{% endfor %}", "not allowed in a letter template: Range too big"),
    ("x" * 20_001, "the template has 20,001 characters; at most 20,000 are allowed"),
])
def test_the_template_sandbox_refuses_with_a_message_next_to_the_field(client, session, source, message):
    from workflow.letter_models import LetterTemplate

    w = build_world(session)
    login(client, w.sec)
    response = client.post(f"/funding/calls/{w.call.id}/letters/template", data={
        "source": source, "sample": "sample:full:funded", "save": "1"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    error = re.search(r'<div class="field-error" id="source-error" role="alert">(.*?)</div>', page, re.S)
    assert error and message in words_of(error.group(1)), page[:3000]
    assert 'aria-describedby="source-error"' in page
    assert session.scalar(select(func.count()).select_from(LetterTemplate)) == 0
    if len(source) < 200:
        assert words_of(source.replace("<", "&lt;").replace(">", "&gt;")) in words_of(page)  # the input is kept


def words_of(fragment: str) -> str:
    import html as h

    return re.sub(r"\s+", " ", h.unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()


def test_a_template_is_previewed_before_it_is_saved_and_then_used(client, decided, session):
    from workflow.letter_models import LetterTemplate

    url = f"/funding/calls/{decided.call.id}/letters/template"
    page = client.get(url)
    assert page.status_code == 200 and "Dear {{ coordinator.name }}," in page.get_data(as_text=True)
    custom = ("<p>Dear {{ coordinator.name }},</p><p>Decision: {{ outcome_label }}.</p>"
              "{% if funding %}<p>Total {{ funding.total | eur }}</p>{% endif %}<p>{{ proposal.title }}</p>")
    preview = client.post(url, data={"source": custom, "sample": f"proposal:full:{decided.p['ONE'].id}",
                                     "preview": "1"})
    assert preview.status_code == 200
    shown = re.search(r'<div class="border rounded p-3 bg-white" id="preview">(.*?)</div>',
                      preview.get_data(as_text=True), re.S).group(1)
    assert "Dear Zoë García," in shown and "Decision: Funded." in shown and "Total €1,300,000" in shown
    pdf = client.post(url, data={"source": custom, "sample": "sample:pre:invited", "preview_pdf": "1"})
    assert pdf.mimetype == "application/pdf" and "Decision: Invited to submit a full proposal." in flat(pdf_text(pdf.data))
    assert session.scalar(select(func.count()).select_from(LetterTemplate)) == 0  # previews save nothing

    saved = client.post(url, data={"source": custom, "sample": "sample:full:funded", "save": "1"})
    assert saved.status_code == 302
    assert "The letter template was saved" in words(client.get(saved.headers["Location"]))
    letter = client.get(f"/funding/calls/{decided.call.id}/letters/full/{decided.p['FOUR'].id}.pdf")
    text = flat(pdf_text(letter.data))
    assert "Dear Jürgen Groß," in text and "Decision: Funded." in text and "Total €350,000" in text
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "letters.template_saved")).all()
    assert event.actor_id == decided.sec.id
    # Values are escaped: a title with markup shows as text.
    session.get(Proposal, decided.p["FOUR"].id).title = "<b>bold</b> & <script>x</script>"
    session.commit()
    html_letter = client.get(f"/funding/calls/{decided.call.id}/letters/full/{decided.p['FOUR'].id}.html")
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;script&gt;" in html_letter.get_data(as_text=True)


class _Counter(http.server.BaseHTTPRequestHandler):
    hits: list = []

    def do_GET(self):  # noqa: N802
        _Counter.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_template_that_references_remote_urls_makes_no_request(client, decided, session):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Counter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _Counter.hits.clear()
        base = f"http://127.0.0.1:{server.server_port}"
        source = (f'<style>@import url("{base}/import.css"); p {{ background: url("{base}/bg.png"); }}</style>'
                  f'<link rel="stylesheet" href="{base}/style.css"><img src="{base}/logo.png" alt="logo">'
                  '<img src="file:///etc/passwd" alt="x"><p>Dear {{ coordinator.name }},</p>')
        saved = client.post(f"/funding/calls/{decided.call.id}/letters/template",
                            data={"source": source, "sample": "sample:full:funded", "save": "1"})
        assert saved.status_code == 302
        letter = client.get(f"/funding/calls/{decided.call.id}/letters/full/{decided.p['ONE'].id}.pdf")
        assert letter.status_code == 200 and "Dear Zoë García," in pdf_text(letter.data)
        assert _Counter.hits == []
        # The fetcher refuses: it is what WeasyPrint asks for every URL.
        from webapp.pdfs import local_fetcher

        with pytest.raises(ValueError, match="may only use the app's static files"):
            local_fetcher.fetch(f"{base}/logo.png")
        assert _Counter.hits == []
    finally:
        server.shutdown()


# ---------------------------------------------------------------------------------------------------------
# Sending, and the coordinator's download


def generate(session, session_factory, w, folder: Path) -> None:
    """Render the stage's letters in this process (the function the job thread runs)."""
    from webapp.letters import run_export
    from workflow.letters import create_export_job

    job = create_export_job(session, w.sec, w.call, "full")
    session.commit()
    assert run_export(session_factory, job.id, dest=folder / "letters.zip", processes=0) is not None
    session.expire_all()


def test_letters_are_sent_after_previewing_the_mail_and_the_coordinator_downloads_them(
        client, decided, session, session_factory, app, mailbox, tmp_path):
    one = decided.p["ONE"]
    login(client, one.coordinator)
    decision = client.get(f"/my/proposals/{one.id}/decision")
    assert "The decision letter will be available here once the secretariat releases it." in words(decision)
    login(client, decided.sec)
    assert "No generated letter is waiting to be sent. 6 letters are not generated yet" in words(
        client.get(f"/funding/calls/{decided.call.id}/letters/full/send"))

    generate(session, session_factory, decided, tmp_path)
    page = client.get(f"/funding/calls/{decided.call.id}/letters/full/send")
    text = words(page)
    assert "6 coordinators will each get one message." in text
    first = decided.p["ONE"]
    assert f"To {first.coordinator.email}" in text
    assert f"Subject [Test Call 2030] Decision on your full proposal {first.reference} ONE" in text
    assert f"http://jointcall.test/my/proposals/{first.id}/decision" in text
    fingerprint = re.search(r'name="fingerprint" type="hidden" value="([0-9a-f]+)"', page.get_data(as_text=True)).group(1)
    response = client.post(f"/funding/calls/{decided.call.id}/letters/full/send", data={"fingerprint": fingerprint})
    assert response.status_code == 302
    assert "6 decision letters were sent to the coordinators" in words(client.get(response.headers["Location"]))

    messages = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "decision_letter")).all()
    assert sorted(m.to_address for m in messages) == sorted(decided.p[a].coordinator.email for a in LETTERS)
    assert all(len(m.attachments) == 1 and m.attachments[0]["kind"] == "decision_letter" for m in messages)
    assert len(session.scalars(select(AuditEvent).where(AuditEvent.action == "letters.sent")).all()) == 6
    deliver_pending(app.extensions["jointcall.sessions"], app.config["JOINTCALL"])
    mailbox.wait_for(6)
    [mail] = mailbox.to(one.coordinator.email)
    assert "Decision on your full proposal" in mail["Subject"]
    attached = next(mail.iter_attachments())
    assert attached.get_content_type() == "application/pdf"
    assert attached.get_filename() == f"decision-{one.reference}-full.pdf"
    letter_text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(attached.get_content())).pages)
    assert one.coordinator.name in letter_text and one.acronym in letter_text
    # Sending again sends nothing more: one letter per coordinator and stage.
    again = client.post(f"/funding/calls/{decided.call.id}/letters/full/send", data={"fingerprint": fingerprint})
    assert again.status_code in (409, 422)
    assert session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.kind == "decision_letter")) == 6

    login(client, one.coordinator)
    decision = client.get(f"/my/proposals/{one.id}/decision")
    assert "Decision letter, full proposal stage (PDF)" in words(decision)
    assert "will be available here" not in words(decision)
    pdf = client.get(f"/my/proposals/{one.id}/decision/letter-full.pdf")
    assert pdf.status_code == 200 and "Dear Zoë García," in pdf_text(pdf.data)
    from workflow.letter_models import DecisionLetter

    stored = session.scalar(select(DecisionLetter).where(DecisionLetter.proposal_id == one.id))
    assert pdf.data == stored.pdf and stored.sent_at is not None
    assert client.get(f"/my/proposals/{one.id}/decision/letter-pre.pdf").status_code == 404
    # Someone outside the consortium cannot read it.
    login(client, decided.p["TWO"].coordinator)
    assert client.get(f"/my/proposals/{one.id}/decision/letter-full.pdf").status_code == 403


# ---------------------------------------------------------------------------------------------------------
# What reviews/ knows goes into the letter, anonymised


def test_a_letter_shows_the_panels_scores_and_summary_and_anonymised_reviewer_comments(client, decided, session):
    from reviews.models import Review, ReviewAssignment

    five = decided.p["FIVE"]
    url = f"/funding/calls/{decided.call.id}/letters/full/{five.id}.html"
    # Without reviews or a consensus, the letter simply leaves that part out.
    plain = words(client.get(url))
    assert "Evaluation" not in plain and "Comments of the reviewers" not in plain

    reviewers = [f.make_user(session, name, email=email) for name, email in (
        ("Rita Reviewer", "rita@karolinska.example.se"), ("Ravi Referee", "ravi@iisc.example.in"))]
    texts = [{"excellence": "Original idea, strong preliminary data.", "impact": "Clear path to patients."},
             {"excellence": "Convincing.", "impact": "", "implementation": "The work plan is tight."}]
    for reviewer, comments in zip(reviewers, texts, strict=True):
        a = ReviewAssignment(call_id=decided.call.id, proposal_id=five.id, reviewer_id=reviewer.id, stage="full")
        session.add(a)
        session.flush()
        session.add(Review(assignment_id=a.id, proposal_id=five.id, reviewer_id=reviewer.id, stage="full",
                           scores={"excellence": 4, "impact": 4, "implementation": 3.5}, comments=comments,
                           status="submitted", submitted_at=f.FULL_CLOSED))
    draft = ReviewAssignment(call_id=decided.call.id, proposal_id=five.id, reviewer_id=decided.sec.id, stage="full")
    session.add(draft)
    session.flush()
    session.add(Review(assignment_id=draft.id, proposal_id=five.id, reviewer_id=decided.sec.id, stage="full",
                       comments={"excellence": "DRAFT NOT SUBMITTED"}, status="draft"))
    session.commit()
    text = words(client.get(url))
    assert "Comments of the reviewers Reviewer 1 Excellence: Original idea, strong preliminary data. Impact: Clear " \
           "path to patients. Reviewer 2 Excellence: Convincing. Quality and efficiency of the implementation: The " \
           "work plan is tight." in text
    for hidden in ("Rita", "Ravi", "karolinska", "iisc", "DRAFT NOT SUBMITTED"):
        assert hidden not in text

    # The panel's consensus.
    from reviews.models import PanelConsensus

    session.add(PanelConsensus(call_id=decided.call.id, proposal_id=five.id, stage="full",
                               scores={"excellence": 4.5, "impact": 4, "implementation": 3.5}, weighted_total=12.0,
                               recommendation="recommended_if_funds", summary="Strong team.\nA realistic plan.",
                               entered_by_id=decided.sec.id))
    session.commit()
    pdf = flat(pdf_text(client.get(f"/funding/calls/{decided.call.id}/letters/full/{five.id}.pdf").data))
    assert "Excellence 4.5" in pdf and "Impact 4" in pdf and "Weighted total 12 of 15" in pdf
    assert "Summary of the panel Strong team. A realistic plan." in pdf
    assert "Reviewer 2" in pdf and "Rita" not in pdf
