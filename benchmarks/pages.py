"""Page cost: SQL statements and server time per request, for every role's pages, at two sizes of a call.

    python -m benchmarks.pages [--sizes 200 2000] [--runs 5]

The pages are found in the app's URL map (GET routes), so pages added later are measured without
changing this file. Each is requested through the Flask test client as the role it belongs to
(/my/ applicant = a coordinator, /funder/ officer of the funder with most partners, /secretariat/
secretariat, /secretariat/admin admin, /review... reviewer; anything else is tried as each role in turn
until one may see it). Forms that change something, PDFs and single-use links are left out.

SQL statements are counted with SQLAlchemy's `before_cursor_execute` event on the app's engine. A page
whose count is higher at the larger size runs a query per row (N+1): the statements that grew are listed
with where they come from (the innermost frames of the project's code and templates). A page whose HTML
grows with the call does not paginate its list.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import event, inspect, text

from benchmarks.common import PROJECT, make_app, median, sqlite_url
from benchmarks.generate import generate

PROJECT_PREFIX = str(PROJECT) + "/"
ROLE_BY_PREFIX = (("/my/", "applicant"), ("/funder/", "officer"), ("/secretariat/admin", "admin"),
                  ("/secretariat/", "secretariat"), ("/review", "reviewer"), ("/reviewer", "reviewer"))
ROLES = ("secretariat", "officer", "applicant", "reviewer", "admin")
# Endpoint names of pages that are forms for an action, single-use links or files, not pages to read.
SKIP_WORDS = ("new", "edit", "withdraw", "submit", "reopen", "close", "open", "remind", "join", "invite",
              "bulk", "accept", "start", "move", "remove", "resend", "revoke", "cancel", "verify", "confirm",
              "register", "forgot", "reset", "check_mail", "logout", "pdf", "download", "upload", "post",
              "approve", "send", "template", "declare", "override")
PUBLIC_RULES = ("/", "/login", "/calls/<code>")
PER_ROW_REPEATS = 5  # one statement sent this many times in one request: a query per row of the page
SKIP_PARAMS = ("token", "what", "filename", "document_id", "path")
GROWTH_RATIO = 1.5  # statements at the large size / at the small size above this: grows with the data
GROWTH_MIN = 5  # ... and by at least this many statements
PAGINATED_RATIO = 5.0  # a pager, yet the page grows this much: something else on it is not paginated
PAGINATION_RATIO = 2.0  # response bytes at the large size / small size above this: the list is not paginated


@dataclass
class Page:
    endpoint: str
    rule: str
    url_template: str
    values: dict
    role: str = ""
    kind: str = "page"  # page | export

    @property
    def name(self) -> str:
        return self.url_template


@dataclass
class Measure:
    status: int = 0
    statements: int = 0
    ms: float = 0.0
    runs: int = 0
    bytes: int = 0
    paginated: bool = False  # the page has a pager (its list is cut into pages)
    error: str = ""
    by_sql: Counter = field(default_factory=Counter)
    origin: dict = field(default_factory=dict)  # sql -> Counter of the project frames it was sent from


@dataclass
class PageResult:
    page: Page
    sizes: dict[int, Measure] = field(default_factory=dict)
    role: str = ""

    def grows(self, small: int, large: int) -> bool:
        """More statements at the larger size: the count is not constant in the size of the call."""
        a, b = self.sizes.get(small), self.sizes.get(large)
        if not a or not b or a.status != 200 or b.status != 200:
            return False
        return b.statements > a.statements

    def n_plus_one(self, small: int, large: int) -> bool:
        """Grows markedly (a statement per row or per few rows, not an extra batch or two)."""
        if not self.grows(small, large):
            return False
        a, b = self.sizes[small].statements, self.sizes[large].statements
        return b > a * GROWTH_RATIO and b - a >= GROWTH_MIN

    def unpaginated(self, small: int, large: int) -> bool:
        a, b = self.sizes.get(small), self.sizes.get(large)
        if self.page.kind == "export" or not a or not b or a.status != 200 or b.status != 200:
            return False
        # A paginated list still grows until its first page is full (a small call may have fewer rows
        # than one page): with a pager, only growth well beyond that counts.
        return b.bytes > a.bytes * (PAGINATED_RATIO if b.paginated else PAGINATION_RATIO)

    def growth(self, small: int, large: int, top: int = 4) -> list[tuple[int, int, str, list]]:
        """The statements whose count grew most: (count small, count large, sql, [(frames, count)] most
        frequent origins first)."""
        a, b = self.sizes[small], self.sizes[large]
        rows = []
        for sql, n in b.by_sql.items():
            m = a.by_sql.get(sql, 0)
            if n > m:
                rows.append((m, n, sql, b.origin.get(sql, Counter()).most_common(2)))
        rows.sort(key=lambda r: (r[0] - r[1], r[2]))
        return rows[:top]

    def repeated(self, size: int, top: int = 3) -> list[tuple[int, str, list]]:
        """Statements sent PER_ROW_REPEATS times or more in one request: (count, sql, origins)."""
        m = self.sizes.get(size)
        if m is None or m.status != 200:
            return []
        rows = [(n, sql, m.origin.get(sql, Counter()).most_common(2)) for sql, n in m.by_sql.items()
                if n >= PER_ROW_REPEATS]
        rows.sort(key=lambda r: (-r[0], r[1]))
        return rows[:top]


# ---------------------------------------------------------------------------------------------------------
# Counting statements


def _rel(path: str) -> str:
    return path[len(PROJECT_PREFIX):] if path.startswith(PROJECT_PREFIX) else path


def project_frames(limit: int = 4) -> list[str]:
    """The innermost frames of the project's own code (and templates, with their template line)."""
    frame = sys._getframe(2)
    out: list[str] = []
    while frame is not None and len(out) < limit:
        filename = frame.f_code.co_filename
        if filename.startswith(PROJECT_PREFIX) and "/.venv/" not in filename and "/benchmarks/" not in filename:
            template = frame.f_globals.get("__jinja_template__")
            if template is not None:
                try:
                    line = template.get_corresponding_lineno(frame.f_lineno)
                except Exception:  # noqa: BLE001
                    line = "?"
                out.append(f"{_rel(template.filename or filename)}:{line}")
            else:
                out.append(f"{_rel(filename)}:{frame.f_lineno} {frame.f_code.co_name}()")
        frame = frame.f_back
    return out


