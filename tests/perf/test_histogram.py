"""Specification of perf.load.histogram and perf.load.stats: bounded error, exact merges, bounded memory.

Pure unit tests on seeded random data; percentiles are compared with exact nearest-rank
values of the sorted list (rank = ceil(p * n)).
"""

import json
import math
import pickle
import random
from fractions import Fraction

import pytest

from perf.load.histogram import Histogram
from perf.load.stats import PERCENTILES, StatsEntry, StatsRegistry

MIN_MS, MAX_MS = 1.0, 60_000.0


def lognormal_values(count: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [min(max(rng.lognormvariate(math.log(200), 1.5), MIN_MS), MAX_MS) for _ in range(count)]


def uniform_values(count: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(MIN_MS, MAX_MS) for _ in range(count)]


def log_uniform_values(count: int, seed: int) -> list[float]:
    """Spread evenly over the orders of magnitude, so every bucket from 1 ms to 60 s is touched."""
    rng = random.Random(seed)
    return [math.exp(rng.uniform(math.log(MIN_MS), math.log(MAX_MS))) for _ in range(count)]


def exact_percentile(ordered: list[float], fraction: float) -> float:
    rank = max(1, math.ceil(Fraction(str(fraction)) * len(ordered)))
    return ordered[rank - 1]


def entry_of(values: list[float], name: str = "/events/") -> StatsEntry:
    entry = StatsEntry("GET", name)
    for index, ms in enumerate(values):
        entry.log(ms, 100, failed=index % 10 == 0, now=1000.0 + index)
    return entry


@pytest.mark.parametrize("make_values", [lognormal_values, uniform_values], ids=["lognormal", "uniform"])
def test_every_percentile_is_within_one_percent_of_the_exact_value(make_values):
    values = make_values(50_000, seed=7)
    entry = entry_of(values)
    ordered = sorted(values)

    errors = {}
    for fraction in PERCENTILES:
        exact = exact_percentile(ordered, fraction)
        errors[fraction] = abs(entry.percentile(fraction) - exact) / exact

    assert max(errors.values()) <= 0.01, errors


def test_an_empty_histogram_has_no_percentile():
    assert Histogram().percentile(0.5) is None
    assert StatsEntry("GET", "/events/").percentile(0.99) is None


def test_merging_two_halves_gives_the_histogram_of_all_values():
    values = lognormal_values(20_000, seed=11)
    first, second, whole = Histogram(), Histogram(), Histogram()
    for ms in values[:12_345]:
        first.record(ms)
    for ms in values[12_345:]:
        second.record(ms)
    for ms in values:
        whole.record(ms)

    first.merge(second)

    assert first.counts == whole.counts
    assert first.total == whole.total == len(values)


def test_merged_entries_report_the_figures_of_one_entry_of_all_requests():
    values = lognormal_values(20_000, seed=13)
    whole = entry_of(values)
    merged = entry_of(values[:7_000])
    second = StatsEntry("GET", "/events/")
    for index, ms in enumerate(values[7_000:], start=7_000):
        second.log(ms, 100, failed=index % 10 == 0, now=1000.0 + index)

    merged.merge(second)

    assert (merged.num_requests, merged.num_failures) == (whole.num_requests, whole.num_failures)
    assert (merged.min_response_time, merged.max_response_time) == (whole.min_response_time, whole.max_response_time)
    assert merged.avg_response_time == pytest.approx(whole.avg_response_time, rel=1e-12)
    assert (merged.first_request_at, merged.last_request_at) == (whole.first_request_at, whole.last_request_at)
    assert [merged.percentile(p) for p in PERCENTILES] == [whole.percentile(p) for p in PERCENTILES]


def test_merging_registries_sums_requests_and_failures_per_kind():
    error = "HTTPError('404 Client Error: Not Found for url: /missing')"
    one, two = StatsRegistry(), StatsRegistry()
    for registry, count in ((one, 3), (two, 4)):
        for _ in range(count):
            registry.record("GET", "/missing", 5.0, 0, error=error)
        registry.record("GET", "/events/", 20.0, 300)
    two.record("POST", "/auth/login", 80.0, 50, error="HTTPError('401 Client Error')")

    one.merge(two)

    assert one.failures[("GET", "/missing", error)].occurrences == 7
    assert one.failures[("POST", "/auth/login", "HTTPError('401 Client Error')")].occurrences == 1
    assert one.entries[("GET", "/missing")].num_failures == 7
    assert one.entries[("GET", "/events/")].num_requests == 2
    assert (one.total.num_requests, one.total.num_failures) == (10, 8)


def test_memory_is_bounded_by_the_number_of_buckets_not_requests():
    histogram = Histogram()
    for ms in log_uniform_values(200_000, seed=17):
        histogram.record(ms)

    assert histogram.total == 200_000
    assert len(histogram.counts) <= 560


def test_histogram_survives_a_json_round_trip():
    histogram = Histogram()
    for ms in lognormal_values(5_000, seed=19):
        histogram.record(ms)

    restored = Histogram.from_json(json.loads(json.dumps(histogram.to_json())))

    assert restored.counts == histogram.counts
    assert restored.total == histogram.total


def test_entry_survives_a_dict_round_trip_through_json():
    entry = entry_of(lognormal_values(5_000, seed=23))

    restored = StatsEntry.from_dict(json.loads(json.dumps(entry.to_dict())))

    assert restored.to_dict() == entry.to_dict()
    assert [restored.percentile(p) for p in PERCENTILES] == [entry.percentile(p) for p in PERCENTILES]


def test_a_single_request_reports_its_own_time_at_every_percentile():
    """Locust would answer 150 for a single 147 ms request (its p100 can exceed Max); this does not."""
    entry = entry_of([147.0])

    assert {entry.percentile(p) for p in PERCENTILES} == {147.0}


def test_percentiles_stay_between_min_and_max():
    for seed in range(20):
        values = uniform_values(random.Random(seed).randint(1, 40), seed=seed)
        entry = entry_of(values)

        for fraction in PERCENTILES:
            assert min(values) <= entry.percentile(fraction) <= max(values), (seed, fraction)


def test_a_sample_reports_the_rates_of_its_window():
    stats = StatsRegistry(start_time=1000.0)
    for index in range(10):
        stats.record("GET", "/events/", 20.0, 300, error="boom" if index < 3 else None)

    first = stats.take_sample(users=4, now=1002.0)
    for _ in range(4):
        stats.record("GET", "/events/", 40.0, 300)
    second = stats.take_sample(users=4, now=1004.0)

    assert (first.requests_per_second, first.failures_per_second) == (5.0, 1.5)
    assert (second.requests_per_second, second.failures_per_second) == (2.0, 0.0)
    assert second.avg_response_time == 40.0
    assert (second.total_requests, second.total_failures, second.elapsed) == (14, 3, 4.0)
    assert stats.samples == [first, second]


def test_sample_percentiles_cover_a_rolling_ten_second_window():
    """Rates are per tick; p50/p95/p99 over the last 10 s, so that a chart of them is steady."""
    stats = StatsRegistry(start_time=1000.0)
    for _ in range(10):
        stats.record("GET", "/events/", 10.0, 300)
    stats.take_sample(users=1, now=1002.0)
    for now in (1004.0, 1006.0, 1008.0):
        stats.take_sample(users=1, now=now)
    for _ in range(10):
        stats.record("GET", "/events/", 500.0, 300)

    within = stats.take_sample(users=1, now=1010.0)  # the window still reaches back to the 10 ms requests
    stats.take_sample(users=1, now=1012.0)
    later = stats.take_sample(users=1, now=1014.0)  # 10 s after 1004: only the 500 ms requests are left

    assert within.p50 == pytest.approx(10.0, rel=0.01) and within.p95 == pytest.approx(500.0, rel=0.01)
    assert within.requests_per_second == pytest.approx(5.0)
    assert later.p50 == later.p95 == later.p99 == pytest.approx(500.0, rel=0.01)
    assert later.requests_per_second == 0.0


def test_a_sample_holds_each_endpoints_rate_and_p95():
    stats = StatsRegistry(start_time=1000.0)
    for _ in range(4):
        stats.record("GET", "/events/", 20.0, 300)
    stats.record("POST", "/login", 200.0, 300)

    sample = stats.take_sample(users=1, now=1002.0)

    assert sample.endpoints["GET /events/"] == (2.0, pytest.approx(20.0, rel=0.01))
    assert sample.endpoints["POST /login"] == (0.5, pytest.approx(200.0, rel=0.01))
    later = [stats.take_sample(users=1, now=1002.0 + 2 * step) for step in range(1, 7)][-1]
    assert later.endpoints["POST /login"] == (0.0, None)  # nothing in the last 10 s
    assert dict(later.endpoints) == {"GET /events/": (0.0, None), "POST /login": (0.0, None)}
    assert pickle.loads(pickle.dumps(sample)) == sample