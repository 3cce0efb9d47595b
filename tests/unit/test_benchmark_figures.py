"""The throughput benchmark's latency figures (benchmarks/throughput.py): what RESULTS.md prints as p50/p95."""

import math

from benchmarks.throughput import Load


def load_with(latencies):
    return Load("page", "/page", "public", latencies_ms=list(latencies))


def test_p95_is_the_latency_95_percent_of_requests_stayed_under():
    assert load_with(range(1, 101)).p95 == 95
    assert load_with(reversed(range(1, 21))).p95 == 19  # order of arrival does not matter
    assert load_with([7.0]).p95 == 7.0


def test_p95_of_one_slow_request_in_a_hundred_is_not_the_slow_one():
    assert load_with([10.0] * 99 + [900.0]).p95 == 10.0
    assert load_with([10.0] * 90 + [900.0] * 10).p95 == 900.0


def test_no_requests_no_figure():
    assert math.isnan(load_with([]).p95)
    assert math.isnan(load_with([]).p50)
