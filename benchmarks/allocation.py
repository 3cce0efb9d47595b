"""The funding allocation on a long ranking: 5,000 ranked proposals, 40 funders, through
workflow.funding.allocate (a pure function: no database).

    python -m benchmarks.allocation [--proposals 5000] [--funders 40] [--runs 7]

The inputs come from random.Random(seed): 40 funders with budgets of €0.3-5M and the caps real funders
set (per partner, per project), 5,000 proposals with 4 to 7 funded partners (one per funder) asking
€50,000-400,000 each, 3 % of them above a cap. Two rankings are timed: consensus totals in half points, as panels give them, so
neighbours tie and the tie search at the funding line runs (the realistic case); and distinct totals
(no ties). Time is the median of several runs (wall clock, and the CPU time of this process beside
it, which other processes on the machine disturb less).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

TARGET_SECONDS = 0.2


def inputs(proposals: int = 5000, funders: int = 40, *, seed: int = 2024, ties: bool = True):
    from workflow.funding import FunderBudget, Ranked, Request

    rng = random.Random(seed)
    budgets = []
    for fid in range(1, funders + 1):
        committed = rng.randrange(300, 5000) * 1000
        per_partner = rng.choice([None, 150_000, 200_000, 250_000, 300_000, 350_000])
        per_project = rng.choice([None, None, None, 400_000, 500_000])
        if per_partner and per_project and per_partner > per_project:
            per_partner = per_project
        budgets.append(FunderBudget(fid, f"F{fid:02d}", committed, rng.choice([0, 0, 0, 250_000]),
                                    per_partner, per_project))
    ranking, requests = [], {}
    pid_partner = 0
    for rank in range(1, proposals + 1):
        pid = 10_000 + rank
        if ties:  # totals of three criteria in half points, best first: 15.0, 14.5, ... with many equal
            score = max(9.0, 15.0 - 0.5 * (rank * 12 // proposals))
        else:
            score = 15.0 - rank * (6.0 / proposals)
        ranking.append(Ranked(pid, rank, f"REF-{rank:05d}", f"P{rank}", "recommended", score))
        reqs = []
        for fid in rng.sample(range(1, funders + 1), rng.randint(4, 7)):
            pid_partner += 1
            amount = rng.randrange(50, 400) * 1000
            f = budgets[fid - 1]
            caps = [c for c in (f.max_per_partner, f.max_per_project) if c]
            if caps and rng.random() < 0.97:  # most applicants read the caps
                amount = min(amount, *caps)
            reqs.append(Request(pid_partner, fid, amount, f"Partner {pid_partner}"))
        requests[pid] = reqs
    return ranking, budgets, requests


def run(proposals: int = 5000, funders: int = 40, runs: int = 7, *, quiet: bool = False) -> dict:
    from workflow.funding import allocate

    out = {"proposals": proposals, "funders": funders, "runs": runs, "cases": {}}
    for case, ties in (("ties (half-point totals)", True), ("distinct totals", False)):
        ranking, budgets, requests = inputs(proposals, funders, ties=ties)
        allocate(ranking, budgets, requests)  # warm-up
        times, cpu, scenario = [], [], None
        for _ in range(runs):
            t0, c0 = time.perf_counter(), time.process_time()
            scenario = allocate(ranking, budgets, requests, gap_pot=2_000_000)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        out["cases"][case] = {
            "median": statistics.median(times), "min": min(times), "max": max(times),
            "cpu_median": statistics.median(cpu),
            "selected": len(scenario.selected), "gaps": len(scenario.gaps),
            "allocated": scenario.total_allocated,
        }
        if not quiet:
            c = out["cases"][case]
            print(f"  {case:26} median {c['median'] * 1000:7.1f} ms (min {c['min'] * 1000:.1f}, max "
                  f"{c['max'] * 1000:.1f}; CPU {c['cpu_median'] * 1000:.1f}); {c['selected']} selected, "
                  f"{c['gaps']} gaps")
    out["met"] = all(c["median"] <= TARGET_SECONDS for c in out["cases"].values())
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="workflow.funding.allocate on a long ranking")
    parser.add_argument("--proposals", type=int, default=5000)
    parser.add_argument("--funders", type=int, default=40)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    out = run(args.proposals, args.funders, args.runs)
    print(f"within {TARGET_SECONDS} s: {'met' if out['met'] else 'NOT MET'}")


if __name__ == "__main__":
    main()
