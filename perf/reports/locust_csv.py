"""Locust's four ``--csv`` files, byte for byte in their headers and cell formats (docs/design.md,
"Output formats"), so dashboards and scripts written for Locust's files keep working unchanged.

Pure functions over a ``StatsRegistry`` and its history points, plus the writers; ``perf.reports.live_csv``
writes the files while a run goes, ``write_csv`` at its end and for a stored run's download.
"""

import csv
import io
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from math import isnan
from pathlib import Path
from typing import Any

from perf.load.history import HistoryPoint, entry_percentiles, make_point
from perf.load.stats import AGGREGATED, PERCENTILES, Sample, StatsEntry, StatsRegistry
from perf.reports.files import write_atomic
from perf.reports.windows import CurrentWindows

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
        for f in stats.sorted_failures()
    ]


def exceptions_csv_rows(stats: StatsRegistry) -> list[CsvRow]:
    """Rows of ``_exceptions.csv`` in the order first raised, as Locust writes them."""
    return [[e.count, e.message, e.traceback, LOCAL_NODE] for e in stats.exceptions.values()]


def csv_text(rows: Iterable[CsvRow]) -> str:
    """Rows in the default ``csv.writer`` dialect (``\\r\\n`` line ends, minimal quoting), as Locust writes."""
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


def write_csv_file(path: Path, header: Sequence[str], rows: Iterable[CsvRow], mode: str = "w") -> None:
    """Replace ``path`` whole (``perf.reports.files.write_atomic``: a reader sees the old file or the new one, never
    half). ``mode="a"`` appends rows instead (``header`` is then not written), all of them or none: a
    file that cannot grow (a full disk) is cut back to where it was, so ``tail -f`` never sees half a row."""
    if mode == "w":
        write_atomic(path, csv_text([list(header), *rows]), newline="")
        return
    text = csv_text(rows).encode("utf-8")
    with path.open("ab") as handle:
        size = handle.tell()
        try:
            handle.write(text)
            handle.flush()
        except OSError:
            handle.truncate(size)
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
    (``perf.reports.live_csv``).

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
