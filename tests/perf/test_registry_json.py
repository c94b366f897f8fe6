"""``StatsRegistry.to_json`` / ``from_json``: the form a Celery shard reports in and a summary file holds.

A shard's tables cross a broker as this JSON and are merged by the coordinator, so a figure the round trip lost
or changed would be wrong in every distributed run: the tables read back must say exactly what was recorded.
"""

import json

from perf.load.stats import StatsRegistry
from perf.load.transport import NEW


def _recorded() -> StatsRegistry:
    stats = StatsRegistry()
    for response_time in (3.0, 12.5, 40.0, 41.0, 980.0):
        stats.record("GET", "/events", response_time, 512, server=(2.5, 1.0, 3))
    stats.record("POST", "/login", 310.0, 64, opened=NEW)
    stats.record("POST", "/login", 5000.0, 0, error="TimeoutError: no answer within 5s")
    stats.record_exception("ValueError: no event", "Traceback (most recent call last): ...")
    return stats


def _figures(stats: StatsRegistry) -> list[tuple]:
    """What the tables and pages show of each entry, the Aggregated one included."""
    return [(entry.method, entry.name, entry.num_requests, entry.num_failures, entry.total_response_time,
             entry.min_response_time, entry.max_response_time, entry.total_content_length,
             [entry.percentile(fraction) for fraction in (0.5, 0.95, 0.99)],
             entry.first_request_at, entry.last_request_at)
            for entry in [*stats.sorted_entries(), stats.total]]


def test_the_tables_read_back_from_json_say_exactly_what_was_recorded() -> None:
    recorded = _recorded()
    wire = json.loads(json.dumps(recorded.to_json()))  # as a broker carries it
    read_back = StatsRegistry.from_json(wire)
    assert _figures(read_back) == _figures(recorded)
    assert read_back.to_json() == recorded.to_json()
    assert [(f.method, f.name, f.error, f.occurrences) for f in read_back.sorted_failures()] == [
        ("POST", "/login", "TimeoutError: no answer within 5s", 1)]
    assert [(e.message, e.count) for e in read_back.exceptions.values()] == [("ValueError: no event", 1)]


def test_two_shards_merged_from_json_equal_one_registry_that_saw_both() -> None:
    one, other, both = StatsRegistry(), StatsRegistry(), StatsRegistry()
    for index, response_time in enumerate((4.0, 9.0, 16.0, 25.0, 36.0, 49.0, 64.0, 810.0)):
        shard = one if index % 2 else other
        for stats in (shard, both):
            stats.record("GET", "/events", response_time, 100, error="HTTPError: 503" if index == 7 else None)
    merged = StatsRegistry()
    for shard in (one, other):
        merged.merge(StatsRegistry.from_json(json.loads(json.dumps(shard.to_json()))))
    figures = [figure[:9] for figure in _figures(merged)]  # a shard's clock is its own: first/last are merged
    assert figures == [figure[:9] for figure in _figures(both)]
    assert merged.failures.keys() == both.failures.keys()


def test_an_absent_part_reads_back_empty() -> None:
    stats = StatsRegistry.from_json({})
    assert stats.entries == {} and stats.failures == {} and stats.exceptions == {}
    assert stats.total.num_requests == 0
