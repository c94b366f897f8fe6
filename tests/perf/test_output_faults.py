"""What ``run_perf`` writes and reads back when the world is not kind: a file system that fills up,
arguments that are not UTF-8, and the summary it leaves when the database refuses the run.

Each test runs the real command as a child process against the live server.
"""

import json
import os
import re
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from perf.models import EndpointStats, FailureStats, PerfRun, StatsSample
from perf.reports.files import write_atomic
from perf.store.liveness import lost_line
from tests.dblock import database_held_locked
from tests.liveserver import ROOT, is_postgres, manage, start_run_perf
from tests.perf.builders import browse_args, lines_of

pytestmark = pytest.mark.slow

FILE_SIZE_LIMIT = 4096  # bytes: the CSV files fit, the JSON summary (~12 KB) and the HTML report (~50 KB) do not


def _browse(url: str, label: str, duration: str, *extra: str | bytes) -> tuple[str | bytes, ...]:
    """A read-only load, short and quick: three users."""
    return browse_args(url, label, duration, *extra, users=3)


def _run_perf(env: dict[str, str], *args: str | bytes, preexec_fn=None) -> subprocess.CompletedProcess:
    """``manage.py run_perf`` to its end; arguments may be bytes, as a shell passes them."""
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), "run_perf", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, preexec_fn=preexec_fn)


def _full_disk() -> None:
    """In the child: writes past FILE_SIZE_LIMIT bytes fail with EFBIG, as on a file system that is full."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


@pytest.mark.once  # by hand: reaches the database only through the live server; what it tests cannot differ by it
def test_a_file_system_that_fills_up_leaves_the_previous_files_whole(seeded, live_server_process, tmp_path: Path):
    """The JSON summary and the HTML report cannot be written whole: each is one line, the good files a
    previous run left at those paths are untouched, and no scratch file is left behind. The CSV files,
    small enough, are written."""
    summary, report = tmp_path / "run.json", tmp_path / "run.html"
    summary.write_text('{"previous": "run"}\n')
    report.write_text("<!doctype html><title>previous run</title>\n")
    before = {path.name: path.read_bytes() for path in (summary, report)}

    result = _run_perf(seeded, *_browse(live_server_process.url, "full-disk", "2s", "--no-save", "--json",
                                        str(summary), "--html", str(report), "--csv", str(tmp_path / "run")),
                       preexec_fn=_full_disk)

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert lines_of(result.stderr) == [f"could not write --json {summary}: File too large",
                                     f"could not write --html {report}: File too large"], result.stderr
    assert {path.name: path.read_bytes() for path in (summary, report)} == before
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "run.html", "run.json", "run_exceptions.csv", "run_failures.csv", "run_stats.csv", "run_stats_history.csv"]
    assert (tmp_path / "run_stats.csv").read_text().count("\n") >= 3  # header, an endpoint, Aggregated


@pytest.mark.parametrize("option", ["--label", "--csv", "--json", "--scenario", "--threshold", "--host"])
def test_arguments_that_are_not_utf8_are_one_line_and_exit_2(seeded, live_server_process, orm, tmp_path, option):
    """``--label $'bad\\xffutf8'``: one line naming the option and showing the byte, nothing run or stored."""
    label = f"bytes-{uuid.uuid4().hex[:8]}"
    runs = PerfRun.objects.count()
    bad = os.fsencode(str(tmp_path)) + b"/bad\xffutf8"
    args = _browse(live_server_process.url, label, "2s", option.encode(), bad)  # a later --label wins
    result = _run_perf(seeded, *args)

    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert lines_of(result.stderr) == [f"CommandError: {option} '{tmp_path}/bad\\xffutf8' is not valid UTF-8 text: "
                                       "give it in UTF-8"]
    assert result.stdout == ""
    assert PerfRun.objects.count() == runs
    assert list(tmp_path.iterdir()) == []


def _console_requests(stdout: str) -> int:
    """The request count of the console's first Aggregated row (the endpoint table)."""
    row = next(line for line in stdout.splitlines() if line.split()[:1] == ["Aggregated"])
    return int(row.split()[1])


def test_a_run_the_database_refused_becomes_lost_with_its_last_progress_and_its_summary_imports_back_whole(
    seeded, live_server_process, orm, live_database_url: str
):
    """Exit 6 leaves the row with its last progress write and the whole run in a file. Left so, the row is not
    ``running`` for ever: it becomes ``lost`` (``perf_mark_lost``, as the admin does on reading it) with the
    figures of that write. ``perf_import`` then finishes that row with the console's figures: requests,
    endpoints, failures and every sample."""
    label = f"import-{uuid.uuid4().hex[:8]}"
    env = {**seeded, "SQLITE_BUSY_TIMEOUT": "1", "PERF_SAVE_PATIENCE": "2"}
    process = start_run_perf(env, *_browse(live_server_process.url, label, "5s"))
    try:
        deadline = time.monotonic() + 60
        while not PerfRun.objects.filter(label=label, total_requests__gt=0).exists():
            assert time.monotonic() < deadline, "no progress stored within 60 s"
            time.sleep(0.1)
        # Past the 5 s run and its 2 s of patience; PostgreSQL's writes each wait 5 s for the lock before they fail.
        with database_held_locked(live_database_url, 20 if is_postgres(live_database_url) else 12) as lock:
            stdout, stderr = process.communicate(timeout=60)
            lock.release()  # it has given up: the rest of the hold would only be waited out
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 6, stdout[-2000:] + stderr[-2000:]
    saved = Path(re.search(r"the run's summary is in (\S+) ", stderr).group(1))
    try:
        run = PerfRun.objects.get(label=label)
        printed = _console_requests(stdout)
        assert run.status == PerfRun.Status.RUNNING and run.total_requests < printed  # the last progress write
        _assert_marked_lost_with_its_figures(run, seeded)

        imported = manage("perf_import", str(saved), env=seeded, check=False)
        summary = json.loads(saved.read_text())
    finally:
        saved.unlink(missing_ok=True)

    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == f"Run {run.pk} completed: {printed} requests stored from {saved}"
    run.refresh_from_db()
    assert run.status == PerfRun.Status.COMPLETED and run.total_requests == printed and run.error == ""
    assert run.actual_duration == pytest.approx(summary["duration"])
    assert run.p95 == summary["entries"][-1]["percentiles"]["95%"]
    stored = {(row.method, row.name): row.num_requests for row in EndpointStats.objects.filter(run=run)}
    assert stored == {(e["method"], e["name"]): e["num_requests"] for e in summary["entries"]}
    assert FailureStats.objects.filter(run=run).count() == len(summary["failures"])
    assert StatsSample.objects.filter(run=run).count() == len(summary["samples"]) >= 2


