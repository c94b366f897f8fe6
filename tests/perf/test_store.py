"""``perf.store.thread.RunStore`` against a database that someone else holds locked: sample writes never wait,
waited-for writes retry until the lock is gone, and give up with one line naming the database.

The store hands work from a gevent event loop to its thread, so the tests wait with ``gevent.sleep``:
that is when the loop runs and hears that a write has ended, as it does between ticks in a run.
"""

import os
import time
from collections.abc import Iterator

import gevent
import pytest
from django.db import connections
from django.utils import timezone

from perf.load.stats import StatsRegistry
from perf.models import PerfRun, StatsSample
from perf.store.database import describe
from perf.store.thread import RunStore, StoreError
from tests.dblock import database_held_locked

# Each test waits out a database lock held for seconds.
pytestmark = pytest.mark.slow


@pytest.fixture
def short_busy_timeout(orm, monkeypatch) -> Iterator[None]:
    """SQLite writers of this process wait 1 s for the lock (30 s in the settings), so that a try fails soon.
    (On PostgreSQL the store bounds its own lock waits: ``perf.store.thread.LOCK_TIMEOUT``.)"""
    if connections["default"].vendor == "sqlite":
        monkeypatch.setitem(connections.settings["default"].setdefault("OPTIONS", {}), "timeout", 1)
    yield


def _started_store(patience: float) -> tuple[RunStore, StatsRegistry]:
    store = RunStore(patience=patience)
    store.start(label="store-test", host="http://127.0.0.1:1/api", users=1, spawn_rate=1.0, planned_duration=5.0)
    stats = StatsRegistry(start_time=time.time())
    stats.record("GET", "/x", 12.0, 100)
    return store, stats


def test_a_progress_write_never_waits_for_a_held_lock_and_lands_after_it(
    live_database_url: str, short_busy_timeout
):
    store, stats = _started_store(patience=30)
    try:
        with database_held_locked(live_database_url, 4):
            for _ in range(3):
                stats.take_sample(users=1)
                started = time.monotonic()
                store.save_progress(stats, 5.0)
                assert time.monotonic() - started < 0.05
                gevent.sleep(0.5)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and StatsSample.objects.filter(run=store.run).count() < 3:
            stats.take_sample(users=1)
            store.save_progress(stats, 5.0)
            gevent.sleep(0.5)
        assert StatsSample.objects.filter(run=store.run).count() == len(stats.samples)
        run = PerfRun.objects.get(pk=store.run.pk)
        assert run.status == PerfRun.Status.RUNNING and run.heartbeat_at is not None
        assert run.total_requests == 1 and run.endpoints.filter(name="/x", num_requests=1).exists()
    finally:
        store.close()


def test_the_final_save_waits_out_a_short_lock(live_database_url: str, short_busy_timeout):
    store, stats = _started_store(patience=30)
    try:
        with database_held_locked(live_database_url, 3) as lock:
            stats.take_sample(users=1)
            store.finish(stats, PerfRun.Status.COMPLETED, 5.0)
            assert not lock.held  # it finished only once the lock was gone
    finally:
        store.close()
    run = PerfRun.objects.get(pk=store.run.pk)
    assert run.status == PerfRun.Status.COMPLETED and run.total_requests == 1


def test_the_final_save_gives_up_with_one_line_naming_the_database(live_database_url: str, short_busy_timeout):
    store, stats = _started_store(patience=1)
    try:
        with database_held_locked(live_database_url, 8) as lock:
            stats.take_sample(users=1)
            with pytest.raises(StoreError) as caught:
                store.finish(stats, PerfRun.Status.COMPLETED, 5.0)
            lock.release()  # it has given up: the rest of the hold would only be waited out
    finally:
        store.close()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"gave up storing the run in the {describe()} after 1 s (")
    assert PerfRun.objects.get(pk=store.run.pk).status == PerfRun.Status.RUNNING  # nothing half-written


def test_the_patience_counts_from_the_call_a_write_under_way_and_every_lock_wait_included(
    live_database_url: str, short_busy_timeout
):
    """PERF_SAVE_PATIENCE=2 gives up after 2 s, not after a progress write's lock wait plus a full try's
    (on PostgreSQL each may wait LOCK_TIMEOUT, 5 s: the final save of a run once took 10 s here)."""
    store, stats = _started_store(patience=2)
    try:
        with database_held_locked(live_database_url, 12) as lock:
            stats.take_sample(users=1)
            store.save_progress(stats, 5.0)  # under way, held by the lock
            assert not store.idle
            started = time.monotonic()
            with pytest.raises(StoreError) as caught:
                store.finish(stats, PerfRun.Status.COMPLETED, 5.0)
            waited = time.monotonic() - started
            lock.release()  # it has given up: the rest of the hold would only be waited out
    finally:
        store.close()
    assert 1.9 <= waited < 2.6, waited
    assert str(caught.value).startswith(f"gave up storing the run in the {describe()} after 2 s (")
    assert PerfRun.objects.get(pk=store.run.pk).status == PerfRun.Status.RUNNING


def test_a_stop_asked_for_in_the_database_is_heard_within_two_seconds(orm):
    store, _ = _started_store(patience=30)
    heard: list[tuple[str, float]] = []
    try:
        store.watch_stop(lambda who: heard.append((who, time.monotonic())))
        gevent.sleep(0.3)
        asked = time.monotonic()
        PerfRun.objects.filter(pk=store.run.pk).update(stop_requested_by="perf-admin@test.com",
                                                       stop_requested_at=timezone.now())
        while not heard and time.monotonic() - asked < 5:
            gevent.sleep(0.05)
    finally:
        store.close()
    assert [who for who, _ in heard] == ["perf-admin@test.com"]
    assert heard[0][1] - asked < 2.0


def test_a_worker_forked_beside_a_watching_store_never_reads_the_stop_flag_itself(orm):
    """``--processes`` forks its workers from a parent whose store already watches for Stop. A child that polled
    the flag with the inherited watcher could hear Stop before the parent, end its share, and let the run be
    stored as completed. Only the process that started watching may ask the database.

    The child records what its event loop asks of the store's thread rather than letting the thread run: in a
    process gevent has not patched (this one), a pool's thread does not survive a fork, while run_perf's does."""
    store, _ = _started_store(patience=30)
    heard: list[str] = []
    pipe_out, pipe_in = os.pipe()
    try:
        store.watch_stop(heard.append, interval=0.1)
        PerfRun.objects.filter(pk=store.run.pk).update(stop_requested_by="perf-admin@test.com",
                                                       stop_requested_at=timezone.now())
        child = gevent.fork()
        if child == 0:  # the worker: its event loop runs, as a worker's does, for ten polls
            store._control.submit = lambda *args, **kwargs: os.write(pipe_in, b"read\n") > 0
            gevent.sleep(1.0)
            os._exit(0)
        _, status = os.waitpid(child, 0)
        deadline = time.monotonic() + 5
        while not heard and time.monotonic() < deadline:
            gevent.sleep(0.05)
    finally:
        store.close()
        os.close(pipe_in)
    asked_by_the_child = os.read(pipe_out, 4096)
    os.close(pipe_out)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert asked_by_the_child == b"", "the forked worker read the stop flag itself"
    assert heard == ["perf-admin@test.com"]
