"""Specification of ``--processes``: users split over forked workers, their figures merged exactly.

"Exactly" is checked against the server: a gunicorn of this module's own writes an access log,
and every request it served must be in the merged figures once (``--stop-timeout`` lets users
finish the request in flight, which a killed user would not report).
"""

import json
import os
import random
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import gevent
import pytest

from perf.analysis.reconcile import reconcile
from perf.load import processes
from perf.load.hooks import RunHooks, Tick
from perf.load.processes import ProcessRunner, WorkerStats
from perf.load.runner import LoadRunner, RunPlan, allocate_users, split_counts
from perf.load.session import HttpSession
from perf.load.shares import Share
from perf.load.stats import StatsRegistry
from perf.load.user import StopUser, User, constant, task
from perf.models import PerfRun, StatsSample
from platform_pack.scenarios import SCENARIOS
from tests.liveserver import LiveServer, free_port, manage, run_perf, start_run_perf

WEIGHTS = {name: cls.weight for name, cls in SCENARIOS.items()}


# --- the split ----------------------------------------------------------------------------------------------------


def test_worker_i_takes_every_nth_user_of_the_spawn_order_from_position_i():
    order = allocate_users(WEIGHTS, 7)

    shares = Share.split(order, 3)

    assert [[index for index, _ in share.users] for share in shares] == [[0, 3, 6], [1, 4], [2, 5]]
    assert all(name == order[index] for share in shares for index, name in share.users)
    assert shares[1] == Share.of(order, 1, 3)


def test_each_worker_mix_follows_the_weights():
    shares = Share.split(allocate_users(WEIGHTS, 210), 2)

    for share in shares:
        counts = split_counts(share.scenarios)
        assert sum(counts.values()) == 105
        assert all(abs(counts[name] - weight) <= 1 for name, weight in WEIGHTS.items()), counts


def test_there_are_never_more_workers_than_users():
    assert [len(share) for share in Share.split(["A", "B"], 4)] == [1, 1]


def test_a_share_runs_its_part_of_the_rate_and_starts_where_one_process_would():
    """Two shares at 5 users/s each spawn 2.5 a second; share 1's first user is the run's second, due 0.2 s in."""
    share = Share.of(["A"] * 5, 1, 2)
    plan = share.scaled(RunPlan(users=5, spawn_rate=5, duration=10, seed=3), tick_interval=1.0)

    assert (plan.users, plan.spawn_rate, plan.tick_interval, plan.duration, plan.seed) == (2, 2.5, 1.0, 10, 3)
    assert share.first_spawn_delay(5) == 0.2
    assert share.users == [(1, "A"), (3, "A")]


def test_a_worker_seeds_each_user_by_its_run_wide_position():
    """So a seeded run draws the same random streams whatever the number of processes."""
    draws: list[float] = []

    class Dice(User):
        def on_start(self):
            draws.append(self.rng.random())
            raise StopUser

        @task
        def idle(self):
            pass

    plan = RunPlan(users=2, spawn_rate=1000, duration=0.1, seed=7)
    runner = LoadRunner([Dice], plan, StatsRegistry(),
                        lambda registry: HttpSession("http://127.0.0.1:9", registry.record),
                        share=Share(index=3, count=2, scenarios=("Dice", "Dice")))

    runner.run()

    assert sorted(draws) == sorted(random.Random(f"7:{index}").random() for index in (3, 5))


def test_the_deltas_a_worker_drains_add_up_to_everything_it_recorded():
    worker, whole, merged = WorkerStats(), StatsRegistry(), StatsRegistry()
    requests = [("GET", "/a", 12.5, 10, None), ("GET", "/b", 300.0, 0, "HTTPError('500')"),
                ("GET", "/a", 7.25, 30, None), ("GET", "/b", 41.0, 5, "HTTPError('500')")]
    for batch in (requests[:3], requests[3:]):
        for request in batch:
            worker.record(*request)
            whole.record(*request)
        merged.merge(worker.drain())

    assert worker.total.num_requests == 0 and worker.entries == {} and worker.failures == {}
    for key in [*whole.entries, None]:
        mine, theirs = (merged.total, whole.total) if key is None else (merged.entries[key], whole.entries[key])
        assert (mine.num_requests, mine.num_failures, mine.min_response_time, mine.max_response_time,
                mine.total_content_length, mine.histogram.counts) == (
            theirs.num_requests, theirs.num_failures, theirs.min_response_time, theirs.max_response_time,
            theirs.total_content_length, theirs.histogram.counts)
    [failure] = merged.failures.values()
    assert failure.occurrences == 2


