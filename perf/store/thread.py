"""Every database write of a run, done on one real OS thread, so that users never wait on a lock.

Under gevent a query blocks the whole event loop: while anyone holds SQLite's write lock (the
backend under load, a migration, a curious admin), a sample written from a tick would freeze every
simulated user and the progress line with it, inflate the latencies being measured, and, past the
busy timeout, crash the run. So a run's writes go to a one-thread pool (``gevent.threadpool``, a
real thread even when the standard library is monkey-patched), and the event loop only hands
work over:

* ``DatabaseThread.submit`` never waits: at most one write is in flight, and a write asked for
  while one is under way is simply not started (the caller's next one carries its data). A write
  that fails because the database is locked or gone is left for the next try.
* ``DatabaseThread.call`` waits cooperatively (the loop keeps serving signals and users),
  retrying a locked or lost database until ``patience`` runs out, and then raises ``StoreError``:
  one line that names the database. A connection the server ended (``pg_terminate_backend``, a
  restart) is closed and opened again on the next try, so everything the run reads or writes
  (the figures, the audit, the comparison) goes through here. ``waiting_for`` says what a call
  waits for; ``give_up`` (an impatient second Ctrl-C) ends a wait for a database that refuses (or
  that the user was told of) at once with ``StoreError``, and no later call retries; a database that
  answers still gets every call.

With ``DEBUG`` on, Django keeps every query's SQL on its connection until a request ends, and this
thread never serves a request: it forgets them after each write, or a long run's memory would grow
by the SQL of every sample it stored.

The thread holds the GIL while it runs Python (≈ 0.4 % of a run at 500 req/s: a 4 ms progress write every 2 s,
a 1 ms stop-flag read every 0.5 s), and a response that arrives meanwhile may wait up to the 5 ms switch interval
for it; that does not show in the p99: ``benchmarks/ab_tail.py`` found the slowest 1 % almost never overlapping
its work, and a shorter ``sys.setswitchinterval`` made the tail worse (docs/scaling.md, "Issue 19"). So the
interval is left alone.

``RunStore`` is that thread for the stored run of ``run_perf``; a Celery shard's heartbeat
(``perf.tasks``) uses a plain ``DatabaseThread``.
"""

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import gevent
from django.db import DEFAULT_DB_ALIAS, connections, reset_queries
from gevent.event import Event
from gevent.monkey import get_original
from gevent.threadpool import ThreadPool

from perf.conf import perf_settings
from perf.load.profile import Profile, spans_json
from perf.load.stats import StatsRegistry
from perf.models import PerfRun
from perf.store import persist
from perf.store.database import describe, first_line, is_transient

T = TypeVar("T")
RETRY_PAUSE = 0.5
# How often a running run looks for a stop requested from the admin (it must take effect within 2 s).
STOP_POLL_INTERVAL = 0.5
# On PostgreSQL: how long one write waits for a lock before it counts as a failed try.
LOCK_TIMEOUT = 5.0
# ... and the least it waits, for a try made at the very end of a call's patience.
MIN_LOCK_WAIT_MS = 100
# The store's thread is a real one: it sleeps for real, not through a (patched) gevent sleep.
_thread_sleep = get_original("time", "sleep")


class StoreError(Exception):
    """A write that could not be done within the store's patience; the message is one line."""


