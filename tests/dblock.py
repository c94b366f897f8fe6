"""Someone else holding the database's write lock, for tests of what a locked database does to a run."""

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator

import psycopg

from tests.liveserver import is_postgres


@contextlib.contextmanager
def database_held_locked(database_url: str, seconds: float) -> Iterator[threading.Thread]:
    """Someone else holds the write lock of the run's tables for ``seconds``, in a thread.

    SQLite: ``BEGIN IMMEDIATE`` on the file (readers go on, as WAL allows; every writer waits).
    PostgreSQL: a lock on the samples table that blocks writes and lets reads through.
    """
    ready = threading.Event()

    def hold() -> None:
        if is_postgres(database_url):
            with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1)) as conn:
                conn.execute("LOCK TABLE perf_statssample IN SHARE ROW EXCLUSIVE MODE")
                ready.set()
                time.sleep(seconds)
                conn.rollback()
        else:
            conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
            try:
                conn.execute("BEGIN IMMEDIATE")
                ready.set()
                time.sleep(seconds)
                conn.execute("ROLLBACK")
            finally:
                conn.close()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert ready.wait(timeout=30), "could not take the database lock"
    yield holder
    holder.join(timeout=seconds + 30)
