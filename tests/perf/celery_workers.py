"""Real Celery workers for the ``--distributed celery`` tests: the broker (the machine's Redis, else one started
from Debian's redis-server, else the test is skipped), a queue of the module's own, two workers with one slot each
(as on two machines), the ``run_perf`` command line that shards a run over them, and their logs for a failure's
message. A test module that uses them imports the fixtures it needs (pytest finds fixtures among a module's names).

Each module starts its workers (``celery -A perf.celery worker -P gevent -c 1``) on a queue of its own in Redis
database 9, so parallel test runs sharing the Redis never take each other's shards; with one slot each and a
prefetch of one, each worker takes one of the two shards.
"""

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

from perf.models import ShardReport
from scripts.stack_services import die_with_parent
from tests.liveserver import ROOT, free_port, manage

REDIS_DB = 9


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
    """The perf data seeded (not reset, unlike tests/perf/conftest.py's ``seeded``) for the shards' users; the live
    environment. A module that imports it has this one in place of conftest's."""
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
    """One Celery worker process, named as the shards' reports name their host; its output in ``log``."""

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


def wait_for_shards(label: str, process: subprocess.Popen, workers: list[Worker]) -> list[ShardReport]:
    """Both shards of the run, once each is running and has reported requests."""
    deadline = time.monotonic() + 30
    while True:
        shards = list(ShardReport.objects.filter(run__label=label).order_by("index"))
        if len(shards) == 2 and all(s.status == "running" and s.requests > 0 for s in shards):
            return shards
        assert time.monotonic() < deadline and process.poll() is None, worker_logs(workers)
        time.sleep(0.2)
