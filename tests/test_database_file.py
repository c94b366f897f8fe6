"""The SQLite database holds password hashes and live admin sessions: a new one is its owner's alone.

Issue 18: SQLite made ``perf.sqlite3`` world-readable (0644). ``settings_perf`` now creates a new file
0600 before Django opens it, as ``.secret_key`` is; SQLite gives its -wal and -shm files the same mode.
"""

import stat
from pathlib import Path

from tests.liveserver import manage, server_env


def test_a_new_sqlite_database_and_its_journal_are_readable_by_their_owner_only(tmp_path: Path):
    database = tmp_path / "fresh.sqlite3"

    manage("migrate", "--no-input", "-v0", env=server_env(f"sqlite:///{database}", tmp_path))

    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in tmp_path.glob("fresh.sqlite3*")}
    assert modes["fresh.sqlite3"] == 0o600
    assert all(mode == 0o600 for mode in modes.values()), modes
    assert database.stat().st_size > 0  # a real, migrated database


def test_an_existing_database_keeps_its_mode(tmp_path: Path):
    database = tmp_path / "shared.sqlite3"
    database.touch(mode=0o640)
    database.chmod(0o640)

    manage("migrate", "--no-input", "-v0", env=server_env(f"sqlite:///{database}", tmp_path))

    assert stat.S_IMODE(database.stat().st_mode) == 0o640
