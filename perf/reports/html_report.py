"""``--html PATH``: one self-contained HTML file with a run's verdicts, figures, charts and tables.

It is the admin run page's report, rendered from the same templates (perf.reports) with the
stylesheet inline: no script, stylesheet, font or image is fetched from anywhere, and the charts are
inline SVG from perf.reports.charts. The figures come from the same rows perf.reports writes to CSV, so
the HTML, the CSV files, the console and the admin never disagree. The markup after the doctype is
well-formed XML as well as HTML, so tools (and tests) can parse it strictly.

Rendering needs Django's template engine, i.e. configured settings: ``run_perf`` always has them.
"""

import os
from pathlib import Path

from perf.load.stats import StatsRegistry
from perf.reports.description import RunDescription
from perf.reports.files import write_atomic
from perf.reports.render import render_document
from perf.reports.report import build_report


def render_html(stats: StatsRegistry, duration: float, run: RunDescription) -> str:
    """The whole report as one string (write_html saves it).

    A file has no server to ask for another endpoint's charts, so it holds every endpoint's, each
    behind a disclosure, the slowest open.
    """
    return render_document(build_report(stats, duration, run, every_endpoint=True))


def write_html(path: str | os.PathLike[str], stats: StatsRegistry, duration: float, run: RunDescription) -> Path:
    """Write the report to ``path`` (folders created, all of it or nothing: ``perf.reports.files``); return where
    it went."""
    return write_atomic(path, render_html(stats, duration, run))
