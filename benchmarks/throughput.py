"""Throughput: requests per second of the main pages under gunicorn (2 workers) on PostgreSQL, as a ratio
to a trivial route measured in the same run.

    python -m benchmarks.throughput

The database is the benchmark's own, jointcall_bench, on the server and role of JOINTCALL_TEST_PG_URL
(or the tests' default): it is created if missing (as the postgres OS user, like scripts/test-services.sh)
and only its own schema is emptied. The tests' database is never touched.

gunicorn runs `webapp.wsgi:app` with `--no-control-socket` (gunicorn 27 shares a control socket path
between instances otherwise) on a free port. The load generator is bounded: per page a fixed number of
requests, a few client threads (http.client, one connection per request: gunicorn's sync workers close
them), and a time limit after which no request is started (those under way finish, within 60 s);
requests per second = requests answered 200 / time until the last one finished. The trivial route is the cheapest
page the app has: a static file (webapp/static/css/jointcall.css, served by Flask through gunicorn: no
template, no database); GET /login (a template, a CSRF token, no database) is measured beside it, and so is
the floor: the emptiest signed-in page (/funding/ as the secretariat: the session's person and their roles in
one statement, the calls in another, a short template), which no page that shows data from the database to a
signed-in person can beat.
"""

from __future__ import annotations

import argparse
import http.client
import math
import os
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import (
    PROJECT,
    SECRET_KEY,
    ensure_bench_database,
    make_app,
    median,
    session_cookie,
    workdir,
)
from benchmarks.generate import generate

STATIC_ROUTE = "/static/css/jointcall.css"
LOGIN_ROUTE = "/login"
FLOOR_PAGE = ("secretariat", "/funding/")
# The main pages of each role: list, dashboard and detail (URL rules as in the app's URL map; <kind> is the
# pre-proposal stage, the one with 2,000 proposals).
MAIN_PAGES = (
    ("applicant", "/my/"),
    ("applicant", "/my/proposals/<int:proposal_id>"),
    ("officer", "/funder/calls/<int:call_id>/<kind>"),
    ("officer", "/funder/checks/<int:check_id>"),
    ("secretariat", "/secretariat/calls/<int:call_id>/dashboard"),
    ("secretariat", "/secretariat/calls/<int:call_id>/proposals"),
    ("secretariat", "/secretariat/calls/<int:call_id>/eligibility/<kind>"),
    ("secretariat", "/secretariat/proposals/<int:proposal_id>/eligibility/<kind>"),
    ("secretariat", "/funding/calls/<int:call_id>/scenario"),
    ("reviewer", "/review/calls/<int:call_id>"),
    ("reviewer", "/review/proposals/<int:proposal_id>"),
    ("public", "/calls/<code>"),
)
TARGET_RATIO = 0.30
REQUEST_TIMEOUT = 60.0  # a request started before the time limit may finish after it


@dataclass
class Load:
    label: str
    path: str
    role: str
    requests: int = 0
    ok: int = 0
    errors: dict = field(default_factory=dict)  # status or exception name -> count
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    hit_time_limit: bool = False

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def p50(self) -> float:
        return median(self.latencies_ms)

    @property
    def p95(self) -> float:
        """The latency 95 % of the requests stayed under (what the slowest of the usual waits feel like)."""
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """gunicorn webapp.wsgi:app, 2 sync workers, on a free port; stopped by its own pid."""

    def __init__(self, url: str, workers: int = 2):
        self.url, self.workers = url, workers
        self.port = free_port()
        self.log = workdir() / "gunicorn.log"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Gunicorn:
        env = dict(os.environ, JOINTCALL_DATABASE_URL=self.url, JOINTCALL_SECRET_KEY=SECRET_KEY,
                   JOINTCALL_STORAGE_DIR=str(workdir() / "files"), JOINTCALL_MAIL_INLINE="false",
                   JOINTCALL_BASE_URL=f"http://127.0.0.1:{self.port}")
        gunicorn = Path(sys.executable).with_name("gunicorn")
        cmd = [str(gunicorn) if gunicorn.exists() else "gunicorn", "--workers", str(self.workers),
               "--bind", f"127.0.0.1:{self.port}", "--no-control-socket", "--timeout", "60",
               "--log-level", "warning", "webapp.wsgi:app"]
        self.proc = subprocess.Popen(cmd, cwd=PROJECT, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}); see {self.log}")
            try:
                status, _ = get("127.0.0.1", self.port, STATIC_ROUTE, None, timeout=2)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise RuntimeError(f"gunicorn did not answer on port {self.port} within 40 s; see {self.log}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def get(host: str, port: int, path: str, cookie: tuple[str, str] | None, timeout: float = 30) -> tuple[int, int]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {"Cookie": f"{cookie[0]}={cookie[1]}"} if cookie else {}
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        return response.status, len(body)
    finally:
        conn.close()


def load(port: int, label: str, path: str, role: str, cookie, *, requests: int, threads: int,
         time_limit: float, warmup: int = 4) -> Load:
    """`requests` GETs of `path` from `threads` threads, stopping at `time_limit` seconds."""
    result = Load(label, path, role)
    for _ in range(warmup):
        try:
            get("127.0.0.1", port, path, cookie)
        except OSError:
            pass
    lock = threading.Lock()
    issued = [0]
    stop_at = time.monotonic() + time_limit

    def worker():
        while True:
            with lock:
                if issued[0] >= requests or time.monotonic() >= stop_at:
                    return
                issued[0] += 1
            t0 = time.perf_counter()
            try:
                status, _ = get("127.0.0.1", port, path, cookie, timeout=REQUEST_TIMEOUT)
            except OSError as exc:
                status = type(exc).__name__
            ms = (time.perf_counter() - t0) * 1000
            with lock:
                result.requests += 1
                if status == 200:
                    result.ok += 1
                    result.latencies_ms.append(ms)
                else:
                    result.errors[status] = result.errors.get(status, 0) + 1

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(time_limit + REQUEST_TIMEOUT + 5)
    result.seconds = time.perf_counter() - started
    result.hit_time_limit = result.requests < requests
    return result


def fill(template: str, summary) -> str:
    values = {"call_id": summary.call_id, "proposal_id": summary.proposal_id, "check_id": summary.check_id,
              "code": summary.call_code, "kind": "pre"}
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), template)


