"""``run_perf --csv`` written while the run goes, as Locust writes it: a history row appended every second
(``tail -f`` follows it), the other three files rewritten; ``--csv-full-history``, ``--print-stats N``,
``_exceptions.csv`` from scenario code that raises, every runner, and the stored run's download.

The first tests drive ``perf.reports.live_csv`` directly with registries filled at chosen moments; the slow ones
run ``manage.py run_perf`` as a child process against the live server and read its files mid-run.
"""

import csv
import io
import os
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import gevent
import pytest
from django.test import Client

from perf.cli.invocation import RunRequest, UsageError, check_request
from perf.load.history import HistoryPoint, HistoryPoints
from perf.load.hooks import RunHooks
from perf.load.runner import LoadRunner, RunPlan
from perf.load.session import HttpSession
from perf.load.stats import PERCENTILE_LABELS, StatsRegistry
from perf.load.user import constant
from perf.models import PerfRun, StatsSample
from perf.reports import locust_csv
from perf.reports.live_csv import LiveCsv, LiveOutput
from perf.store.persist import HISTORY_KEY, load_registry
from tests.factories import make_user, unique
from tests.liveserver import ROOT, start_run_perf
from tests.perf.builders import HealthChecker, browse_args, finish, stored_run
from tests.perf.conftest import FakeClock

START = 1_700_000_000.0
HISTORY = locust_csv.STATS_HISTORY_CSV_HEADER
LABELS = PERCENTILE_LABELS


@pytest.fixture
def clock(fake_clock: Callable[[float], FakeClock]) -> FakeClock:
    return fake_clock(START)


def read_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def as_dicts(rows: list[list[str]], header: tuple[str, ...] = HISTORY) -> list[dict[str, str]]:
    assert tuple(rows[0]) == header
    return [dict(zip(header, row, strict=True)) for row in rows[1:]]


def second(stats: StatsRegistry, clock: FakeClock, at: float, users: int = 3) -> HistoryPoint:
    clock.now = START + at
    return stats.mark_second(users)


# ---------------------------------------------------------------------------------------------- the live files


def test_history_rows_are_appended_and_the_other_files_replaced(tmp_path: Path, clock: FakeClock) -> None:
    stats = StatsRegistry(start_time=START)
    live = LiveCsv(str(tmp_path / "out" / "run"), stats)
    live.begin()
    history = tmp_path / "out" / "run_stats_history.csv"
    assert [row[3] for row in read_rows(history)[1:]] == ["Aggregated"]  # the start row
    assert read_rows(tmp_path / "out" / "run_stats.csv")[1][:4] == ["", "Aggregated", "0", "0"]

    clock.now = START + 0.5
    stats.record("GET", "/a", 12.0, 100)
    live.second(second(stats, clock, 1.0))
    first = history.read_bytes()
    clock.now = START + 1.5
    stats.record("GET", "/a", 40.0, 100, error="boom")
    live.second(second(stats, clock, 2.0))

    assert history.read_bytes().startswith(first)  # appended, never rewritten: tail -f follows it
    rows = as_dicts(read_rows(history))
    assert [(row["Total Request Count"], row["Total Max Response Time"]) for row in rows[1:]] == [
        ("1", "12.0"), ("2", "40.0")]
    aggregated = as_dicts(read_rows(tmp_path / "out" / "run_stats.csv"), locust_csv.STATS_CSV_HEADER)[-1]
    assert (aggregated["Request Count"], aggregated["Failure Count"]) == ("2", "1")
    assert aggregated["Requests/s"] == repr(2 / 2.0)  # whole-run rate as of that second
    assert read_rows(tmp_path / "out" / "run_failures.csv")[1][:4] == ["GET", "/a", "boom", "1"]
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        "run_exceptions.csv", "run_failures.csv", "run_stats.csv", "run_stats_history.csv"]  # no scratch file left


def test_the_final_write_gives_the_final_figures_over_the_runs_duration(tmp_path: Path, clock: FakeClock) -> None:
    stats = StatsRegistry(start_time=START)
    live = LiveCsv(str(tmp_path / "run"), stats)
    live.begin()
    clock.now = START + 0.5
    stats.record("GET", "/a", 12.0, 100)
    live.second(second(stats, clock, 1.0))
    clock.now = START + 1.2
    stats.record("GET", "/a", 14.0, 100)

    paths = live.finish(4.0)

    assert [path.name for path in paths] == [f"run{suffix}" for suffix in locust_csv.CSV_SUFFIXES]
    aggregated = as_dicts(read_rows(tmp_path / "run_stats.csv"), locust_csv.STATS_CSV_HEADER)[-1]
    assert (aggregated["Request Count"], aggregated["Requests/s"]) == ("2", repr(2 / 4.0))
    assert len(read_rows(tmp_path / "run_stats_history.csv")) == 1 + 1 + 1  # finish adds no history row


