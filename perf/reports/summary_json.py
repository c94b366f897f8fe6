"""The whole run as JSON (``--json``, the admin's download): every entry with its histogram, failures,
exceptions and samples, unrounded, so another program can redo any figure.
"""

import json
import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from perf.load.histogram import RATIO
from perf.load.history import POINT_FIELDS
from perf.load.stats import PERCENTILE_LABELS, PERCENTILES, Sample, StatsEntry, StatsRegistry
from perf.reports.description import RunDescription
from perf.reports.files import write_atomic


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


def summary_json(stats: StatsRegistry, duration: float, run: RunDescription) -> dict[str, Any]:
    """The whole run for ``--json``: unlike Locust's, it includes Aggregated (flagged, last); ``meta`` is the
    run's description (``RunDescription.as_json``), which ``perf_import`` reads back. A capacity search's result
    (its steps, capacity, USL fit and verdict) is also a key of its own, ``capacity`` (null for a load test), where
    a program reading the file looks for it first.

    Histograms are bucket key → count; ``histogram_ratio`` lets a reader turn key ``k`` back
    into milliseconds (``ratio ** (k + 0.5)``) without importing this package.
    """
    entries = [entry_json(entry, duration) for entry in stats.sorted_entries()]
    entries.append(entry_json(stats.total, duration, aggregated=True))
    return {
        "meta": run.as_json(),
        "capacity": run.capacity,
        "duration": duration,
        "start_time": stats.start_time,
        "histogram_ratio": RATIO,
        "percentiles": list(PERCENTILE_LABELS),
        "entries": entries,
        "failures": [asdict(failure) for failure in stats.sorted_failures()],
        "exceptions": [asdict(exception) for exception in stats.exceptions.values()],
        "samples": [sample_json(sample) for sample in stats.samples],
    }


def write_json(path: str | os.PathLike[str], data: dict[str, Any]) -> Path:
    """Write ``data`` as indented JSON, creating folders, all of it or nothing (``perf.reports.files``); values JSON
    cannot hold (a path among the options) become str."""
    return write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")
