"""Specification of perf.reports: Locust-compatible CSV files, console tables, JSON summary.

Pure unit tests: registries are filled through ``StatsRegistry.record`` with known values.
"""

import csv
import io
import json
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from perf.cli.progress import ProgressPrinter
from perf.load.history import entry_percentiles
from perf.load.hooks import Tick
from perf.load.stats import PERCENTILES, Sample, StatsEntry, StatsRegistry
from perf.reports import console, locust_csv, summary_json
from perf.reports.description import RunDescription
from perf.reports.report import build_report
from tests.perf.conftest import FakeClock

# Locust's header rows as the project documents them (copied from Locust 2.x's CSV writer's output).
FORMATS_DOC = Path(__file__).resolve().parents[2] / "docs" / "design.md"
START = datetime(2026, 11, 24, 17, 20, 0, tzinfo=UTC).timestamp()
LABELS = ["50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"]
CONSTANTS = {
    "PREFIX_stats.csv": locust_csv.STATS_CSV_HEADER,
    "PREFIX_stats_history.csv": locust_csv.STATS_HISTORY_CSV_HEADER,
    "PREFIX_failures.csv": locust_csv.FAILURES_CSV_HEADER,
    "PREFIX_exceptions.csv": locust_csv.EXCEPTIONS_CSV_HEADER,
}


def documented_headers() -> dict[str, str]:
    """File name → header row, from the table in docs/design.md, "Output formats"."""
    rows = re.findall(r"^\| `(PREFIX_\w+\.csv)` \| `([^`]+)`", FORMATS_DOC.read_text(), flags=re.MULTILINE)
    return dict(rows)


def registry() -> StatsRegistry:
    """Two endpoints out of name order, one of them with two methods, one failure kind."""
    stats = StatsRegistry(start_time=START)
    for ms in (10.0, 20.0, 30.0, 40.0):
        stats.record("GET", "/events/", ms, 300)
    stats.record("POST", "/auth/login", 147.0, 50)
    stats.record("GET", "/auth/login", 1.2183259987068595, 10)
    stats.record("GET", "/missing", 5.0, 0, error="HTTPError('404 Client Error')")
    return stats


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def written(tmp_path: Path, stats: StatsRegistry, duration: float = 10.0) -> dict[str, list[list[str]]]:
    paths = locust_csv.write_csv(tmp_path / "out" / "run", stats, duration)
    return {path.name.removeprefix("run_").removesuffix(".csv"): read_csv(path) for path in paths}


# ---------------------------------------------------------------------------------------------- CSV headers


def test_header_constants_equal_the_documented_locust_header_rows() -> None:
    documented = documented_headers()
    assert set(documented) == set(CONSTANTS)
    for file_name, header in CONSTANTS.items():
        assert ",".join(header) == documented[file_name], file_name


def test_written_header_lines_are_byte_equal_to_the_documented_rows(tmp_path: Path) -> None:
    documented = documented_headers()
    locust_csv.write_csv(tmp_path / "run", registry(), 10.0)
    for file_name, header_row in documented.items():
        first_line = (tmp_path / file_name.replace("PREFIX", "run")).read_bytes().split(b"\r\n")[0]
        assert first_line == header_row.encode()


def test_write_csv_creates_the_four_files_and_the_folders_of_the_prefix(tmp_path: Path) -> None:
    paths = locust_csv.write_csv(tmp_path / "a" / "b" / "run", StatsRegistry(start_time=START), 1.0)
    assert sorted(path.name for path in paths) == [
        "run_exceptions.csv", "run_failures.csv", "run_stats.csv", "run_stats_history.csv",
    ]
    assert all(path.parent == tmp_path / "a" / "b" and path.is_file() for path in paths)


def test_csv_lines_end_with_crlf_like_pythons_default_writer(tmp_path: Path) -> None:
    locust_csv.write_csv(tmp_path / "run", registry(), 10.0)
    content = (tmp_path / "run_stats.csv").read_bytes()
    assert content.count(b"\r\n") == content.count(b"\n") == 6


# ---------------------------------------------------------------------------------------------- _stats.csv


def test_stats_rows_are_sorted_by_name_then_method_with_aggregated_last(tmp_path: Path) -> None:
    rows = written(tmp_path, registry())["stats"][1:]
    assert [row[:2] for row in rows] == [
        ["GET", "/auth/login"], ["POST", "/auth/login"], ["GET", "/events/"], ["GET", "/missing"], ["", "Aggregated"],
    ]