@pytest.mark.parametrize("name", ["run", "run\r\nError: forged"])
def test_a_write_error_mid_run_is_one_line_and_the_next_second_tries_again(
    tmp_path: Path, clock: FakeClock, name: str
) -> None:
    said: list[str] = []
    stats = StatsRegistry(start_time=START)
    live = LiveCsv(str(tmp_path / name), stats, on_error=said.append)
    live.begin()
    blocker = tmp_path / f"{name}_stats.csv"
    blocker.unlink()
    blocker.mkdir()  # a folder where the file goes: every rewrite fails
    for at in (1.0, 2.0, 3.0):
        live.second(second(stats, clock, at))
    shown = str(tmp_path / name).replace("\r", "\\r").replace("\n", "\\n")  # a CR/LF in it is escaped
    assert len(said) == 1 and said[0].startswith(f"could not write --csv {shown}: ") and "\n" not in said[0]
    assert len(read_rows(tmp_path / f"{name}_stats_history.csv")) == 1 + 1 + 3  # the history went on

    blocker.rmdir()
    live.second(second(stats, clock, 4.0))
    assert read_rows(blocker)[0] == list(locust_csv.STATS_CSV_HEADER)
    assert len(said) == 1


def test_a_history_that_could_not_start_is_started_by_the_next_second(tmp_path: Path, clock: FakeClock) -> None:
    stats = StatsRegistry(start_time=START)
    history = tmp_path / "run_stats_history.csv"
    history.mkdir()
    live = LiveCsv(str(tmp_path / "run"), stats, on_error=lambda line: None)
    live.begin()
    history.rmdir()
    live.second(second(stats, clock, 1.0))
    rows = read_rows(history)
    assert tuple(rows[0]) == HISTORY and len(rows) == 1 + 1 + 1  # header and start row first, never a bare row


def test_a_forked_copy_of_the_writer_writes_nothing(tmp_path: Path, clock: FakeClock,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A --processes worker inherits the parent's greenlets and this object: only the parent writes."""
    stats = StatsRegistry(start_time=START)
    live = LiveCsv(str(tmp_path / "run"), stats)
    live.begin()
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    parent = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: parent + 1)
    live.second(second(stats, clock, 1.0))
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before


def test_full_history_adds_a_row_per_endpoint_with_percentiles_of_the_last_ten_seconds(
    tmp_path: Path, clock: FakeClock
) -> None:
    stats = StatsRegistry(start_time=START)
    output = LiveOutput(stats, LiveCsv(str(tmp_path / "run"), stats, full_history=True))
    output.begin()
    for at in range(1, 16):
        for i in range(10):  # /slow: 900 ms during the first 3 s, 100 ms after; /fast: 5 ms throughout
            clock.now = START + at - 1 + i / 10
            stats.record("GET", "/slow", 900.0 if at <= 3 else 100.0, 10)
            stats.record("POST", "/fast", 5.0, 10)
        clock.now = START + at
        output.second(stats.mark_second(4))

    rows = as_dicts(read_rows(tmp_path / "run_stats_history.csv"))
    assert [(row["Type"], row["Name"]) for row in rows[-3:]] == [
        ("POST", "/fast"), ("GET", "/slow"), ("", "Aggregated")]
    assert len(rows) == 1 + 15 * 3 and len({row["Timestamp"] for row in rows[-3:]}) == 1
    early, late = rows[1 + 2 * 3 + 1], rows[-2]  # /slow at 3 s (after the start row) and at 15 s
    assert (early["Name"], late["Name"]) == ("/slow", "/slow")
    assert early["100%"] == "900" and late["100%"] == "100"  # the 900 ms requests left the window
    assert late["Total Max Response Time"] == "900.0" and late["Total Request Count"] == "150"
    assert late["Requests/s"] == "10.000000" and rows[-1]["Requests/s"] == "20.000000"
    assert rows[-3]["50%"] == "5"


def test_print_stats_prints_the_table_every_n_seconds_with_current_rates(clock: FakeClock) -> None:
    said: list[str] = []
    stats = StatsRegistry(start_time=START)
    output = LiveOutput(stats, print_every=5, say=said.append)
    for at in range(1, 21):
        for i in range(4):
            clock.now = START + at - 1 + i / 4
            stats.record("GET", "/a", 20.0, 10)
        clock.now = START + at
        output.second(stats.mark_second(2))
    assert len(said) == 4  # at 5, 10, 15 and 20 s
    lines = said[-1].splitlines()
    assert lines[0].split() == ["Type", "Name", "#", "reqs", "#", "fails", "Avg", "Min", "Max", "Med", "req/s",
                                "failures/s"]
    assert lines[2].split()[-2:] == ["4.00", "0.00"]  # the current rate, as Locust's console table shows it


