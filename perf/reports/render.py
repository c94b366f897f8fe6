"""The report's sections, rendered from one set of templates for the admin page, its live updates and the file.

A page is a list of sections, each one template reading the ``Report`` (perf.reports.report).
The admin page includes them all; its live view (``<pk>/live/``) renders the same templates again
and the page's script swaps each ``[data-perf-section=name]`` in place; ``--html`` wraps them in a
standalone document. So a running run's page and a finished run's file cannot drift apart.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.http import HttpRequest
from django.template.loader import render_to_string

from perf.reports.report import Report

TEMPLATES = "perf/report"


@dataclass(frozen=True)
class Section:
    """``name`` is what the live view and the script call it; ``id`` its anchor on the page."""

    name: str
    id: str
    shown: Callable[[Report], bool] = lambda report: True

    @property
    def template(self) -> str:
        return f"{TEMPLATES}/sections/{self.name}.html"


SECTIONS = (
    Section("header", "summary"),
    # A capacity search's result first: its figures below are over every step of the search together.
    Section("capacity", "capacity", lambda report: report.capacity is not None),
    Section("figures", "figures"),
    Section("stages", "stages", lambda report: report.stages is not None),
    Section("charts", "charts"),
    Section("endpoints", "requests"),
    Section("percentiles", "response-times"),
    Section("server", "server-timing", lambda report: report.server is not None),
    Section("connections", "connections", lambda report: report.connections is not None),
    Section("distribution", "distribution"),
    Section("failures", "failures"),
    Section("shards", "shards", lambda report: bool(report.shards)),
    Section("options", "options"),
)
LAST = "options"  # after the admin's label and notes form, collapsed


@dataclass(frozen=True)
class Placed:
    """A section as one page shows it: whether it has anything to show for this report."""

    section: Section
    present: bool

    @property
    def name(self) -> str:
        return self.section.name

    @property
    def id(self) -> str:
        return self.section.id

    @property
    def template(self) -> str:
        return self.section.template


def place(report: Report) -> list[Placed]:
    return [Placed(section, section.shown(report)) for section in SECTIONS]


def render_sections(report: Report, request: HttpRequest | None = None) -> dict[str, str]:
    """Section name → its inner HTML ("" when it has nothing to show): the live view's payload."""
    return {
        placed.name: render_to_string(placed.template, {"report": report}, request=request) if placed.present else ""
        for placed in place(report)
    }


def render_document(report: Report) -> str:
    """The standalone HTML file: every section with something to show, the stylesheet inline, no script."""
    written = datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    sections = [placed for placed in place(report) if placed.present]
    return render_to_string(f"{TEMPLATES}/document.html", {"report": report, "sections": sections,
                                                            "written": written})