class Recorder:
    """Counts the statements an engine sends while `active`; with `trace`, also where each comes from."""

    def __init__(self, engine):
        self.active = False
        self.trace = False
        self.count = 0
        self.by_sql: Counter = Counter()
        self.origin: dict[str, Counter] = {}
        event.listen(engine, "before_cursor_execute", self._on_execute)

    def start(self, trace: bool = False) -> None:
        self.active, self.trace, self.count = True, trace, 0
        self.by_sql, self.origin = Counter(), {}

    def stop(self) -> int:
        self.active = False
        return self.count

    def _on_execute(self, conn, cursor, statement, parameters, context, executemany):
        if not self.active:
            return
        self.count += 1
        if self.trace:
            key = re.sub(r"\s+", " ", statement).strip()
            key = re.sub(r"\((?:%\(\w+\)s|\?|:\w+)(?:, (?:%\(\w+\)s|\?|:\w+))*\)", "(…)", key)
            key = re.sub(r"__\[POSTCOMPILE_\w+\]", "(…)", key)
            self.by_sql[key] += 1
            self.origin.setdefault(key, Counter())[tuple(project_frames())] += 1


# ---------------------------------------------------------------------------------------------------------
# Finding the pages


def _role_of(rule: str) -> str:
    if rule in PUBLIC_RULES:
        return "public"
    for prefix, role in ROLE_BY_PREFIX:
        if rule.startswith(prefix):
            return role
    return ""  # unknown: tried as each role in turn


