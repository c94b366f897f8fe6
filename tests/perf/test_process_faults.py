"""A ``run_perf`` process that loses its terminal, gets signals at awkward moments or meets a sick
database: the run keeps its data and its status, the user reads one clear line, and the exit code is
the one the run earned (or 128 + N when a signal stopped the load).

Each test drives ``manage.py run_perf`` as a child process against the live server, with real signals
and real pipes, and reads the stored run from the same database.
"""

import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from perf.audit import Check
from perf.models import PerfRun, StatsSample
from tests.dblock import database_held_locked
from tests.liveserver import ROOT, start_run_perf

pytestmark = pytest.mark.slow


def _label(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:8]}"


def _browse(url: str, label: str, duration: str, *extra: str) -> tuple[str, ...]:
    """A read-only load (EventBrowser): its requests never wait for the database's write lock."""
    return ("--users", "5", "--spawn-rate", "10", "--duration", duration, "--wait", "0.05,0.2",
            "--scenario", "EventBrowser", "--host", url, "--label", label, "--no-audit", *extra)


def _wait_for_requests(label: str, timeout: float = 60) -> PerfRun:
    """The stored run once it has a sample with requests in it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = PerfRun.objects.filter(label=label).first()
        if run and StatsSample.objects.filter(run=run, total_requests__gt=0).exists():
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {label} stored no sample with requests within {timeout:g} s")


def _wait_for_row(label: str, timeout: float = 60) -> PerfRun:
    """The run's ``running`` row, written before its first request."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = PerfRun.objects.filter(label=label).first()
        if run is not None:
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {label} wrote no row within {timeout:g} s")


def _finish(process: subprocess.Popen, timeout: float = 60) -> tuple[str, str]:
    try:
        return process.communicate(timeout=timeout)
    finally:
        process.kill()
        process.wait()


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_sighup_is_a_stop_like_sigterm(seeded, live_server_process, orm):
    """A closed terminal or SSH session sends SIGHUP: the run is stored aborted with its data, exit 129."""
    label = _label("hangup")
    process = start_run_perf(seeded, *_browse(live_server_process.url, label, "30s"))
    try:
        _wait_for_requests(label)
        process.send_signal(signal.SIGHUP)
    finally:
        stdout, stderr = _finish(process)

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


def _settings_module(tmp_path: Path, **names: object) -> dict[str, str]:
    """A settings module that is the repository's with some PERF_* names changed; its environment."""
    lines = ["from settings_perf import *  # noqa: F403"]
    lines += [f"{name} = {value!r}" for name, value in names.items()]
    (tmp_path / "fault_settings.py").write_text("\n".join(lines) + "\n")
    return {"PYTHONPATH": f"{tmp_path}:{ROOT}", "DJANGO_SETTINGS_MODULE": "fault_settings"}


def test_a_second_sigterm_50_ms_after_the_first_cuts_the_ending_short(seeded, live_server_process, orm, tmp_path):
    """The second signal is heard however soon it follows the first, even while the audit's query runs:
    the audit is given up, no --json is written, the run is still stored, exit 143."""
    label = _label("twice")
    target = tmp_path / "run.json"
    env = {**seeded, **_settings_module(tmp_path, PERF_AUDIT_CHECKS=[f"{__name__}.slow_audit_check"])}
    args = [arg for arg in _browse(live_server_process.url, label, "30s", "--json", str(target)) if arg != "--no-audit"]
    process = start_run_perf(env, *args)
    try:
        _wait_for_requests(label)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
    finally:
        stdout, stderr = _finish(process)

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
    label = _label("pipe")
    process = start_run_perf(seeded, *_browse(live_server_process.url, label, "4s"))
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
    label = _label("late")
    env = {**seeded, "SQLITE_BUSY_TIMEOUT": "1"}
    process = start_run_perf(env, *_browse(live_server_process.url, label, "3s", "--threshold", "rps>100000"))
    try:
        _wait_for_row(label)
        assert process.stdout is not None
        with database_held_locked(live_database_url, 8):  # from the start of the 3 s run to past its end
            for line in process.stdout:
                if line.startswith("FAIL "):  # the verdicts come after the load, before the final save
                    break
            process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()

    assert process.returncode == 3, stdout[-2000:] + stderr[-2000:]
    assert "waiting for the " in stdout, stdout + stderr
    run = PerfRun.objects.get(label=label)
    assert run.status == PerfRun.Status.COMPLETED and run.stop_reason == ""
    assert "Traceback" not in stderr

