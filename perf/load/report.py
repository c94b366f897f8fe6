"""Turn a finished run's StatsRegistry into console tables, Locust's CSV files and a JSON summary.

Pure functions over the registry, no Django: the command decides where output goes, this
module only decides what it looks like. Formats follow Locust 2.47 (docs/design.md,
"Output formats") so dashboards and scripts written for Locust's ``--csv`` files keep working unchanged.
"""

import csv
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, fields
from datetime import UTC, datetime
from math import isnan
from pathlib import Path
from typing import Any

from tabulate import SEPARATING_LINE, DataRow, Line, TableFormat, tabulate

from perf.load.histogram import RATIO
from perf.load.history import POINT_FIELDS, CurrentWindows, HistoryPoint, entry_percentiles, make_point
from perf.load.stats import (
    AGGREGATED,
    PERCENTILES,
    FailureEntry,
    Sample,
    StatsEntry,
    StatsRegistry,
    percentile_label,
)

PERCENTILE_LABELS = tuple(percentile_label(fraction) for fraction in PERCENTILES)
NOT_AVAILABLE = "N/A"
# Locust writes the node ids that raised an exception; a single-process run has one node.
LOCAL_NODE = "local"

# Header rows of Locust's four --csv files, verbatim (docs/design.md, "Output formats").
STATS_CSV_HEADER = (
    "Type", "Name", "Request Count", "Failure Count", "Median Response Time", "Average Response Time",
    "Min Response Time", "Max Response Time", "Average Content Size", "Requests/s", "Failures/s",
    "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%",
)
STATS_HISTORY_CSV_HEADER = (
    "Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s",
    "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%",
    "Total Request Count", "Total Failure Count", "Total Median Response Time", "Total Average Response Time",
    "Total Min Response Time", "Total Max Response Time", "Total Average Content Size",
)
FAILURES_CSV_HEADER = ("Method", "Name", "Error", "Occurrences", "First Seen", "Last Seen")
EXCEPTIONS_CSV_HEADER = ("Count", "Message", "Traceback", "Nodes")

CsvRow = list[Any]

# Locust's console look: columns separated by one space, rule lines with "|" where columns meet.
_RULE = Line("", "-", "|", "")
_CONSOLE_FORMAT = TableFormat(
    lineabove=None, linebelowheader=_RULE, linebetweenrows=None, linebelow=None,
    headerrow=DataRow("", " ", ""), datarow=DataRow("", " ", ""), padding=0, with_header_hide=None,
)


# ---------------------------------------------------------------------------------------------- console


def _table(headers: Sequence[str], rows: list[Any], numeric_from: int) -> str:
    """Text columns left, figures right; numparse off so ``0.00`` is not reprinted as ``0``."""
    align = ["left"] * numeric_from + ["right"] * (len(headers) - numeric_from)
    return tabulate(rows, headers=list(headers), tablefmt=_CONSOLE_FORMAT, disable_numparse=True, colalign=align)


def _rows_with_aggregated(stats: StatsRegistry, row: Callable[[StatsEntry], list[str]]) -> list[Any]:
    """Entries by (name, method), a rule, then Aggregated: the order of every Locust table."""
    rows: list[Any] = [row(entry) for entry in stats.sorted_entries()]
    if rows:
        rows.append(SEPARATING_LINE)
    rows.append(row(stats.total))
    return rows


def _console_ms(value: float | None) -> str:
    """Whole milliseconds, as Locust prints them; 0 before anything was measured."""
    return str(round(value)) if value is not None else "0"


def _stats_console_row(entry: StatsEntry, duration: float, rates: tuple[float, float] | None = None) -> list[str]:
    rps, fps = rates if rates is not None else (entry.rps(duration), entry.failures_per_second(duration))
    return [
        entry.method,
        entry.name,
        str(entry.num_requests),
        f"{entry.num_failures}({entry.fail_ratio * 100:.2f}%)",
        _console_ms(entry.avg_response_time),
        _console_ms(entry.min_response_time),
        _console_ms(entry.max_response_time),
        _console_ms(entry.median_response_time),
        f"{rps:.2f}",
        f"{fps:.2f}",
    ]


