"""Specification of perf.load.open_model.OpenModelRunner (``run_perf --rate R``) against the live server.

Iterations are due at t0 + k/R whatever the latency; a free user of the pool runs each one, an
arrival that finds no free user of its scenario is dropped and counted, and the first request of an
iteration is timed from its due time (wrk2's coordinated-omission correction).
"""

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gevent
import pytest

from perf.load.hooks import RunHooks, Tick
from perf.load.open_model import ArrivalMix, OpenModelRunner
from perf.load.runner import RunPlan
from perf.load.session import HttpSession
from perf.load.stats import StatsRegistry
from perf.load.user import User, task
from perf.models import PerfRun, StatsSample
from platform_pack.clients import api as names
from tests.liveserver import run_perf
from tests.perf.builders import HealthChecker, Quitter


class Recorder:
    """The session's hook: passes every request on to the registry and keeps (name, ms) for the test."""

    def __init__(self, registry: StatsRegistry) -> None:
        self.registry = registry
        self.calls: list[tuple[str, float]] = []

    def __call__(self, method: str, name: str, elapsed_ms: float, size: int, error: str | None = None,
                 server: Any = None, opened: int = 0) -> None:
        self.calls.append((name, elapsed_ms))
        self.registry.record(method, name, elapsed_ms, size, error, server, opened)


@dataclass
class Finished:
    result: str
    wall: float
    stats: StatsRegistry
    ticks: list[Tick]
    runner: OpenModelRunner


def run_open(url: str, users: list[type[User]], plan: RunPlan, rate: float, stop_after: float | None = None
             ) -> Finished:
    stats = StatsRegistry()
    ticks: list[Tick] = []
    runner = OpenModelRunner(users, plan, stats, lambda registry: HttpSession(url, Recorder(registry)),
                             hooks=RunHooks(on_tick=ticks.append), rate=rate)
    if stop_after is not None:
        gevent.spawn_later(stop_after, runner.request_stop)
    started = time.monotonic()
    result = runner.run()
    return Finished(result, time.monotonic() - started, stats, ticks, runner)


def requests_named(finished: Finished, name: str) -> int:
    entry = finished.stats.entries.get(("GET", name))
    return entry.num_requests if entry else 0


class Sleeper(User):
    """Busy 0.1 s per iteration: one user serves at most ten iterations a second."""

    @task
    def doze_then_check(self):
        gevent.sleep(0.1)
        self.client.get("/healthcheck", name="after a nap")


# --- the schedule -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def steady(live_server_process) -> Finished:
    """50 iterations/s for 2 s over a pool of 5 users: far more users than needed."""
    plan = RunPlan(users=5, spawn_rate=100, duration=2.0, tick_interval=0.5, seed=1)
    return run_open(live_server_process.url, [HealthChecker], plan, rate=50)


@pytest.mark.once  # by hand: the engine in this process against /healthcheck, which does no database work
def test_iterations_arrive_at_the_rate_for_the_duration(steady):
    runner = steady.runner
    assert steady.result == "completed"
    assert runner.scheduled_iterations == 100
    assert runner.started_iterations >= 90  # a pool this size drops only if the machine stalls for 0.1 s
    assert runner.started_iterations + runner.dropped_iterations == 100
    assert 2.0 <= steady.wall < 3.0
    assert runner.schedule_seconds == pytest.approx(2.0, abs=0.05)


@pytest.mark.once  # by hand: the engine in this process against /healthcheck, which does no database work
def test_each_started_iteration_runs_one_task_without_think_time(steady):
    # An iteration still in flight when the schedule ends is cut off, as LoadRunner cuts off a user's task.
    started = steady.runner.started_iterations
    assert started - 5 <= requests_named(steady, "/healthcheck") <= started
    assert steady.stats.total.num_failures == 0


