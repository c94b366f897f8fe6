"""``run_perf --distributed celery`` end to end: a real Redis, real Celery workers, a real server and database.

Each test starts two workers (``celery -A perf.celery worker -P gevent -c 1``, as on two machines) on a
queue of its own in Redis database 9, so parallel test runs sharing the Redis never take each other's
shards; with one slot each and a prefetch of one, each worker takes one of the two shards.
"""

import json
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from celery import Celery

from perf.analysis.reconcile import reconcile
from perf.load.stats import StatsRegistry
from perf.models import PerfRun, ShardReport, StatsSample
from scripts.stack_services import die_with_parent
from tests.factories import unique
from tests.liveserver import ROOT, LiveServer, free_port, manage

REDIS_DB = 9
# Every test here starts Celery workers and real load.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def broker_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's Redis on 127.0.0.1:6379; else one started from Debian's redis-server; else skip."""
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2).ping()
        yield f"redis://127.0.0.1:6379/{REDIS_DB}"
        return
    except redis.RedisError:
        pass
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no Redis answers on 127.0.0.1:6379 and redis-server is not installed (apt-get install "
                    "redis-server)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly",
                               "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              preexec_fn=die_with_parent)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.skip(f"redis-server did not start on 127.0.0.1:{port}")
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/{REDIS_DB}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def seeded(live_env: dict[str, str], live_server_process) -> dict[str, str]:
    manage("bootstrap_perf_tests", env=live_env)
    return live_env


@pytest.fixture(scope="module")
def celery_env(seeded: dict[str, str], broker_url: str) -> Iterator[dict[str, str]]:
    """The live environment plus the broker and a queue of this module's own (removed afterwards)."""
    queue = f"perf-test-{uuid.uuid4().hex[:10]}"
    yield {**seeded, "CELERY_BROKER_URL": broker_url, "CELERY_TASK_DEFAULT_QUEUE": queue}
    client = redis.Redis.from_url(broker_url)
    for key in list(client.scan_iter(match=f"*{queue}*")):
        client.delete(key)
    # A killed worker's unacknowledged shard would come back to this queue in an hour: drop it now.
    for tag, raw in client.hscan_iter("unacked"):
        if queue.encode() in raw:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


@dataclass
class Worker:
    name: str
    log: Path
    process: subprocess.Popen = field(repr=False)


class WorkerPool:
    """Celery workers with one slot each, as on separate machines; a test may kill one, and the
    next test gets a fresh one in its place (starting a worker takes ~3 s, stopping one ~4 s)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.workers: list[Worker] = []
        self.probe = Celery("probe", broker=env["CELERY_BROKER_URL"])

    def ensure(self, count: int) -> list[Worker]:
        self.workers = [worker for worker in self.workers if worker.process.poll() is None]
        fresh = [self._start() for _ in range(count - len(self.workers))]
        self.workers += fresh
        waiting = {worker.name for worker in fresh}
        deadline = time.monotonic() + 30
        while waiting:
            for worker in fresh:
                assert worker.process.poll() is None, f"worker exited:\n{worker.log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"workers {sorted(waiting)} did not answer a ping within 30 s"
            for reply in self.probe.control.ping(destination=sorted(waiting), timeout=0.5):
                waiting -= set(reply)
        return list(self.workers)

    def _start(self) -> Worker:
        name = f"perftest-{uuid.uuid4().hex[:8]}@localhost"
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "perf.celery", "worker", "-P", "gevent", "-c", "1", "-n",
                 name, "--loglevel=warning", "--without-mingle", "--without-gossip"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
            )
        return Worker(name, log, process)

    def stop(self) -> None:
        """SIGTERM all at once (each takes seconds to shut down, even idle), then kill what remains."""
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        self.probe.close()


@pytest.fixture(scope="module")
def worker_pool(celery_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerPool]:
    pool = WorkerPool(celery_env, tmp_path_factory.mktemp("celery"))
    try:
        yield pool
    finally:
        pool.stop()


@pytest.fixture
def workers(worker_pool: WorkerPool) -> list[Worker]:
    """Two live workers, ready (they answered a ping) before the test starts."""
    return worker_pool.ensure(2)


def run_perf_args(env: dict[str, str], url: str, label: str, duration: str) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), "run_perf", "--distributed", "celery", "--shards", "2",
            "--users", "4", "--spawn-rate", "4", "--duration", duration, "--wait", "0.05,0.1",
            "--scenario", "EventBrowser", "--no-audit", "--host", url, "--label", label]


def worker_logs(workers: list[Worker]) -> str:
    return "\n".join(f"--- {w.name}\n{w.log.read_text()[-2000:]}" for w in workers)


def test_two_shards_on_two_workers_merge_into_one_completed_run(celery_env, workers, live_server_process, orm):
    label = unique("celery")
    result = subprocess.run(run_perf_args(celery_env, live_server_process.url, label, "6s"), cwd=ROOT,
                            env=celery_env, capture_output=True, text=True, timeout=90)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:] + worker_logs(workers)
    run = PerfRun.objects.get(label=label)
    assert run.status == PerfRun.Status.COMPLETED and run.stop_reason == ""
    shards = list(ShardReport.objects.filter(run=run).order_by("index"))
    assert [(s.index, s.status, s.users) for s in shards] == [(0, "done", 2), (1, "done", 2)]
    assert {s.hostname for s in shards} == {w.name for w in workers}
    totals = [StatsRegistry.from_json(s.stats).total.num_requests for s in shards]
    assert all(total > 0 for total in totals) and totals == [s.requests for s in shards]
    assert run.total_requests == sum(totals)
    assert StatsSample.objects.filter(run=run).count() >= 2
    assert "users    4" in result.stdout and f"Run {run.pk} completed" in result.stdout


@pytest.fixture(scope="module")
def logged_server(seeded: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A gunicorn on the live database that writes an access log, for the reconciliation."""
    folder = tmp_path_factory.mktemp("logged")
    env = {**seeded, "GUNICORN_CMD_ARGS": f"--access-logfile {folder / 'access.log'}"}
    server = LiveServer(env=env, port=free_port(), log_path=folder / "gunicorn.log")
    server.start(workers=2, threads=2)
    yield server
    server.stop()


def test_the_shards_requests_reconcile_with_the_servers_access_log(celery_env, workers, logged_server, orm,
                                                                    tmp_path: Path):
    """Both shards append to the run's request log (on one machine here); every line pairs with the server's."""
    label = unique("celery-reconcile")
    requests_log, summary = tmp_path / "requests.log", tmp_path / "run.json"
    result = subprocess.run([*run_perf_args(celery_env, logged_server.url, label, "5s"), "--request-log",
                             str(requests_log), "--json", str(summary)],
                            cwd=ROOT, env=celery_env, capture_output=True, text=True, timeout=90)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:] + worker_logs(workers)
    access_log = logged_server.log_path.parent / "access.log"
    data = json.loads(summary.read_text())
    deadline = time.monotonic() + 5  # gunicorn logs just after it answers
    while True:
        reconciled = reconcile(requests_log, access_log, timeout=30.0, summary=data)
        if reconciled.ok or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert reconciled.ok, "\n".join(reconciled.lines())
    assert data["entries"][-1]["num_requests"] > 0
    assert len({line.split("\t")[0].split("-")[0] for line in requests_log.read_text().splitlines()}) == 2


