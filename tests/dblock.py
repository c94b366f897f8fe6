"""Someone else holding the database's write lock, for tests of what a locked database does to a run."""

import contextlib
import sqlite3
import threading
from collections.abc import Iterator

import psycopg

from tests.liveserver import is_postgres


class HeldLock:
    """Someone else's hold on the lock, in a thread: ``release()`` ends it before its time, for a test whose
    command has already met the lock and ended (the suite need not wait out the rest of a generous hold)."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.released = threading.Event()
        self.thread: threading.Thread | None = None

    def release(self) -> None:
        self.released.set()

    @property
    def held(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


@contextlib.contextmanager
def database_held_locked(database_url: str, seconds: float) -> Iterator[HeldLock]:
    """Someone else holds the write lock of the run's tables for ``seconds`` (or until released), in a thread.

    SQLite: ``BEGIN IMMEDIATE`` on the file (readers go on, as WAL allows; every writer waits).
    PostgreSQL: a lock on the samples table that blocks writes and lets reads through.
    """
    lock = HeldLock()

    def hold() -> None:
        if is_postgres(database_url):
            with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1)) as conn:
                conn.execute("LOCK TABLE perf_statssample IN SHARE ROW EXCLUSIVE MODE")
                lock.ready.set()
                lock.released.wait(seconds)
                conn.rollback()
        else:
            conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
            try:
                conn.execute("BEGIN IMMEDIATE")
                lock.ready.set()
                lock.released.wait(seconds)
                conn.execute("ROLLBACK")
            finally:
                conn.close()

    lock.thread = threading.Thread(target=hold, daemon=True)
    lock.thread.start()
    assert lock.ready.wait(timeout=30), "could not take the database lock"
    yield lock
    lock.thread.join(timeout=seconds + 30)
