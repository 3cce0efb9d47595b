"""The deadline rush: many coordinators log in, save a last edit and submit in the last seconds before a
pre-proposal deadline, against gunicorn and PostgreSQL on localhost, with CSRF on; a few try after the
deadline. Then the database is checked: no 5xx, no lost submission (every accepted submit has its
Submission row, whose SHA-256 is recomputed from the stored content and holds the last saved text),
every queued receipt matches the stored submission, late submissions refused with the deadline message,
the audit chain intact. Prints p50/p95 latency and throughput.

    python -m benchmarks.rush                       # the long form: 300 coordinators over 2 minutes
    python -m benchmarks.rush --coordinators 50 --window 20

tests/pg/test_deadline_rush.py runs a short form of the same harness in `make test`.

The database is its own (jointcall_rush on the server and role of JOINTCALL_TEST_PG_URL), created with
CREATE DATABASE (the jointcall role has CREATEDB), migrated, and dropped at the end.
Clients are threads using http.client, one connection per request (gunicorn's sync workers close it);
each coordinator comes from its own address (X-Forwarded-For, the server trusting one proxy), as on a
real deadline day, so the per-address login throttle applies to each of them separately.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_PG_URL = "postgresql+psycopg://jointcall:jointcall@127.0.0.1:5432/jointcall_test"
RUSH_DB = "jointcall_rush"
PASSWORD = "correct horse battery"
SECRET_KEY = "deadline-rush-secret-key-0123456789-abcdefghijklmnop"
DEADLINE_MESSAGE = "the deadline passed on"


# ---------------------------------------------------------------------------------------------------------
# The database


def rush_url(database: str = RUSH_DB, base: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    base = base or os.environ.get("JOINTCALL_TEST_PG_URL", DEFAULT_PG_URL)
    return make_url(base).set(database=database).render_as_string(hide_password=False)


def _admin(url: str):
    """An autocommit connection to the server's `postgres` database (CREATE/DROP DATABASE)."""
    from sqlalchemy.engine import make_url

    from workflow.db import make_engine

    admin = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    return make_engine(admin, isolation_level="AUTOCOMMIT")


def create_database(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from workflow.migrate import upgrade

    name = make_url(url).database
    assert re.fullmatch(r"[a-z_][a-z0-9_]*", name), name
    engine = _admin(url)
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    upgrade(url)


def drop_database(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    engine = _admin(url)
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)"))
    engine.dispose()


@dataclasses.dataclass
class Coordinator:
    email: str
    proposal_id: int
    ip: str
    late: bool = False
    new_abstract: str = ""
    # filled by the run
    sent_submit: float | None = None  # time.time() when the submit POST was sent / answered
    answered_submit: float | None = None
    submit_status: int | None = None
    submit_body: str = ""
    failure: str | None = None


def seed(url: str, n_on_time: int, n_late: int) -> tuple[int, list[Coordinator]]:
    """A two-stage call open now (its deadline is set later with set_deadline) and one complete draft
    per coordinator. Every account shares one password hash: hashing 300 passwords proves nothing."""
    import copy

    import reviews.models  # noqa: F401  (the web app's tables, for the ORM's relationships)
    from tests import factories
    from workflow.accounts import create_user, hash_password
    from workflow.callconfig import CallDef
    from workflow.calls import load_call
    from workflow.db import make_engine, make_session_factory

    now = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
    data = copy.deepcopy(factories.BASE_DEFINITION)
    data.update(code="rush-call", title="Deadline Rush Call", time_zone="UTC")
    data["stages"] = [
        {"kind": "pre", "opens": (now - dt.timedelta(days=1)).isoformat(),
         "deadline": (now + dt.timedelta(days=1)).isoformat()},
        {"kind": "full", "opens": (now + dt.timedelta(days=30)).isoformat(),
         "deadline": (now + dt.timedelta(days=60)).isoformat()},
    ]
    engine = make_engine(url)
    shared_hash = hash_password(PASSWORD)
    people: list[Coordinator] = []
    with make_session_factory(engine)() as session:
        call = load_call(session, None, CallDef.model_validate(data)).call
        for i in range(n_on_time + n_late):
            user = create_user(session, None, email=f"rush{i:04d}@example.org", name=f"Coordinator {i:04d}",
                               confirmed=True)
            user.password_hash = shared_hash
            proposal = factories.valid_proposal(session, call, user, acronym=f"RUSH{i:04d}", pi_prefix=f"r{i}")
            session.flush()
            people.append(Coordinator(email=user.email, proposal_id=proposal.id, late=i >= n_on_time,
                                      ip=f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256 + 1}"))
            if i % 50 == 49:
                session.commit()
        session.commit()
        call_id = call.id
    engine.dispose()
    return call_id, people


def set_deadline(url: str, call_id: int, deadline: dt.datetime) -> None:
    """The secretariat's deadline, relative to now (no frozen clock across processes)."""
    from sqlalchemy import update

    from workflow.db import make_engine
    from workflow.models import CallStage

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(update(CallStage).where(CallStage.call_id == call_id, CallStage.kind == "pre")
                     .values(deadline=deadline))
    engine.dispose()


# ---------------------------------------------------------------------------------------------------------
# gunicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, url: str, workers: int = 2, log_path: Path | None = None):
        self.port = free_port()
        env = {**os.environ, "JOINTCALL_DATABASE_URL": url, "JOINTCALL_MAIL_INLINE": "false",
               "JOINTCALL_SECRET_KEY": SECRET_KEY, "JOINTCALL_ENV": "production", "JOINTCALL_PROXIES": "1",
               "JOINTCALL_BASE_URL": f"http://127.0.0.1:{self.port}",
               "JOINTCALL_STORAGE_DIR": tempfile.mkdtemp(prefix="jointcall-rush-")}
        gunicorn = Path(sys.executable).parent / "gunicorn"
        self.log = open(log_path or os.devnull, "wb")
        self.proc = subprocess.Popen(
            [str(gunicorn), "-w", str(workers), "--no-control-socket", "-b", f"127.0.0.1:{self.port}",
             "--timeout", "60", "webapp.wsgi:app"],
            cwd=PROJECT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/login")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer in time")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---------------------------------------------------------------------------------------------------------
# A browser, roughly: cookies, forms, CSRF tokens read from the page


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": (a.get("method") or "get").lower(),
                               "fields": {}})
        elif not self.forms:
            return
        elif tag == "input" and a.get("name"):
            kind = (a.get("type") or "text").lower()
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind == "submit":
                return
            self.forms[-1]["fields"][a["name"]] = a.get("value") or ""
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            self.forms[-1]["fields"][a["name"]] = ""
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
        elif tag == "option" and self._select and "selected" in a:
            self.forms[-1]["fields"][self._select] = a.get("value", "")

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data):
        if self._textarea and self.forms:
            self.forms[-1]["fields"][self._textarea] += data


