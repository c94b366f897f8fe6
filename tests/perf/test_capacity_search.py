"""The capacity search's decisions (perf.load.capacity), step by step on its own clock, and its options.

The search is driven here as the runners drive it: ``target(elapsed)`` asked every slice of a second, with the
requests of each slice recorded in the registry between the calls, as a server of known capacity would answer
them (K at a time, T seconds each). The real runs against a real server of that kind are in
tests/perf/test_capacity_runs.py; these pin the rules (steps, narrowing, ceilings, the verdict) exactly.
"""

import pytest

from perf.analysis.capacity import conclude
from perf.cli.capacity import capacity_search
from perf.cli.invocation import RunRequest
from perf.load.capacity import CapacitySearch, CapacitySettings
from perf.load.stats import StatsRegistry
from perf.load.thresholds import parse_threshold

SLICE = 0.5  # seconds between two asks, as a follower asks every 0.2 s


def settings(**changes: object) -> CapacitySettings:
    values: dict[str, object] = dict(kind="users", start=5.0, factor=2.0, increment=None, settle=2.0, hold=10.0,
                                     resolution=0.1, max_load=1000.0, budget=3600.0,
                                     thresholds=(parse_threshold("p95<75ms"), parse_threshold("error_rate<1%")))
    values.update(changes)
    return CapacitySettings(**values)  # type: ignore[arg-type]


def queueing_server(workers: int, seconds: float, refuse_above: float | None = None):
    """A closed model's answers at ``load`` users against K workers of T seconds: below K each takes T, above it
    N/K·T (Little's law), and the throughput is min(N, K)/T. With ``refuse_above``, loads beyond it get 10 % 503s."""
    def answers(load: float) -> tuple[float, float, float]:
        latency = seconds * max(1.0, load / workers)
        rate = min(load, workers) / seconds
        failing = 0.1 if refuse_above is not None and load > refuse_above else 0.0
        return latency, rate, failing
    return answers


def drive(search: CapacitySearch, server, limit: float = 7200.0) -> StatsRegistry:
    """Ask the search for its target every SLICE seconds, recording each slice's answers, until it ends."""
    stats = StatsRegistry()
    search.bind(stats)
    elapsed, owed = 0.0, 0.0
    while elapsed < limit:
        load = search.target(elapsed)
        if load is None:
            return stats
        latency, rate, failing = server(load)
        owed += rate * SLICE
        while owed >= 1:
            owed -= 1
            failed = failing and (stats.total.num_requests % 10 == 0)
            stats.record("GET", "/work", latency * 1000, 20, error="HTTPError('503')" if failed else None)
        elapsed += SLICE
    raise AssertionError("the search never ended")


def test_it_raises_the_load_then_narrows_down_to_the_knee_within_the_resolution():
    """K = 20 workers of 50 ms: a p95 under 75 ms holds below 1.5 K = 30 users (and their throughput is the
    server's 400 req/s from 20 users up)."""
    search = CapacitySearch(settings())
    drive(search, queueing_server(20, 0.05))
    found = conclude(search.as_json())

    phases = [(step["phase"], step["load"], step["passed"]) for step in found["steps"]]
    assert phases[:4] == [("raise", 5, True), ("raise", 10, True), ("raise", 20, True), ("raise", 40, False)]
    assert all(phase == "narrow" for phase, _, _ in phases[4:])
    assert found["status"] == "found"
    capacity, failing = found["capacity"], found["first_failing"]
    assert 25 <= capacity["load"] < failing["load"] <= 30
    assert failing["load"] - capacity["load"] <= 0.1 * capacity["load"]
    assert capacity["requests_per_second"] == pytest.approx(400, rel=0.05)
    assert found["broke_first"]["threshold"] == "p95<75ms"
    assert found["broke_first"]["endpoint"] == "GET /work"
    assert found["verdict"].startswith(f"The capacity is {capacity['load']:g} users (")


def test_each_step_is_judged_on_its_hold_alone_never_on_its_settling():
    """The settling seconds are slow (a cold start); the step passes on what came after them."""
    search = CapacitySearch(settings(max_load=5.0))
    stats = StatsRegistry()
    search.bind(stats)
    elapsed = 0.0
    while search.target(elapsed) is not None:
        slow = elapsed < 2.0  # the first step's settling
        stats.record("GET", "/work", 900.0 if slow else 20.0, 20)
        elapsed += SLICE
    step = search.as_json()["steps"][0]
    assert step["passed"] and step["p95"] < 75
    assert step["requests"] == pytest.approx(10 / SLICE, abs=1)
    assert stats.total.num_requests > step["requests"]


def test_a_first_step_that_fails_ends_the_search_with_no_capacity():
    search = CapacitySearch(settings(start=50.0))
    drive(search, queueing_server(20, 0.05))
    found = conclude(search.as_json())

    assert found["status"] == "first_step_failed"
    assert found["capacity"] is None and len(found["steps"]) == 1
    assert found["verdict"].startswith("Even the first step, 50 users, failed (p95<75ms)")


def test_a_server_that_never_breaks_ends_at_the_ceiling_and_says_the_capacity_is_above_it():
    search = CapacitySearch(settings(max_load=30.0))
    drive(search, queueing_server(100, 0.05))
    found = conclude(search.as_json())

    assert [step["load"] for step in found["steps"]] == [5, 10, 20, 30]
    assert found["status"] == "ceiling"
    assert found["limit"] == {"kind": "max_users", "value": 30.0}
    assert found["capacity"]["load"] == 30 and found["first_failing"] is None
    assert "the capacity is above that. Raise --max-users" in found["verdict"]


