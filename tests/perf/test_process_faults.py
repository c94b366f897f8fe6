"""A ``run_perf`` process that loses its terminal, gets signals at awkward moments or meets a sick
database: the run keeps its data and its status, the user reads one clear line, and the exit code is
the one the run earned (or 128 + N when a signal stopped the load).

Each test drives ``manage.py run_perf`` as a child process against the live server, with real signals
and real pipes, and reads the stored run from the same database.
"""

import json
import signal
import time
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from perf.analysis.audit import Check
from perf.models import PerfRun
from tests.dblock import database_held_locked
from tests.factories import unique
from tests.liveserver import is_postgres, start_run_perf
from tests.perf.builders import browse_args, finish, lines_of, settings_module, wait_for_requests, wait_for_row
from tests.slowtarget import slow_target

pytestmark = pytest.mark.slow


def test_sighup_is_a_stop_like_sigterm(seeded, live_server_process, orm):
    """A closed terminal or SSH session sends SIGHUP: the run is stored aborted with its data, exit 129."""
    label = unique("hangup")
    process = start_run_perf(seeded, *browse_args(live_server_process.url, label, "30s"))
    try:
        wait_for_requests(label)
        process.send_signal(signal.SIGHUP)
    finally:
        stdout, stderr = finish(process)

    assert process.returncode == 128 + signal.SIGHUP, stdout[-2000:] + stderr[-2000:]
    run = PerfRun.objects.get(label=label)
    assert run.status == PerfRun.Status.ABORTED and run.stop_reason == "interrupted by SIGHUP"
    assert run.total_requests > 0 and run.actual_duration < 30
    assert "Traceback" not in stderr