# ---------------------------------------------------------------------------------------------- stored runs


def test_history_points_survive_json_with_nan_as_none() -> None:
    points = HistoryPoints()
    points.append(HistoryPoint(START, 0, 0.0, 0.0, *[float("nan")] * 11, 0, 0, *[float("nan")] * 5))
    points.append(HistoryPoint(START + 1, 3, 2.5, 0.5, *range(11), 5, 1, 4.0, 4.5, 1.0, 11.0, 300.0))
    data = points.to_json()
    assert data[0][4] is None and data[1][4] == 0
    assert HistoryPoints.from_json(data) == points
    assert len(HistoryPoints.from_json([[1, 2], "junk", None])) == 0


def _stored_run(stats: StatsRegistry) -> PerfRun:
    """The 3 users' run of ``stats``, 10 s, stored as run_perf stores it."""
    return stored_run(stats, duration=10.0, label=unique("csv-live"), users=3, planned_duration=10.0)


def _download_history(run: PerfRun) -> list[list[str]]:
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    response = client.get(f"/admin/perf/perfrun/{run.pk}/download/csv/")
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    return list(csv.reader(io.StringIO(archive.read(f"perf-run-{run.pk}_stats_history.csv").decode())))


def test_a_stored_runs_download_has_the_history_the_live_file_had(orm, clock: FakeClock) -> None:
    stats = StatsRegistry(start_time=START)
    for at in range(1, 8):
        clock.now = START + at - 0.5
        stats.record("GET", "/a", 10.0 * at, 100 * at)
        clock.now = START + at
        stats.take_sample(3) if at % 2 == 0 or at == 7 else stats.mark_second(3)
    run = _stored_run(stats)

    rebuilt = load_registry(run)
    assert [sample.history for sample in rebuilt.samples] == [sample.history for sample in stats.samples]
    assert [set(sample.endpoints) for sample in rebuilt.samples] == [{"GET /a"}] * 4  # the key is not an endpoint
    rows = _download_history(run)
    assert rows[2:] == [[str(cell) for cell in row] for row in locust_csv.history_csv_rows(stats)[1:]]
    assert len(rows) == 1 + 1 + 7 and rows[-1][HISTORY.index("Total Max Response Time")] == "70.0"


def test_a_run_stored_before_history_points_still_downloads_with_na(orm, clock: FakeClock) -> None:
    stats = StatsRegistry(start_time=START)
    clock.now = START + 0.5
    stats.record("GET", "/a", 10.0, 100)
    stats.take_sample(3, now=START + 2)
    run = _stored_run(stats)
    for row in StatsSample.objects.filter(run=run):  # as an older version stored it
        row.endpoints.pop(HISTORY_KEY)
        row.save()

    rows = as_dicts(_download_history(run))
    assert rows[-1]["Total Request Count"] == "1" and rows[-1]["50%"] == "N/A"
    assert rows[-1]["Total Median Response Time"] == rows[-1]["Total Max Response Time"] == "N/A"


# ---------------------------------------------------------------------------------------------- the runner's clock


class Watcher(HealthChecker):
    wait_time = constant(0.02)


@pytest.mark.once  # by hand: the engine in this process against /healthcheck, which does no database work
@pytest.mark.slow
def test_the_runner_makes_a_point_a_second_and_the_last_is_the_final_figures(live_server_process) -> None:
    stats = StatsRegistry()
    points: list[HistoryPoint] = []
    runner = LoadRunner([Watcher], RunPlan(users=3, spawn_rate=100, duration=3.5), stats,
                        lambda registry: HttpSession(live_server_process.url, registry.record),
                        hooks=RunHooks(on_second=points.append))
    with runner.second_clock():
        runner.run()
    gevent.sleep(1.2)  # the clock is gone with the block: nothing comes after the run

    gaps = [later.timestamp - earlier.timestamp for earlier, later in zip(points, points[1:], strict=False)]
    # 1 s (clock), 2 s (tick), 3 s (clock), then the final tick once the users stopped at 3.5 s.
    assert len(points) == 4 and all(0.8 <= gap <= 1.3 for gap in gaps[:-1]), gaps
    last = points[-1]
    assert last.requests == stats.total.num_requests > 0 and last.users == 3
    assert last.median == stats.total.median_response_time and last.maximum == stats.total.max_response_time
    assert [list(sample.history) for sample in stats.samples] == [points[:2], points[2:]]  # a sample's points