def form_with(html: str, field: str) -> dict:
    parser = _Forms()
    parser.feed(html)
    for form in parser.forms:
        if form["method"] == "post" and field in form["fields"]:
            return form
    raise AssertionError(f"no form with a {field!r} field on the page")


class Failure(Exception):
    pass


class Browser:
    def __init__(self, port: int, ip: str, timings: list, lock: threading.Lock):
        self.port, self.ip, self.cookies = port, ip, {}
        self.timings, self.lock = timings, lock

    def request(self, method: str, path: str, fields: dict | None = None, label: str = "page"):
        headers = {"X-Forwarded-For": self.ip, "X-Forwarded-Proto": "https", "Host": f"127.0.0.1:{self.port}"}
        if method == "POST":  # as a browser does; Flask-WTF checks it on HTTPS
            headers["Referer"] = f"https://127.0.0.1:{self.port}{path}"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if fields is not None:
            body = urlencode(fields).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        start = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
        finally:
            conn.close()
        elapsed = time.perf_counter() - start
        with self.lock:
            self.timings.append((label, elapsed, response.status))
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                key, _, val = pair.partition("=")
                self.cookies[key.strip()] = val.strip()
        if response.status >= 500:
            raise Failure(f"{method} {path} answered {response.status}")
        return response.status, response.getheader("Location") or "", text

    def post_form(self, path: str, need: str, changes: dict, label: str):
        status, _, page = self.request("GET", path, label=f"{label} page")
        if status != 200:
            raise Failure(f"GET {path} answered {status}")
        fields = dict(form_with(page, need)["fields"])
        fields.update(changes)
        return self.request("POST", path, fields, label=label)


# ---------------------------------------------------------------------------------------------------------
# The run