def test_failures_past_a_load_break_the_failure_threshold_first():
    search = CapacitySearch(settings())
    drive(search, queueing_server(1000, 0.05, refuse_above=12))
    found = conclude(search.as_json())

    assert found["broke_first"]["threshold"] == "error_rate<1%"
    assert 10 <= found["capacity"]["load"] <= 12 < found["first_failing"]["load"]


def test_the_time_budget_ends_the_search_before_a_step_it_could_not_finish():
    search = CapacitySearch(settings(budget=30.0))
    drive(search, queueing_server(1000, 0.05))
    found = conclude(search.as_json())

    assert found["status"] == "budget" and found["limit"] == {"kind": "budget", "value": 30.0}
    assert len(found["steps"]) == 2  # two steps of 12 s fit in 30 s, a third would not
    assert "The time budget (30 s) ran out" in found["verdict"]


def test_a_step_increment_grows_the_load_by_adding():
    search = CapacitySearch(settings(factor=None, increment=7.0, max_load=19.0))
    drive(search, queueing_server(100, 0.05))
    assert [step["load"] for step in search.as_json()["steps"]] == [5, 12, 19]


def test_an_open_model_step_that_dropped_arrivals_while_the_server_kept_up_is_the_generators_limit():
    """The pool was too small (every user busy), the server fast: no capacity may be reported."""
    search = CapacitySearch(settings(kind="rate", start=10.0))
    stats = StatsRegistry()
    counts = [0, 0]  # scheduled, dropped
    search.bind(stats, lambda: (counts[0], counts[1]))
    elapsed = 0.0
    while (rate := search.target(elapsed)) is not None:
        scheduled = round(rate * SLICE)
        counts[0] += scheduled
        counts[1] += scheduled // 10 if rate >= 20 else 0  # from 20/s on, a tenth finds no free user
        for _ in range(scheduled - (scheduled // 10 if rate >= 20 else 0)):
            stats.record("GET", "/work", 20.0, 20)
        elapsed += SLICE
    found = conclude(search.as_json())

    assert found["status"] == "generator_limit"
    assert found["capacity"] is None
    assert [step["generator_limited"] for step in found["steps"]] == [False, True]
    assert found["steps"][1]["dropped_percent"] == pytest.approx(10, abs=1)
    assert found["verdict"].startswith("No capacity is reported: the generator was the limit at 20 iterations/s")


@pytest.mark.parametrize(("options", "message"), [
    ({}, "--find-capacity needs the rules a step must pass: add --threshold"),
    ({"thresholds": ("p95<1s",), "duration": "5m"}, "-t/--duration cannot be given with it; give --budget"),
    ({"thresholds": ("p95<1s",), "stages": "1m:10"}, "--stages cannot be given with it; drop it"),
    ({"thresholds": ("p95<1s",), "users": 10}, "--find-capacity steps the users itself: drop -u/--users"),
    ({"thresholds": ("p95<1s",), "step_factor": 2.0, "step_increment": 5.0}, "two ways to grow a step: give one"),
    ({"thresholds": ("p95<1s",), "step_factor": 1.0}, "--step-factor must be above 1"),
    ({"thresholds": ("p95<1s",), "start_load": 50.0, "max_users": 20.0}, "the first step (50) is above the ceiling"),
    ({"thresholds": ("p95<1s",), "max_rate": 50.0}, "--max-rate is the open model's ceiling: add --rate R"),
    ({"thresholds": ("p95<1s",), "rate": 5.0, "start_load": 5.0}, "with --rate the search steps the arrival rate"),
    ({"thresholds": ("p95<1s",), "start_load": 2.5}, "--start-load counts users: a whole number"),
    ({"thresholds": ("p95<1s",), "settle": "5m", "hold": "5m", "budget": "6m"}, "shorter than one step"),
    ({"thresholds": ("p95<1s",), "resolution": "0%"}, "--resolution must be between 0 and 100%"),
    ({"thresholds": ("p95<1s",), "processes": "2"}, "--find-capacity runs in one process"),
    ({"thresholds": ("p95<1s",), "abort_on_threshold": True}, "drop --abort-on-threshold"),
])
def test_options_a_search_cannot_take_are_one_line_naming_the_fix(options, message):
    request = RunRequest(find_capacity=True, **options)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^.+$") as caught:
        capacity_search(request, [parse_threshold(text) for text in request.thresholds])
    assert message in str(caught.value)


def test_a_search_option_without_find_capacity_is_refused():
    with pytest.raises(ValueError, match="--hold is a capacity search's option: add --find-capacity"):
        capacity_search(RunRequest(hold="10s"), [])


def test_the_defaults_are_those_the_docs_give():
    search = capacity_search(RunRequest(find_capacity=True, thresholds=("p95<500ms",)), [parse_threshold("p95<500ms")])
    assert search is not None
    assert search.settings.as_json() == {"start": 10.0, "factor": 2.0, "increment": None, "settle": 10.0,
                                         "hold": 30.0, "resolution": 0.1, "max_load": 1000.0, "budget": 1800.0,
                                         "thresholds": ["p95<500ms"]}
