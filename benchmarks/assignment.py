"""Reviewer assignment at call scale: 2,000 pre-proposals under review, 600 reviewers, 3 reviewers each,
with the detected and declared conflicts of the generated call. The optimal solver (min-cost flow)
against the greedy baseline, both through reviews.assignment.propose_assignment, the function the
secretariat's "automatic assignment" runs (load the call, match expertise, solve, explain every pair).

    python -m benchmarks.assignment [--proposals 2000] [--load-cap 12]

Reported per method: the whole preview's time (what the secretariat waits for) and its CPU time (the same
on an idle machine; less than the wall time when other processes share the cores), the time of each phase
(load the call and its conflicts, score every reviewer-proposal pair, solve, explain the chosen pairs),
the objective (sum of expertise affinities minus the country-spread penalties, as the preview states it),
how many pairs were assigned and how many proposals stayed short of reviewers.
"""

from __future__ import annotations

import argparse
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from benchmarks.common import sqlite_url
from benchmarks.generate import generate

TARGET_SECONDS = 10.0


@dataclass
class Outcome:
    method: str
    seconds: float  # the whole preview
    solver_seconds: float
    objective: float
    pairs: int
    uncovered: int
    cpu_seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # phase -> wall seconds

    def phase_words(self) -> str:
        return ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.phases.items())


# The phases of reviews.assignment.propose_assignment, by the module-level function that runs each.
PHASES = {"load": "_load", "score": "build_problem", "solve": ("solve_flow", "solve_greedy"), "explain": "_explain"}


@contextmanager
def timed_phases(phases: dict[str, float]):
    """Time each phase of the preview by wrapping its function in reviews.assignment while the block runs."""
    from reviews import assignment

    originals = {}

    def wrap(name, fn):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - started
        return timed

    for name, attrs in PHASES.items():
        for attr in (attrs,) if isinstance(attrs, str) else attrs:
            originals[attr] = getattr(assignment, attr)
            setattr(assignment, attr, wrap(name, originals[attr]))
    try:
        yield phases
    finally:
        for attr, fn in originals.items():
            setattr(assignment, attr, fn)


def api_problem() -> str | None:
    """Why reviews/ cannot be benchmarked (None when it can)."""
    try:
        from reviews.assignment import propose_assignment  # noqa: F401
    except ImportError as exc:
        return f"reviews/ has no automatic assignment API yet ({exc})"
    return None


def run(proposals: int = 2000, reviewers: int = 600, reviews_each: int = 3, *, load_cap: int | None = None,
        summary=None, quiet: bool = False) -> dict:
    why = api_problem()
    if why:
        return {"error": why}
    from sqlalchemy import func, select

    import reviews  # noqa: F401  (plugs the reviewer facts and guards in)
    from reviews.assignment import propose_assignment
    from reviews.models import Conflict
    from workflow.db import make_engine, make_session_factory
    from workflow.models import Call, User

    if summary is None:
        summary = generate(sqlite_url(f"assignment-{proposals}.db"), proposals, reviewers=reviewers,
                           snapshot="assignment", quiet=quiet)
    # Enough room for every proposal with some slack for conflicts: 3 x 2,000 / 600 = 10, so 12.
    load_cap = load_cap or math.ceil(reviews_each * proposals / reviewers * 1.2)
    engine = make_engine(summary.url)
    factory = make_session_factory(engine)
    out = {"summary": summary, "load_cap": load_cap, "reviews_each": reviews_each, "methods": {}, "error": ""}
    with factory() as session:
        out["conflicts"] = session.scalar(select(func.count(Conflict.id)))
        out["conflicted_pairs"] = session.scalar(
            select(func.count()).select_from(select(Conflict.reviewer_id, Conflict.proposal_id).distinct().subquery()))
    for method in ("flow", "greedy"):
        with factory() as session:
            call = session.get(Call, summary.call_id)
            actor = session.get(User, summary.secretariat_id)
            phases: dict[str, float] = {}
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                with timed_phases(phases):
                    preview = propose_assignment(session, actor, call, load_cap=load_cap, stage="pre",
                                                 reviewers_per_proposal=reviews_each, method=method)
            except Exception as exc:  # noqa: BLE001 - report, do not crash the whole run
                out["error"] = f"propose_assignment({method}) failed: {type(exc).__name__}: {exc}"
                break
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            session.rollback()
        out["methods"][method] = Outcome(method, seconds, preview.seconds, preview.objective, len(preview.pairs),
                                         len(preview.uncovered), cpu, phases)
        if not quiet:
            o = out["methods"][method]
            print(f"  {method:7} preview {o.seconds:6.1f} s (CPU {o.cpu_seconds:.1f} s; {o.phase_words()}), "
                  f"objective {o.objective:10.2f}, {o.pairs} pairs, {o.uncovered} proposals short")
    engine.dispose()
    if not quiet:
        print(report(out))
    return out


def verdicts(out: dict) -> dict[str, bool]:
    flow, greedy = out["methods"].get("flow"), out["methods"].get("greedy")
    if not flow or not greedy:
        return {}
    return {
        "time": flow.seconds <= TARGET_SECONDS,
        "solver_time": flow.solver_seconds <= TARGET_SECONDS,
        "quality": (flow.pairs, flow.objective) >= (greedy.pairs, greedy.objective),
    }


def report(out: dict) -> str:
    if out.get("error"):
        return out["error"]
    s = out["summary"]
    lines = [f"{s.counts['proposals']} proposals x {s.counts['reviewers']} reviewers x {out['reviews_each']} "
             f"reviews, load cap {out['load_cap']}, {out['conflicts']} conflicts "
             f"({out['conflicted_pairs']} reviewer-proposal pairs)"]
    for o in out["methods"].values():
        lines.append(f"{o.method:7} whole preview {o.seconds:6.1f} s (CPU {o.cpu_seconds:.1f} s), solver "
                     f"{o.solver_seconds:5.2f} s, objective {o.objective:.2f}, {o.pairs} pairs, {o.uncovered} "
                     f"proposals short; phases: {o.phase_words()}")
    v = verdicts(out)
    if v:
        lines.append(f"within 10 s: {'met' if v['time'] else 'NOT MET'} (solver alone: "
                     f"{'met' if v['solver_time'] else 'NOT MET'}); at least as good as greedy: "
                     f"{'met' if v['quality'] else 'NOT MET'}")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="optimal reviewer assignment against the greedy baseline")
    parser.add_argument("--proposals", type=int, default=2000)
    parser.add_argument("--reviewers", type=int, default=600)
    parser.add_argument("--load-cap", type=int)
    args = parser.parse_args(argv)
    run(args.proposals, args.reviewers, load_cap=args.load_cap)


if __name__ == "__main__":
    main()
