"""``run_perf --iterations N``: the run ends, completed, after N task iterations in all (across users and
``--processes`` workers), or N per user with ``--iterations-per-user``; -t still bounds it.

The real runs go to the capacity target with its pack (tests/perf/capacity_pack.py): one request per task, so the
requests the target served are the task iterations run, exactly."""

import json
import random
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from perf.cli.invocation import RunRequest, UsageError, check_request
from perf.load.runner import iterations_part
from perf.load.session import HttpSession
from perf.load.shares import Share
from perf.load.stats import StatsRegistry
from perf.load.user import IterationLimit, User, task
from perf.models import PerfRun
from tests.capacitytarget import capacity_run_env, capacity_target, run_capacity_perf


class Idle(User):
    @task
    def nothing(self) -> None:
        """Never run: the limit is asked about users, not their tasks."""


def a_user() -> User:
    return Idle(HttpSession("http://127.0.0.1:9", StatsRegistry().record), random.Random(1))


# --- the count ------------------------------------------------------------------------------------------------------


def test_in_all_the_limit_lets_n_tasks_start_and_is_done_when_they_have_ended():
    told: list[str] = []
    limit = IterationLimit(3, per_user=False, users=2, on_done=lambda: told.append("done"))
    first, second = a_user(), a_user()
    assert [limit.may_start(first), limit.may_start(second), limit.may_start(first)] == [True, True, True]
    assert not limit.may_start(second) and not limit.has_more(first) and limit.exhausted
    limit.task_ended()
    limit.task_ended()
    assert not limit.done and told == []
    limit.task_ended()
    limit.user_ended()  # users ending count for nothing in all
    assert limit.done and told == ["done"]
    limit.check()
    assert told == ["done"]  # told once


def test_per_user_each_user_has_its_own_n_and_the_run_is_done_when_every_user_has_ended():
    told: list[str] = []
    limit = IterationLimit(2, per_user=True, users=2, on_done=lambda: told.append("done"))
    first, second = a_user(), a_user()
    assert [limit.may_start(first), limit.may_start(first), limit.may_start(first)] == [True, True, False]
    assert limit.has_more(second) and not limit.exhausted
    for _ in range(2):
        limit.task_ended()
    limit.user_ended()
    assert not limit.done
    limit.user_ended()  # the second ended without a task (a StopUser in on_start): it will never run its two
    assert limit.done and told == ["done"]


def test_a_limit_of_nothing_is_done_from_the_start():
    told: list[str] = []
    IterationLimit(0, per_user=False, users=3, on_done=lambda: told.append("done")).check()
    assert told == ["done"]


def test_the_shares_parts_of_the_iterations_add_up_to_them():
    for iterations, count in ((23, 3), (2, 3), (9, 4), (1, 1)):
        parts = [iterations_part(iterations, Share.of(list("abcd"), index, count)) for index in range(count)]
        assert sum(parts) == iterations and max(parts) - min(parts) <= 1, parts
    assert [iterations_part(2, Share.of(list("abc"), index, 3)) for index in range(3)] == [1, 1, 0]


# --- the options ----------------------------------------------------------------------------------------------------


def test_the_plan_carries_the_iterations():
    plan = check_request(RunRequest(iterations=20, save=False, audit=False)).plan
    assert (plan.iterations, plan.iterations_per_user) == (20, False)
    per_user = check_request(RunRequest(iterations=3, iterations_per_user=True, save=False, audit=False)).plan
    assert (per_user.iterations, per_user.iterations_per_user) == (3, True)
    assert check_request(RunRequest(iterations=5, rate=10.0, save=False, audit=False)).plan.iterations == 5


@pytest.mark.parametrize(("options", "message"), [
    ({"iterations": 0}, "--iterations must be at least 1, got 0"),
    ({"iterations_per_user": True}, "--iterations-per-user says how --iterations counts: give --iterations N too"),
    ({"iterations": 5, "distributed": "celery", "save": True},
     "--iterations cannot be combined with --distributed (the shards cannot count together)"),
    ({"iterations": 5, "find_capacity": True, "thresholds": ("p95<1s",)},
     "--iterations cannot be combined with --find-capacity"),
    ({"iterations": 5, "iterations_per_user": True, "rate": 10.0},
     "--iterations-per-user does not apply with --rate: the open model's iterations are the schedule's"),
    ({"iterations": 5, "iterations_per_user": True, "stages": "1s:2"},
     "--iterations-per-user does not apply with --stages: a load profile starts and stops users as it goes"),
])
def test_bad_iteration_options_are_one_line(options, message):
    options = {"save": False, "audit": False, **options}
    with pytest.raises(UsageError) as raised:
        check_request(RunRequest(**options))
    assert message in str(raised.value) and "\n" not in str(raised.value)