def wait_for_shards(label: str, process: subprocess.Popen, workers: list[Worker]) -> list[ShardReport]:
    """Both shards of the run, once each is running and has reported requests."""
    deadline = time.monotonic() + 30
    while True:
        shards = list(ShardReport.objects.filter(run__label=label).order_by("index"))
        if len(shards) == 2 and all(s.status == "running" and s.requests > 0 for s in shards):
            return shards
        assert time.monotonic() < deadline and process.poll() is None, worker_logs(workers)
        time.sleep(0.2)


def wait_until_shards_end(label: str, workers: list[Worker], timeout: float) -> list[ShardReport]:
    deadline = time.monotonic() + timeout
    while True:
        shards = list(ShardReport.objects.filter(run__label=label).order_by("index"))
        if all(s.status not in ("pending", "running") for s in shards):
            return shards
        assert time.monotonic() < deadline, f"shards still running after {timeout:g} s\n" + worker_logs(workers)
        time.sleep(0.2)


def test_a_worker_killed_mid_run_is_reported_and_its_last_report_kept(celery_env, workers, live_server_process,
                                                                      orm):
    label = unique("celery-kill")
    env = {**celery_env, "PERF_SHARD_TIMEOUT": "4"}  # the setting a user would shorten, to keep the test short
    process = subprocess.Popen(run_perf_args(env, live_server_process.url, label, "8s"), cwd=ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            shards = list(ShardReport.objects.filter(run__label=label).order_by("index"))
            if len(shards) == 2 and all(s.status == "running" and s.requests > 0 for s in shards):
                break
            assert time.monotonic() < deadline and process.poll() is None, worker_logs(workers)
            time.sleep(0.2)
        victim = next(w for w in workers if w.name == shards[0].hostname)
        victim.process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        stdout, stderr = process.communicate(timeout=60)
        ended_after = time.monotonic() - killed_at
    finally:
        process.kill()

    run = PerfRun.objects.get(label=label)
    dead, alive = ShardReport.objects.filter(run=run).order_by("index")
    assert run.status == PerfRun.Status.FAILED, stdout[-3000:] + stderr[-3000:]
    assert process.returncode == 1
    assert run.stop_reason.startswith("shard 0 of 2 died (no heartbeat for 4 s)"), run.stop_reason
    # The other shard ran to its end: nothing stopped early, a shard failed.
    assert f"A shard failed: {run.stop_reason}" in stdout and "Stopped early" not in stdout
    assert dead.status == "failed" and "no heartbeat" in dead.error and alive.status == "done"
    assert dead.requests > 0 and alive.requests > 0
    assert run.total_requests == dead.requests + alive.requests
    assert ended_after < 14


def test_stop_pressed_after_the_coordinator_is_killed_reaches_the_shards(celery_env, workers, live_server_process,
                                                                      orm):
    """The coordinator relays nothing once dead: the shards read the run's stop request themselves."""
    from tests.adminclient import AdminClient
    from tests.perf.builders import superuser, wait_until_running

    admin = AdminClient(live_server_process.root).login(*superuser())
    label = unique("celery-orphan-stop")
    process = subprocess.Popen(run_perf_args(celery_env, live_server_process.url, label, "60s"), cwd=ROOT,
                               env=celery_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_shards(label, process, workers)
        wait_until_running(label)  # the coordinator has stored merged figures: the lost run keeps them
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        run = PerfRun.objects.get(label=label)
        stopped = admin.post(f"/admin/perf/perfrun/{run.pk}/stop/")
        assert f"Stopping run {run.pk}" in stopped.text
        pressed = time.monotonic()
        shards = wait_until_shards_end(label, workers, timeout=15)
        ended_after = time.monotonic() - pressed
    finally:
        if process.poll() is None:
            process.kill()
    run.refresh_from_db()
    assert ended_after < 5, ended_after  # not the planned end, a minute after the start
    assert [s.status for s in shards] == ["done", "done"] and all(s.requests > 0 for s in shards)
    assert all((s.finished_at - run.stop_requested_at).total_seconds() < 5 for s in shards)
    # Nobody stores the run's end: it is marked lost, with the coordinator's last figures.
    kept = run.total_requests
    time.sleep(1.2)
    marked = manage("perf_mark_lost", "--after", "1", env=celery_env)
    run.refresh_from_db()
    assert f"Run {run.pk} lost: its process stopped answering at" in marked.stdout
    assert run.status == PerfRun.Status.LOST and run.total_requests == kept > 0


def test_shards_stop_by_themselves_when_their_coordinator_is_gone(celery_env, workers, live_server_process, orm):
    label = unique("celery-orphan")
    env = {**celery_env, "PERF_LOST_AFTER": "3"}  # the coordinator's setting, sent to its shards; compressed here
    process = subprocess.Popen(run_perf_args(env, live_server_process.url, label, "60s"), cwd=ROOT,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_shards(label, process, workers)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        killed_at = time.monotonic()
        shards = wait_until_shards_end(label, workers, timeout=20)
        ended_after = time.monotonic() - killed_at
    finally:
        if process.poll() is None:
            process.kill()
    # Silence counted from the last heartbeat the shard saw (one every 2 s, so up to 2 s before the kill) for 3 s:
    # the shards end about 1 to 5 s after the kill, never at once and never at the planned end (60 s).
    assert 0.5 < ended_after < 10, ended_after
    assert [s.status for s in shards] == ["done", "done"] and all(s.requests > 0 for s in shards)
    for shard in shards:
        assert "a shard stopped early by itself: its coordinator is gone (no heartbeat for 3 s)" in shard.notes
        assert StatsRegistry.from_json(shard.stats).total.num_requests == shard.requests


def test_an_unreachable_broker_is_a_usage_error_before_any_run_is_stored(seeded, live_server_process, orm):
    label = unique("celery-nobroker")
    env = {**seeded, "CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}
    result = subprocess.run(run_perf_args(env, live_server_process.url, label, "6s"), cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)

    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
    assert "cannot reach the Celery broker at redis://" in result.stderr and "CELERY_BROKER_URL" in result.stderr
    assert not PerfRun.objects.filter(label=label).exists()


def test_stop_from_the_admin_stops_every_shard_within_two_seconds(celery_env, workers, live_server_process, orm):
    from tests.adminclient import AdminClient
    from tests.perf.builders import stop_and_check, superuser

    label = unique("celery-stop")
    process = subprocess.Popen(run_perf_args(celery_env, live_server_process.url, label, "3m"), cwd=ROOT,
                               env=celery_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run = stop_and_check(AdminClient(live_server_process.root).login(*superuser()), process, label)
    finally:
        process.kill()
        process.wait()
    shards = list(ShardReport.objects.filter(run=run))
    assert len(shards) == 2 and all(shard.requests > 0 for shard in shards), worker_logs(workers)


def test_the_new_run_page_can_start_the_run_through_a_celery_worker(celery_env, workers, live_server_process, quiet,
                                                                    tmp_path: Path):
    """With PERF_LAUNCH_VIA=celery the page sends perf.tasks.launch_run; a worker starts run_perf (its child
    process), and a command that fails at once comes back to the page as its own one line."""
    from tests.adminclient import AdminClient
    from tests.liveserver import LiveServer
    from tests.perf.builders import stop_from_admin, superuser

    server = LiveServer(env={**celery_env, "PERF_LAUNCH_VIA": "celery"}, port=free_port(),
                        log_path=tmp_path / "server.log")
    server.start(workers=1, threads=4)
    try:
        admin = AdminClient(server.root).login(*superuser())
        form = {"users": "2", "spawn_rate": "10", "duration": "3m", "host": live_server_process.url,
                "wait": "0.05,0.2", "scenarios": "EventBrowser", "run_anyway": "on"}
        dead_host = f"http://127.0.0.1:{free_port()}/api"
        refused = admin.post("/admin/perf/perfrun/add/", {**form, "label": "never", "host": dead_host})
        assert f"cannot reach {dead_host}/healthcheck" in refused.text, refused.text[-3000:] + worker_logs(workers)

        label = unique("celery-launch")
        started = admin.post("/admin/perf/perfrun/add/", {**form, "label": label})
        run = PerfRun.objects.get(label=label)
        assert started.url.endswith(f"/admin/perf/perfrun/{run.pk}/change/")
        worker_pids = {worker.process.pid for worker in workers}
        launched = [pid for pid in _pids_with(run.launch_id)]
        assert launched and all(_parent_of(pid) in worker_pids for pid in launched), (launched, worker_pids)
        stop_from_admin(admin, run)
        assert PerfRun.objects.get(pk=run.pk).status == PerfRun.Status.ABORTED
    finally:
        server.stop()


def _pids_with(text: str) -> list[int]:
    """Processes whose command line holds ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