def _generic_id(session, name: str, summary, role: str) -> int | None:
    """A row id for a URL parameter `<thing>_id` the benchmark does not know: a row of table `thing`
    tied to the sample proposal, the sample reviewer or the call, in that order."""
    table = name[: -len("_id")]
    insp = inspect(session.get_bind())
    if not insp.has_table(table):
        return None
    cols = {c["name"] for c in insp.get_columns(table)}
    filters = []
    if "reviewer_id" in cols and role == "reviewer":
        filters.append(f"reviewer_id = {int(summary.reviewer_id)}")
    if "proposal_id" in cols:
        filters.append(f"proposal_id = {int(summary.proposal_id)}")
    if "call_id" in cols:
        filters.append(f"call_id = {int(summary.call_id)}")
    for n in range(len(filters), -1, -1):
        where = (" WHERE " + " AND ".join(filters[:n])) if n else ""
        value = session.execute(text(f"SELECT MIN(id) FROM {table}{where}")).scalar()
        if value is not None:
            return int(value)
    return None


def _values(session, arg: str, choice: dict, summary, role: str, busiest: int | None) -> list:
    """The values to try for URL parameter `arg` (empty: the generated data has none)."""
    fixed = {"call_id": summary.call_id, "code": summary.call_code, "check_id": summary.check_id,
             "submission_id": summary.submission_id, "funder_id": busiest, "reviewer_id": summary.reviewer_id,
             "user_id": summary.reviewer_id, "revision": 1, "number": 1}
    if arg in fixed:
        return [fixed[arg]] if fixed[arg] is not None else []
    if arg in ("kind", "stage"):
        return ["pre", "full"]
    if arg == "fmt":
        return ["csv"]
    if arg == "proposal_id":
        return [summary.reviewer_proposal_id if role == "reviewer" else summary.proposal_id]
    if arg == "event_id":  # the closing of the eligibility step of that stage
        rows = session.execute(text("SELECT id, after FROM audit_event WHERE action = 'eligibility.step_closed' "
                                    "AND call_id = :c ORDER BY id"), {"c": summary.call_id}).all()
        stage = choice.get("kind") or choice.get("stage")
        for event_id, after in rows:
            after = json.loads(after) if isinstance(after, str) else after
            if stage is None or (after or {}).get("stage") == stage:
                return [event_id]
        return []
    if arg.endswith("_id"):
        found = _generic_id(session, arg, summary, role)
        return [found] if found is not None else []
    return []


def discover(app, summary) -> tuple[list[Page], list[tuple[str, str]]]:
    """The pages to measure (one per stage for stage routes), and the routes left out with the reason."""
    pages: list[Page] = []
    skipped: list[tuple[str, str]] = []
    factory = app.extensions["jointcall.sessions"]
    busiest = None
    with app.app_context(), factory() as session:
        busiest = session.execute(text("SELECT id FROM funding_organisation WHERE acronym = :a"),
                                  {"a": summary.busiest_funder}).scalar()
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
            if "GET" not in rule.methods or rule.endpoint == "static":
                continue
            short = rule.endpoint.rpartition(".")[2]
            if short in SKIP_WORDS or any(word in short.split("_") for word in SKIP_WORDS) \
                    or re.search(r"\.(pdf|zip)$", rule.rule):
                skipped.append((rule.rule, "a form or file, not a page to read"))
                continue
            role = _role_of(rule.rule)
            args = sorted(rule.arguments)
            blocked = [a for a in args if a in SKIP_PARAMS]
            if blocked:
                skipped.append((rule.rule, f"needs a {blocked[0]}"))
                continue
            choices: list[dict] = [{}]
            unresolved = None
            for arg in sorted(args, key=lambda a: (a == "event_id", a)):  # event_id depends on the stage
                choices = [{**c, arg: v} for c in choices for v in _values(session, arg, c, summary, role, busiest)]
                if not choices:
                    unresolved = arg
                    break
            if unresolved:
                skipped.append((rule.rule, f"no value for <{unresolved}> in the generated data"))
                continue
            kind = "export" if ("fmt" in args or re.search(r"\.(csv|xlsx|toml|json)$", rule.rule)) else "page"
            for values in choices:
                label = rule.rule
                for k, v in values.items():
                    if k in ("kind", "stage", "fmt"):
                        label = re.sub(rf"<(?:\w+:)?{k}>", str(v), label)
                pages.append(Page(rule.endpoint, rule.rule, label, values, role, kind))
    return pages, skipped