def test_stats_counts_include_failed_requests_in_both_columns(tmp_path: Path) -> None:
    rows = {row[1]: row for row in written(tmp_path, registry())["stats"][1:]}
    assert rows["/missing"][2:4] == ["1", "1"]
    assert rows["Aggregated"][2:4] == ["7", "1"]


def test_stats_median_and_percentiles_are_whole_milliseconds(tmp_path: Path) -> None:
    for row in written(tmp_path, registry())["stats"][1:]:
        assert re.fullmatch(r"\d+", row[4]), row
        assert all(re.fullmatch(r"\d+", cell) for cell in row[11:]), row


def test_stats_percentiles_are_rounded_to_the_nearest_millisecond(tmp_path: Path) -> None:
    events = {row[1]: row for row in written(tmp_path, registry())["stats"][1:]}["/events/"]
    header = list(locust_csv.STATS_CSV_HEADER)
    assert events[header.index("Median Response Time")] == "20"
    assert events[header.index("50%")] == "20"
    assert events[header.index("75%")] == "30"
    assert events[header.index("100%")] == "40"


def test_stats_average_min_max_are_raw_float_milliseconds(tmp_path: Path) -> None:
    rows = {(row[0], row[1]): row for row in written(tmp_path, registry())["stats"][1:]}
    login = rows[("GET", "/auth/login")]
    assert login[5:9] == [repr(1.2183259987068595)] * 3 + ["10.0"]
    assert rows[("GET", "/events/")][5] == "25.0"


def test_stats_rates_are_whole_run_rates_at_full_precision(tmp_path: Path) -> None:
    aggregated = written(tmp_path, registry(), duration=3.0)["stats"][-1]
    assert aggregated[9:11] == [repr(7 / 3), repr(1 / 3)]


def test_empty_run_writes_an_aggregated_row_with_na_percentiles(tmp_path: Path) -> None:
    rows = written(tmp_path, StatsRegistry(start_time=START))["stats"]
    assert rows[1:] == [["", "Aggregated", "0", "0", "0", "0.0", "0", "0", "0", "0.0", "0.0", *["N/A"] * 11]]


# ---------------------------------------------------------------------------------------------- _stats_history.csv


@pytest.fixture
def clock(fake_clock: Callable[[float], FakeClock]) -> FakeClock:
    return fake_clock(START)


def steady_run(clock: FakeClock, seconds: int, per_second: int = 10, sample_every: int = 2) -> StatsRegistry:
    """``per_second`` requests a second, 1 in 10 failing, a history point each second and a sample every
    ``sample_every`` seconds and at the end, as the runners make them; the response times grow with the run."""
    stats = StatsRegistry(start_time=START)
    for second in range(seconds):
        for i in range(per_second):
            clock.now = START + second + (i + 0.5) / per_second
            stats.record("GET", "/a", 10.0 + second + i, 100 + second, error="boom" if i == 0 else None)
        clock.now = START + second + 1
        if (second + 1) % sample_every and second + 1 < seconds:
            stats.mark_second(users=5)
        else:
            stats.take_sample(users=5)
    return stats


def history_rows(tmp_path: Path, stats: StatsRegistry) -> list[dict[str, str]]:
    """The data rows of ``_stats_history.csv`` (after the start row) as header → cell."""
    rows = written(tmp_path, stats)["stats_history"]
    return [dict(zip(locust_csv.STATS_HISTORY_CSV_HEADER, row, strict=True)) for row in rows[2:]]


def test_history_starts_with_locusts_empty_start_row(tmp_path: Path) -> None:
    first = written(tmp_path, registry())["stats_history"][1]
    assert first == [str(int(START)), "0", "", "Aggregated", "0.000000", "0.000000", *["N/A"] * 11,
                     "0", "0", "0", "0.0", "0", "0", "0"]


def test_history_has_an_aggregated_row_a_second_not_only_one_a_sample(tmp_path: Path, clock: FakeClock) -> None:
    rows = history_rows(tmp_path, steady_run(clock, 6))
    assert [row["Timestamp"] for row in rows] == [str(int(START) + second) for second in range(1, 7)]
    assert {(row["User Count"], row["Type"], row["Name"]) for row in rows} == {("5", "", "Aggregated")}


