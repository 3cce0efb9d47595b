"""Decision letters at call scale: 1,000 letters through the bulk export (webapp.letters.run_export: the
letters' HTML in the job's process, WeasyPrint in a Pool of 2, each letter stored, one ZIP) against a
naive loop in one process (HTML, then PDF, one letter after the other) in the same run, with memory.

    python -m benchmarks.letters [--letters 1000] [--naive 300]

The letters are the pre-proposal letters of a generated call with 1,000 pre-proposals (not eligible, not
invited, invited). The naive loop renders the first `--naive` of the same letters (its rate does not
depend on how many; it is kept short, at most 45 s, so the whole benchmark fits in its time budget).

Memory: a thread samples the resident set size (RSS, from /proc) of this process and of every process
below it (the forkserver and the pool's workers) every 0.2 s, with how many letters were done. "Flat"
means the peak in the last quarter of the letters is within 10 % (and 20 MiB) of the peak in the first
quarter, for this process and for the largest worker. ru_maxrss of this process is reported as well.

Without webapp.letters (or when its export fails), the same comparison is made on 1,000 submission
receipts (webapp.pdfs.receipt_pdf), naive against a multiprocessing Pool(2), and the report says that the
letters part waits for the letters module.
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time
import zipfile
from dataclasses import dataclass, field

from benchmarks.common import make_app, sqlite_url, workdir
from benchmarks.generate import generate

TARGET_SPEEDUP = 1.5
FLAT_RATIO, FLAT_SLACK_MB = 1.10, 20.0


# ---------------------------------------------------------------------------------------------------------
# Memory sampling


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out.extend(int(x) for x in fh.read().split())
    except OSError:
        pass
    return out


def _descendants(pid: int) -> list[int]:
    todo, seen = _children(pid), []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(_children(p))
    return seen


@dataclass
class Sample:
    t: float
    done: int
    self_mb: float
    children_mb: float
    max_child_mb: float


@dataclass
class Sampler:
    interval: float = 0.2
    samples: list[Sample] = field(default_factory=list)
    done: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sample()

    def _sample(self) -> None:
        me = os.getpid()
        kids = [_rss_mb(p) for p in _descendants(me)]
        self.samples.append(Sample(time.perf_counter() - self._t0, self.done, _rss_mb(me), sum(kids),
                                   max(kids, default=0.0)))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def summary(self, total: int) -> dict:
        """Peaks overall and in the first and last quarter of the work; whether memory stayed flat."""
        first = [s for s in self.samples if 0 < s.done <= total / 4] or self.samples[:1]
        last = [s for s in self.samples if s.done >= total * 3 / 4] or self.samples[-1:]

        def peak(rows, attr):
            return max((getattr(s, attr) for s in rows), default=0.0)

        out = {"peak_self_mb": peak(self.samples, "self_mb"), "peak_children_mb": peak(self.samples, "children_mb"),
               "peak_child_mb": peak(self.samples, "max_child_mb")}
        for attr in ("self_mb", "max_child_mb"):  # the peak in each quarter of the work
            out[f"quarters_{attr}"] = [peak([s for s in self.samples if total * q / 4 < s.done <= total * (q + 1) / 4]
                                            or first, attr) for q in range(4)]
        flat = True
        for attr in ("self_mb", "max_child_mb"):
            a, b = peak(first, attr), peak(last, attr)
            out[f"first_quarter_{attr}"], out[f"last_quarter_{attr}"] = a, b
            if b > max(a * FLAT_RATIO, a + FLAT_SLACK_MB):
                flat = False
        out["flat"] = flat
        return out


def maxrss_mb() -> dict:
    return {"self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


# ---------------------------------------------------------------------------------------------------------
# Letters through webapp.letters


def letters_api_problem() -> str | None:
    try:
        from webapp.letters import letter_html, pdf_of_html, run_export  # noqa: F401
        from workflow.letters import create_export_job, stage_letters  # noqa: F401
    except ImportError as exc:
        return f"the letters module is not there yet ({exc})"
    return None


def run_letters(summary, letters: int, naive: int, quiet: bool, naive_time_limit: float = 45.0) -> dict:
    from webapp.letters import compile_body, letter_html, pdf_of_html, run_export, template_source
    from workflow.letters import create_export_job, stage_letters
    from workflow.models import Call

    app = make_app(summary.url)
    factory = app.extensions["jointcall.sessions"]
    out = {"kind": "decision letters", "stage": "pre"}
    dest = workdir() / "letters-bulk.zip"
    with app.app_context():
        with factory() as session:
            call = session.get(Call, summary.call_id)
            view = stage_letters(session, call, "pre")
            total = len(view.items)
            job = create_export_job(session, None, call, "pre", via="cli")
            session.commit()
            job_id = job.id
        out["letters"] = total
        # The bulk export, as `jointcall export-letters` and the web run it.
        before = maxrss_mb()
        with Sampler() as sampler:
            def progress(done, _total):
                sampler.done = done

            t0 = time.perf_counter()
            path = run_export(factory, job_id, dest=dest, processes=2, progress=progress)
            bulk_s = time.perf_counter() - t0
        with zipfile.ZipFile(path) as zf:
            out["zip_entries"] = len(zf.namelist())
        first = next((x.t for x in sampler.samples if x.done >= 1), None)
        out["bulk"] = {"seconds": bulk_s, "per_second": total / bulk_s, "memory": sampler.summary(total),
                       "first_letter_s": first,
                       "maxrss_before": before, "maxrss_after": maxrss_mb(), "zip_bytes": path.stat().st_size}
        if not quiet:
            print(f"  bulk export: {total} letters in {bulk_s:.1f} s = {total / bulk_s:.2f} letters/s")
        # The naive loop: the same letters, one process, one after the other.
        with factory() as session:
            call = session.get(Call, summary.call_id)
            view = stage_letters(session, call, "pre")
            template = compile_body(template_source(session, call)[0])
            items = view.items[:naive]
            html_s = pdf_s = 0.0
            n = 0
            with Sampler() as sampler, zipfile.ZipFile(workdir() / "letters-naive.zip", "w") as zf:
                t0 = time.perf_counter()
                for n, (proposal, outcome) in enumerate(items, start=1):
                    t1 = time.perf_counter()
                    html = letter_html(session, proposal, "pre", template=template, outcome=outcome)
                    t2 = time.perf_counter()
                    zf.writestr(f"{proposal.reference}.pdf", pdf_of_html(html))
                    html_s, pdf_s = html_s + t2 - t1, pdf_s + time.perf_counter() - t2
                    sampler.done = n
                    if time.perf_counter() - t0 > naive_time_limit:
                        break
                naive_s = time.perf_counter() - t0
        out["naive"] = {"letters": n, "seconds": naive_s, "per_second": n / naive_s,
                        "memory": sampler.summary(n), "html_ms": html_s / n * 1000, "pdf_ms": pdf_s / n * 1000}
        if not quiet:
            print(f"  naive loop: {len(items)} letters in {naive_s:.1f} s = {len(items) / naive_s:.2f} letters/s")
    app.extensions["jointcall.engine"].dispose()
    return out


# ---------------------------------------------------------------------------------------------------------
# Fallback: submission receipts


_worker_app = None


def _init_worker(url: str) -> None:
    global _worker_app
    _worker_app = make_app(url)


def _receipt(submission_id: int) -> bytes:
    from webapp.pdfs import receipt_pdf
    from workflow.models import Submission

    factory = _worker_app.extensions["jointcall.sessions"]
    with _worker_app.app_context(), factory() as session:
        sub = session.get(Submission, submission_id)
        return receipt_pdf(sub, sub.proposal, sub.proposal.call)


def run_receipts(summary, count: int, naive: int, quiet: bool) -> dict:
    import multiprocessing

    from sqlalchemy import select

    from workflow.models import Submission

    _init_worker(summary.url)
    factory = _worker_app.extensions["jointcall.sessions"]
    with factory() as session:
        ids = list(session.scalars(select(Submission.id).order_by(Submission.id).limit(count)))
    out = {"kind": "submission receipts (fallback)", "letters": len(ids)}
    ctx = multiprocessing.get_context("forkserver")
    with Sampler() as sampler, zipfile.ZipFile(workdir() / "receipts-pool.zip", "w") as zf:
        t0 = time.perf_counter()
        with ctx.Pool(2, initializer=_init_worker, initargs=(summary.url,)) as pool:
            for n, pdf in enumerate(pool.imap(_receipt, ids, chunksize=1), start=1):
                zf.writestr(f"receipt-{n}.pdf", pdf)
                sampler.done = n
        bulk_s = time.perf_counter() - t0
    out["bulk"] = {"seconds": bulk_s, "per_second": len(ids) / bulk_s, "memory": sampler.summary(len(ids))}
    with Sampler() as sampler, zipfile.ZipFile(workdir() / "receipts-naive.zip", "w") as zf:
        t0 = time.perf_counter()
        for n, sid in enumerate(ids[:naive], start=1):
            zf.writestr(f"receipt-{n}.pdf", _receipt(sid))
            sampler.done = n
        naive_s = time.perf_counter() - t0
    out["naive"] = {"letters": min(naive, len(ids)), "seconds": naive_s,
                    "per_second": min(naive, len(ids)) / naive_s, "memory": sampler.summary(min(naive, len(ids)))}
    if not quiet:
        print(f"  receipts: Pool(2) {out['bulk']['per_second']:.2f}/s, naive {out['naive']['per_second']:.2f}/s")
    return out


# ---------------------------------------------------------------------------------------------------------


def run(letters: int = 1000, naive: int = 200, *, quiet: bool = False) -> dict:
    summary = generate(sqlite_url(f"letters-{letters}.db"), letters, quiet=quiet)
    why = letters_api_problem()
    out: dict = {}
    if why is None:
        try:
            out = run_letters(summary, letters, naive, quiet)
        except Exception as exc:  # noqa: BLE001 - the module is work in progress: say so, fall back
            why = f"the letters export failed: {type(exc).__name__}: {str(exc)[:300]}"
    if why is not None:
        out = run_receipts(summary, letters, naive, quiet)
        out["waits"] = why
    out["speedup"] = out["bulk"]["per_second"] / out["naive"]["per_second"]
    out["met_speed"] = out["speedup"] >= TARGET_SPEEDUP
    out["met_memory"] = out["bulk"]["memory"]["flat"]
    if not quiet:
        print(report(out))
    return out


def report(out: dict) -> str:
    b, n = out["bulk"], out["naive"]
    lines = []
    if out.get("waits"):
        lines.append(f"LETTERS WAIT: {out['waits']}; measured on {out['kind']} instead.")
    lines.append(f"{out['kind']}: bulk {out['letters']} in {b['seconds']:.1f} s = {b['per_second']:.2f}/s; naive loop "
                 f"{n['letters']} in {n['seconds']:.1f} s = {n['per_second']:.2f}/s; speed-up {out['speedup']:.2f}x "
                 f"({'met' if out['met_speed'] else 'NOT MET'}, target {TARGET_SPEEDUP}x)")
    m = b["memory"]
    lines.append(f"memory (bulk): this process peak {m['peak_self_mb']:.0f} MiB (first quarter "
                 f"{m['first_quarter_self_mb']:.0f}, last quarter {m['last_quarter_self_mb']:.0f}); largest worker "
                 f"{m['peak_child_mb']:.0f} MiB (first quarter {m['first_quarter_max_child_mb']:.0f}, last "
                 f"{m['last_quarter_max_child_mb']:.0f}); all workers together {m['peak_children_mb']:.0f} MiB: "
                 f"{'flat' if m['flat'] else 'GROWS'}")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="decision letters: bulk export against a naive loop")
    parser.add_argument("--letters", type=int, default=1000)
    parser.add_argument("--naive", type=int, default=200)
    args = parser.parse_args(argv)
    run(args.letters, args.naive)


if __name__ == "__main__":
    main()