class DatabaseThread:
    """One real OS thread for database work, fed from the event loop without blocking it."""

    def __init__(self, patience: float | None = None) -> None:
        """``patience``: seconds a waited-for write keeps retrying (default: the PERF_SAVE_PATIENCE setting)."""
        self.patience = patience if patience is not None else perf_settings.PERF_SAVE_PATIENCE
        self.last_error = ""
        self._pool = ThreadPool(1)
        self._inflight: Any = None  # the AsyncResult of the submitted write under way
        self._bounded: tuple[object, int] | None = None  # (raw connection, its lock_timeout in ms) on PostgreSQL
        self._given_up = Event()  # set on the event loop; the thread reads is_set() between tries
        self._abandoned = False  # a call was left running on the thread (see close)
        self._waiting_since: float | None = None  # monotonic start of the call being waited for
        self._told = False  # the user was told what that call waits for (waiting_for)

    def call(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``work`` on the thread and wait for it cooperatively (the event loop goes on),
        retrying a locked or lost database until ``patience`` runs out, or ``give_up``; then StoreError."""
        return self._call(work, args, kwargs, cut=False)

    def call_unless_given_up(self, work: Callable[..., T], *args: Any) -> T:
        """``call`` for work a second signal may skip (the audit): StoreError at ``give_up`` even when the
        database answers."""
        return self._call(work, args, {}, cut=True)

    def _call(self, work: Callable[..., T], args: tuple, kwargs: dict[str, Any], cut: bool) -> T:
        # The patience counts from the call: the wait for a write under way is part of it.
        self._waiting_since = time.monotonic()
        deadline = self._waiting_since + self.patience
        self._told = False
        try:
            if self._inflight is not None:  # a progress write under way may be the one the database keeps waiting
                self._await(self._inflight, cut, deadline)
            self.last_error = ""  # what this call meets, not what an earlier write met
            # Errors come back as values: raised in the pool's thread, gevent would print them as well.
            result = self._pool.spawn(self._retrying, work, args, kwargs, deadline)
            self._await(result, cut)
            value, error = result.get()
        finally:
            self._waiting_since = None
        if error is not None:
            raise error
        return value

    def _await(self, result: Any, cut: bool, deadline: float | None = None) -> None:
        """Wait for work on the thread to end, unless ``give_up`` comes first for a call that may be given up,
        or the ``deadline`` (for a write under way, which has no patience of its own) passes."""

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        gevent.wait([result, self._given_up], count=1, timeout=left())
        if not result.ready() and self._given_up.is_set() and (cut or self.last_error or self._told):
            self._abandoned = True
            reason = f" ({self.last_error})" if self.last_error else ""
            raise StoreError(f"gave up waiting for the {describe()}{reason}")
        result.wait(timeout=left())  # a database that answers: the work goes on to its end (or the deadline)
        if not result.ready():
            self._abandoned = True
            raise StoreError(f"gave up storing the run in the {describe()} after {self.patience:g} s "
                             f"(an earlier write still waits for it)")

    def waiting_for(self) -> str:
        """One line on what a call is waiting for right now (the database and why), or "" when none is.

        It is said to the user with the promise that a second signal gives up: from then on ``give_up``
        ends this call even before the database has refused it (a lock PostgreSQL waits out for seconds).
        """
        if self._waiting_since is None:
            return ""
        self._told = True
        left = max(0.0, self.patience - (time.monotonic() - self._waiting_since))
        reason = f" ({self.last_error})" if self.last_error else ""
        return f"waiting for the {describe()}{reason}: up to {left:.0f} s more"

    def give_up(self) -> None:
        """End a wait for a database that refuses (or that the user was told of) with StoreError, now and in
        any later call (no more retries)."""
        self._given_up.set()

    def submit(self, work: Callable[..., object], *args: Any, done: Callable[[bool], None] | None = None) -> bool:
        """Start ``work`` on the thread unless a write is still under way; never waits.

        ``done(ok)`` is called on the event loop when it ends: False after a transient database
        error (remembered in ``last_error``; the caller tries again later). Returns False when
        the thread was busy and nothing was started.
        """
        if not self.idle:
            return False
        self._inflight = self._pool.spawn(self._once, work, *args)
        if done is not None:
            self._inflight.rawlink(lambda result: done(bool(result.successful() and result.value)))
        return True

    def _bound_lock_waits(self, seconds: float = LOCK_TIMEOUT) -> None:
        """PostgreSQL waits for a lock forever by default; give up after ``seconds`` (at most LOCK_TIMEOUT),
        as SQLite's busy timeout does, so that a held lock becomes a retry (and, at the very end, a clear
        error) instead of a hang. A session setting on the thread's own connection, set again only when
        the connection or the bound changes (a call near the end of its patience waits only for what is left)."""
        connection = connections[DEFAULT_DB_ALIAS]
        if connection.vendor != "postgresql":
            return
        connection.ensure_connection()
        bound = (connection.connection, max(MIN_LOCK_WAIT_MS, int(min(seconds, LOCK_TIMEOUT) * 1000)))
        if bound != self._bounded:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = %s", [f"{bound[1]}ms"])
            self._bounded = bound

    @property
    def idle(self) -> bool:
        return self._inflight is None or self._inflight.ready()

    def _settle(self) -> None:
        """Let a write under way end first, so writes land in the order they were asked for."""
        if self._inflight is not None:
            self._inflight.wait()

    def close(self) -> None:
        if not self._abandoned:  # else the thread may still be stuck in the database: leave it there
            self._settle()
            self._pool.spawn(connections.close_all).get()
        self._pool.kill()

    # --- on the thread -----------------------------------------------------------------------------------------

    def _once(self, work: Callable[..., object], *args: Any) -> bool:
        """One try; False after an error, which is remembered and left for the next try."""
        try:
            self._bound_lock_waits()
            work(*args)
        except Exception as error:  # a bug is no reason to stop the users either: it shows in last_error
            self.last_error = first_line(error) if is_transient(error) else f"{type(error).__name__}: {error}"
            connections.close_all()  # a connection that saw an error may be unusable
            return False
        finally:
            reset_queries()
        self.last_error = ""
        return True

    def _retrying(self, work: Callable[..., T], args: tuple, kwargs: dict[str, Any],
                  deadline: float) -> tuple[Any, Exception | None]:
        """(the result, None), or (None, the error to raise in the caller). At least one try, even past
        ``deadline``; no try waits for a lock beyond it."""
        self.last_error = ""
        while True:
            try:
                self._bound_lock_waits(deadline - time.monotonic())
                value = work(*args, **kwargs)
                self.last_error = ""
                return value, None
            except Exception as error:
                if not is_transient(error):
                    return None, error
                self.last_error = first_line(error)
                connections.close_all()  # a connection the server ended is opened again on the next try
                if self._given_up.is_set():
                    return None, StoreError(f"gave up waiting for the {describe()} ({self.last_error})")
                if time.monotonic() >= deadline:
                    return None, StoreError(
                        f"gave up storing the run in the {describe()} after {self.patience:g} s ({first_line(error)})")
                _thread_sleep(RETRY_PAUSE)
            finally:
                reset_queries()


class RunStore(DatabaseThread):
    """The database side of one stored run."""

    def __init__(self, patience: float | None = None) -> None:
        super().__init__(patience)
        self.run: PerfRun | None = None
        self._saved_samples = 0  # stats.samples[:this] are stored
        self._stop_requested_by = ""  # set on a thread, read on the event loop
        self._on_stop: Callable[[str], None] | None = None
        self._control: DatabaseThread | None = None
        self._watcher: gevent.Greenlet | None = None
        self._on_change: Callable[[float, float], Profile | None] | None = None
        self._change_asked: dict[str, Any] | None = None  # set on the control thread, read on the event loop
        self._change_at: Any = None  # the "at" of the change applied last
        self._updates: list[gevent.Greenlet] = []  # update_later's writes under way

    def start(self, **fields: Any) -> PerfRun:
        """The ``running`` row, before the first request: even a killed run leaves a trace."""
        self.run = self.call(persist.start_run, **fields)
        return self.run

    def finish(self, stats: StatsRegistry, status: str, duration: float, **extra: Any) -> PerfRun:
        """The final figures (and every sample not stored yet), in one transaction."""
        assert self.run is not None, "start() first"
        gevent.joinall(self._updates, timeout=self.patience)  # an older live update never lands after this
        self.run = self.call(persist.finish_run, self.run, stats, status, duration, **extra)
        self._saved_samples = len(stats.samples)
        return self.run

    def update(self, **fields: Any) -> None:
        """Set more fields on the stored run (the audit, once it has run)."""
        assert self.run is not None, "start() first"
        pk = self.run.pk
        self.call(lambda: PerfRun.objects.filter(pk=pk).update(**fields))
        for key, value in fields.items():
            setattr(self.run, key, value)

    def save_progress(self, stats: StatsRegistry, elapsed: float) -> None:
        """Hand the figures so far (the endpoint table, failures, totals, new samples) to the thread,
        unless a write is still under way; never waits.

        The thread gets a snapshot taken here on the event loop, where the figures change. Samples
        not stored yet stay in ``stats.samples`` (kept for the run anyway: that list is the bounded
        queue) and go with the next write; a failed write is tried again the same way.
        """
        if self.run is None or not self.idle:
            return
        snapshot = StatsRegistry(start_time=stats.start_time)
        snapshot.merge(stats)
        snapshot.samples = stats.samples[self._saved_samples:]
        upto = self._saved_samples + len(snapshot.samples)
        run = self.run

        def stored(ok: bool) -> None:
            if ok:
                self._saved_samples = max(self._saved_samples, upto)

        self.submit(persist.save_progress, run, snapshot, elapsed, done=stored)

    def watch_stop(self, on_stop: Callable[[str], None], interval: float = STOP_POLL_INTERVAL,
                   on_change: Callable[[float, float], Profile | None] | None = None) -> None:
        """Call ``on_stop(who)`` on the event loop once someone asks for a stop from the admin, and
        ``on_change(target, at)`` for each change of target asked for from the live page.

        A cheap read every ``interval``, on a second thread of its own so that a progress write held
        up by a lock never delays a stop (or a change). The profile ``on_change`` returns is stored with
        the run at once, so the live page's stage, target and Stages show the change.
        """
        assert self.run is not None, "start() first"
        self._on_stop = on_stop
        self._on_change = on_change
        self._control = DatabaseThread(patience=self.patience)

        control, run = self._control, self.run

        def read() -> None:
            who, change = persist.control_requests(run)
            self._note_stop(who)
            if on_change is not None:
                self._change_asked = change

        def heard() -> None:
            self._heard_stop()
            self._heard_change()

        owner = os.getpid()

        def poll() -> None:
            while not self._stop_requested_by:
                gevent.sleep(interval)
                if os.getpid() != owner:
                    # A worker forked by --processes inherits this greenlet. Were it to read the stop flag itself,
                    # the workers could end before the parent heard it, and the run be stored as completed.
                    return
                control.submit(read, done=lambda ok: heard())

        self._watcher = gevent.spawn(poll)

    def _heard_change(self) -> None:
        """A change of target not applied yet: apply it (the latest asked wins) and store the new layout."""
        asked = self._change_asked
        if not asked or self._on_change is None or self._stop_requested_by or asked.get("at") == self._change_at:
            return
        self._change_at = asked.get("at")
        profile = self._on_change(float(asked["target"]), float(asked["at"]))
        if profile is not None and self.run is not None:
            layout = dict(self.run.profile or {"kind": profile.kind, "source": "live", "text": "", "shape": None,
                                               "params": {}})
            layout["spans"] = spans_json(profile.spans())
            self.update_later(profile=layout)

    def update_later(self, **fields: Any) -> None:
        """``update`` from a greenlet of its own, so the event loop never waits: what the live page shows as it
        changes (a new profile layout, a capacity search's steps). The run goes on if the database refuses; the
        final save still has everything."""
        self._updates = [greenlet for greenlet in self._updates if not greenlet.dead]
        self._updates.append(gevent.spawn(self._update_quietly, fields))

    def _update_quietly(self, fields: dict[str, Any]) -> None:
        try:
            self.update(**fields)
        except StoreError as error:
            self.last_error = str(error)

    def _note_stop(self, who: str) -> None:
        if who:
            self._stop_requested_by = who

    def _heard_stop(self) -> None:
        if self._stop_requested_by and self._on_stop is not None:
            on_stop, self._on_stop = self._on_stop, None
            on_stop(self._stop_requested_by)

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.kill()
        if self._control is not None:
            self._control.close()
        super().close()