class Sleeper(User):
    """Blocks its whole process (time.sleep is not patched here): a worker that hangs."""

    @task
    def hang(self):
        time.sleep(60)


class Idler(User):
    wait_time = constant(0.01)

    @task
    def idle(self):
        gevent.sleep(0.01)


def test_a_hanging_worker_is_killed_after_its_grace_and_the_run_still_ends(monkeypatch):
    monkeypatch.setattr(processes, "HANG_GRACE", 1.0)
    plan = RunPlan(users=2, spawn_rate=1000, duration=0.5, request_timeout=1.0)  # the end grace: 1 s
    runner = ProcessRunner([Sleeper, Idler], plan, StatsRegistry(),
                           lambda registry: HttpSession("http://127.0.0.1:9", registry.record), processes=2)
    assert [share.scenarios for share in runner.shares] == [("Idler",), ("Sleeper",)]
    started = time.monotonic()

    result = runner.run()

    assert time.monotonic() - started < 5
    assert result == "worker 1 killed: still running 1 s after the planned end and its 1 s grace"
    assert [worker.done for worker in runner.workers] == [True, False]
    assert not [worker.pid for worker in runner.workers if Path(f"/proc/{worker.pid}").exists()]


def test_the_caller_puts_away_what_a_worker_must_not_share_just_before_the_fork():
    """run_perf closes Django's database connections there (RunHooks.before_fork), so that no worker holds the
    parent's sockets: the engine itself imports no Django. Called once, in the parent, before any worker exists."""
    seen: list[tuple[int, int]] = []
    plan = RunPlan(users=2, spawn_rate=1000, duration=0.3, request_timeout=1.0)
    runner = ProcessRunner([Idler], plan, StatsRegistry(),
                           lambda registry: HttpSession("http://127.0.0.1:9", registry.record), processes=2,
                           hooks=RunHooks(before_fork=lambda: seen.append((os.getpid(), len(runner.workers)))))
    runner.run()
    assert seen == [(os.getpid(), 0)]
    assert len(runner.workers) == 2 and all(worker.done for worker in runner.workers)


# --- real runs against a server that logs every request ---------------------------------------------------------


@pytest.fixture(scope="module")
def logged_server(live_env: dict[str, str], django_db_setup, tmp_path_factory) -> Iterator[LiveServer]:
    """A gunicorn on the live database writing an access log (the session's server keeps none)."""
    folder = tmp_path_factory.mktemp("logged")
    manage("bootstrap_perf_tests", env=live_env)
    env = {**live_env, "GUNICORN_CMD_ARGS": f"--access-logfile {folder / 'access.log'}"}
    server = LiveServer(env=env, port=free_port(), log_path=folder / "gunicorn.log")
    server.start(workers=2, threads=2)
    yield server
    server.stop()


def access_log(server: LiveServer) -> Path:
    return server.log_path.parent / "access.log"


def served(server: LiveServer) -> int:
    """Requests the server logged, but for the readiness probes on /api/healthcheck."""
    path = access_log(server)
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if '"GET /api/healthcheck' not in line)


def served_since(server: LiveServer, before: int, expected: int) -> int:
    """Lines logged after ``before``; gunicorn logs just after answering, so allow it a moment."""
    deadline = time.monotonic() + 5
    while served(server) - before != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return served(server) - before


class ListerAndProber(User):
    """The event list, and a missing page that fails (so failures are merged too)."""

    wait_time = constant(0.02)

    @task(3)
    def events(self):
        self.client.get("/events/")

    @task(1)
    def missing(self):
        self.client.get("/missing", name="/missing [probe]")


@pytest.mark.slow
def test_two_workers_merge_into_what_the_server_served(logged_server, orm):
    """In this (not monkey-patched) process: the runner forks it, as run_perf's process is forked."""
    stats = StatsRegistry()
    ticks: list[Tick] = []
    plan = RunPlan(users=4, spawn_rate=100, duration=2.5, stop_timeout=3, tick_interval=1.0)
    runner = ProcessRunner([ListerAndProber], plan, stats,
                           lambda registry: HttpSession(logged_server.url, registry.record),
                           processes=2, hooks=RunHooks(on_tick=ticks.append))
    before = served(logged_server)

    result = runner.run()

    workers = runner.child_requests
    assert result == "completed"
    assert set(workers) == {0, 1} and all(count > 0 for count in workers.values()), workers
    assert stats.total.num_requests == sum(workers.values())
    seen_by_server = served_since(logged_server, before, stats.total.num_requests)
    assert seen_by_server == stats.total.num_requests
    assert stats.total.num_requests == sum(entry.num_requests for entry in stats.entries.values())
    assert all(entry.histogram.total == entry.num_requests for entry in [stats.total, *stats.entries.values()])
    missing = stats.entries[("GET", "/missing [probe]")]
    assert missing.num_failures == missing.num_requests == sum(f.occurrences for f in stats.failures.values())
    assert ticks[-1].sample.total_requests == stats.total.num_requests and ticks[-1].users == 4
    assert runner.summary_lines() == [f"processes: 2 workers, requests per worker: {workers[0]}, {workers[1]}"]