# ---------------------------------------------------------------------------------------------- run_perf


def _watch_history(process, history: Path, timeout: float = 60) -> list[tuple[float, int]]:
    """(time, data rows) each time the history file changed, until the process exits."""
    seen: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if history.exists():
            count = len(read_rows(history)) - 2  # less the header and the start row
            if not seen or seen[-1][1] != count:
                seen.append((time.monotonic(), count))
        time.sleep(0.1)
    return seen


def _finish(process, timeout: float = 60) -> tuple[str, str]:
    out, err = finish(process, timeout)
    assert process.returncode == 0, out[-3000:] + err[-3000:]
    return out, err


def _assert_grew_about_once_a_second(seen: list[tuple[float, int]], duration: float) -> None:
    growing = [(at, count) for at, count in seen if count > 0]
    assert len(growing) >= duration - 2, seen  # seen growing while the run went, not only at its end
    (first_at, first_count), (last_at, last_count) = growing[0], growing[-1]
    rate = (last_count - first_count) / max(last_at - first_at, 1e-9)
    assert 0.6 <= rate <= 1.6, seen


def _assert_last_row_is_the_final_figures(prefix: Path) -> list[dict[str, str]]:
    history = as_dicts(read_rows(Path(f"{prefix}_stats_history.csv")))[1:]
    final = as_dicts(read_rows(Path(f"{prefix}_stats.csv")), locust_csv.STATS_CSV_HEADER)[-1]
    last = [row for row in history if row["Name"] == "Aggregated"][-1]
    assert last["Total Request Count"] == final["Request Count"] and int(final["Request Count"]) > 0
    assert last["Total Failure Count"] == final["Failure Count"]
    assert last["Total Median Response Time"] == final["Median Response Time"]
    assert [last[label] for label in LABELS] == [final[label] for label in LABELS]
    assert last["Total Max Response Time"] == final["Max Response Time"]
    assert last["Total Min Response Time"] == final["Min Response Time"]
    return history


def _browse(url: str, *extra: str) -> tuple[str | bytes, ...]:
    return browse_args(url, None, None, *extra, users=6, spawn_rate=20, wait="0.02,0.05")


@pytest.mark.slow
def test_run_perf_writes_the_csv_files_every_second_and_stores_the_same_history(
    seeded, live_server_process, orm, tmp_path: Path
) -> None:
    prefix, label = tmp_path / "live" / "run", unique("csv-live")
    process = start_run_perf(seeded, *_browse(live_server_process.url, "--duration", "5s", "--csv", str(prefix),
                                              "--label", label))
    seen = _watch_history(process, Path(f"{prefix}_stats_history.csv"))
    _finish(process)

    _assert_grew_about_once_a_second(seen, 5)
    history = _assert_last_row_is_the_final_figures(prefix)
    assert all(row["Name"] == "Aggregated" and row["Type"] == "" for row in history)
    assert 5 <= len(history) <= 8
    stamps = [int(row["Timestamp"]) for row in history]
    assert stamps == sorted(stamps) and all(b - a <= 2 for a, b in zip(stamps, stamps[1:], strict=False))
    final_max = float(history[-1]["Total Max Response Time"])
    assert all(float(row["Total Max Response Time"]) <= final_max for row in history)
    assert float(history[0]["Total Max Response Time"]) < final_max or len({row["Total Max Response Time"]
                                                                            for row in history}) == 1
    assert all(row[label] != "N/A" for row in history if row["Total Request Count"] != "0" for label in LABELS)
    assert history[-1]["Requests/s"] != "0.000000"  # 5 s: a whole second in Locust's window

    run = PerfRun.objects.get(label=label)
    stored = _download_history(run)
    assert stored[1:] == read_rows(Path(f"{prefix}_stats_history.csv"))[1:]  # the stored run has the same rows