def stats_table(stats: StatsRegistry, duration: float,
                current: Callable[[StatsEntry], tuple[float, float]] | None = None) -> str:
    """Locust's request statistics table; rates are whole-run (requests / ``duration`` seconds), or
    ``current(entry)``'s (req/s, failures/s) for the table printed while the run goes (``--print-stats``)."""
    headers = ("Type", "Name", "# reqs", "# fails", "Avg", "Min", "Max", "Med", "req/s", "failures/s")

    def row(entry: StatsEntry) -> list[str]:
        return _stats_console_row(entry, duration, current(entry) if current is not None else None)

    return _table(headers, _rows_with_aggregated(stats, row), 2)


def _percentile_console_row(entry: StatsEntry) -> list[str]:
    if entry.num_requests:
        cells = [str(round(entry.percentile(fraction) or 0)) for fraction in PERCENTILES]
    else:
        cells = [NOT_AVAILABLE] * len(PERCENTILES)
    return [entry.method, entry.name, *cells, str(entry.num_requests)]


def percentiles_table(stats: StatsRegistry) -> str:
    """Locust's final percentile table, titled as Locust titles it."""
    headers = ("Type", "Name", *PERCENTILE_LABELS, "# reqs")
    table = _table(headers, _rows_with_aggregated(stats, _percentile_console_row), 2)
    return f"Response time percentiles (approximated)\n{table}"


def _sorted_failures(stats: StatsRegistry) -> list[FailureEntry]:
    return sorted(stats.failures.values(), key=lambda f: (f.name, f.method, f.error))


def failures_table(stats: StatsRegistry) -> str:
    """Locust's "Error report", most frequent first; empty string when nothing failed (Locust prints nothing)."""
    if not stats.failures:
        return ""
    failures = sorted(_sorted_failures(stats), key=lambda f: -f.occurrences)
    rows: list[Any] = [[str(f.occurrences), f"{f.method} {f.name}: {f.error}"] for f in failures]
    rows.append(SEPARATING_LINE)
    return f"Error report\n{_table(('# occurrences', 'Error'), rows, 2)}"


def exceptions_table(stats: StatsRegistry) -> str:
    """Exceptions raised by scenario code, most frequent first; empty string when there were none.

    Only the message: tracebacks are too long for a console and are kept in the CSV and JSON.
    """
    if not stats.exceptions:
        return ""
    exceptions = sorted(stats.exceptions.values(), key=lambda e: -e.count)
    rows: list[Any] = [[str(e.count), e.message] for e in exceptions]
    rows.append(SEPARATING_LINE)
    return f"Exceptions\n{_table(('# occurrences', 'Message'), rows, 2)}"


def _server_console_row(entry: StatsEntry) -> list[str]:
    server = entry.server
    if server is None:
        return [entry.method, entry.name, "0", *["-"] * 5]
    queries = server.avg_queries
    return [
        entry.method,
        entry.name,
        str(server.count),
        _console_ms(server.avg_app_time),
        _console_ms(server.p95_app_time),
        f"{server.avg_db_time or 0:.1f}",
        "-" if queries is None else f"{queries:.1f}",
        _console_ms(server.avg_network_time),
    ]


def server_table(stats: StatsRegistry) -> str:
    """Where the time went, from the backend's Server-Timing header; "" when it sent none.

    ``client−app`` is the client's time minus the app's: network, waiting for a free worker
    and server overhead. When it dominates, the server is queueing, not computing.
    """
    if stats.total.server is None:
        return ""
    headers = ("Type", "Name", "# timed", "App avg", "App p95", "DB avg", "Queries/req", "Client-app avg")
    table = _table(headers, _rows_with_aggregated(stats, _server_console_row), 2)
    return f"Server-side breakdown (ms, from Server-Timing)\n{table}"


def _connections_console_row(entry: StatsEntry) -> list[str]:
    return [entry.method, entry.name, str(entry.num_requests), str(entry.new_connections),
            str(entry.reopened_connections), f"{entry.connections_per_100:.1f}"]


def connections_table(stats: StatsRegistry) -> str:
    """TCP connections the generator opened, per endpoint; "" when none was counted (https targets).

    A kept-alive connection costs one handshake per user; "Reopened" counts those the server closed
    while the user was thinking, so a keep-alive shorter than the think time shows as a high rate.
    """
    if not stats.total.new_connections:
        return ""
    headers = ("Type", "Name", "# reqs", "Opened", "Reopened", "Opened/100 reqs")
    table = _table(headers, _rows_with_aggregated(stats, _connections_console_row), 2)
    return f"Connections (opened by the generator; reopened = closed by the server while idle)\n{table}"


