"""`python -m benchmarks` (what `make bench` runs): every benchmark, then benchmarks/RESULTS.md.

Each part runs in its own fresh interpreter on its own generated data, and is reported even if another
part fails. Nothing here
asserts on time: the figures are printed and written down with the targets of issue 9 beside them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import platform
import subprocess
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from benchmarks import allocation, assignment, letters, pages, throughput
from benchmarks.common import PROJECT, server_version, sqlite_url

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> dict:
    info = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "cores": os.cpu_count(),
            "python": platform.python_version(), "platform": platform.platform()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                            if line.startswith("model name")), platform.processor() or "?")
    except OSError:
        info["cpu"] = platform.processor() or "?"
    try:
        kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
        info["memory"] = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        info["memory"] = "?"
    try:
        info["os"] = next(line.split("=", 1)[1].strip().strip('"') for line in
                          Path("/etc/os-release").read_text().splitlines() if line.startswith("PRETTY_NAME="))
    except (OSError, StopIteration):
        info["os"] = platform.system()
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT, capture_output=True,
                                        text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=PROJECT, capture_output=True, text=True,
                               timeout=10).stdout.strip().splitlines()
        info["dirty"] = len(dirty)
    except (OSError, subprocess.SubprocessError):
        info["commit"], info["dirty"] = "?", 0
    return info


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def cpu_share(seconds: float = 1.0) -> float:
    """The share of one core a busy loop gets: about 1.0 on an idle machine, less when others compete."""
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    while time.perf_counter() - t0 < seconds:
        n += 1
    return (time.process_time() - c0) / (time.perf_counter() - t0)


def wait_quiet(limit_s: float) -> None:
    """Wait (at most `limit_s`) until the 1-minute load average is below 1, so that the run is not measuring
    other people's work."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        try:
            load = float(Path("/proc/loadavg").read_text().split()[0])
        except OSError:
            return
        if load < 1.0:
            return
        print(f"waiting for a quieter machine (load average {load:.2f})", flush=True)
        time.sleep(15)


def step(name: str, fn, kwargs: dict, results: dict, timings: dict):
    """Run one part in a fresh interpreter (spawn), so that no part measures the memory, caches or garbage
    collector of the parts before it."""
    print(f"\n== {name} ==", flush=True)
    t0 = time.perf_counter()
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            results[name] = pool.submit(fn, **kwargs).result()
    except Exception as exc:  # noqa: BLE001 - report the failure, go on with the other parts
        traceback.print_exc()
        results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    timings[name] = time.perf_counter() - t0
    print(f"-- {name}: {timings[name]:.0f} s (load average {load_average()})", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="run every benchmark and write benchmarks/RESULTS.md")
    parser.add_argument("--only", nargs="*", choices=["pages", "throughput", "assignment", "allocation", "letters"])
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md as it is")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                        help="first wait up to this long for the load average to drop below 1")
    args = parser.parse_args(argv)
    only = set(args.only or ["pages", "throughput", "assignment", "allocation", "letters"])
    if args.wait_quiet:
        wait_quiet(args.wait_quiet)
    started = time.perf_counter()
    info = machine()
    info["load_before"] = load_average()
    info["cpu_before"] = cpu_share()
    results: dict = {}
    timings: dict = {}
    if "pages" in only:
        step("pages", pages.run, {"sizes": (200, 2000), "runs": 5}, results, timings)
    if "throughput" in only:
        step("throughput", throughput.run, {}, results, timings)
    if "assignment" in only:
        step("assignment", assignment.run, {"proposals": 2000, "reviewers": 600, "reviews_each": 3}, results, timings)
    if "allocation" in only:
        step("allocation", allocation.run, {"proposals": 5000, "funders": 40, "runs": 7}, results, timings)
    if "letters" in only:
        step("letters", letters.run, {"letters": 1000, "naive": 200}, results, timings)
    info["load_after"] = load_average()
    info["cpu_after"] = cpu_share()
    info["total_s"] = time.perf_counter() - started
    info["sqlite"] = server_version(sqlite_url("version.db"))
    tp = results.get("throughput") or {}
    info["postgresql"] = server_version(tp["url"]) if tp.get("url") else "not available"
    text = render(info, results, timings)
    if not args.no_write:
        RESULTS.write_text(text, encoding="utf-8")
        print(f"\nwrote {RESULTS.relative_to(PROJECT)} ({info['total_s']:.0f} s in all)")
    else:
        print(text)
    return 0