@pytest.mark.slow
@pytest.mark.once  # by hand: reaches the database only through the live server; what it tests cannot differ by it
def test_open_model_with_full_history_and_print_stats(seeded, live_server_process, tmp_path: Path) -> None:
    prefix = tmp_path / "run"
    process = start_run_perf(seeded, "--rate", "30", "--users", "6", "--spawn-rate", "20", "--duration", "4s",
                             "--scenario", "EventBrowser", "--host", live_server_process.url, "--no-audit", "--no-save",
                             "--csv", str(prefix), "--csv-full-history", "--print-stats", "1")
    seen = _watch_history(process, Path(f"{prefix}_stats_history.csv"))
    out, _ = _finish(process)

    assert len([count for _, count in seen if count > 0]) >= 3
    history = _assert_last_row_is_the_final_figures(prefix)
    ends = [index for index, row in enumerate(history) if row["Name"] == "Aggregated"]
    last_second = history[ends[-2] + 1:]  # the rows of the last point: each endpoint's, then Aggregated
    names = [row["Name"] for row in last_second]
    assert names[-1] == "Aggregated" and len(names) >= 3  # the list, details, tiers, then Aggregated
    assert names[:-1] == sorted(names[:-1]) and all(row["Type"] == "GET" for row in last_second[:-1])
    assert all(row["95%"] != "N/A" for row in last_second)  # the last 10 s hold requests of every endpoint
    # The periodic table, printed before the final one and the percentiles that follow it.
    tables = out.count(" # reqs ")
    assert tables >= 3 and out.index(" # reqs ") < out.index("Response time percentiles"), out[-3000:]


RAISER_LAUNCHER = textwrap.dedent("""
    import os
    import sys

    from gevent import monkey

    monkey.patch_all()
    sys.path.insert(0, {root!r})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings_perf")
    import django

    django.setup()
    from django.core.management import execute_from_command_line

    from django.conf import settings

    from perf.load.user import User, constant, task


    class Raiser(User):
        wait_time = constant(0.05)

        @task(3)
        def healthcheck(self):
            self.client.get("/healthcheck")

        @task(1)
        def trip_over_a_missing_key(self):
            {{}}["event_id"]


    SCENARIOS = [Raiser]
    settings.PERF_SCENARIOS = "__main__.SCENARIOS"  # this test's own pack, as a project names its own
    execute_from_command_line(["manage.py", "run_perf", *sys.argv[1:]])
""")


def start_with_raiser(env: dict[str, str], tmp_path: Path, *args: str):
    """``run_perf ARGS`` in a child process that also knows the scenario ``Raiser``."""
    launcher = tmp_path / "launch_raiser.py"
    launcher.write_text(RAISER_LAUNCHER.format(root=str(ROOT)))
    return subprocess.Popen([sys.executable, str(launcher), *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.once  # by hand: reaches the database only through the live server; what it tests cannot differ by it
def test_exceptions_file_has_a_row_with_count_and_traceback_while_the_run_goes(
    live_env, live_server_process, tmp_path: Path
) -> None:
    prefix = tmp_path / "run"
    process = start_with_raiser(live_env, tmp_path, "--users", "3", "--spawn-rate", "20", "--duration", "3s",
                                "--scenario", "Raiser", "--host", live_server_process.url, "--no-audit", "--no-save",
                                "--csv", str(prefix))
    exceptions = Path(f"{prefix}_exceptions.csv")
    mid_run: list[list[str]] = []
    while process.poll() is None:
        rows = read_rows(exceptions)[1:] if exceptions.exists() else []
        if rows and not mid_run:
            mid_run = rows
        time.sleep(0.2)
    _finish(process)

    assert mid_run, "no exception row was written while the run went"
    [row] = as_dicts(read_rows(exceptions), locust_csv.EXCEPTIONS_CSV_HEADER)
    assert row["Message"] == "KeyError(\"'event_id'\")" and row["Nodes"] == "local"
    assert int(row["Count"]) > int(mid_run[0][0]) >= 1
    assert row["Traceback"].startswith("Traceback (most recent call last):")
    assert "trip_over_a_missing_key" in row["Traceback"] and "KeyError: 'event_id'" in row["Traceback"]


@pytest.mark.slow
@pytest.mark.once  # by hand: reaches the database only through the live server; what it tests cannot differ by it
def test_two_processes_write_the_files_live_from_the_parent(seeded, live_server_process, tmp_path: Path) -> None:
    prefix = tmp_path / "run"
    process = start_run_perf(seeded, *_browse(live_server_process.url, "--processes", "2", "--duration", "5s",
                                              "--csv", str(prefix), "--no-save"))
    seen = _watch_history(process, Path(f"{prefix}_stats_history.csv"))
    _finish(process)

    _assert_grew_about_once_a_second(seen, 5)
    history = _assert_last_row_is_the_final_figures(prefix)
    assert len(history) <= 8  # the workers wrote nothing of their own


def test_csv_full_history_needs_csv() -> None:
    with pytest.raises(UsageError, match="--csv-full-history"):
        check_request(RunRequest(csv_full_history=True, save=False, audit=False))
    with pytest.raises(UsageError, match="--print-stats"):
        check_request(RunRequest(print_stats=0, save=False, audit=False))