def summary_tables(stats: StatsRegistry, duration: float) -> str:
    """Everything printed at the end of a run, the empty parts left out."""
    parts = (stats_table(stats, duration), percentiles_table(stats), server_table(stats), connections_table(stats),
             failures_table(stats), exceptions_table(stats))
    return "\n\n".join(part for part in parts if part) + "\n"


# ---------------------------------------------------------------------------------------------- CSV


def _percentile_cells(values: Iterable[float | None], measured: bool) -> list[Any]:
    """Whole milliseconds (Locust writes bucket keys, always integers); N/A for an entry without requests
    and for a figure not known (a "current" window without requests)."""
    if not measured:
        return [NOT_AVAILABLE] * len(PERCENTILES)
    return [NOT_AVAILABLE if value is None or isnan(value) else round(value) for value in values]


def _csv_percentiles(entry: StatsEntry) -> list[Any]:
    return _percentile_cells(entry_percentiles(entry, PERCENTILES), entry.num_requests > 0)


def _stats_csv_row(entry: StatsEntry, duration: float) -> CsvRow:
    """Cell types mirror Locust's: 0 (int) for median/min/max/size of an empty entry, raw floats otherwise.

    The percentiles come from one walk over the histogram (the file is rewritten every second)."""
    measured = entry.num_requests > 0
    percentiles = _csv_percentiles(entry)
    return [
        entry.method,
        entry.name,
        entry.num_requests,
        entry.num_failures,
        percentiles[PERCENTILES.index(0.5)] if measured else 0,
        entry.avg_response_time,
        entry.min_response_time or 0,
        entry.max_response_time if measured else 0,
        entry.avg_content_length if measured else 0,
        entry.rps(duration),
        entry.failures_per_second(duration),
        *percentiles,
    ]


def stats_csv_rows(stats: StatsRegistry, duration: float) -> list[CsvRow]:
    """Rows of ``_stats.csv``: entries by (name, method), then Aggregated with an empty Type."""
    return [_stats_csv_row(entry, duration) for entry in (*stats.sorted_entries(), stats.total)]


def _rate(value: float) -> str:
    """Locust formats history rates with ``:2f``, i.e. six decimals (``57.500000``)."""
    return f"{value:.6f}"


def history_start_row(start_time: float) -> CsvRow:
    """The row Locust writes as the run starts: no users, no figures yet."""
    return [int(start_time), 0, "", AGGREGATED, _rate(0), _rate(0), *[NOT_AVAILABLE] * len(PERCENTILES),
            0, 0, 0, 0.0, 0, 0, 0]


def history_point_row(point: HistoryPoint, method: str = "", name: str = AGGREGATED,
                      percentiles: Sequence[float | None] | None = None) -> CsvRow:
    """One row of ``_stats_history.csv`` from a history point (``perf.load.history``).

    Every figure is as of the point: percentiles cumulative over the run so far unless ``percentiles``
    (the "current" window of ``--csv-full-history``) replaces them, rates current over Locust's window,
    totals, median, min, max and average size as they stood. Cell types are those of ``_stats.csv``.
    """
    measured = point.requests > 0
    return [
        int(point.timestamp), int(point.users), method, name, _rate(point.rps), _rate(point.fps),
        *_percentile_cells(point.percentiles if percentiles is None else percentiles, measured),
        int(point.requests), int(point.failures),
        round(point.median) if measured else 0,
        point.average if measured else 0.0,
        point.minimum if measured else 0,
        point.maximum if measured else 0,
        point.content_size if measured else 0,
    ]


def full_history_rows(stats: StatsRegistry, point: HistoryPoint, windows: CurrentWindows) -> list[CsvRow]:
    """``--csv-full-history``: a row per endpoint then the Aggregated one, every row's percentiles over the
    last ~10 s ("current", as Locust switches them), rates current, totals as of the point."""
    rows = []
    for entry in stats.sorted_entries():
        entry_point = make_point(entry, point.timestamp, int(point.users), windows.rates(entry), PERCENTILES)
        rows.append(history_point_row(entry_point, entry.method, entry.name, windows.percentiles(entry, PERCENTILES)))
    rows.append(history_point_row(point, percentiles=windows.percentiles(stats.total, PERCENTILES, aggregated=True)))
    return rows


