"""Specification of perf.load.runner: the user mix, and real runs against the live server.

The runs happen in this (not monkey-patched) process: the runner's greenlets and the
session's geventhttpclient sockets cooperate through gevent on their own.
"""

import time
from dataclasses import dataclass
from typing import ClassVar

import gevent
import pytest

from perf.load.hooks import RunHooks, Tick
from perf.load.runner import LoadRunner, RunPlan, allocate_users, split_counts
from perf.load.session import HttpSession
from perf.load.stats import StatsRegistry
from perf.load.user import User, constant, task
from platform_pack.scenarios import SCENARIOS
from tests.perf.builders import Quitter

# By hand: the engine, against the live server as a mere HTTP target; its database is incidental.
pytestmark = pytest.mark.once

WEIGHTS = {name: cls.weight for name, cls in SCENARIOS.items()}


# --- the user mix -----------------------------------------------------------------------------------------------


def test_the_scenarios_carry_the_locust_suite_weights():
    assert WEIGHTS == {
        "EventBrowser": 30, "ExistingUserLogin": 20, "DashboardUser": 15, "RSVPUser": 15,
        "FreeTicketUser": 10, "PWYCTicketUser": 5, "QuestionnaireUser": 5, "NewUserRegistration": 5,
    }


def test_a_hundred_users_split_as_locust_splits_them():
    assert split_counts(allocate_users(WEIGHTS, 100)) == {
        "EventBrowser": 28, "ExistingUserLogin": 19, "DashboardUser": 14, "RSVPUser": 14,
        "FreeTicketUser": 10, "PWYCTicketUser": 5, "QuestionnaireUser": 5, "NewUserRegistration": 5,
    }


@pytest.mark.parametrize("multiple", [1, 2, 7])
def test_a_multiple_of_the_weight_sum_splits_exactly(multiple):
    counts = split_counts(allocate_users(WEIGHTS, 105 * multiple))

    assert counts == {name: weight * multiple for name, weight in WEIGHTS.items()}


def test_close_weights_split_exactly():
    """locust#2662: 20:25 over 45 users once gave 23:22."""
    assert split_counts(allocate_users({"A": 20, "B": 25}, 45)) == {"A": 20, "B": 25}


def test_the_spawn_order_is_deterministic_and_each_prefix_is_the_smaller_run():
    order = allocate_users(WEIGHTS, 300)

    assert allocate_users(dict(reversed(WEIGHTS.items())), 300) == order
    assert all(allocate_users(WEIGHTS, count) == order[:count] for count in (1, 10, 57, 100))


def test_every_scenario_gets_a_user_from_eleven_users_on():
    """With weights 30:20:15:15:10:5:5:5 a weight-5 class may wait for the 11th user (Locust's split
    leaves QuestionnaireUser out at 10 users); from then on no scenario is left out."""
    for count in range(11, 250):
        assert set(allocate_users(WEIGHTS, count)) == set(WEIGHTS), count


def test_every_class_gets_a_user_when_there_are_as_many_users_as_classes():
    weights = {"A": 3, "B": 2, "C": 2, "D": 1}

    assert sorted(allocate_users(weights, 4)) == ["A", "B", "C", "D"]


def test_classes_without_weight_get_no_users():
    order = allocate_users({"A": 1, "B": 0, "C": -2}, 10)

    assert order == ["A"] * 10


@pytest.mark.parametrize("count", [0, -3])
def test_no_users_for_a_count_below_one(count):
    assert allocate_users(WEIGHTS, count) == []


def test_no_positive_weight_is_an_error():
    with pytest.raises(ValueError, match="no scenario has a positive weight"):
        allocate_users({"A": 0, "B": -1}, 10)


# --- real runs --------------------------------------------------------------------------------------------------


class HealthWatcher(User):
    """Three healthchecks for every missing page."""

    wait_time = constant(0.01)

    @task(3)
    def healthcheck(self):
        self.client.get("/healthcheck")

    @task(1)
    def missing(self):
        self.client.get("/missing", name="/missing [probe]")


@dataclass
class Finished:
    result: str
    wall: float
    stats: StatsRegistry
    ticks: list[Tick]
    runner: LoadRunner


def run_load(url: str, users: list[type[User]], plan: RunPlan, stop_after: float | None = None,
             observe: dict[float, list] | None = None) -> Finished:
    """Run ``plan``; optionally request a stop after ``stop_after`` s and read ``user_count`` at given times."""
    stats = StatsRegistry()
    ticks: list[Tick] = []
    runner = LoadRunner(users, plan, stats, make_session=lambda registry: HttpSession(url, registry.record),
                        hooks=RunHooks(on_tick=ticks.append))
    if stop_after is not None:
        gevent.spawn_later(stop_after, runner.request_stop)
    for at, seen in (observe or {}).items():
        gevent.spawn_later(at, lambda seen=seen: seen.append(runner.user_count))
    started = time.monotonic()
    result = runner.run()
    return Finished(result, time.monotonic() - started, stats, ticks, runner)