def test_history_rates_are_locusts_current_rates_with_six_decimals(tmp_path: Path, clock: FakeClock) -> None:
    """Locust's current_rps: the mean per-second count of [last request - 12 s, last request - 2 s)."""
    rows = history_rows(tmp_path, steady_run(clock, 20))
    assert (rows[0]["Requests/s"], rows[0]["Failures/s"]) == ("0.000000", "0.000000")  # no whole second yet
    assert (rows[5]["Requests/s"], rows[5]["Failures/s"]) == ("10.000000", "1.000000")  # at 6 s: seconds 0-2
    assert (rows[-1]["Requests/s"], rows[-1]["Failures/s"]) == ("10.000000", "1.000000")


def test_history_rates_are_those_before_the_last_request_once_the_load_stops(clock: FakeClock) -> None:
    """Locust's window ends at the run's last request, not at now."""
    stats = steady_run(clock, 4)
    for second in range(5, 40):
        clock.now = START + second
        stats.mark_second(users=5)
    assert stats.last_point is not None and stats.last_point.rps == 10.0
    assert len(stats._history_rates._seen) <= 16  # an idle stretch keeps its two ends, not a point a second


def test_history_percentiles_are_cumulative_all_filled_and_the_last_row_equals_the_stats_file(
    tmp_path: Path, clock: FakeClock
) -> None:
    stats = steady_run(clock, 8)
    rows = history_rows(tmp_path, stats)
    assert all(re.fullmatch(r"\d+", row[label]) for row in rows for label in LABELS)
    final = dict(zip(locust_csv.STATS_CSV_HEADER, written(tmp_path, stats)["stats"][-1], strict=True))
    assert [rows[-1][label] for label in LABELS] == [final[label] for label in LABELS]
    assert rows[-1]["Total Median Response Time"] == final["Median Response Time"]
    assert rows[-1]["Total Request Count"] == final["Request Count"] == "80"
    # The median so far: the first second's requests took 10-19 ms, the run's median grows with it.
    assert int(rows[0]["Total Median Response Time"]) < int(rows[-1]["Total Median Response Time"])
    assert int(rows[0]["100%"]) == 19 < int(rows[-1]["100%"])


def test_history_min_max_and_size_are_as_of_each_row(tmp_path: Path, clock: FakeClock) -> None:
    rows = history_rows(tmp_path, steady_run(clock, 3))
    totals = [[row[name] for name in ("Total Request Count", "Total Failure Count", "Total Min Response Time",
                                      "Total Max Response Time", "Total Average Content Size")] for row in rows]
    assert totals == [["10", "1", "10.0", "19.0", "100.0"], ["20", "2", "10.0", "20.0", "100.5"],
                      ["30", "3", "10.0", "21.0", "101.0"]]
    assert [float(row["Total Average Response Time"]) for row in rows] == [14.5, 15.0, 15.5]


def test_history_percentiles_never_exceed_the_slowest_request(tmp_path: Path) -> None:
    stats = StatsRegistry(start_time=START)
    stats.record("GET", "/a", 147.0, 100)
    stats.take_sample(users=1, now=START + 1.0)
    [row] = history_rows(tmp_path, stats)
    assert (row["50%"], row["100%"], row["Total Median Response Time"]) == ("147", "147", "147")


def test_history_of_samples_stored_without_points_falls_back_to_na(tmp_path: Path) -> None:
    """Runs stored before samples kept history points: their counts, rates and average; N/A for the rest."""
    stats = StatsRegistry(start_time=START)
    stats.samples = [
        Sample(timestamp=START + 2, elapsed=2.0, users=3, requests_per_second=5.0, failures_per_second=0.5,
               p50=12.0, p95=30.0, avg_response_time=20.0, total_requests=10, total_failures=1),
        Sample(timestamp=START + 4, elapsed=4.0, users=3, requests_per_second=5.0, failures_per_second=0.0,
               p50=12.0, p95=30.0, avg_response_time=40.0, total_requests=20, total_failures=1),
    ]
    rows = written(tmp_path, stats)["stats_history"][2:]
    assert rows == [
        [str(int(START + 2)), "3", "", "Aggregated", "5.000000", "0.500000", *["N/A"] * 11, "10", "1", "N/A", "20.0",
         "N/A", "N/A", "N/A"],
        [str(int(START + 4)), "3", "", "Aggregated", "5.000000", "0.000000", *["N/A"] * 11, "20", "1", "N/A", "30.0",
         "N/A", "N/A", "N/A"],
    ]


