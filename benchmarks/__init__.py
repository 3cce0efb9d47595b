"""Repeatable performance runs on generated data (issue 9). Not part of the test run.

    python -m benchmarks            everything, then benchmarks/RESULTS.md (what `make bench` runs)
    python -m benchmarks.generate   only the generator (see its --help)

Modules:
    generate     a deterministic large call written straight into a database with bulk inserts
    pages        SQL statements and server time per page at two sizes (N+1 and pagination check)
    throughput   requests per second under gunicorn on PostgreSQL, against a trivial route
    assignment   optimal reviewer assignment against the greedy baseline
    allocation   the funding allocation on a long ranking
    letters      decision letters through the bulk export against a naive loop, with peak memory
    common       what they share: scratch folder, the benchmark's PostgreSQL database, the app, logins
    __main__     runs pages, throughput, assignment, allocation and letters, each in a fresh interpreter,
                 and writes RESULTS.md

    rush         (not run by `python -m benchmarks`) the deadline rush against gunicorn; see its docstring

Benchmarks print figures; they never assert on time.
"""
