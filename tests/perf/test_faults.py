"""Faults a user can cause during a run, each ending with the run kept and one clear line.

Every test drives ``manage.py run_perf`` as a child process against the live server and reads the
stored run from the same database: repeated stop signals, output paths that cannot be written, and
a database held locked by someone else while the users run.
"""

import contextlib
import json
import re
import signal
import sqlite3
import time
from pathlib import Path

import psycopg
import pytest

from perf.models import EndpointStats, PerfRun, StatsSample
from platform_pack.clients import api as names
from tests.dblock import database_held_locked
from tests.factories import unique
from tests.liveserver import is_postgres, run_perf, start_run_perf
from tests.perf.builders import browse_args, wait_for_requests

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signals_while_stopping_never_lose_the_run(seeded, live_server_process, orm, sig):
    """A signal, then more of them every 20 ms until the process exits (``timeout`` signals the whole
    process group; an impatient Ctrl-C): what was measured is stored as aborted, exit 128 + N."""
    label = unique("signals")
    process = start_run_perf(seeded, *browse_args(live_server_process.url, label, "30s"))
    try:
        wait_for_requests(label)
        process.send_signal(sig)
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait()

    assert process.returncode == 128 + sig, stdout[-2000:] + stderr[-2000:]
    run = PerfRun.objects.get(label=label)
    assert run.status == PerfRun.Status.ABORTED
    assert run.stop_reason == f"interrupted by {sig.name}"
    assert run.total_requests > 0 and run.actual_duration < 30
    assert EndpointStats.objects.filter(run=run, name=names.EVENT_LIST, num_requests__gt=0).exists()
    assert f"Run {run.pk} aborted" in stdout
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("option", "path", "message"),
    [
        ("--json", "{tmp}", "is a folder"),
        ("--html", "{tmp}/a-file/report.html", "is a file, so the folder"),
        ("--csv", "{tmp}/a-file/deeper/run", "is a file, so the folder"),
        ("--csv", "{tmp}/results/run", "run_stats_history.csv is a folder"),
        ("--json", "/proc/perfkit-no-such-folder/run.json", "cannot write in /proc"),
    ],
)
def test_an_output_path_that_cannot_be_written_is_refused_before_any_load(
    seeded, live_server_process, orm, tmp_path: Path, option, path, message
):
    (tmp_path / "a-file").write_text("in the way")
    (tmp_path / "results" / "run_stats_history.csv").mkdir(parents=True)
    label = unique("badpath")
    started = time.monotonic()
    result = run_perf(seeded, *browse_args(live_server_process.url, label, "30s", option, path.format(tmp=tmp_path)))

    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and option in lines[0], result.stderr
    assert time.monotonic() - started < 20  # refused at once, not after the 30 s run
    assert not PerfRun.objects.filter(label=label).exists()
    assert result.stdout == ""


def test_an_output_file_that_fails_at_the_end_is_one_line_and_the_run_is_stored(
    seeded, live_server_process, orm, tmp_path: Path
):
    """The folder could be made at the start; by the end a file stands in its way."""
    label = unique("lostpath")
    process = start_run_perf(seeded, *browse_args(
        live_server_process.url, label, "4s", "--json", str(tmp_path / "out" / "run.json"),
        "--csv", str(tmp_path / "csv" / "run")))
    try:
        wait_for_requests(label)
        (tmp_path / "out").write_text("a file where the folder should be")
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()

    assert process.returncode == 0, stdout[-2000:] + stderr[-2000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"could not write --json {tmp_path / 'out' / 'run.json'}"), stderr
    run = PerfRun.objects.get(label=label)
    assert run.status == PerfRun.Status.COMPLETED and run.total_requests > 0
    assert (tmp_path / "csv" / "run_stats.csv").exists()  # the other files are still written