# ---------------------------------------------------------------------------------------------------------
# Measuring


class Clients:
    """One logged-in test client per role."""

    def __init__(self, app, summary):
        self.app, self.summary, self.clients = app, summary, {}

    def user_of(self, role: str) -> int | None:
        s = self.summary
        return {"secretariat": s.secretariat_id, "admin": s.admin_id, "applicant": s.coordinator_id,
                "reviewer": s.reviewer_id, "officer": s.officer_ids.get(s.busiest_funder)}.get(role)

    def get(self, role: str):
        if role not in self.clients:
            from benchmarks.common import login_id

            client = self.app.test_client()
            uid = self.user_of(role)
            if uid is not None:
                with client.session_transaction() as sess:
                    sess["_user_id"] = login_id(self.app, uid)
                    sess["_fresh"] = True
            self.clients[role] = client
        return self.clients[role]


def _url(app, page: Page) -> str:
    with app.test_request_context():
        from flask import url_for

        return url_for(page.endpoint, **page.values)


def measure_page(app, clients: Clients, recorder: Recorder, page: Page, role: str, runs: int,
                 budget_s: float) -> Measure:
    m = Measure()
    url = _url(app, page)
    client = clients.get(role)
    recorder.start(trace=True)
    try:
        response = client.get(url)
    except Exception as exc:  # noqa: BLE001 - the page failed: say how, measure the rest
        recorder.stop()
        m.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]
        m.status = 500
        return m
    recorder.stop()
    m.status = response.status_code
    if m.status in (301, 302, 303, 307, 308):
        m.error = f"redirects to {response.headers.get('Location', '?')}"
    m.by_sql, m.origin = recorder.by_sql, recorder.origin
    m.statements = recorder.count
    m.bytes = len(response.get_data())
    m.paginated = b'class="pagination' in response.get_data()
    if m.status != 200:
        return m
    times, counts = [], []
    started = time.perf_counter()
    for _ in range(runs):
        recorder.start()
        t0 = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        counts.append(recorder.stop())
        if time.perf_counter() - started > budget_s:
            break
    m.ms, m.runs = median(times), len(times)
    m.statements = max(counts + [m.statements])
    return m


def run_size(url: str, summary, runs: int, results: dict[str, PageResult], size: int,
             skipped_out: list, budget_per_page: float) -> None:
    app = make_app(url)
    engine = app.extensions["jointcall.engine"]
    recorder = Recorder(engine)
    clients = Clients(app, summary)
    pages, skipped = discover(app, summary)
    if not skipped_out:
        skipped_out.extend(skipped)
    for page in pages:
        result = results.setdefault(page.name, PageResult(page))
        if result.role:
            roles = [result.role]
        elif page.role == "public":
            roles = ["public"]
        else:
            roles = ([page.role] if page.role else []) + [r for r in ROLES if r != page.role] + ["public"]
        measure = None
        for role in roles:
            measure = measure_page(app, clients, recorder, page, role, runs, budget_per_page)
            if measure.status not in (401, 403) and "/login" not in measure.error:
                result.role = role
                break
        if not result.role:
            result.role = page.role or roles[0]
        result.sizes[size] = measure
    engine.dispose()


def run(sizes=(200, 2000), runs: int = 5, *, budget_per_page: float = 3.0, urls: dict[int, str] | None = None,
        summaries: dict | None = None, quiet: bool = False) -> dict:
    """Generate (unless given) and measure. Returns {"sizes", "results", "skipped", "summaries"}."""
    results: dict[str, PageResult] = {}
    skipped: list = []
    summaries = dict(summaries or {})
    for size in sizes:
        if size not in summaries:
            url = (urls or {}).get(size) or sqlite_url(f"pages-{size}.db")
            summaries[size] = generate(url, size, quiet=quiet)
        s = summaries[size]
        t0 = time.perf_counter()
        run_size(s.url, s, runs, results, size, skipped, budget_per_page)
        if not quiet:
            print(f"pages at {size} proposals measured in {time.perf_counter() - t0:.1f} s")
    out = {"sizes": list(sizes), "results": results, "skipped": skipped, "summaries": summaries}
    if not quiet:
        print(table(out))
    return out


