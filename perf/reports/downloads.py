"""The files ``run_perf --csv/--json/--html`` write, made afterwards from a stored run.

Each is written by the very function the command uses (perf.reports, perf.reports.html_report)
into a scratch folder and read back, so a download is byte for byte what the option would have
written for the same figures, Locust's headers and cell formats included. The CSV history comes from
the points the stored samples carry (one a second): the rows ``--csv`` appended while the run went,
less the per-endpoint ones of ``--csv-full-history``.
"""

import io
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from perf.load.stats import StatsRegistry
from perf.reports import html_report, locust_csv, summary_json
from perf.reports.description import RunDescription


@dataclass(frozen=True)
class Download:
    kind: str
    label: str
    content_type: str
    extension: str


DOWNLOADS = (
    Download("csv", "CSV (Locust's 4 files, zip)", "application/zip", "zip"),
    Download("json", "JSON summary", "application/json", "json"),
    Download("html", "HTML report", "text/html; charset=utf-8", "html"),
)
BY_KIND = {download.kind: download for download in DOWNLOADS}


def csv_zip(stats: StatsRegistry, duration: float, prefix: str) -> bytes:
    """Locust's four CSV files (``PREFIX_stats.csv`` ...) in one zip."""
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="perf-csv-") as folder, \
            zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in locust_csv.write_csv(Path(folder) / prefix, stats, duration):
            archive.write(path, arcname=path.name)
    return buffer.getvalue()


def json_summary(stats: StatsRegistry, duration: float, run: RunDescription) -> bytes:
    with tempfile.TemporaryDirectory(prefix="perf-json-") as folder:
        summary = summary_json.summary_json(stats, duration, run)
        return summary_json.write_json(Path(folder) / "summary.json", summary).read_bytes()


def html_file(stats: StatsRegistry, duration: float, run: RunDescription) -> bytes:
    return html_report.render_html(stats, duration, run).encode("utf-8")


def make(kind: str, stats: StatsRegistry, duration: float, run: RunDescription, name: str) -> bytes:
    """The file of ``kind`` (``csv``, ``json``, ``html``); ``name`` prefixes the CSV files inside the zip."""
    if kind == "csv":
        return csv_zip(stats, duration, name)
    if kind == "json":
        return json_summary(stats, duration, run)
    if kind == "html":
        return html_file(stats, duration, run)
    raise KeyError(kind)