def test_one_walk_percentiles_equal_the_entrys_own() -> None:
    """The CSV files take every percentile from one walk over the buckets; they must be the entry's figures."""
    rng = random.Random(7)
    for spread in (1.0, 30.0, 2000.0):
        entry = StatsEntry("GET", "/x")
        for _ in range(rng.randrange(1, 3000)):
            entry.log(rng.expovariate(1 / spread), 0, False, START)
        assert entry_percentiles(entry, PERCENTILES) == [entry.percentile(fraction) for fraction in PERCENTILES]
    assert entry_percentiles(StatsEntry("GET", "/empty"), PERCENTILES) == [None] * len(PERCENTILES)


# ---------------------------------------------------------------------------------------------- failures, exceptions


def test_failures_rows_carry_first_and_last_seen_in_utc(tmp_path: Path) -> None:
    first = datetime(2026, 11, 24, 17, 20, 45, tzinfo=UTC).timestamp()
    last = datetime(2026, 11, 24, 17, 21, 3, 500000, tzinfo=UTC).timestamp()
    stats = StatsRegistry(start_time=START)
    stats.record_failure("GET", "/missing", "HTTPError('404')", now=first)
    stats.record_failure("GET", "/missing", "HTTPError('404')", now=last)
    rows = written(tmp_path, stats)["failures"]
    assert rows[1:] == [["GET", "/missing", "HTTPError('404')", "2", "2026-11-24T17:20:45Z", "2026-11-24T17:21:03Z"]]


def test_failures_rows_quote_errors_containing_commas(tmp_path: Path) -> None:
    stats = StatsRegistry(start_time=START)
    stats.record("POST", "/checkout", 3.0, 0, error="ValueError('a, b')")
    locust_csv.write_csv(tmp_path / "run", stats, 1.0)
    assert '"ValueError(\'a, b\')"' in (tmp_path / "run_failures.csv").read_text()


def test_exceptions_rows_name_the_local_node(tmp_path: Path) -> None:
    stats = StatsRegistry(start_time=START)
    stats.record_exception("KeyError('id')", "Traceback ...\nKeyError: 'id'")
    stats.record_exception("KeyError('id')", "Traceback ...\nKeyError: 'id'")
    rows = written(tmp_path, stats)["exceptions"]
    assert rows[1:] == [["2", "KeyError('id')", "Traceback ...\nKeyError: 'id'", "local"]]


# ---------------------------------------------------------------------------------------------- JSON


def test_summary_json_lists_every_entry_then_aggregated_flagged() -> None:
    summary = summary_json.summary_json(registry(), 10.0, RunDescription(users=5))
    assert summary["meta"] == RunDescription(users=5).as_json() and summary["meta"]["users"] == 5
    assert summary["duration"] == 10.0
    assert [(e["name"], e["aggregated"]) for e in summary["entries"]] == [
        ("/auth/login", False), ("/auth/login", False), ("/events/", False), ("/missing", False),
        ("Aggregated", True),
    ]


def test_summary_json_entry_holds_every_figure_and_the_raw_histogram() -> None:
    stats = registry()
    entry = summary_json.summary_json(stats, 2.0, RunDescription())["entries"][-1]
    assert entry["num_requests"] == 7 and entry["num_failures"] == 1
    assert list(entry["percentiles"]) == LABELS
    assert entry["percentiles"]["100%"] == stats.total.percentile(1.0)
    assert entry["median_response_time"] == stats.total.median_response_time
    assert entry["rps"] == 3.5 and entry["failures_per_s"] == 0.5
    assert entry["histogram"] == stats.total.histogram.to_json()
    for key in ("avg_response_time", "min_response_time", "max_response_time", "avg_content_length"):
        assert key in entry


def test_summary_json_includes_failures_exceptions_and_samples() -> None:
    stats = registry()
    stats.record_exception("KeyError('id')", "tb")
    stats.take_sample(users=3, now=START + 1.0)
    summary = summary_json.summary_json(stats, 1.0, RunDescription())
    assert [f["name"] for f in summary["failures"]] == ["/missing"]
    assert summary["exceptions"] == [{"message": "KeyError('id')", "traceback": "tb", "count": 1}]
    assert summary["samples"][0]["users"] == 3


def test_write_json_round_trips_and_creates_folders(tmp_path: Path) -> None:
    options = {"stdout": Path("/dev/null")}  # what JSON cannot hold becomes text
    data = summary_json.summary_json(registry(), 1.0, RunDescription(options=options))
    path = summary_json.write_json(tmp_path / "nested" / "run.json", data)
    loaded = json.loads(path.read_text())
    assert loaded["entries"][-1]["name"] == "Aggregated"
    assert loaded["meta"]["options"] == {"stdout": "/dev/null"}


