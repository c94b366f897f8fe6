"""Specification of perf.load.report: Locust-compatible CSV files, console tables, JSON summary.

Pure unit tests: registries are filled through ``StatsRegistry.record`` with known values.
"""

import csv
import json
import re
from datetime import UTC, datetime
from pathlib import Path

from perf.load import report
from perf.load.stats import PERCENTILES, StatsRegistry

# Locust's header rows as the project documents them (copied from Locust 2.x's CSV writer's output).
FORMATS_DOC = Path(__file__).resolve().parents[2] / "docs" / "design.md"
START = datetime(2026, 11, 24, 17, 20, 0, tzinfo=UTC).timestamp()
LABELS = ["50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"]
CONSTANTS = {
    "PREFIX_stats.csv": report.STATS_CSV_HEADER,
    "PREFIX_stats_history.csv": report.STATS_HISTORY_CSV_HEADER,
    "PREFIX_failures.csv": report.FAILURES_CSV_HEADER,
    "PREFIX_exceptions.csv": report.EXCEPTIONS_CSV_HEADER,
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
    paths = report.write_csv(tmp_path / "out" / "run", stats, duration)
    return {path.name.removeprefix("run_").removesuffix(".csv"): read_csv(path) for path in paths}


# ---------------------------------------------------------------------------------------------- CSV headers


def test_header_constants_equal_the_documented_locust_header_rows() -> None:
    documented = documented_headers()
    assert set(documented) == set(CONSTANTS)
    for file_name, header in CONSTANTS.items():
        assert ",".join(header) == documented[file_name], file_name


def test_written_header_lines_are_byte_equal_to_the_documented_rows(tmp_path: Path) -> None:
    documented = documented_headers()
    report.write_csv(tmp_path / "run", registry(), 10.0)
    for file_name, header_row in documented.items():
        first_line = (tmp_path / file_name.replace("PREFIX", "run")).read_bytes().split(b"\r\n")[0]
        assert first_line == header_row.encode()


def test_write_csv_creates_the_four_files_and_the_folders_of_the_prefix(tmp_path: Path) -> None:
    paths = report.write_csv(tmp_path / "a" / "b" / "run", StatsRegistry(start_time=START), 1.0)
    assert sorted(path.name for path in paths) == [
        "run_exceptions.csv", "run_failures.csv", "run_stats.csv", "run_stats_history.csv",
    ]
    assert all(path.parent == tmp_path / "a" / "b" and path.is_file() for path in paths)


def test_csv_lines_end_with_crlf_like_pythons_default_writer(tmp_path: Path) -> None:
    report.write_csv(tmp_path / "run", registry(), 10.0)
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
    header = list(report.STATS_CSV_HEADER)
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


def test_history_starts_with_locusts_empty_start_row(tmp_path: Path) -> None:
    first = written(tmp_path, registry())["stats_history"][1]
    assert first == [str(int(START)), "0", "", "Aggregated", "0.000000", "0.000000", *["N/A"] * 11,
                     "0", "0", "0", "0.0", "0", "0", "0"]


def test_history_has_one_aggregated_row_per_sample_with_six_decimal_rates(tmp_path: Path) -> None:
    stats = StatsRegistry(start_time=START)
    for _ in range(115):
        stats.record("GET", "/events/", 12.0, 100)
    stats.take_sample(users=10, now=START + 2.0)
    stats.take_sample(users=10, now=START + 4.0)
    rows = written(tmp_path, stats)["stats_history"][2:]
    assert [row[:6] for row in rows] == [
        [str(int(START + 2)), "10", "", "Aggregated", "57.500000", "0.000000"],
        [str(int(START + 4)), "10", "", "Aggregated", "0.000000", "0.000000"],
    ]


def test_history_percentiles_are_the_window_p50_p95_and_na_for_the_rest(tmp_path: Path) -> None:
    stats = StatsRegistry(start_time=START)
    for ms in range(1, 101):
        stats.record("GET", "/events/", float(ms), 100)
    stats.take_sample(users=5, now=START + 1.0)
    row = dict(zip(report.STATS_HISTORY_CSV_HEADER, written(tmp_path, stats)["stats_history"][2], strict=True))
    assert abs(int(row["50%"]) - 50) <= 1
    assert abs(int(row["95%"]) - 95) <= 1
    assert [row[label] for label in LABELS if label not in ("50%", "95%")] == ["N/A"] * 9


def test_history_percentiles_never_exceed_the_slowest_request(tmp_path: Path) -> None:
    stats = StatsRegistry(start_time=START)
    stats.record("GET", "/a", 147.0, 100)
    stats.take_sample(users=1, now=START + 1.0)
    assert stats.samples[0].p95 == 147.0  # the bucket midpoint (148) is clamped to the slowest request
    row = dict(zip(report.STATS_HISTORY_CSV_HEADER, written(tmp_path, stats)["stats_history"][2], strict=True))
    assert (row["50%"], row["95%"], row["Total Median Response Time"]) == ("147", "147", "147")


def test_history_totals_are_cumulative(tmp_path: Path) -> None:
    stats = StatsRegistry(start_time=START)
    stats.record("GET", "/a", 10.0, 100)
    stats.take_sample(users=1, now=START + 1.0)
    stats.record("GET", "/a", 30.0, 300, error="boom")
    stats.record("GET", "/a", 30.0, 300)
    stats.take_sample(users=2, now=START + 2.0)
    header = list(report.STATS_HISTORY_CSV_HEADER)
    last = written(tmp_path, stats)["stats_history"][-1]
    totals = last[header.index("Total Request Count"):]
    assert totals == ["3", "1", "30", repr(70 / 3), "10.0", "30.0", repr(700 / 3)]


def test_history_of_an_idle_window_keeps_the_last_known_median(tmp_path: Path) -> None:
    """Percentiles cover the last 10 s: an idle tick still shows them; 10 s later they are N/A."""
    stats = StatsRegistry(start_time=START)
    stats.record("GET", "/a", 20.0, 100)
    for elapsed in range(2, 16, 2):
        stats.take_sample(users=1, now=START + elapsed)
    header = list(report.STATS_HISTORY_CSV_HEADER)
    rows = written(tmp_path, stats)["stats_history"]
    assert rows[2][header.index("50%")] == "20"  # 4 s: an idle tick, the request is 10 s recent
    assert rows[-1][header.index("50%")] == "N/A"  # 14 s: nothing in the last 10 s
    assert rows[-1][header.index("Total Median Response Time")] == "20"


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
    report.write_csv(tmp_path / "run", stats, 1.0)
    assert '"ValueError(\'a, b\')"' in (tmp_path / "run_failures.csv").read_text()


def test_exceptions_rows_name_the_local_node(tmp_path: Path) -> None:
    stats = StatsRegistry(start_time=START)
    stats.record_exception("KeyError('id')", "Traceback ...\nKeyError: 'id'")
    stats.record_exception("KeyError('id')", "Traceback ...\nKeyError: 'id'")
    rows = written(tmp_path, stats)["exceptions"]
    assert rows[1:] == [["2", "KeyError('id')", "Traceback ...\nKeyError: 'id'", "local"]]


# ---------------------------------------------------------------------------------------------- JSON


def test_summary_json_lists_every_entry_then_aggregated_flagged() -> None:
    summary = report.summary_json(registry(), 10.0, {"users": 5})
    assert summary["meta"] == {"users": 5}
    assert summary["duration"] == 10.0
    assert [(e["name"], e["aggregated"]) for e in summary["entries"]] == [
        ("/auth/login", False), ("/auth/login", False), ("/events/", False), ("/missing", False),
        ("Aggregated", True),
    ]


def test_summary_json_entry_holds_every_figure_and_the_raw_histogram() -> None:
    stats = registry()
    entry = report.summary_json(stats, 2.0, {})["entries"][-1]
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
    summary = report.summary_json(stats, 1.0, {})
    assert [f["name"] for f in summary["failures"]] == ["/missing"]
    assert summary["exceptions"] == [{"message": "KeyError('id')", "traceback": "tb", "count": 1}]
    assert summary["samples"][0]["users"] == 3


def test_write_json_round_trips_and_creates_folders(tmp_path: Path) -> None:
    data = report.summary_json(registry(), 1.0, {"started": datetime(2026, 11, 24, tzinfo=UTC)})
    path = report.write_json(tmp_path / "nested" / "run.json", data)
    loaded = json.loads(path.read_text())
    assert loaded["entries"][-1]["name"] == "Aggregated"
    assert loaded["meta"]["started"] == "2026-11-24 00:00:00+00:00"


def test_summary_json_of_an_empty_run_has_only_aggregated() -> None:
    summary = report.summary_json(StatsRegistry(start_time=START), 0.0, {})
    (entry,) = summary["entries"]
    assert entry["aggregated"] and entry["num_requests"] == 0
    assert set(entry["percentiles"].values()) == {None}


# ---------------------------------------------------------------------------------------------- console


def test_stats_table_shows_each_endpoint_then_a_rule_and_aggregated() -> None:
    lines = report.stats_table(registry(), 10.0).splitlines()
    assert lines[0].split()[:2] == ["Type", "Name"]
    assert [line.split()[1] for line in lines[2:6]] == ["/auth/login", "/auth/login", "/events/", "/missing"]
    assert set(lines[6]) == {"-", "|"}
    assert lines[7].split()[0] == "Aggregated"


def test_stats_table_shows_failures_with_ratio_and_rates_with_two_decimals() -> None:
    table = report.stats_table(registry(), 2.0)
    aggregated = table.splitlines()[-1].split()
    assert aggregated == ["Aggregated", "7", "1(14.29%)", "36", "1", "147", "20", "3.50", "0.50"]


def test_percentiles_table_is_titled_and_labels_every_percentile() -> None:
    stats = registry()
    lines = report.percentiles_table(stats).splitlines()
    assert lines[0] == "Response time percentiles (approximated)"
    assert lines[1].split() == ["Type", "Name", *LABELS, "#", "reqs"]
    assert len(LABELS) == len(PERCENTILES)
    expected = [str(round(stats.total.percentile(fraction))) for fraction in PERCENTILES]
    assert lines[-1].split() == ["Aggregated", *expected, "7"]
    assert expected[0] == "20" and expected[-1] == "147"


def test_failures_table_is_the_error_report() -> None:
    table = report.failures_table(registry())
    lines = table.splitlines()
    assert lines[0] == "Error report"
    assert lines[1].startswith("# occurrences")
    assert lines[3].split(maxsplit=1) == ["1", "GET /missing: HTTPError('404 Client Error')"]


def test_exceptions_table_lists_messages_only_when_any() -> None:
    stats = registry()
    assert report.exceptions_table(stats) == ""
    stats.record_exception("KeyError('id')", "tb")
    assert "KeyError('id')" in report.exceptions_table(stats)


def test_empty_run_renders_tables_without_failures_or_exceptions() -> None:
    stats = StatsRegistry(start_time=START)
    assert report.stats_table(stats, 0.0).splitlines()[-1].split() == [
        "Aggregated", "0", "0(0.00%)", "0", "0", "0", "0", "0.00", "0.00",
    ]
    assert report.percentiles_table(stats).splitlines()[-1].split() == ["Aggregated", *["N/A"] * 11, "0"]
    assert report.failures_table(stats) == ""
    summary = report.summary_tables(stats, 0.0)
    assert "Aggregated" in summary and "Error report" not in summary