# ---------------------------------------------------------------------------------------------------------
# RESULTS.md


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def _md_escape(value: str) -> str:
    return value.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def render(info: dict, results: dict, timings: dict) -> str:
    out: list[str] = []
    w = out.append
    w("# Benchmark results (issue 9: performance at real call scale)\n")
    w("Written by `python -m benchmarks` (`make bench`). The figures are measurements of one run, not "
      "assertions; run it again to compare. Every part generates its own data with `benchmarks/generate.py` "
      "(deterministic, seed 2024).\n")
    w("## Machine\n")
    w(f"- Date: {info['date']}; whole run {info['total_s'] / 60:.1f} min")
    w(f"- CPU: {info['cpu']}, {info['cores']} cores; memory {info['memory']}")
    w(f"- {info['os']}; Python {info['python']}; {info['postgresql']}; {info['sqlite']}")
    w(f"- Code: commit {info['commit']} with {info['dirty']} uncommitted files in the working tree "
      "(other engineers' work in progress at the time of the run)")
    w(f"- Load average (1, 5, 15 min) before / after the run: {info['load_before']} / {info['load_after']}; a busy "
      f"loop got {info['cpu_before']:.0%} / {info['cpu_after']:.0%} of a core. Other engineers' tests and "
      "servers share this machine, so any time here can be inflated by their work; the statement counts, "
      "objectives and ratios measured in one run are not.\n")

    w("## Targets\n")
    w("| Target (issue 9) | Figure | Verdict |")
    w("|---|---|---|")
    for row in targets(results):
        w("| " + " | ".join(row) + " |")
    w("")

    pg = results.get("pages")
    w("## 1. Page cost: SQL statements and server time per request\n")
    if not pg or pg.get("error"):
        w(f"Not measured: {(pg or {}).get('error', 'skipped')}\n")
    else:
        render_pages(w, pg)

    w("## 2. Throughput under gunicorn (2 workers, PostgreSQL)\n")
    render_throughput(w, results.get("throughput"))
    w("## 3. Reviewer assignment\n")
    render_assignment(w, results.get("assignment"))
    w("## 4. Funding allocation\n")
    render_allocation(w, results.get("allocation"))
    w("## 5. Decision letters\n")
    render_letters(w, results.get("letters"))
    w("## Time per part\n")
    w(", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + " (including generating the data).\n")
    return "\n".join(out)


def targets(results: dict) -> list[list[str]]:
    rows = []
    pg = results.get("pages")
    if pg and not pg.get("error"):
        small, large = pg["sizes"][0], pg["sizes"][-1]
        measured = [r for r in pg["results"].values()
                    if all(s in r.sizes and r.sizes[s].status == 200 for s in (small, large))]
        grow = [r for r in measured if r.grows(small, large)]
        rows.append(["SQL statements per page constant in the number of proposals",
                     f"{len(measured) - len(grow)} of {len(measured)} pages constant from {small} to {large} "
                     f"proposals; {len(grow)} grow (N+1: {sum(r.n_plus_one(small, large) for r in grow)})",
                     _met(not grow)])
        unpag = [r for r in measured if r.unpaginated(small, large)]
        listed = (f" ({', '.join(_md_escape(r.page.name) for r in unpag[:6])}{' …' if len(unpag) > 6 else ''})"
                  if unpag else "")
        rows.append(["Long lists paginate", f"{len(unpag)} pages grow with the call{listed}", _met(not unpag)])
    else:
        rows.append(["SQL statements per page constant", "not measured", "n/a"])
    tp = results.get("throughput")
    if tp and not tp.get("error") and tp.get("pages"):
        ref = throughput.reference_rps(tp)
        ok = [r for r in tp["pages"] if ref and r.rps / ref >= throughput.TARGET_RATIO and not r.errors]
        worst = min(tp["pages"], key=lambda r: r.rps)
        floor = tp["floor"]
        rows.append(["Main pages ≥ 30 % of the trivial route's throughput",
                     f"{len(ok)} of {len(tp['pages'])} pages; trivial route (static file) {ref:.0f} req/s; "
                     f"slowest {_md_escape(worst.label)} {worst.rps:.1f} req/s ({worst.rps / ref:.1%}); the floor, "
                     f"the emptiest signed-in page `{floor.path}`: {floor.rps:.0f} req/s ({floor.rps / ref:.1%})",
                     _met(len(ok) == len(tp["pages"]))])
    else:
        rows.append(["Main pages ≥ 30 % of the trivial route's throughput",
                     f"not measured: {(tp or {}).get('error', 'skipped')}", "n/a"])
    a = results.get("assignment")
    if a and not a.get("error") and a.get("methods"):
        v = assignment.verdicts(a)
        f, g = a["methods"]["flow"], a["methods"]["greedy"]
        rows.append(["Assignment (2,000 × 600 × 3) within 10 s",
                     f"whole preview {f.seconds:.1f} s (solver {f.solver_seconds:.2f} s)", _met(v["time"])])
        rows.append(["Assignment at least as good as greedy",
                     f"objective {f.objective:.1f} vs greedy {g.objective:.1f}; {f.pairs} vs {g.pairs} pairs",
                     _met(v["quality"])])
    else:
        rows.append(["Assignment within 10 s and ≥ greedy", f"not measured: {(a or {}).get('error', 'skipped')}",
                     "n/a"])
    al = results.get("allocation")
    if al and not al.get("error"):
        worst = max(c["median"] for c in al["cases"].values())
        rows.append(["Allocation (5,000 ranked × 40 funders) within 0.2 s",
                     f"median {worst * 1000:.0f} ms (slower of the two rankings)", _met(al["met"])])
    else:
        rows.append(["Allocation within 0.2 s", f"not measured: {(al or {}).get('error', 'skipped')}", "n/a"])
    le = results.get("letters")
    if le and not le.get("error"):
        kind = "letters" if not le.get("waits") else "receipts (letters module not ready)"
        rows.append([f"Letters ≥ 1.5× the naive loop ({kind})",
                     f"{le['bulk']['per_second']:.2f}/s vs {le['naive']['per_second']:.2f}/s = {le['speedup']:.2f}×",
                     _met(le["met_speed"])])
        rows.append(["Letters with flat memory",
                     f"peak {le['bulk']['memory']['peak_self_mb']:.0f} MiB (export process), "
                     f"{le['bulk']['memory']['peak_child_mb']:.0f} MiB (largest worker)", _met(le["met_memory"])])
    else:
        rows.append(["Letters ≥ 1.5× naive, flat memory", f"not measured: {(le or {}).get('error', 'skipped')}",
                     "n/a"])
    return rows


def render_pages(w, pg: dict) -> None:
    small, large = pg["sizes"][0], pg["sizes"][-1]
    s2 = pg["summaries"][large]
    w(f"Generated call (SQLite, `decisions` snapshot): {s2.counts['proposals']:,} pre-proposals, "
      f"{s2.counts['partners']:,} partners, {s2.counts['funders']} funders, {s2.counts['reviewers']} reviewers, "
      f"{s2.counts['reviews']:,} reviews, {s2.counts['eligibility_checks']:,} eligibility checks, "
      f"{s2.counts['conflicts']:,} conflicts, {s2.counts['audit_events']:,} audit events "
      f"(generated in {s2.seconds:.0f} s); the small call has {small} pre-proposals and the same proportions.\n")
    w("Each page is requested through the Flask test client, logged in as its role. SQL = statements sent "
      "(SQLAlchemy `before_cursor_execute`); ms = median server time of up to 5 requests after a warm-up; "
      f"KiB = response size at {large}. Roles: the applicant is a coordinator whose proposal went to the full stage, "
      f"the officer is {s2.busiest_funder}'s (the funder with most partners), the reviewer reviews that proposal.\n")
    w(f"| Page | Role | SQL @{small} | SQL @{large} | ms @{small} | ms @{large} | KiB @{large} | Flags |")
    w("|---|---|---:|---:|---:|---:|---:|---|")
    absent, failed = [], []
    for name, r in sorted(pg["results"].items()):
        a, b = r.sizes.get(small, pages.Measure()), r.sizes.get(large, pages.Measure())
        if a.status >= 500 or b.status >= 500:
            failed.append((name, r.role, b.error or a.error or f"HTTP {b.status}"))
            continue
        if a.status != 200 or b.status != 200:
            absent.append((name, f"HTTP {a.status} / {b.status} as {r.role}"
                           + (f" ({b.error})" if b.error else " with the generated values")))
            continue
        w(f"| `{name}` | {r.role} | {a.statements} | {b.statements} | {a.ms:.1f} | {b.ms:.1f} | "
          f"{b.bytes / 1024:.0f} | {_md_escape('; '.join(pages.flags(r, small, large)))} |")
    w("")
    grow = pages.growing(pg)
    w(f"### Pages whose statement count grows with the call ({len(grow)})\n")
    if not grow:
        w("None.\n")
    for r in grow:
        w(f"- **`{r.page.name}`** ({r.role}): {r.sizes[small].statements} statements at {small} proposals, "
          f"{r.sizes[large].statements} at {large}. The statements that grew:")
        for m, n, sql, origins in r.growth(small, large):
            w(f"  - {m} → {n}: `{sql[:100]}…`")
            for frames, count in origins:
                w(f"    - {count}× from {' ← '.join(f'`{f}`' for f in frames) or '?'}")
    w("")
    per_row = pages.per_row(pg)
    w(f"### Pages that send one statement per row shown, at both sizes ({len(per_row)})\n")
    w("Not growing with the call, but a query per row of what the page lists (it grows with the list: a "
      "reviewer's assignments, the call's funders).\n")
    for r in per_row:
        w(f"- **`{r.page.name}`** ({r.role}), {r.sizes[large].statements} statements:")
        for n, sql, origins in r.repeated(large):
            w(f"  - {n}× `{sql[:100]}…`")
            for frames, count in origins:
                w(f"    - {count}× from {' ← '.join(f'`{f}`' for f in frames) or '?'}")
    w("")
    if failed:
        w(f"### Pages that failed ({len(failed)})\n")
        w("They raised an error at the time of the run (work in progress of other modules, most likely):\n")
        for name, role, error in failed:
            w(f"- `{name}` ({role}): {_md_escape(error)}")
        w("")
    w("### Not measured\n")
    for name, why in absent:
        w(f"- `{name}`: {_md_escape(why)}")
    for rule, why in pg["skipped"]:
        w(f"- `{rule}`: {why}")
    w("")


def render_throughput(w, tp: dict | None) -> None:
    if not tp or tp.get("error"):
        w(f"Not measured: {(tp or {}).get('error', 'skipped')}\n")
        return
    s = tp["summary"]
    ref, login = throughput.reference_rps(tp), tp["login"]
    w(f"The generated call with {s.counts['proposals']:,} pre-proposals in the benchmark's own PostgreSQL database "
      f"`jointcall_bench` (generated in {s.seconds:.0f} s). gunicorn `webapp.wsgi:app`, 2 sync workers, "
      f"`--no-control-socket`; a load generator on the same machine: {tp['threads']} threads, http.client, one "
      f"connection per request, up to {tp['requests']} requests per page ({2 * tp['requests']} for the trivial "
      f"routes) and at most {tp['time_limit']:g} s per page, after 4 warm-up requests.\n")
    w(f"Trivial route: **`{throughput.STATIC_ROUTE}`**, a static file served by the app (the cheapest page it has), "
      f"measured before the pages ({tp['reference'].rps:.0f} req/s) and after them ({tp['again'].rps:.0f} req/s); "
      f"the ratios use the mean, {ref:.0f} req/s. `{throughput.LOGIN_ROUTE}` (a template and a CSRF token, no "
      f"database): {login.rps:.0f} req/s.\n")
    floor = tp["floor"]
    w(f"The floor: **`{floor.path}`** as the {floor.role}, the emptiest signed-in page (the person and their roles "
      f"in one statement, the calls in another, a short template): {floor.rps:.0f} req/s, "
      f"{floor.rps / ref:.1%} of the static file. A page that shows a signed-in person anything from the "
      f"database does at least this much work, so its ratio is at most the floor's.\n")
    w("| Page | Role | req/s | vs static file | vs /login | vs the floor | p50 ms | p95 ms | requests done | ≥ 30 % |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in tp["pages"]:
        ratio = r.rps / ref if ref else 0
        w(f"| `{r.label}` | {r.role} | {r.rps:.1f} | {ratio:.1%} | {r.rps / login.rps if login.rps else 0:.1%} | "
          f"{r.rps / floor.rps if floor.rps else 0:.1%} | "
          f"{r.p50:.0f} | {r.p95:.0f} | {r.ok}{' (time limit)' if r.hit_time_limit else ''} | "
          f"{_met(ratio >= throughput.TARGET_RATIO and not r.errors)}"
          + (f" errors {r.errors}" if r.errors else "") + " |")
    if any(r.rps < throughput.TARGET_RATIO * ref for r in tp["pages"]):
        w(f"\nWhy pages stay below {throughput.TARGET_RATIO:.0%}: the static file costs gunicorn, Flask's routing and "
          "a file read. A signed-in page adds reading the session's person (one statement), the transaction's "
          "BEGIN and ROLLBACK round trips to PostgreSQL, its own statements and the base layout: the floor above "
          "is that alone. The call-wide pages then aggregate over the call's 12,000 partners or 6,000 reviews, or "
          "render 50-row tables and matrices of 35 funders, which is tens of milliseconds of work on this machine. "
          f"The floor itself reached {floor.rps / ref:.0%} of the static file in this run: a page meets the "
          "target only if it costs about as little as showing the signed-in person a list of two rows. "
          "Jointcall renders every page from the data committed at that moment and keeps no cache of rendered "
          "pages, which is what a ratio above the floor would take.")
    if tp["absent"]:
        w("\nMain pages not in the app at the time of the run: "
          + ", ".join(f"`{t}` ({role})" for role, t in tp["absent"]))
    w("")


def render_assignment(w, a: dict | None) -> None:
    if not a or a.get("error"):
        w(f"Not measured: {(a or {}).get('error', 'skipped')}\n")
        return
    s = a["summary"]
    w(f"`reviews.assignment.propose_assignment` on a generated call (SQLite, `assignment` snapshot): "
      f"{s.counts['proposals']:,} pre-proposals under review, {s.counts['reviewers']} reviewers with expertise "
      f"keywords, {a['reviews_each']} reviewers per proposal, load cap {a['load_cap']} per reviewer, "
      f"{a['conflicts']:,} conflicts (detected: same organisation or e-mail domain as a partner; and declared) on "
      f"{a['conflicted_pairs']:,} reviewer–proposal pairs. The whole preview is what the secretariat waits for "
      "(loading, expertise matching of every pair, solving, explaining); the solver time is the optimisation "
      "alone.\n")
    w("| Method | Whole preview | Solver | Objective | Pairs | Proposals short of reviewers |")
    w("|---|---:|---:|---:|---:|---:|")
    for o in a["methods"].values():
        w(f"| {o.method} | {o.seconds:.1f} s | {o.solver_seconds:.2f} s | {o.objective:.2f} | {o.pairs} | "
          f"{o.uncovered} |")
    w("")


def render_allocation(w, al: dict | None) -> None:
    if not al or al.get("error"):
        w(f"Not measured: {(al or {}).get('error', 'skipped')}\n")
        return
    w(f"`workflow.funding.allocate` (pure), {al['proposals']:,} ranked proposals with 4–7 funded partners each, "
      f"{al['funders']} funders with caps, a gap pot of €2,000,000; median of {al['runs']} runs after a warm-up.\n")
    w("| Ranking | Median | Min | Max | Median CPU time | Selected | Gaps in the ranking |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    for case, c in al["cases"].items():
        w(f"| {case} | {c['median'] * 1000:.0f} ms | {c['min'] * 1000:.0f} ms | {c['max'] * 1000:.0f} ms | "
          f"{c['cpu_median'] * 1000:.0f} ms | {c['selected']} | {c['gaps']} |")
    w("")


def render_letters(w, le: dict | None) -> None:
    if not le or le.get("error"):
        w(f"Not measured: {(le or {}).get('error', 'skipped')}\n")
        return
    if le.get("waits"):
        w(f"**The letters part waits for the letters module:** {le['waits']}. Measured instead: "
          f"{le['letters']} submission receipts (`webapp.pdfs.receipt_pdf`), a multiprocessing Pool(2) against a "
          "naive loop.\n")
    else:
        w(f"The pre-proposal decision letters of a generated call with {le['letters']:,} pre-proposals (not "
          "eligible, not invited, invited), through `webapp.letters.run_export` (the job `jointcall export-letters` "
          "and the web run: HTML in the job's process, WeasyPrint in a Pool of 2, each letter stored, one ZIP "
          f"with {le.get('zip_entries', '?')} PDFs), against a naive loop in one process (HTML, then PDF, one "
          f"letter after the other) over the first {le['naive']['letters']} of the same letters.\n")
    b, n = le["bulk"], le["naive"]
    m, nm = b["memory"], n["memory"]
    w("| Run | Letters | Time | Letters/s | Peak RSS, this process | Peak RSS, largest worker | All workers |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    w(f"| bulk export | {le['letters']} | {b['seconds']:.1f} s | {b['per_second']:.2f} | {m['peak_self_mb']:.0f} MiB | "
      f"{m['peak_child_mb']:.0f} MiB | {m['peak_children_mb']:.0f} MiB |")
    w(f"| naive loop | {n['letters']} | {n['seconds']:.1f} s | {n['per_second']:.2f} | {nm['peak_self_mb']:.0f} MiB "
      "(same process, after the bulk export) | – | – |")
    w("")
    if n.get("pdf_ms"):
        w(f"Per letter in the naive loop: HTML {n['html_ms']:.1f} ms, PDF {n['pdf_ms']:.0f} ms. In the bulk export "
          f"the first letter was done after {b.get('first_letter_s') or 0:.1f} s (every letter's HTML is built "
          "first, then the pool renders).\n")

    def quarters(key: str) -> str:
        return " → ".join(f"{v:.0f}" for v in m.get(key, []))

    w(f"Speed-up {le['speedup']:.2f}× (target ≥ {letters.TARGET_SPEEDUP}×). Memory during the bulk export, peak RSS "
      f"in each quarter of the letters: export process {quarters('quarters_self_mb')} MiB, largest worker "
      f"{quarters('quarters_max_child_mb')} MiB: {'flat' if m['flat'] else 'grows'} (flat = the last quarter "
      f"within {letters.FLAT_RATIO - 1:.0%} and {letters.FLAT_SLACK_MB:.0f} MiB of the first).\n")


if __name__ == "__main__":
    sys.exit(main())