@pytest.mark.once  # by hand: the engine in this process against /healthcheck, which does no database work
def test_the_pool_caps_concurrency_and_the_summary_says_so(steady):
    runner = steady.runner
    assert 1 <= runner.max_busy_users <= 5
    dropped = runner.dropped_iterations
    assert runner.outcome() == {
        "rate": 50, "pool_users": 5, "schedule_seconds": pytest.approx(2.0, abs=0.05),
        "scheduled_iterations": 100, "started_iterations": 100 - dropped, "dropped_iterations": dropped,
        "dropped_percent": float(dropped), "dropped_by_scenario": {"HealthChecker": dropped} if dropped else {},
        "max_busy_users": runner.max_busy_users,
    }
    assert runner.summary_lines()[0].startswith(f"Open model: 50 iterations/s for 2.0s: 100 scheduled, "
                                                f"{100 - dropped} started, {dropped} dropped")


@pytest.mark.once  # by hand: the engine in this process against /healthcheck, which does no database work
def test_ticks_carry_samples_and_the_pool_as_users(steady):
    ticks = steady.ticks
    assert len(ticks) >= 4
    assert [tick.elapsed for tick in ticks[:3]] == pytest.approx([0.5, 1.0, 1.5], abs=0.15)
    assert [tick.sample for tick in ticks] == steady.stats.samples
    assert all(tick.users == 5 for tick in ticks)
    assert ticks[-1].sample.total_requests == steady.stats.total.num_requests
    assert steady.runner.user_count == 0


@pytest.mark.once  # by hand: the engine in this process against /healthcheck, which does no database work
def test_arrivals_that_find_every_user_busy_are_dropped_and_counted(live_server_process):
    plan = RunPlan(users=1, spawn_rate=100, duration=2.0)

    finished = run_open(live_server_process.url, [Sleeper], plan, rate=50)

    runner = finished.runner
    assert runner.scheduled_iterations == 100
    # Busy 0.1 s of every 0.12 s: a sixth of the arrivals find the user free (a fifth with a late scheduler).
    assert 10 <= runner.started_iterations <= 21, runner.started_iterations
    assert runner.started_iterations + runner.dropped_iterations == runner.scheduled_iterations
    assert runner.dropped_by_scenario == {"Sleeper": runner.dropped_iterations}
    assert runner.max_busy_users == 1
    assert runner.started_iterations - 1 <= requests_named(finished, "after a nap") <= runner.started_iterations
    assert "WARNING: " in runner.summary_lines()[1] and "Sleeper" in runner.summary_lines()[1]


class Quick(User):
    weight = 1

    @task
    def check(self):
        self.client.get("/healthcheck", name="quick")


class Slow(User):
    weight = 1

    @task
    def nap(self):
        gevent.sleep(0.1)
        self.client.get("/healthcheck", name="slow")


@pytest.mark.once  # by hand: the engine in this process against /healthcheck, which does no database work
def test_a_slow_scenario_drops_its_own_arrivals_and_keeps_its_share(live_server_process):
    """Its arrivals are not handed to the quick scenario's idle user: the mix stays as weighted."""
    plan = RunPlan(users=2, spawn_rate=100, duration=1.0)

    finished = run_open(live_server_process.url, [Quick, Slow], plan, rate=40)

    runner = finished.runner
    assert runner.spawn_order.count("Quick") == runner.spawn_order.count("Slow") == 1
    assert runner.scheduled_iterations == 40
    # 20 arrivals each; the quick user is free for nearly all of its own, the slow one for about 4.
    assert requests_named(finished, "quick") >= 16
    assert runner.dropped_by_scenario["Quick"] <= 3
    assert 10 <= runner.dropped_by_scenario["Slow"] <= 17, runner.dropped_by_scenario


WEIGHTS = {"EventBrowser": 30, "ExistingUserLogin": 20, "DashboardUser": 15, "RSVPUser": 15,
           "FreeTicketUser": 10, "PWYCTicketUser": 5, "QuestionnaireUser": 5, "NewUserRegistration": 5}


def test_every_window_of_the_weight_sum_holds_the_weighted_mix():
    mix = ArrivalMix(WEIGHTS)

    picks = [mix.next() for _ in range(3 * 105)]

    for window in range(3):
        chunk = picks[window * 105:(window + 1) * 105]
        assert {name: chunk.count(name) for name in WEIGHTS} == WEIGHTS


