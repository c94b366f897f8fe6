"""Every database write of a run, done on one real OS thread, so that users never wait on a lock.

Under gevent a query blocks the whole event loop: while anyone holds SQLite's write lock (the
backend under load, a migration, a curious admin), a sample written from a tick would freeze every
simulated user and the progress line with it, inflate the latencies being measured, and, past the
busy timeout, crash the run. So the run's writes go to a one-thread pool (``gevent.threadpool``,
a real thread even when the standard library is monkey-patched), and the event loop only ever
hands work over:

* ``add_samples`` never waits. At most one write is in flight; samples taken meanwhile stay in the
  registry's own list (that list is the bounded queue: one sample per tick, kept for the run anyway)
  and go with the next write. A write that fails because the database is locked or gone is simply
  tried again at the next tick.
* ``start``, ``finish`` and ``update`` wait for their write cooperatively (the loop keeps serving
  signals and users), retrying a locked or lost database until ``patience`` runs out, and then
  raise ``StoreError``: one line that names the database.
"""

import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from gevent.monkey import get_original
from gevent.threadpool import ThreadPool

from perf import persist
from perf.database import describe, first_line, is_transient
from perf.load.stats import StatsRegistry
from perf.models import PerfRun

T = TypeVar("T")
# How long a blocking write keeps retrying a locked or unreachable database before giving up.
DEFAULT_PATIENCE = 120.0
RETRY_PAUSE = 0.5
# On PostgreSQL: how long one write waits for a lock before it counts as a failed try.
LOCK_TIMEOUT = 5.0
# The store's thread is a real one: it sleeps for real, not through a (patched) gevent sleep.
_thread_sleep = get_original("time", "sleep")


class StoreError(Exception):
    """A write that could not be done within the store's patience; the message is one line."""


class RunStore:
    """The database side of one run, written from a thread of its own."""

    def __init__(self, patience: float = DEFAULT_PATIENCE) -> None:
        self.patience = patience
        self.run: PerfRun | None = None
        self.last_error = ""
        self._pool = ThreadPool(1)
        self._inflight: Any = None  # the AsyncResult of the sample write under way
        self._saved_samples = 0  # samples[:this] are stored

    # --- blocking writes (cooperatively: the event loop goes on) --------------------------------------------

    def call(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``work`` on the store's thread and wait for it, retrying transient database errors."""
        self._settle()
        return self._pool.spawn(self._retrying, work, args, kwargs).get()

    def start(self, **fields: Any) -> PerfRun:
        """The ``running`` row, before the first request: even a killed run leaves a trace."""
        self.run = self.call(persist.start_run, **fields)
        return self.run

    def finish(self, stats: StatsRegistry, status: str, duration: float, **extra: Any) -> PerfRun:
        """The final figures (and every sample not stored yet), in one transaction."""
        assert self.run is not None, "start() first"
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

    # --- the write that never waits ----------------------------------------------------------------------------

    def add_samples(self, stats: StatsRegistry) -> None:
        """Hand the samples not stored yet to the thread, unless a write is still under way."""
        if self.run is None or not self._idle():
            return
        samples = stats.samples[self._saved_samples:]
        if not samples:
            return
        run, upto = self.run, self._saved_samples + len(samples)
        self._inflight = self._pool.spawn(self._once, persist.add_samples, run, samples)
        self._inflight.rawlink(lambda result: self._sample_write_done(result, upto))

    def _sample_write_done(self, result: Any, upto: int) -> None:
        if result.successful() and result.value:
            self._saved_samples = max(self._saved_samples, upto)
            self.last_error = ""

    def _idle(self) -> bool:
        return self._inflight is None or self._inflight.ready()

    def _settle(self) -> None:
        """Let a sample write under way end first, so writes land in the order they were asked for."""
        if self._inflight is not None:
            self._inflight.wait()

    def close(self) -> None:
        self._settle()
        self._pool.spawn(connections.close_all).get()
        self._pool.kill()

    # --- on the store's thread ---------------------------------------------------------------------------------

    def _once(self, work: Callable[..., object], *args: Any) -> bool:
        """One try; False after a transient error, which is remembered and left for the next tick."""
        try:
            _bound_lock_waits()
            work(*args)
        except Exception as error:
            if not is_transient(error):
                raise
            self.last_error = first_line(error)
            connections.close_all()  # a connection that saw an error may be unusable
            return False
        return True

    def _retrying(self, work: Callable[..., T], args: tuple, kwargs: dict[str, Any]) -> T:
        deadline = time.monotonic() + self.patience
        while True:
            try:
                _bound_lock_waits()
                return work(*args, **kwargs)
            except Exception as error:
                if not is_transient(error):
                    raise
                connections.close_all()
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"gave up storing the run in the {describe()} after {self.patience:g} s ({first_line(error)})"
                    ) from None
                _thread_sleep(RETRY_PAUSE)


def _bound_lock_waits() -> None:
    """PostgreSQL waits for a lock forever by default; give up after a while, as SQLite's busy timeout
    does, so that a held lock becomes a retry (and, at the very end, a clear error) instead of a hang."""
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = %s", [f"{int(LOCK_TIMEOUT * 1000)}ms"])