def slow_audit_check(facts: object) -> Check:
    """An audit check that keeps the database busy for about a second, as on a big database: a real
    query, which blocks the process's event loop wherever it runs on it."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_sleep(1)")
        else:
            cursor.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 4000000) "
                           "SELECT count(*) FROM c")
        cursor.fetchall()
    return Check("slow", True, "")


def test_a_second_sigterm_50_ms_after_the_first_cuts_the_ending_short(seeded, live_server_process, orm, tmp_path):
    """The second signal is heard however soon it follows the first, even while the audit's query runs:
    the audit is given up, no --json is written, the run is still stored, exit 143."""
    label = unique("twice")
    target = tmp_path / "run.json"
    env = {**seeded, **settings_module(tmp_path, PERF_AUDIT_CHECKS=[f"{__name__}.slow_audit_check"])}
    args = browse_args(live_server_process.url, label, "30s", "--json", str(target), audit=True)
    process = start_run_perf(env, *args)
    try:
        wait_for_requests(label)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
    finally:
        stdout, stderr = finish(process)

    assert process.returncode == 128 + signal.SIGTERM, stdout[-2000:] + stderr[-2000:]
    assert "SIGTERM again: stopping as fast as possible" in stdout
    assert "Integrity audit" not in stdout and not target.exists()
    run = PerfRun.objects.get(label=label)
    assert run.status == PerfRun.Status.ABORTED and run.total_requests > 0
    assert run.audit is None
    assert stderr == ""


def test_a_closed_stdout_drops_the_output_and_the_run_goes_on_to_its_end(seeded, live_server_process, orm):
    """``run_perf … | head -1``: the reader is gone after one line; the run still runs its 4 s, is
    stored completed with all its data, and exits 0 without a traceback."""
    label = unique("pipe")
    process = start_run_perf(seeded, *browse_args(live_server_process.url, label, "4s"))
    try:
        assert process.stdout is not None
        process.stdout.readline()
        process.stdout.close()  # the reader ends, as head -1 does: later writes meet a broken pipe
        assert process.stderr is not None
        stderr = process.stderr.read()
        process.wait(timeout=60)
    finally:
        process.kill()
        process.wait()

    assert process.returncode == 0, stderr[-3000:]
    assert stderr == ""
    run = PerfRun.objects.get(label=label)
    assert run.status == PerfRun.Status.COMPLETED, run.error
    assert run.actual_duration >= 4 and run.total_requests > 0


def test_a_signal_after_the_load_keeps_the_exit_code_the_run_earned(
    seeded, live_server_process, orm, live_database_url: str
):
    """The load ran to its end and breached a threshold (exit 3); a SIGTERM while the final save waits
    for a locked database says what it waits for, and changes neither the status nor the exit code."""
    label = unique("late")
    env = {**seeded, "SQLITE_BUSY_TIMEOUT": "1"}
    process = start_run_perf(env, *browse_args(live_server_process.url, label, "3s", "--threshold", "rps>100000"))
    try:
        wait_for_row(label)
        assert process.stdout is not None
        with database_held_locked(live_database_url, 8) as lock:  # from the start of the 3 s run to past its end
            for line in process.stdout:
                if line.startswith("FAIL "):  # the verdicts come after the load, before the final save
                    break
            process.send_signal(signal.SIGTERM)
            said = next((line for line in process.stdout if "waiting for the " in line), "")
            lock.release()  # the signal was heard while the save waited: the save may now go through
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()

    assert process.returncode == 3, stdout[-2000:] + stderr[-2000:]
    assert said.startswith("interrupted by SIGTERM; waiting for the "), said + stdout + stderr
    run = PerfRun.objects.get(label=label)
    assert run.status == PerfRun.Status.COMPLETED and run.stop_reason == ""
    assert "Traceback" not in stderr



def test_ctrl_c_while_the_database_is_locked_at_the_start_says_so_and_a_second_exits_130(
    seeded, orm, live_database_url: str
):
    """SQLite is locked before the run's row can be written: the first Ctrl-C says what the process waits
    for, the second ends it at once with one line and exit 130 (not exit 2: nothing was wrong with the
    input). The host is a stand-in that only has to answer the health check, which tells when the
    process has reached its start."""
    if is_postgres(live_database_url):
        pytest.skip("SQLite's file lock holds back the row's insert; this PostgreSQL lock holds the samples only")
    label = unique("lockedstart")
    env = {**seeded, "SQLITE_BUSY_TIMEOUT": "1"}
    with slow_target() as target, database_held_locked(live_database_url, 12) as lock:
        process = start_run_perf(env, *browse_args(f"{target.url}/api", label, "5s"))
        try:
            deadline = time.monotonic() + 60
            while not target.served:  # run_perf's one request before its start: the health check
                assert time.monotonic() < deadline and process.poll() is None, "no health check within 60 s"
                time.sleep(0.05)
            time.sleep(1)  # now waiting for the lock
            process.send_signal(signal.SIGINT)
            assert process.stdout is not None
            said = process.stdout.readline()
            process.send_signal(signal.SIGINT)
            second = time.monotonic()
            stdout, stderr = process.communicate(timeout=30)
            ended_after = time.monotonic() - second
        finally:
            process.kill()
            process.wait()
        lock.release()  # the command has ended: the rest of the hold would only be waited out

    assert said.startswith("interrupted by SIGINT; waiting for the SQLite database "), said + stdout + stderr
    assert said.rstrip().endswith("a second signal gives up")
    assert process.returncode == 130 and ended_after < 5, stdout + stderr
    database = live_database_url.removeprefix("sqlite:///")
    # the lock's error is named once a try has met it (each waits 1 s, SQLITE_BUSY_TIMEOUT)
    lines = lines_of(stderr)
    assert len(lines) == 1 and lines[0] in (
        f"interrupted by SIGINT: gave up waiting for the SQLite database {database}{reason}; nothing was run"
        for reason in ("", " (database is locked)")), stderr
    assert not PerfRun.objects.filter(label=label).exists()
    assert [path for path, _ in target.served] == ["/api/healthcheck"]  # no load was sent


def test_ctrl_c_while_the_final_save_waits_for_the_database_keeps_the_summary_and_exits_130(
    seeded, live_server_process, orm, live_database_url: str, tmp_path: Path
):
    """The load is over and the database keeps the final save waiting: the first Ctrl-C says so, the
    second gives up on the database, writes the --json the user asked for (the whole run, as the console
    printed it) and exits 130."""
    label = unique("lockedsave")
    summary = tmp_path / "run.json"
    env = {**seeded, "SQLITE_BUSY_TIMEOUT": "1"}
    process = start_run_perf(env, *browse_args(live_server_process.url, label, "3s", "--threshold", "rps>0",
                                           "--json", str(summary)))
    try:
        wait_for_row(label)
        assert process.stdout is not None
        with database_held_locked(live_database_url, 10) as lock:
            printed = []
            for line in process.stdout:
                printed.append(line)
                if line.startswith("PASS "):  # the verdicts come after the load, before the final save
                    break
            process.send_signal(signal.SIGINT)
            said = process.stdout.readline()
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=30)
            lock.release()  # it has given up: the rest of the hold would only be waited out
    finally:
        process.kill()
        process.wait()

    assert said.startswith("interrupted by SIGINT; waiting for the "), said + stdout + stderr
    assert process.returncode == 130, stdout + stderr
    lines = lines_of(stderr)
    assert len(lines) == 1 and lines[0].startswith("gave up waiting for the "), stderr
    assert lines[0].endswith(f"the run's summary is in {summary} (store it later: manage.py perf_import {summary})")
    kept = json.loads(summary.read_text())
    aggregated = next(line for line in printed if line.split()[:1] == ["Aggregated"])
    assert kept["entries"][-1]["num_requests"] == int(aggregated.split()[1]) > 0
    assert kept["meta"]["unsaved"] is True and kept["meta"]["run_id"] == PerfRun.objects.get(label=label).pk


def test_connections_the_server_ends_mid_run_are_opened_again_for_the_save_and_the_audit(
    seeded, live_server_process, orm, live_database_url: str
):
    """PostgreSQL ends every connection of the run's process (``pg_terminate_backend``, as a restart or an
    admin does): the figures are stored and the audit runs and is stored too, exit 0, nothing on stderr."""
    if not is_postgres(live_database_url):
        pytest.skip("pg_terminate_backend is PostgreSQL's")
    label = unique("terminated")
    application = f"perfkit-{label}"  # libpq names the run's connections after PGAPPNAME
    args = browse_args(live_server_process.url, label, "5s", audit=True)
    process = start_run_perf({**seeded, "PGAPPNAME": application}, *args)
    try:
        wait_for_requests(label)
        with psycopg.connect(live_database_url.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
            ended = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                 "WHERE application_name = %s", [application]).fetchone()[0]
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()

    assert ended >= 2  # the command's own connection and its store's, at least
    assert process.returncode == 0, stdout[-2000:] + stderr[-2000:]
    assert stderr == ""
    run = PerfRun.objects.get(label=label)
    assert run.status == PerfRun.Status.COMPLETED and run.total_requests > 0
    assert run.audit is not None and run.audit["ok"], run.audit
    assert "Integrity audit: PASS" in stdout