def run(summary=None, *, requests: int = 250, threads: int = 4, time_limit: float = 6.0,
        quiet: bool = False) -> dict:
    """Measure; returns {"url", "summary", "reference", "login", "pages", "absent", "error"}."""
    url, why = ensure_bench_database()
    if url is None:
        return {"error": f"PostgreSQL database jointcall_bench is not available: {why}"}
    if summary is None:
        summary = generate(url, 2000, quiet=quiet)
    app = make_app(url)
    rules = {r.rule for r in app.url_map.iter_rules()}
    users = {"secretariat": summary.secretariat_id, "applicant": summary.coordinator_id,
             "reviewer": summary.reviewer_id, "officer": summary.officer_ids.get(summary.busiest_funder),
             "public": None}
    cookies = {role: session_cookie(app, uid) for role, uid in users.items()}
    app.extensions["jointcall.engine"].dispose()
    out = {"url": url, "summary": summary, "pages": [], "absent": [], "error": "", "requests": requests,
           "threads": threads, "time_limit": time_limit}
    with Gunicorn(url) as server:
        port = server.port
        out["reference"] = load(port, "static file", STATIC_ROUTE, "public", None, requests=requests * 2,
                                threads=threads, time_limit=time_limit)
        out["login"] = load(port, "login page", LOGIN_ROUTE, "public", None, requests=requests * 2,
                            threads=threads, time_limit=time_limit)
        floor_role, floor_path = FLOOR_PAGE
        out["floor"] = load(port, floor_path, floor_path, floor_role, cookies[floor_role], requests=requests * 2,
                            threads=threads, time_limit=time_limit)
        for role, template in MAIN_PAGES:
            if template not in rules:
                out["absent"].append((role, template))
                continue
            path = fill(template, summary)
            if role == "reviewer" and "<int:proposal_id>" in template:
                path = path.replace(f"/{summary.proposal_id}", f"/{summary.reviewer_proposal_id}")
            result = load(port, template.replace("<kind>", "pre"), path, role, cookies[role], requests=requests, threads=threads,
                          time_limit=time_limit)
            out["pages"].append(result)
            if not quiet:
                print(f"  {template:60} {result.rps:7.1f} req/s  p50 {result.p50:7.1f} ms"
                      + (f"  errors {result.errors}" if result.errors else ""))
        out["again"] = load(port, "static file (again, at the end)", STATIC_ROUTE, "public", None,
                            requests=requests * 2, threads=threads, time_limit=time_limit)
    if not quiet:
        print(report(out))
    return out


def reference_rps(out: dict) -> float:
    """The trivial route's rate: the mean of its measurement before and after the pages."""
    return (out["reference"].rps + out["again"].rps) / 2


def report(out: dict) -> str:
    if out.get("error"):
        return out["error"]
    ref = out["reference"]
    floor = out["floor"]
    lines = [f"trivial route {ref.path}: {ref.rps:.1f} req/s (again at the end: {out['again'].rps:.1f}); "
             f"{LOGIN_ROUTE}: {out['login'].rps:.1f} req/s; floor (emptiest signed-in page) {floor.path}: "
             f"{floor.rps:.1f} req/s = {floor.rps / reference_rps(out):.0%}",
             f"{'page':62} {'role':11} {'req/s':>7} {'ratio':>6} {'p50 ms':>8} {'done':>5}  target ≥ 30 %"]
    for r in out["pages"]:
        ratio = r.rps / reference_rps(out) if reference_rps(out) else 0
        met = "met" if ratio >= TARGET_RATIO and not r.errors else "NOT MET"
        lines.append(f"{r.label:62} {r.role:11} {r.rps:7.1f} {ratio:6.0%} {r.p50:8.1f} {r.ok:5d}  {met}"
                     + (f" (errors: {r.errors})" if r.errors else ""))
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="requests per second under gunicorn on PostgreSQL")
    parser.add_argument("--requests", type=int, default=250)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--time-limit", type=float, default=6.0)
    args = parser.parse_args(argv)
    run(requests=args.requests, threads=args.threads, time_limit=args.time_limit)


if __name__ == "__main__":
    main()