def test_summary_json_of_an_empty_run_has_only_aggregated() -> None:
    summary = summary_json.summary_json(StatsRegistry(start_time=START), 0.0, RunDescription())
    (entry,) = summary["entries"]
    assert entry["aggregated"] and entry["num_requests"] == 0
    assert set(entry["percentiles"].values()) == {None}


# ---------------------------------------------------------------------------------------------- console


def test_stats_table_shows_each_endpoint_then_a_rule_and_aggregated() -> None:
    lines = console.stats_table(registry(), 10.0).splitlines()
    assert lines[0].split()[:2] == ["Type", "Name"]
    assert [line.split()[1] for line in lines[2:6]] == ["/auth/login", "/auth/login", "/events/", "/missing"]
    assert set(lines[6]) == {"-", "|"}
    assert lines[7].split()[0] == "Aggregated"


def test_stats_table_shows_failures_with_ratio_and_rates_with_two_decimals() -> None:
    table = console.stats_table(registry(), 2.0)
    aggregated = table.splitlines()[-1].split()
    assert aggregated == ["Aggregated", "7", "1(14.29%)", "36", "1", "147", "20", "3.50", "0.50"]


def test_percentiles_table_is_titled_and_labels_every_percentile() -> None:
    stats = registry()
    lines = console.percentiles_table(stats).splitlines()
    assert lines[0] == "Response time percentiles (approximated)"
    assert lines[1].split() == ["Type", "Name", *LABELS, "#", "reqs"]
    assert len(LABELS) == len(PERCENTILES)
    expected = [str(round(stats.total.percentile(fraction))) for fraction in PERCENTILES]
    assert lines[-1].split() == ["Aggregated", *expected, "7"]
    assert expected[0] == "20" and expected[-1] == "147"


def test_failures_table_is_the_error_report() -> None:
    table = console.failures_table(registry())
    lines = table.splitlines()
    assert lines[0] == "Error report"
    assert lines[1].startswith("# occurrences")
    assert lines[3].split(maxsplit=1) == ["1", "GET /missing: HTTPError('404 Client Error')"]


def test_exceptions_table_lists_messages_only_when_any() -> None:
    stats = registry()
    assert console.exceptions_table(stats) == ""
    stats.record_exception("KeyError('id')", "tb")
    assert "KeyError('id')" in console.exceptions_table(stats)


def test_empty_run_renders_tables_without_failures_or_exceptions() -> None:
    stats = StatsRegistry(start_time=START)
    assert console.stats_table(stats, 0.0).splitlines()[-1].split() == [
        "Aggregated", "0", "0(0.00%)", "0", "0", "0", "0", "0.00", "0.00",
    ]
    assert console.percentiles_table(stats).splitlines()[-1].split() == ["Aggregated", *["N/A"] * 11, "0"]
    assert console.failures_table(stats) == ""
    summary = console.summary_tables(stats, 0.0)
    assert "Aggregated" in summary and "Error report" not in summary


# ---------------------------------------------------------------------------------------------- one way to write a time


def test_a_chart_legend_writes_a_latency_as_the_table_beside_it_does() -> None:
    """A p50 of 4.2 ms is "4" in the endpoints' table, so "p50 4 ms" in the distribution's legend on the same
    page, not "4.2 ms" (perf.reports.formats writes both)."""
    stats = StatsRegistry(start_time=START)
    for _ in range(30):
        stats.record("GET", "/fast/", 4.2, 100)
    report = build_report(stats, 10.0, RunDescription(status="completed"))
    (row, _) = report.endpoints.rows
    median = row.cells[report.endpoints.headers.index("Median (ms)")]
    legend = re.findall(r">(p50 [^<]*)</text>", report.distributions[0].svgs[0])
    assert (median, legend) == ("4", ["p50 4 ms"])


def test_the_progress_line_writes_times_as_the_run_page_does() -> None:
    sample = Sample(timestamp=START + 65, elapsed=65.0, users=3, requests_per_second=41.25, failures_per_second=0.0,
                    p50=4.2, p95=12.6, avg_response_time=5.0, total_requests=2_600, total_failures=0)
    line = ProgressPrinter(io.StringIO(), 300.0, is_tty=False).format(Tick(sample, 65.0, 3, 12.0))
    assert line == ("[1m 05s of 5m 00s] users    3 |    41.2 req/s | requests 2600 | failures 0 (0.00%) | "
                    "p50 4 ms | p95 13 ms")