def _two_processes(server: LiveServer, label: str, *extra: str) -> tuple[str, ...]:
    """``run_perf`` arguments for a two-process EventBrowser run against the logging server."""
    return ("--processes", "2", "--scenario", "EventBrowser", "--wait", "0.05,0.1", "--stop-timeout", "5",
            "--no-audit", "--host", server.url, "--label", label, *extra)


@pytest.mark.slow
def test_run_perf_with_two_processes_stores_every_request_the_server_served(logged_server, live_env, orm,
                                                                           tmp_path: Path):
    label = f"processes-{uuid.uuid4().hex[:8]}"
    before = served(logged_server)

    result = run_perf(
        live_env, *_two_processes(logged_server, label, "--users", "6", "--spawn-rate", "6", "--duration", "6s",
                                  "--json", str(tmp_path / "out.json"),
                                  "--request-log", str(tmp_path / "requests.log")),
        timeout=90,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = PerfRun.objects.get(label=label)
    summary = json.loads((tmp_path / "out.json").read_text())
    [aggregated] = [entry for entry in summary["entries"] if entry["aggregated"]]
    per_endpoint = [entry["num_requests"] for entry in summary["entries"] if not entry["aggregated"]]
    assert run.status == PerfRun.Status.COMPLETED and run.user_split == {"EventBrowser": 6}
    assert run.total_requests == aggregated["num_requests"] == sum(per_endpoint) > 0
    seen_by_server = served_since(logged_server, before, run.total_requests)
    assert seen_by_server == run.total_requests
    assert StatsSample.objects.filter(run=run).count() >= 3
    # Both workers appended to one request log, each line paired with the server's by its X-Perf-Request id.
    reconciled = reconcile(tmp_path / "requests.log", access_log(logged_server), timeout=30.0, summary=summary)
    assert reconciled.ok, "\n".join(reconciled.lines())
    lines = (tmp_path / "requests.log").read_text().splitlines()
    assert len({line.split("\t")[0].split("-")[0] for line in lines}) == 2  # ids from two processes


def children_of(pid: int) -> set[int]:
    """The workers ``pid`` forked: its children that run its own command line. A child that runs another
    program (``git``, asked for the run's revision) is no worker, and comes and goes in a moment."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return set()
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and (stat.parent / "cmdline").read_bytes() == command:
                found.add(int(stat.parent.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
def test_ctrl_c_stops_both_workers_keeps_all_they_measured_and_leaves_no_process(logged_server, live_env, orm):
    label = f"processes-sigint-{uuid.uuid4().hex[:8]}"
    before = served(logged_server)
    process = start_run_perf(
        live_env, *_two_processes(logged_server, label, "--users", "4", "--spawn-rate", "20", "--duration", "2m"),
        start_new_session=True,
    )
    try:
        workers: set[int] = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            workers |= children_of(process.pid)
            run = PerfRun.objects.filter(label=label).first()
            if run and StatsSample.objects.filter(run=run, total_requests__gt=0).exists():
                break
            time.sleep(0.2)
        alive_at_interrupt = children_of(process.pid)
        os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to the whole process group
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait()

    run = PerfRun.objects.get(label=label)
    assert len(workers) == 2 and alive_at_interrupt == workers, (workers, alive_at_interrupt)
    assert process.returncode == 130, stdout[-2000:] + stderr[-2000:]  # 128 + SIGINT, as a shell reports it
    assert run.status == PerfRun.Status.ABORTED and run.stop_reason == "interrupted by SIGINT"
    assert f"Run {run.pk} aborted" in stdout
    assert run.total_requests > 0 and run.actual_duration < 30
    seen_by_server = served_since(logged_server, before, run.total_requests)
    assert seen_by_server == run.total_requests
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