# ---------------------------------------------------------------------------------------------------------
# Reporting


def flags(result: PageResult, small: int, large: int) -> list[str]:
    out = []
    for size in (small, large):
        m = result.sizes.get(size)
        if m is None:
            continue
        if m.error:
            out.append(f"fails at {size}: {m.error}")
        elif m.status != 200:
            out.append(f"HTTP {m.status} at {size}")
    if result.n_plus_one(small, large):
        a, b = result.sizes[small].statements, result.sizes[large].statements
        out.append(f"N+1: statements grow {a} → {b}")
    elif result.grows(small, large):
        a, b = result.sizes[small].statements, result.sizes[large].statements
        out.append(f"statements grow {a} → {b}")
    elif all(s in result.sizes and result.sizes[s].status == 200 for s in (small, large)) and \
            result.sizes[large].statements != result.sizes[small].statements:
        d = result.sizes[large].statements - result.sizes[small].statements
        out.append(f"statements differ by {d:+d} (the sample objects differ)")
    if not result.grows(small, large):
        rep = result.repeated(large)
        if rep:
            out.append(f"per-row queries: one statement sent {rep[0][0]}× per request")
    if result.unpaginated(small, large):
        a, b = result.sizes[small].bytes, result.sizes[large].bytes
        out.append(f"not paginated: page grows {a / 1024:.0f} → {b / 1024:.0f} KiB")
    return out


def table(data: dict) -> str:
    small, large = data["sizes"][0], data["sizes"][-1]
    head = (f"{'page':58} {'role':11} {'SQL@' + str(small):>8} {'SQL@' + str(large):>9} "
            f"{'ms@' + str(small):>8} {'ms@' + str(large):>9} {'KiB@' + str(large):>9}  flags")
    lines = [head, "-" * len(head)]
    for name, r in sorted(data["results"].items()):
        a, b = r.sizes.get(small, Measure()), r.sizes.get(large, Measure())
        lines.append(f"{name[:58]:58} {r.role:11} {a.statements:8d} {b.statements:9d} {a.ms:8.1f} {b.ms:9.1f} "
                     f"{b.bytes / 1024:9.0f}  {'; '.join(flags(r, small, large))}")
    return "\n".join(lines)


def growing(data: dict) -> list[PageResult]:
    """Pages whose statement count is higher at the larger size, N+1 or batched."""
    small, large = data["sizes"][0], data["sizes"][-1]
    return [r for _, r in sorted(data["results"].items()) if r.grows(small, large)]


def per_row(data: dict) -> list[PageResult]:
    """Pages that do not grow with the call but still send one statement per row of what they show."""
    small, large = data["sizes"][0], data["sizes"][-1]
    return [r for _, r in sorted(data["results"].items()) if not r.grows(small, large) and r.repeated(large)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="SQL statements and server time per page at two sizes")
    parser.add_argument("--sizes", type=int, nargs=2, default=(200, 2000))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    data = run(tuple(args.sizes), args.runs)
    small, large = data["sizes"]
    for r in growing(data):
        print(f"\nN+1 {r.page.name} ({r.role}): {r.sizes[small].statements} → {r.sizes[large].statements}")
        for m, n, sql, origins in r.growth(small, large):
            print(f"  {m} → {n}: {sql[:110]}")
            for frames, count in origins:
                print(f"      {count}× from {' < '.join(frames) or '?'}")
    for r in per_row(data):
        print(f"\nper-row queries {r.page.name} ({r.role}):")
        for n, sql, origins in r.repeated(large):
            print(f"  {n}×: {sql[:110]}")
            for frames, count in origins:
                print(f"      {count}× from {' < '.join(frames) or '?'}")
    if data["skipped"]:
        print("\nnot measured:")
        for rule, why in data["skipped"]:
            print(f"  {rule}: {why}")


if __name__ == "__main__":
    main()