@pytest.fixture(scope="module")
def watched(live_server_process) -> Finished:
    """One 1.5 s run of four HealthWatchers, ticking every 0.5 s."""
    plan = RunPlan(users=4, spawn_rate=100, duration=1.5, tick_interval=0.5, seed=3)
    return run_load(live_server_process.url, [HealthWatcher], plan)


def test_a_run_completes_when_its_duration_is_over(watched):
    assert watched.result == "completed"
    assert 1.5 <= watched.wall < 3.0


def test_users_are_stopped_when_the_run_ends(watched):
    assert watched.runner.user_count == 0
    assert all(greenlet.dead for _, greenlet in watched.runner.users)


def test_requests_are_counted_under_the_names_given(watched):
    assert set(watched.stats.entries) == {("GET", "/healthcheck"), ("GET", "/missing [probe]")}
    assert watched.stats.total.num_requests == sum(e.num_requests for e in watched.stats.entries.values()) > 20


def test_an_error_status_is_recorded_as_a_failure_with_its_http_error(watched):
    missing = watched.stats.entries[("GET", "/missing [probe]")]
    healthcheck = watched.stats.entries[("GET", "/healthcheck")]

    assert missing.num_failures == missing.num_requests > 0
    assert healthcheck.num_failures == 0
    [(method, name, error)] = watched.stats.failures
    assert (method, name) == ("GET", "/missing [probe]")
    assert error.startswith("HTTPError('404 Client Error")


def test_tasks_are_picked_in_proportion_to_their_weights(watched):
    healthchecks = watched.stats.entries[("GET", "/healthcheck")].num_requests
    share = healthchecks / watched.stats.total.num_requests

    assert 0.6 <= share <= 0.9, share


def test_a_sample_is_taken_every_tick_interval(watched):
    elapsed = [tick.elapsed for tick in watched.ticks]

    assert len(elapsed) >= 3
    assert elapsed[:3] == pytest.approx([0.5, 1.0, 1.5], abs=0.15)
    assert [tick.sample for tick in watched.ticks] == watched.stats.samples
    assert all(tick.users == 4 for tick in watched.ticks[:3])


def test_users_arrive_at_the_spawn_rate(live_server_process):
    seen: list[int] = []

    finished = run_load(live_server_process.url, [HealthWatcher], RunPlan(users=6, spawn_rate=3, duration=30),
                        stop_after=0.9, observe={0.85: seen})

    assert 2 <= seen[0] <= 4, seen
    assert len(finished.runner.users) < 6


def test_a_stop_request_ends_the_run_early_as_aborted(live_server_process):
    finished = run_load(live_server_process.url, [HealthWatcher], RunPlan(users=2, spawn_rate=100, duration=30),
                        stop_after=0.3)

    assert finished.result == "aborted"
    assert finished.wall < 2.0
    assert finished.runner.user_count == 0
    assert finished.stats.total.num_requests > 0


class Clumsy(User):
    """Trips over its own code once, then works."""

    wait_time = constant(0.01)

    def on_start(self):
        self.steps = 0

    @task
    def stumble_then_walk(self):
        self.steps += 1
        if self.steps == 1:
            raise ValueError("boom")
        self.client.get("/healthcheck")


def test_an_exception_in_a_task_is_counted_and_the_user_goes_on(live_server_process):
    finished = run_load(live_server_process.url, [Clumsy], RunPlan(users=2, spawn_rate=100, duration=0.5))

    exception = finished.stats.exceptions["ValueError('boom')"]
    assert exception.count == 2
    assert "stumble_then_walk" in exception.traceback
    assert finished.stats.entries[("GET", "/healthcheck")].num_requests > 2
    assert finished.stats.total.num_failures == 0


def test_stop_user_in_on_start_ends_that_user_quietly(live_server_process):
    plan = RunPlan(users=3, spawn_rate=100, duration=0.5, tick_interval=0.2)

    finished = run_load(live_server_process.url, [Quitter], plan)

    assert finished.result == "completed"
    assert finished.ticks[0].users == 0
    assert finished.stats.total.num_requests == 0
    assert finished.stats.exceptions == {}


class Picker(User):
    """Records the task it runs; sends nothing."""

    wait_time = constant(0.001)
    picks: ClassVar[list[str]] = []

    @task(2)
    def first(self):
        self.picks.append("first")

    @task(2)
    def second(self):
        self.picks.append("second")

    @task(1)
    def third(self):
        self.picks.append("third")


def picks_of_run(url: str, seed: int) -> list[str]:
    Picker.picks = []
    run_load(url, [Picker], RunPlan(users=1, spawn_rate=100, duration=0.3, seed=seed))
    assert len(Picker.picks) >= 30
    return Picker.picks[:30]


def test_a_seed_makes_the_task_choice_reproducible(live_server_process):
    assert picks_of_run(live_server_process.url, seed=5) == picks_of_run(live_server_process.url, seed=5)


def test_different_seeds_choose_differently(live_server_process):
    assert picks_of_run(live_server_process.url, seed=5) != picks_of_run(live_server_process.url, seed=6)
