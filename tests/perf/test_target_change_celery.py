"""A change of target from the live page reaches Celery shards: each reads it from the run's row with its
heartbeat and follows its part, so the shards' users add up to the new target (the broker and workers of
tests/perf/celery_workers.py)."""

import subprocess

import pytest

from perf.models import PerfRun, ShardReport
from tests.adminclient import AdminClient
from tests.factories import unique
from tests.liveserver import ROOT
from tests.perf import celery_workers
from tests.perf.builders import poll, superuser, wait_until_running
from tests.perf.celery_workers import run_perf_args, wait_for_shards, worker_logs

# The broker, the workers and the seeded database, as this module's fixtures.
broker_url, celery_env, seeded = celery_workers.broker_url, celery_workers.celery_env, celery_workers.seeded
worker_pool, workers = celery_workers.worker_pool, celery_workers.workers

pytestmark = pytest.mark.slow


def shard_users(label: str) -> int:
    return sum(shard.running_users for shard in ShardReport.objects.filter(run__label=label))


def test_celery_shards_follow_a_new_target_from_the_live_page(celery_env, workers, live_server_process, orm):
    label = unique("celery-retarget")
    process = subprocess.Popen(run_perf_args(celery_env, live_server_process.url, label, "3m"), cwd=ROOT,
                               env=celery_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    admin = AdminClient(live_server_process.root).login(*superuser())
    try:
        wait_for_shards(label, process, workers)
        run = wait_until_running(label)
        poll(lambda: shard_users(label) == 4 or None, "the shards never ran their 4 users", timeout=30)
        assert admin.post(f"/admin/perf/perfrun/{run.pk}/target/", data={"target": "2"}).status_code == 200
        poll(lambda: shard_users(label) == 2 or None, "the shards never followed the new target\n"
             + worker_logs(workers), timeout=8)
        shards = ShardReport.objects.filter(run=run)
        assert sorted(shard.running_users for shard in shards) == [1, 1]  # one user each: within one of 2 / 2
        run.refresh_from_db()
        assert run.profile["spans"][-1]["target"] == 2
        admin.post(f"/admin/perf/perfrun/{run.pk}/stop/")
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    run.refresh_from_db()
    assert run.status == PerfRun.Status.ABORTED, stdout[-2000:] + stderr[-2000:]
    assert [stage["target"] for stage in run.stages] == [4, 2]