def _figures(run: PerfRun) -> tuple[object, ...]:
    """What a progress write stores: the totals, the percentiles, each endpoint's row and the samples."""
    run.refresh_from_db()
    return (run.total_requests, run.total_failures, run.actual_duration, run.p95, run.heartbeat_at,
            sorted(EndpointStats.objects.filter(run=run).values_list("method", "name", "num_requests")),
            StatsSample.objects.filter(run=run).count())


def _assert_marked_lost_with_its_figures(run: PerfRun, env: dict[str, str]) -> None:
    """The refused run's row, silent since its last progress write (over a second ago: the hold outlasted
    it), is marked lost by ``perf_mark_lost`` and keeps that write's figures."""
    kept = _figures(run)
    marked = manage("perf_mark_lost", "--after", "1", env=env)
    assert _figures(run) == kept
    assert run.status == PerfRun.Status.LOST and run.heartbeat_at is not None
    assert run.finished_at == run.heartbeat_at and run.error == lost_line(run.heartbeat_at)
    assert f"Run {run.pk} {run.error}" in marked.stdout.splitlines()


@pytest.mark.once  # by hand: reaches the database only through the live server; what it tests cannot differ by it
@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read"),
    ('{"meta": {}, "duration": 1.0, "start_time": 0, "entr', "is not JSON"),
    ('{"meta": {}}', "is not a run summary written by run_perf (no duration, start_time, entries)"),
])
def test_perf_import_refuses_what_is_not_a_whole_summary_in_one_line(live_env, tmp_path: Path, content, message):
    path = tmp_path / "summary.json"
    if content is not None:
        path.write_text(content)
    result = manage("perf_import", str(path), env=live_env, check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert len(lines_of(result.stderr)) == 1 and message in result.stderr, result.stderr


@pytest.mark.once  # by hand: reaches the database only through the live server; what it tests cannot differ by it
@pytest.mark.parametrize("command", ["perf_import", "perf_reconcile"])
def test_a_path_with_a_line_break_is_echoed_on_one_line(live_env, tmp_path: Path, command):
    """A command's last line quotes the path it could not read; a CR/LF in the path must not forge a second."""
    path = str(tmp_path / "run\r\nError: forged.json")
    arguments = [path] if command == "perf_import" else ["--requests", path, "--access-log", path]
    result = manage(command, *arguments, env=live_env, check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert len(lines_of(result.stderr)) == 1 and "\r" not in result.stderr, result.stderr
    assert "run\\r\\nError: forged.json" in result.stderr


def test_perf_import_into_a_database_that_still_refuses_is_one_line_and_exit_6(
    live_env, orm, live_database_url: str, tmp_path: Path
):
    """SQLite stays locked: the import's one transaction fails after the busy timeout, one line, exit 6,
    and nothing is half stored."""
    if is_postgres(live_database_url):
        pytest.skip("PostgreSQL waits for the lock as long as it is held; SQLite gives up after its busy timeout")
    label = f"refused-import-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"meta": {"label": label, "host": "http://127.0.0.1:1/api", "status": "completed"},
                                "duration": 1.0, "start_time": time.time(), "entries": []}))
    with database_held_locked(live_database_url, 4) as lock:
        result = manage("perf_import", str(path), env={**live_env, "SQLITE_BUSY_TIMEOUT": "1"}, check=False)
        lock.release()  # it has given up: the rest of the hold would only be waited out

    assert result.returncode == 6, result.stdout + result.stderr
    lines = lines_of(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("CommandError: could not store the run in the SQLite database ")
    assert lines[0].endswith("database is locked; try again later"), lines
    assert not PerfRun.objects.filter(label=label).exists()


def test_write_atomic_keeps_the_old_files_mode_and_leaves_no_scratch_file_when_the_rename_fails(tmp_path: Path):
    kept = tmp_path / "report.json"
    kept.write_text("old")
    kept.chmod(0o640)
    write_atomic(kept, "new")
    assert kept.read_text() == "new" and kept.stat().st_mode & 0o777 == 0o640

    (tmp_path / "in-the-way").mkdir()
    with pytest.raises(IsADirectoryError):
        write_atomic(tmp_path / "in-the-way", "text")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in-the-way", "report.json"]
