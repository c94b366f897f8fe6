"""``run_perf --find-capacity`` for real: a child process's gevent users against a server of known capacity.

The target (tests/capacitytarget.py) serves K requests at a time for T seconds each: K/T requests a second, and
queueing beyond. The search must find that capacity within 15 %, in the closed and the open model; find the
failure threshold first when the target refuses past a load (503, its queue full); say "ceiling reached" when it
never breaks; and refuse to report a capacity when the generator, not the server, was the limit. Time is
compressed: T of 50 ms, steps that settle 0.5 s and hold 2 s.
"""

import json
import subprocess
import time

import pytest

from perf import User, constant, task
from perf.cli import exit_codes
from tests.capacitytarget import capacity_run_env, capacity_target, run_capacity_perf
from tests.liveserver import start_run_perf

pytestmark = pytest.mark.slow

WORKERS, SECONDS = 4, 0.05  # 80 requests a second
STEP = ("--settle", "0.5s", "--hold", "2s", "--budget", "60s")


def summary(folder) -> dict:
    return json.loads((folder / "run.json").read_text())


def search(target_url: str, folder, *options: str, env=None) -> tuple[subprocess.CompletedProcess, dict]:
    run = run_capacity_perf(target_url, folder, "--find-capacity", *STEP, "--no-save", "--no-audit",
                            "--json", str(folder / "run.json"), *options, env=env)
    assert run.returncode in (0, 3, 7), run.stdout[-3000:] + run.stderr[-3000:]
    return run, summary(folder)["capacity"]


def test_the_closed_model_finds_the_capacity_of_a_server_of_k_workers(tmp_path):
    """p95 < 1.5 T holds up to 1.5 K users; their throughput is the server's K/T."""
    with capacity_target(WORKERS, SECONDS) as target:
        run, found = search(target.url, tmp_path, "--start-load", "1", "--threshold", "p95<75ms",
                            "--threshold", "error_rate<1%")

    assert run.returncode == exit_codes.OK, run.stdout[-3000:]
    assert found["status"] == "found"
    assert found["capacity"]["requests_per_second"] == pytest.approx(target.capacity, rel=0.15)
    assert WORKERS <= found["capacity"]["load"] < found["first_failing"]["load"] <= 2 * WORKERS
    assert found["broke_first"]["threshold"] == "p95<75ms"
    assert "Capacity search: each step judged on its last 2 s" in run.stdout
    assert found["verdict"] in run.stdout


def test_the_open_model_finds_the_capacity_as_an_arrival_rate(tmp_path):
    """Arrivals beyond K/T a second queue without end: the p95 breaks just past the capacity."""
    with capacity_target(WORKERS, SECONDS) as target:
        run, found = search(target.url, tmp_path, "--rate", "20", "--max-rate", "400", "-u", "40",
                            "--threshold", "p95<150ms")

    assert run.returncode == exit_codes.OK, run.stdout[-3000:]
    assert found["model"] == "rate" and found["status"] == "found"
    assert found["capacity"]["load"] == pytest.approx(target.capacity, rel=0.15)
    assert found["capacity"]["requests_per_second"] == pytest.approx(target.capacity, rel=0.15)
    assert found["first_failing"]["load"] <= 1.3 * target.capacity


def test_a_target_that_refuses_past_a_load_breaks_the_failure_threshold_first(tmp_path):
    """K = 4 in service and at most 2 waiting: from the 7th user on, answers are 503s."""
    with capacity_target(WORKERS, SECONDS, queue_limit=2) as target:
        run, found = search(target.url, tmp_path, "--start-load", "2", "--threshold", "p95<500ms",
                            "--threshold", "error_rate<1%")

    assert run.returncode == exit_codes.OK, run.stdout[-3000:]
    assert found["broke_first"]["threshold"] == "error_rate<1%"
    assert found["capacity"]["load"] == 6 and found["first_failing"]["load"] == 7
    assert target.refused > 0


def test_a_target_that_never_breaks_below_the_ceiling_says_the_capacity_is_above_it(tmp_path):
    with capacity_target(100, 0.02) as target:
        run, found = search(target.url, tmp_path, "--start-load", "2", "--max-users", "8", "--threshold", "p95<1s")

    assert run.returncode == exit_codes.OK, run.stdout[-3000:]
    assert found["status"] == "ceiling" and found["limit"] == {"kind": "max_users", "value": 8.0}
    assert [step["load"] for step in found["steps"]] == [2, 4, 8]
    assert "Every step passed up to the ceiling, 8 users" in run.stdout
    assert "the capacity is above that" in run.stdout


def test_a_first_step_that_fails_exits_3(tmp_path):
    with capacity_target(1, SECONDS) as target:
        run, found = search(target.url, tmp_path, "--start-load", "4", "--threshold", "p95<60ms")

    assert run.returncode == exit_codes.THRESHOLD
    assert found["status"] == "first_step_failed" and found["capacity"] is None
    assert "Even the first step, 4 users, failed (p95<60ms)" in run.stdout


class Burner(User):
    """A scenario that spends its time computing between requests: the generator, not the target, is the limit."""

    wait_time = staticmethod(constant(0))

    @task
    def work(self) -> None:
        deadline = time.process_time() + 0.05
        while time.process_time() < deadline:
            pass
        self.client.get("/work", name="/work")


BURNERS = [Burner]


def test_a_generator_that_limits_itself_reports_no_capacity_and_exits_7(tmp_path):
    env = capacity_run_env(tmp_path, pack=f"{__name__}.BURNERS")
    with capacity_target(100, 0.01) as target:
        run, found = search(target.url, tmp_path, "--start-load", "4", "--threshold", "p95<1s", env=env)

    assert run.returncode == exit_codes.GENERATOR_LIMIT, run.stdout[-3000:]
    assert found["status"] == "generator_limit" and found["capacity"] is None
    assert found["steps"][0]["generator_limited"] and found["steps"][0]["cpu_percent"] > 90
    assert "No capacity is reported: the generator was the limit" in run.stdout


def test_a_stored_search_is_a_capacity_run_whose_steps_are_stored_as_it_goes(live_env, orm, tmp_path):
    """The run's row is kind "capacity"; while it searches, its capacity holds the steps judged so far and the
    step under way (the live page reads them); at the end, the result and the verdict."""
    from perf.models import PerfRun

    label = f"capacity-{time.time_ns()}"
    with capacity_target(WORKERS, SECONDS) as target:
        env = capacity_run_env(tmp_path, live_env)
        child = start_run_perf(env, "--host", target.url, "--find-capacity", *STEP, "--start-load", "2",
                               "--threshold", "p95<75ms", "--no-audit", "--label", label)
        seen_searching = None
        deadline = time.monotonic() + 60
        while child.poll() is None and time.monotonic() < deadline:
            run = PerfRun.objects.filter(label=label).first()
            if run is not None and run.capacity and run.capacity["status"] == "searching" and run.capacity["steps"]:
                seen_searching = run.capacity
            time.sleep(0.2)
        out, err = child.communicate(timeout=30)

    assert child.returncode == 0, out[-3000:] + err[-3000:]
    assert seen_searching is not None and seen_searching["current"]["index"] == len(seen_searching["steps"])
    run = PerfRun.objects.get(label=label)
    assert run.kind == PerfRun.Kind.CAPACITY and run.status == PerfRun.Status.COMPLETED
    assert run.capacity["status"] == "found" and run.capacity["verdict"]
    assert run.capacity["capacity"]["requests_per_second"] == pytest.approx(target.capacity, rel=0.15)
    assert run.thresholds == []  # judged per step: the whole run is no verdict