def test_a_database_locked_for_six_seconds_does_not_stall_the_users(
    seeded, live_server_process, orm, live_database_url: str
):
    """While the run's tables are locked, progress keeps ticking, reads keep being served and recorded,
    and every sample is stored in the end with no gap longer than two tick intervals. The run's
    process waits at most 2 s for SQLite's lock (the server's 30 s busy timeout stays), so a write
    that fails because the database is locked must be retried, never fatal."""
    label = unique("locked")
    env = {**seeded, "SQLITE_BUSY_TIMEOUT": "2"}
    process = start_run_perf(env, *browse_args(live_server_process.url, label, "14s"))
    try:
        wait_for_requests(label)
        lock_from = time.time()
        # Three times the run's own wait for the lock: a stalled event loop would leave a 6 s gap.
        with database_held_locked(live_database_url, 6):
            pass
        lock_until = time.time()
        stdout, stderr = process.communicate(timeout=90)
    finally:
        process.kill()
        process.wait()

    assert process.returncode == 0, stdout[-3000:] + stderr[-3000:]
    run = PerfRun.objects.get(label=label)
    assert run.status == PerfRun.Status.COMPLETED
    samples = list(StatsSample.objects.filter(run=run).order_by("timestamp"))
    stamps = [sample.timestamp.timestamp() for sample in samples]
    gaps = [later - earlier for earlier, later in zip(stamps, stamps[1:], strict=False)]
    assert len(samples) >= 6 and max(gaps) <= 4.0, gaps
    during = [s for s in samples if lock_from + 2 <= s.timestamp.timestamp() <= lock_until]
    assert len(during) >= 2 and all(s.requests_per_second > 0 for s in during), [
        (s.elapsed, s.requests_per_second) for s in during]
    progress = [line for line in stdout.splitlines() if line.startswith("[") and "req/s" in line]
    assert len(progress) >= 6, stdout[-3000:]
    assert "Traceback" not in stderr


def test_the_locked_database_test_holds_a_real_lock(live_database_url: str, orm):
    """The lock above is real: a write from another connection waits for it (else that test proves nothing)."""
    with database_held_locked(live_database_url, 3) as lock:
        started = time.monotonic()
        if is_postgres(live_database_url):
            with psycopg.connect(live_database_url.replace("postgres://", "postgresql://", 1)) as conn:
                conn.execute("SET lock_timeout = '1s'")
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    conn.execute("LOCK TABLE perf_statssample IN ROW EXCLUSIVE MODE")
        else:
            conn = sqlite3.connect(live_database_url.removeprefix("sqlite:///"), isolation_level=None, timeout=1)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                conn.execute("BEGIN IMMEDIATE")
            conn.close()
        assert time.monotonic() - started >= 0.9
        lock.release()



def test_a_final_save_the_database_refuses_for_good_keeps_the_summary_in_a_file(
    seeded, live_server_process, orm, live_database_url: str
):
    """Locked past the end of the run and past PERF_SAVE_PATIENCE: one line naming the database and
    the file that holds the run's summary instead, exit 6, never a traceback."""
    label = unique("unsaved")
    env = {**seeded, "SQLITE_BUSY_TIMEOUT": "1", "PERF_SAVE_PATIENCE": "2"}
    process = start_run_perf(env, *browse_args(live_server_process.url, label, "5s"))
    try:
        wait_for_requests(label)
        # Past the run's end (5 s) and its 2 s of patience, with room for a slow start.
        with database_held_locked(live_database_url, 12) as lock:
            stdout, stderr = process.communicate(timeout=60)
            lock.release()  # it has given up: the rest of the hold would only be waited out
    finally:
        process.kill()
        process.wait()

    assert process.returncode == 6, stdout[-2000:] + stderr[-2000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gave up storing the run in the "), stderr
    assert "database" in lines[0] and "after 2 s" in lines[0]
    saved = Path(re.search(r"the run's summary is in (\S+) \(store it later: manage.py perf_import \1\)$",
                           lines[0]).group(1))
    try:
        summary = json.loads(saved.read_text())
        total = next(entry for entry in summary["entries"] if entry["aggregated"])
        assert total["num_requests"] > 0 and summary["meta"]["label"] == label
    finally:
        saved.unlink(missing_ok=True)