# --- real runs ------------------------------------------------------------------------------------------------------


def run_counted(tmp_path: Path, *options: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], int, str]:
    """run_perf against the capacity target, -t 30s: (the --json summary, the requests served, stdout)."""
    summary = tmp_path / "summary.json"
    with capacity_target(8, 0.002) as target:
        run = run_capacity_perf(target.url, tmp_path, "-r", "100", "-t", "30s", "--json", str(summary), *options,
                                env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads(summary.read_text()), target.served, run.stdout


def lasted(summary: dict[str, Any]) -> float:
    return summary["meta"]["finished_at"] - summary["meta"]["started_at"]


def test_twenty_iterations_in_all_end_the_run_completed_well_before_its_duration(tmp_path):
    summary, served, stdout = run_counted(tmp_path, "--no-save", "--no-audit", "-u", "5", "--iterations", "20")
    assert served == 20 and summary["entries"][0]["num_requests"] == 20
    assert summary["meta"]["status"] == "completed" and lasted(summary) < 10
    assert "Task iterations: 20 (20 in all: all run)" in stdout


def test_iterations_per_user_are_each_users_own(tmp_path):
    summary, served, stdout = run_counted(tmp_path, "--no-save", "--no-audit", "-u", "5", "--iterations", "7",
                                          "--iterations-per-user")
    assert served == 35 and summary["meta"]["status"] == "completed" and lasted(summary) < 10
    assert "Task iterations: 35 (7 per user: all run)" in stdout


@pytest.mark.parametrize(("options", "expected"), [
    (("--iterations", "23"), 23),
    (("--iterations", "2"), 2),  # a worker whose part is 0 ends at once
    (("--iterations", "7", "--iterations-per-user"), 35),
])
def test_iterations_count_across_the_processes_workers(tmp_path, options, expected):
    summary, served, stdout = run_counted(tmp_path, "--no-save", "--no-audit", "-u", "5", "--processes", "3",
                                          *options)
    assert served == expected and summary["meta"]["status"] == "completed" and lasted(summary) < 10
    assert "processes: 3 workers" in stdout


def test_the_open_model_ends_after_n_iterations_of_its_schedule(tmp_path):
    summary, served, stdout = run_counted(tmp_path, "--no-save", "--no-audit", "-u", "5", "--rate", "200",
                                          "--iterations", "30")
    assert served == 30 and summary["meta"]["status"] == "completed" and lasted(summary) < 10
    open_model = summary["meta"]["open_model"]
    assert open_model["started_iterations"] == 30
    assert open_model["scheduled_iterations"] == 30 + open_model["dropped_iterations"]
    assert "Task iterations: 30 (30 in all: all run)" in stdout


def test_the_duration_still_bounds_a_run_of_iterations(tmp_path):
    summary = tmp_path / "summary.json"
    started = time.monotonic()
    with capacity_target(8, 0.002) as target:
        run = run_capacity_perf(target.url, tmp_path, "--no-save", "--no-audit", "-u", "3", "-r", "100", "-t", "1s",
                                "--iterations", "1000000", "--json", str(summary))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert 0 < target.served < 1_000_000 and time.monotonic() - started < 20
    assert json.loads(summary.read_text())["meta"]["status"] == "completed"
    assert f"Task iterations: {target.served} (1000000 in all: not all run before the run ended)" in run.stdout


def test_a_stored_run_of_iterations_is_completed_with_its_options(tmp_path, live_env, orm):
    label = f"iterations-{uuid.uuid4().hex[:8]}"
    env = capacity_run_env(tmp_path, base=live_env)
    summary, served, _ = run_counted(tmp_path, "--no-audit", "-u", "4", "--iterations", "12", "--label", label,
                                     env=env)
    run = PerfRun.objects.get(label=label)
    assert (run.status, run.total_requests, served) == (PerfRun.Status.COMPLETED, 12, 12)
    assert (run.options["iterations"], run.options["iterations_per_user"]) == (12, False)