def _sample_fallback_row(sample: Sample, average: float | None) -> CsvRow:
    """A sample of a run stored before samples kept history points: what it knows, N/A for the rest.

    Its rates are over the 2 s since the previous sample (not Locust's 10 s window); the counts and the
    average (``average``, rebuilt exactly from the windows) are cumulative; nothing else was kept.
    """
    return [int(sample.timestamp), sample.users, "", AGGREGATED, _rate(sample.requests_per_second),
            _rate(sample.failures_per_second), *[NOT_AVAILABLE] * len(PERCENTILES),
            sample.total_requests, sample.total_failures, NOT_AVAILABLE,
            NOT_AVAILABLE if average is None else average, NOT_AVAILABLE, NOT_AVAILABLE, NOT_AVAILABLE]


def history_csv_rows(stats: StatsRegistry) -> list[CsvRow]:
    """Rows of ``_stats_history.csv`` from the registry's samples: the start row, then the Aggregated row of
    every history point the samples carry (about one a second; ``StatsRegistry.mark_second``).

    These are the rows ``--csv`` appended while the run went, less ``--csv-full-history``'s per-endpoint
    rows, so a stored run's download has the same history as the live file. Samples of runs stored before
    the points existed give one row each, with N/A for what they did not keep.
    """
    rows = [history_start_row(stats.start_time)]
    previous_requests, time_sum = 0, 0.0
    for sample in stats.samples:
        window_requests = sample.total_requests - previous_requests
        previous_requests = sample.total_requests
        if sample.avg_response_time is not None:
            time_sum += sample.avg_response_time * window_requests
        if sample.history:
            rows += [history_point_row(point) for point in sample.history]
        else:
            average = time_sum / sample.total_requests if sample.total_requests else None
            rows.append(_sample_fallback_row(sample, average))
    return rows


def utc_timestamp(epoch: float) -> str:
    """``2026-11-24T17:20:45Z``, the First/Last Seen format of Locust's failures file."""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def failures_csv_rows(stats: StatsRegistry) -> list[CsvRow]:
    """Rows of ``_failures.csv``, by (name, method, error) so reruns diff cleanly."""
    return [
        [f.method, f.name, f.error, f.occurrences, utc_timestamp(f.first_seen), utc_timestamp(f.last_seen)]
        for f in _sorted_failures(stats)
    ]


def exceptions_csv_rows(stats: StatsRegistry) -> list[CsvRow]:
    """Rows of ``_exceptions.csv`` in the order first raised, as Locust writes them."""
    return [[e.count, e.message, e.traceback, LOCAL_NODE] for e in stats.exceptions.values()]


