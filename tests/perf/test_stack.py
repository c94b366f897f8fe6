"""The native production-like stack (scripts/stack_demo.py, ``make stack-demo``) brought up, loaded and
taken down for real, through the script a user runs, with fewer users and seconds.

It needs PgBouncer (Debian's pgbouncer; .ci/run installs it), a PostgreSQL server on 127.0.0.1:5432
(``STACK_POSTGRES_URL`` to point elsewhere) and Redis (the machine's, or Debian's redis-server); without
one of them the tests are skipped, naming it. The stack uses its own scratch database whatever
DATABASE_URL says, so the tests read everything they check from the script's ``--report``, gathered
while the stack was still up.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import redis

from scripts.stack_services import Missing, ScratchDatabase, find_pgbouncer
from tests.liveserver import ROOT

pytestmark = pytest.mark.slow  # the stack brings its own PostgreSQL behind PgBouncer: no pass's database
POSTGRES_URL = os.environ.get("STACK_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
SCRIPT = ROOT / "scripts" / "stack_demo.py"


@pytest.fixture(scope="module", autouse=True)
def prerequisites() -> None:
    try:
        find_pgbouncer()
        ScratchDatabase(POSTGRES_URL).check()
    except Missing as exc:
        pytest.skip(f"the stack demo needs it: {exc}")
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2).ping()
    except redis.RedisError:
        if shutil.which("redis-server") is None:
            pytest.skip("the stack demo needs Redis: none answers on 127.0.0.1:6379 and redis-server is not "
                        "installed (Debian: apt-get install redis-server)")


def stack_demo(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--postgres-url", POSTGRES_URL, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie has exited; only its parent (ended too) had to reap it.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")
    except FileNotFoundError:
        return True


def database_exists(name: str) -> bool:
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def test_ten_users_through_pgbouncer_celery_and_the_mail_catcher_then_everything_is_down(tmp_path: Path):
    report_path = tmp_path / "report.json"

    result = stack_demo("--users", "10", "--duration", "8", "--report", str(report_path))

    output = result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 0, output
    report = json.loads(report_path.read_text())
    # The run is stored, read back through PgBouncer, and nothing failed.
    run = report["run"]
    assert run["status"] == "completed" and run["requests"] > 0 and run["failures"] == 0, output
    assert run["audit_ok"] is True
    for name in ("POST /account/register", "POST /account/verify", "POST /auth/token/pair",
                 "WAIT email_verification_wait"):
        assert report["endpoints"][name]["requests"] > 0 and report["endpoints"][name]["failures"] == 0, name
    # Registrations were verified from their emails, each sent by the Celery email worker, none by the server.
    verified = report["verified_accounts"]
    assert verified >= 1 and verified == report["endpoints"]["POST /account/verify"]["requests"]
    assert report["registration_emails"] == report["emails_received"] >= verified
    assert report["worker_emails_sent"] == report["emails_received"]
    assert report["worker_email_retries_and_failures"] == 0
    # Django talked to PgBouncer, never to PostgreSQL: every server process on the scratch database
    # belongs to one of PgBouncer's server connections, and PgBouncer carried the run's transactions.
    assert report["pgbouncer_pool_mode"] == "transaction"
    assert report["postgres_client_ports"], "no connection to the scratch database at all"
    assert set(report["postgres_client_ports"]) <= set(report["pgbouncer_server_ports"])
    assert report["pgbouncer_transactions"] >= run["requests"] // 2
    assert report["pgbouncer_port"] != report["postgres_port"]
    # Down: every service ended, the scratch database dropped, and the script said so.
    assert all(gone(pid) for pid in report["pids"].values()), report["pids"]
    assert not database_exists(report["database"])
    assert f"stack: stopped; scratch database {report['database']} dropped" in result.stdout
    for service in ("PgBouncer", "Redis", "mail catcher", "email worker", "shard worker", "gunicorn"):
        assert service in result.stdout, service


def test_ctrl_c_during_start_up_takes_down_what_was_started(tmp_path: Path):
    process = subprocess.Popen([sys.executable, str(SCRIPT), "--postgres-url", POSTGRES_URL], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if "mail catcher" in line or not line:
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    output = "".join(lines) + out

    assert process.returncode == 130, output + err
    assert "Traceback" not in err, err
    database = next(line.split("scratch database ")[1].split()[0] for line in lines if "scratch database" in line)
    assert not database_exists(database)
    assert "stack: stopped" in output


def test_a_missing_pgbouncer_is_one_line_and_exit_2():
    result = stack_demo("--pgbouncer", "/nonexistent/pgbouncer", timeout=60)

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "stack: pgbouncer is not installed at /nonexistent/pgbouncer (Debian: apt-get install pgbouncer)"]
