"""Bad input to the three commands, before any work: one line on stderr, exit code 2, no traceback.

No live server is needed: each case fails before anything is sent.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.liveserver import ROOT, free_port, server_env

COMMANDS = [
    ("run_perf", "--duration", "2s", "--host", "http://127.0.0.1:9/api"),
    ("bootstrap_perf_tests",),
    ("perf_compare", "1", "2"),
]


def manage_py(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_an_unreachable_database_is_one_line_naming_it_without_its_password(command, tmp_path: Path):
    port = free_port()
    env = server_env(f"postgres://perf:pw-never-shown@127.0.0.1:{port}/perfkit", tmp_path)
    line = one_line(manage_py(env, *command))
    assert f"postgresql database perfkit at 127.0.0.1:{port}" in line
    assert "pw-never-shown" not in line
    assert "start it, or set DATABASE_URL" in line


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_an_unmigrated_database_is_one_line_naming_the_fix(command, tmp_path: Path):
    database = tmp_path / "empty.sqlite3"
    line = one_line(manage_py(server_env(f"sqlite:///{database}", tmp_path), *command))
    assert f"SQLite database {database} is not migrated" in line
    assert "run `python manage.py migrate`" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run_perf", "--user", "5"), "unrecognized arguments: --user 5"),
        (("bootstrap_perf_tests", "--use", "5"), "unrecognized arguments: --use 5"),
        (("bootstrap_perf_tests", "--users", "0"), "--users must be between 1 and 1,000,000, got 0"),
        (("perf_compare", "1", "2", "--fail", "5"), "unrecognized arguments: --fail 5"),
        (("perf_compare", "1", "2", "--fail-on-regression", "lots"), "bad percent 'lots'"),
    ],
)
def test_options_must_be_whole_and_valid(args, message, tmp_path: Path):
    """``--user 5`` is not silently ``--users 5``: a prefix of an option is an unknown option."""
    line = one_line(manage_py(server_env(f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path), *args))
    assert message in line