def write_csv_file(path: Path, header: Sequence[str], rows: Iterable[CsvRow], mode: str = "w") -> None:
    """Default ``csv.writer`` dialect (``\\r\\n`` line ends, minimal quoting), as Locust writes.
    ``mode="a"`` appends rows (``header`` is then not written)."""
    with path.open(mode, newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if mode == "w":
            writer.writerow(header)
        writer.writerows(rows)


def replace_csv_file(path: Path, header: Sequence[str], rows: Iterable[CsvRow]) -> None:
    """Write beside ``path``, then rename over it: a reader sees the old file or the new one, never half."""
    scratch = path.with_name(path.name + ".tmp")
    try:
        write_csv_file(scratch, header, rows)
        os.replace(scratch, path)
    except OSError:
        scratch.unlink(missing_ok=True)
        raise


# What ``--csv PREFIX`` appends to the prefix, as Locust names its four files.
STATS_SUFFIX, HISTORY_SUFFIX, FAILURES_SUFFIX, EXCEPTIONS_SUFFIX = CSV_SUFFIXES = (
    "_stats.csv", "_stats_history.csv", "_failures.csv", "_exceptions.csv",
)


def rewritten_csv_files(stats: StatsRegistry, duration: float) -> dict[str, tuple[Sequence[str], list[CsvRow]]]:
    """Suffix → (header, rows) of the three files that hold the run as it stands (all but the history)."""
    return {
        STATS_SUFFIX: (STATS_CSV_HEADER, stats_csv_rows(stats, duration)),
        FAILURES_SUFFIX: (FAILURES_CSV_HEADER, failures_csv_rows(stats)),
        EXCEPTIONS_SUFFIX: (EXCEPTIONS_CSV_HEADER, exceptions_csv_rows(stats)),
    }


def csv_folder(prefix: str | os.PathLike[str]) -> str:
    """The prefix as text, its folders created (Locust takes the prefix as text: ``out/`` → ``out/_stats.csv``)."""
    base = os.fspath(prefix)
    folder = os.path.dirname(base)
    if folder:
        os.makedirs(folder, exist_ok=True)
    return base


def write_csv(prefix: str | os.PathLike[str], stats: StatsRegistry, duration: float) -> list[Path]:
    """Write Locust's four files ``PREFIX_stats.csv``, ``_stats_history.csv``, ``_failures.csv``,
    ``_exceptions.csv`` at once, from the registry (a stored run's download); folders in the prefix are
    created. Returns the paths written. ``run_perf --csv`` keeps them up to date as it goes instead
    (``perf.load.live``).

    ``duration`` (seconds) is the denominator of the whole-run Requests/s and Failures/s.
    """
    base = csv_folder(prefix)
    files = rewritten_csv_files(stats, duration)
    files[HISTORY_SUFFIX] = (STATS_HISTORY_CSV_HEADER, history_csv_rows(stats))
    paths = []
    for suffix in CSV_SUFFIXES:
        path = Path(base + suffix)
        write_csv_file(path, *files[suffix])
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------- JSON


def entry_json(entry: StatsEntry, duration: float, aggregated: bool = False) -> dict[str, Any]:
    """Every figure of one entry, unrounded, plus the raw fields ``StatsEntry.from_dict`` rebuilds it from."""
    return {
        **entry.to_dict(),
        "aggregated": aggregated,
        "fail_ratio": entry.fail_ratio,
        "avg_response_time": entry.avg_response_time,
        "median_response_time": entry.median_response_time,
        "percentiles": {label: entry.percentile(f) for label, f in zip(PERCENTILE_LABELS, PERCENTILES, strict=True)},
        "avg_content_length": entry.avg_content_length,
        "rps": entry.rps(duration),
        "failures_per_s": entry.failures_per_second(duration),
        "server_timing": None if entry.server is None else {
            "timed_requests": entry.server.count,
            "avg_app_time": entry.server.avg_app_time,
            "p95_app_time": entry.server.p95_app_time,
            "avg_db_time": entry.server.avg_db_time,
            "avg_queries": entry.server.avg_queries,
            "avg_client_minus_app_time": entry.server.avg_network_time,
        },
    }


def sample_json(sample: Sample) -> dict[str, Any]:
    """One point of the time series, its per-endpoint figures as ``{"METHOD name": [req/s, p95]}``."""
    data = {f.name: getattr(sample, f.name) for f in fields(sample)}
    data["endpoints"] = {name: list(figures) for name, figures in sample.endpoints.items()}
    # The stats-history points (perf.load.history) by field name, None where nothing was measured yet.
    data["history"] = [dict(zip(POINT_FIELDS, point, strict=True)) for point in sample.history.to_json()]
    return data


def summary_json(stats: StatsRegistry, duration: float, meta: dict[str, Any]) -> dict[str, Any]:
    """The whole run for ``--json``: unlike Locust's, it includes Aggregated (flagged, last).

    Histograms are bucket key → count; ``histogram_ratio`` lets a reader turn key ``k`` back
    into milliseconds (``ratio ** (k + 0.5)``) without importing this package.
    """
    entries = [entry_json(entry, duration) for entry in stats.sorted_entries()]
    entries.append(entry_json(stats.total, duration, aggregated=True))
    return {
        "meta": dict(meta),
        "duration": duration,
        "start_time": stats.start_time,
        "histogram_ratio": RATIO,
        "percentiles": list(PERCENTILE_LABELS),
        "entries": entries,
        "failures": [asdict(failure) for failure in _sorted_failures(stats)],
        "exceptions": [asdict(exception) for exception in stats.exceptions.values()],
        "samples": [sample_json(sample) for sample in stats.samples],
    }


def write_json(path: str | os.PathLike[str], data: dict[str, Any]) -> Path:
    """Write ``data`` as indented JSON, creating folders; values JSON cannot hold (dates in meta) become str."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return target