@dataclasses.dataclass
class Report:
    coordinators: int
    late: int
    window: float
    timings: list
    people: list
    load_seconds: float
    problems: list[str]
    accepted: int = 0
    refused_late: int = 0
    straddled: int = 0
    setup: str = ""

    def percentile(self, values: list[float], p: float) -> float:
        if not values:
            return 0.0
        values = sorted(values)
        return values[min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))]

    def summary(self) -> str:
        lines = [f"deadline rush: {self.coordinators} coordinators on time + {self.late} late, "
                 f"{self.window:.0f} s window; {len(self.timings)} requests in {self.load_seconds:.1f} s "
                 f"({len(self.timings) / max(self.load_seconds, 1e-9):.1f} requests/s, "
                 f"{self.accepted / max(self.window, 1e-9):.1f} submissions/s over the window)"]
        labels = ["all"] + sorted({label for label, _, _ in self.timings})
        for label in labels:
            values = [t for lab, t, _ in self.timings if label == "all" or lab == label]
            lines.append(f"  {label:<18} n={len(values):<5} p50={self.percentile(values, 50) * 1000:7.1f} ms  "
                         f"p95={self.percentile(values, 95) * 1000:7.1f} ms  max={max(values) * 1000:7.1f} ms")
        errors = sum(1 for _, _, status in self.timings if status >= 500)
        lines.append(f"  {self.setup}")
        lines.append(f"  submissions accepted: {self.accepted}; late refused: {self.refused_late}; "
                     f"answered across the deadline: {self.straddled}; 5xx: {errors}; "
                     f"problems: {len(self.problems)}")
        lines += [f"  PROBLEM: {p}" for p in self.problems[:20]]
        return "\n".join(lines)


def _on_time(b: Browser, c: Coordinator, start_at: float, deadline: float) -> None:
    time.sleep(max(0.0, start_at - time.time()))
    _prepare(b, c)
    _submit(b, c)


def _prepare(b: Browser, c: Coordinator) -> None:
    status, location, _ = b.post_form("/login", "password", {"email": c.email, "password": PASSWORD}, "login")
    if status != 302:
        raise Failure(f"login answered {status}")
    c.new_abstract = f"Last-minute abstract of {c.email}, saved {uuid.uuid4().hex}: précision, ünïcode."
    status, _, page = b.post_form(f"/my/proposals/{c.proposal_id}/edit", "abstract", {"abstract": c.new_abstract},
                                  "save")
    if status != 302:
        raise Failure(f"saving the draft answered {status}: {_gist(page)}")


def _submit(b: Browser, c: Coordinator, wait_until: float | None = None) -> None:
    path = f"/my/proposals/{c.proposal_id}/submit"
    status, _, page = b.request("GET", path, label="submit page")
    if status != 200:
        raise Failure(f"the submit page answered {status}")
    fields = dict(form_with(page, "version")["fields"])
    fields.update(confirm="y", submit="Submit")
    if wait_until is not None:
        time.sleep(max(0.0, wait_until - time.time()))
    c.sent_submit = time.time()
    c.submit_status, _, c.submit_body = b.request("POST", path, fields, label="submit")
    c.answered_submit = time.time()


def _gist(page: str) -> str:
    text = re.sub(r"<[^>]+>", " ", page)
    return re.sub(r"\s+", " ", text)[:300]


def run(url: str, *, coordinators: int, late: int, window: float, clients: int, gunicorn_workers: int = 2,
        lead: float = 2.0, late_after: float = 0.5, log_path: Path | None = None, keep: bool = False) -> Report:
    """Create the database, seed it, start gunicorn, rush, check, stop, drop. Returns the report."""
    t0 = time.perf_counter()
    create_database(url)
    server = None
    try:
        t1 = time.perf_counter()
        call_id, people = seed(url, coordinators, late)
        t2 = time.perf_counter()
        server = Server(url, gunicorn_workers, log_path)
        server.wait_ready()
        setup = f"setup: database {t1 - t0:.1f} s, seed {t2 - t1:.1f} s, gunicorn {time.perf_counter() - t2:.1f} s"
        window_start = time.time() + lead
        deadline_ts = window_start + window
        deadline = dt.datetime.fromtimestamp(deadline_ts, dt.UTC)
        set_deadline(url, call_id, deadline)
        timings, lock = [], threading.Lock()
        on_time = [c for c in people if not c.late]
        late_people = [c for c in people if c.late]
        spread = window * 0.7  # the last 30 % of the window leaves time to finish before the deadline
        load_start = time.perf_counter()

        def guarded(fn, c, *args):
            try:
                fn(Browser(server.port, c.ip, timings, lock), c, *args)
            except Failure as err:
                c.failure = str(err)
            except Exception as err:  # noqa: BLE001 - every failure is counted and shown
                c.failure = f"{type(err).__name__}: {err}"

        def late_one(b, c):
            time.sleep(max(0.0, window_start - time.time()))
            _prepare(b, c)
            _submit(b, c, wait_until=deadline_ts + late_after)

        late_threads = [threading.Thread(target=guarded, args=(late_one, c)) for c in late_people]
        for t in late_threads:
            t.start()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            for i, c in enumerate(on_time):
                pool.submit(guarded, _on_time, c, window_start + i * spread / max(1, len(on_time)), deadline_ts)
        for t in late_threads:
            t.join()
        load_seconds = time.perf_counter() - load_start
        report = Report(coordinators, late, window, timings, people, load_seconds, [], setup=setup)
        check(url, report, deadline)
        return report
    finally:
        if server is not None:
            server.stop()
        if not keep:
            drop_database(url)