def test_arrivals_are_spread_so_any_prefix_is_within_one_of_its_share():
    mix = ArrivalMix(WEIGHTS)

    picks = [mix.next() for _ in range(105)]

    for count in range(1, 106):
        for name, weight in WEIGHTS.items():
            assert abs(picks[:count].count(name) - count * weight / 105) < 1, (name, count)


# --- on_start, stopping -----------------------------------------------------------------------------------------


class SlowStarter(User):
    """Logs in for 0.4 s before it can serve."""

    def on_start(self):
        gevent.sleep(0.4)
        self.client.get("/healthcheck", name="login")

    @task
    def check(self):
        self.client.get("/healthcheck", name="iteration")


@pytest.mark.once  # by hand: the engine in this process against /healthcheck, which does no database work
def test_the_pool_starts_at_the_spawn_rate_before_the_schedule(live_server_process):
    """Users spawn at 0, 0.2 and 0.4 s and log in 0.4 s later; the schedule starts at 0.8 s and
    none of that start counts as an iteration or as lateness."""
    finished = run_open(live_server_process.url, [SlowStarter], RunPlan(users=3, spawn_rate=5, duration=1.0),
                        rate=20)

    login, iteration = finished.stats.entries[("GET", "login")], finished.stats.entries[("GET", "iteration")]
    assert login.num_requests == 3
    assert login.last_request_at - login.first_request_at >= 0.35
    assert login.last_request_at <= iteration.first_request_at
    assert finished.runner.scheduled_iterations == 20 and finished.runner.dropped_iterations == 0
    assert iteration.max_response_time < 300
    assert 1.8 <= finished.wall < 3.0


@pytest.mark.once  # by hand: the engine in this process against /healthcheck, which does no database work
def test_a_stop_request_while_the_pool_starts_ends_the_run_before_any_arrival(live_server_process):
    finished = run_open(live_server_process.url, [SlowStarter], RunPlan(users=3, spawn_rate=100, duration=30),
                        rate=20, stop_after=0.2)

    assert finished.result == "aborted"
    assert finished.wall < 1.0
    assert finished.runner.scheduled_iterations == 0
    assert finished.runner.user_count == 0


@pytest.mark.once  # by hand: the engine in this process against /healthcheck, which does no database work
def test_a_stop_request_ends_the_schedule_early_as_aborted(live_server_process):
    finished = run_open(live_server_process.url, [HealthChecker], RunPlan(users=2, spawn_rate=100, duration=30),
                        rate=20, stop_after=0.5)

    runner = finished.runner
    assert finished.result == "aborted"
    assert finished.wall < 2.0
    assert 5 <= runner.scheduled_iterations <= 12
    assert runner.started_iterations + runner.dropped_iterations == runner.scheduled_iterations
    assert runner.user_count == 0


class LongTask(User):
    @task
    def long(self):
        gevent.sleep(0.8)
        self.client.get("/healthcheck", name="late answer")


@pytest.mark.once  # by hand: the engine in this process against /healthcheck, which does no database work
@pytest.mark.parametrize(("stop_timeout", "answers"), [(0.0, 0), (2.0, 1)])
def test_the_stop_timeout_lets_a_busy_user_finish_its_iteration(live_server_process, stop_timeout, answers):
    plan = RunPlan(users=1, spawn_rate=100, duration=0.5, stop_timeout=stop_timeout)

    finished = run_open(live_server_process.url, [LongTask], plan, rate=1)

    assert finished.runner.started_iterations == 1
    assert requests_named(finished, "late answer") == answers


@pytest.mark.once  # by hand: the engine in this process against /healthcheck, which does no database work
def test_users_that_quit_at_start_leave_their_arrivals_dropped(live_server_process):
    finished = run_open(live_server_process.url, [Quitter], RunPlan(users=2, spawn_rate=100, duration=0.5), rate=10)

    assert finished.runner.dropped_iterations == finished.runner.scheduled_iterations == 5
    assert finished.stats.total.num_requests == 0


def test_the_rate_must_be_positive():
    with pytest.raises(ValueError, match="greater than 0"):
        OpenModelRunner([HealthChecker], RunPlan(users=1, spawn_rate=100, duration=1), StatsRegistry(),
                        lambda registry: HttpSession("http://127.0.0.1:1", registry.record), rate=0)


# --- coordinated-omission correction ----------------------------------------------------------------------------


class TwoStep(User):
    """Two requests per iteration; remembers (lag at task start, first ms, second ms) of each."""

    seen: ClassVar[list[tuple[float, float, float]]] = []
    hog_at: ClassVar[int] = 0  # the iteration that blocks the event loop (0: none)
    nap: ClassVar[float] = 0.0  # a pause before the first request, inside the task
    iterations: ClassVar[int] = 0

    @task
    def two_requests(self):
        cls = type(self)
        cls.iterations += 1
        lag = (time.perf_counter() - self.client.intended_start) * 1000
        if self.nap:
            gevent.sleep(self.nap)
        self.client.get("/healthcheck", name="first")
        self.client.get("/healthcheck", name="second")
        (_, first), (_, second) = self.client.on_request.calls[-2:]
        cls.seen.append((lag, first, second))
        if cls.iterations == cls.hog_at:
            time.sleep(0.3)  # blocking: the whole generator stalls, as in a long GC pause


@pytest.mark.once  # by hand: the engine in this process against /healthcheck, which does no database work
def test_a_stalled_generator_s_lateness_counts_in_the_first_request_only(live_server_process):
    TwoStep.seen, TwoStep.hog_at, TwoStep.nap, TwoStep.iterations = [], 5, 0.0, 0

    finished = run_open(live_server_process.url, [TwoStep], RunPlan(users=20, spawn_rate=100, duration=1.0), rate=40)

    assert finished.runner.dropped_iterations == 0
    late = [(lag, first, second) for lag, first, second in TwoStep.seen if lag >= 100]
    assert len(late) >= 5, sorted(TwoStep.seen)[-8:]  # the arrivals due during the 0.3 s stall
    assert all(first >= lag for lag, first, _ in TwoStep.seen)
    assert all(second < lag for lag, _, second in late), late
    assert finished.stats.entries[("GET", "first")].max_response_time >= 250
    assert finished.stats.entries[("GET", "second")].max_response_time < 200


@pytest.mark.once  # by hand: the engine in this process against /healthcheck, which does no database work
def test_a_pause_before_the_first_send_counts_in_its_time(live_server_process):
    TwoStep.seen, TwoStep.hog_at, TwoStep.nap, TwoStep.iterations = [], 0, 0.05, 0

    run_open(live_server_process.url, [TwoStep], RunPlan(users=4, spawn_rate=100, duration=0.5), rate=10)

    assert len(TwoStep.seen) >= 4
    assert all(first >= 50 for _, first, _ in TwoStep.seen)
    assert all(second < first for _, first, second in TwoStep.seen)


# --- run_perf --rate, end to end --------------------------------------------------------------------------------


@pytest.mark.slow
def test_run_perf_with_a_rate_runs_the_open_model(seeded, live_server_process, orm, tmp_path: Path):
    label = f"open-{uuid.uuid4().hex[:8]}"
    result = run_perf(
        seeded, "--rate", "20", "--users", "5", "--spawn-rate", "10", "--duration", "4s",
        "--scenario", "EventBrowser", "--no-audit", "--host", live_server_process.url, "--label", label,
        "--json", str(tmp_path / "run.json"),
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / "run.json").read_text())
    counts = {entry["name"]: entry["num_requests"] for entry in summary["entries"] if not entry["aggregated"]}
    assert set(counts) <= {names.EVENT_LIST, names.EVENT_DETAIL, names.TIERS}
    # 80 iterations of one task each; a user's first detail or tiers task also lists the events first.
    assert 72 <= sum(counts.values()) <= 85, counts
    assert summary["failures"] == []
    assert len(summary["samples"]) >= 2
    run = PerfRun.objects.get(label=label)
    assert run.status == PerfRun.Status.COMPLETED and run.total_requests == sum(counts.values())
    assert run.user_split == {"EventBrowser": 5}
    assert StatsSample.objects.filter(run=run).count() >= 2
    iterations = run.open_model
    assert iterations["scheduled_iterations"] == iterations["started_iterations"] + iterations["dropped_iterations"]
    assert summary["meta"]["open_model"] == iterations
    assert "Open model: 20 iterations/s" in result.stdout