def check(url: str, report: Report, deadline: dt.datetime) -> None:
    """What the database holds after the rush, against what every client was told."""
    from sqlalchemy import select

    import reviews.models  # noqa: F401
    from workflow.audit import verify
    from workflow.db import make_engine, make_session_factory
    from workflow.models import OutboxMessage, Proposal, Submission
    from workflow.operations import content_hash

    problems = report.problems
    deadline_ts = deadline.timestamp()
    engine = make_engine(url)
    with make_session_factory(engine)() as s:
        for c in report.people:
            if c.failure:
                problems.append(f"{c.email}: {c.failure}")
                continue
            subs = s.scalars(select(Submission).where(Submission.proposal_id == c.proposal_id)).all()
            proposal = s.get(Proposal, c.proposal_id)
            accepted = c.submit_status == 302
            refused = c.submit_status in (403, 409, 422) and DEADLINE_MESSAGE in c.submit_body
            if c.answered_submit < deadline_ts and not accepted:
                problems.append(f"{c.email}: an on-time submit was answered {c.submit_status}: "
                                f"{_gist(c.submit_body)}")
                continue
            if c.sent_submit >= deadline_ts and not refused:
                problems.append(f"{c.email}: a late submit was not refused with the deadline message "
                                f"({c.submit_status})")
                continue
            if c.sent_submit < deadline_ts <= c.answered_submit:
                report.straddled += 1
            if not (accepted or refused):
                problems.append(f"{c.email}: the submit answered {c.submit_status}: {_gist(c.submit_body)}")
                continue
            if refused:
                report.refused_late += 1
                if subs or proposal.state != "draft":
                    problems.append(f"{c.email}: refused, yet the proposal is {proposal.state} "
                                    f"with {len(subs)} submission(s)")
                continue
            report.accepted += 1
            if len(subs) != 1 or proposal.state != "submitted":
                problems.append(f"{c.email}: accepted, but {len(subs)} submission(s), state {proposal.state}")
                continue
            sub = subs[0]
            if sub.sha256 != content_hash(sub.content):
                problems.append(f"{c.email}: the stored SHA-256 does not match the stored content")
            if sub.content.get("abstract") != c.new_abstract:
                problems.append(f"{c.email}: the last saved abstract is not what was submitted")
            if sub.submitted_at >= deadline:
                problems.append(f"{c.email}: accepted at {sub.submitted_at}, after the deadline {deadline}")
            receipts = s.scalars(select(OutboxMessage).where(
                OutboxMessage.dedup_key == f"receipt:submission:{sub.id}")).all()
            if len(receipts) != 1:
                problems.append(f"{c.email}: {len(receipts)} receipts queued")
                continue
            r = receipts[0]
            if (r.to_address != c.email or sub.sha256 not in r.body_text or proposal.reference not in r.body_text
                    or proposal.acronym not in r.subject + r.body_text
                    or {"kind": "receipt", "submission_id": sub.id} not in r.attachments):
                problems.append(f"{c.email}: the receipt does not match the stored submission")
        audit = verify(s)
        if not audit.ok:
            problems.append(str(audit))
    engine.dispose()
    errors = [(label, status) for label, _, status in report.timings if status >= 500]
    if errors:
        problems.append(f"{len(errors)} responses were server errors: {errors[:5]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rush", description=__doc__.split("\n\n")[0])
    parser.add_argument("--coordinators", type=int, default=300, help="coordinators submitting on time")
    parser.add_argument("--late", type=int, default=20, help="coordinators trying after the deadline")
    parser.add_argument("--window", type=float, default=120.0, help="seconds of rush before the deadline")
    parser.add_argument("--clients", type=int, default=16, help="concurrent client threads (the bound)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--database", default=RUSH_DB, help="the scratch database (created and dropped)")
    parser.add_argument("--log", type=Path, default=None, help="where gunicorn's log goes")
    args = parser.parse_args(argv)
    url = rush_url(args.database)
    report = run(url, coordinators=args.coordinators, late=args.late, window=args.window, clients=args.clients,
                 gunicorn_workers=args.workers, log_path=args.log)
    print(report.summary())
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
