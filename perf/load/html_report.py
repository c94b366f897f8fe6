"""``--html PATH``: one self-contained HTML file with a run's tables and charts, readable offline.

Modelled on Locust's HTML report (meta, request statistics, response-time percentiles, failures,
exceptions, charts), but with no script, stylesheet, font or image fetched from anywhere: the
CSS is inline and the charts are inline SVG from perf.charts. The figures come from the same
rows perf.load.report writes to CSV, so the HTML, the CSV files and the console never disagree.
The markup is well-formed XML as well as HTML, so tools (and tests) can parse it strictly.
"""

import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from perf import charts
from perf.load import report
from perf.load.stats import AGGREGATED, StatsRegistry

STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif; color: #111827;
       margin: 24px auto; max-width: 1200px; padding: 0 16px; line-height: 1.4; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #e5e7eb; padding-bottom: 4px; }
p.sub { color: #6b7280; margin-top: 0; }
table { border-collapse: collapse; font-size: 13px; margin-bottom: 8px; }
th, td { border: 1px solid #e5e7eb; padding: 4px 8px; vertical-align: top; }
th { background: #f3f4f6; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: 600; background: #f9fafb; }
table.meta th { width: 160px; }
.pass { color: #15803d; font-weight: 600; }
.fail { color: #b91c1c; font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
pre { margin: 0; font-size: 12px; white-space: pre-wrap; }
footer { color: #6b7280; font-size: 12px; margin-top: 32px; }
"""

Row = Sequence[Any]
# Columns of report.stats_csv_rows, shown under Locust's HTML report headers.
REQUEST_COLUMNS = (
    ("Type", 0, None), ("Name", 1, None), ("# Requests", 2, "int"), ("# Fails", 3, "int"),
    ("Median (ms)", 4, "ms"), ("Average (ms)", 5, "ms"), ("Min (ms)", 6, "ms"), ("Max (ms)", 7, "ms"),
    ("Average size (bytes)", 8, "int"), ("RPS", 9, "rate"), ("Failures/s", 10, "rate"),
)
FIRST_PERCENTILE_COLUMN = 11


def _cell(value: Any, kind: str | None) -> str:
    if kind is None:
        return f"<td>{escape(str(value))}</td>"
    if isinstance(value, int | float):
        # Integers (whole-ms medians and percentiles from the CSV rows) keep no decimals they never had.
        whole = isinstance(value, int) or value >= 100
        text = {"int": f"{value:,.0f}", "rate": f"{value:,.2f}"}.get(kind) or (
            f"{value:,.0f}" if whole else f"{value:.1f}")
    else:
        text = str(value)
    return f'<td class="num">{escape(text)}</td>'


def _table(headers: Iterable[str], rows: Iterable[str], css: str = "") -> str:
    head = "".join(f"<th>{escape(header)}</th>" for header in headers)
    class_attr = f' class="{css}"' if css else ""
    return f"<table{class_attr}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _row(cells: Iterable[str], total: bool = False) -> str:
    opening = '<tr class="total">' if total else "<tr>"
    return f"{opening}{''.join(cells)}</tr>"


def _is_total(row: Row) -> bool:
    return row[0] == "" and row[1] == AGGREGATED


def request_table(stats: StatsRegistry, duration: float) -> str:
    rows = [
        _row((_cell(row[index], kind) for _, index, kind in REQUEST_COLUMNS), _is_total(row))
        for row in report.stats_csv_rows(stats, duration)
    ]
    return _table((header for header, _, _ in REQUEST_COLUMNS), rows, "requests")


def percentile_table(stats: StatsRegistry, duration: float) -> str:
    rows = [
        _row([_cell(row[0], None), _cell(row[1], None),
              *(_cell(value, "int") for value in row[FIRST_PERCENTILE_COLUMN:])], _is_total(row))
        for row in report.stats_csv_rows(stats, duration)
    ]
    headers = ("Type", "Name", *(f"{label}ile (ms)" for label in report.PERCENTILE_LABELS))
    return _table(headers, rows, "percentiles")


def server_table(stats: StatsRegistry) -> str:
    """The Server-Timing breakdown, as the console prints it; "" when the backend sent no header."""
    if stats.total.server is None:
        return ""
    rows = []
    for entry in [*stats.sorted_entries(), stats.total]:
        server = entry.server
        figures = (
            [server.count, server.avg_app_time, server.p95_app_time, server.avg_db_time, server.avg_queries,
             server.avg_network_time] if server else [0, "-", "-", "-", "-", "-"]
        )
        rows.append(_row([_cell(entry.method, None), _cell(entry.name, None), _cell(figures[0], "int"),
                          *(_cell(value, None if value == "-" else "ms") for value in figures[1:])],
                         entry is stats.total))
    headers = ("Type", "Name", "# timed", "App avg (ms)", "App p95 (ms)", "DB avg (ms)", "Queries/req",
               "Client−app avg (ms)")
    table = _table(headers, rows, "server")
    return f'<section id="server-timing"><h2>Server-side breakdown (Server-Timing)</h2>{table}</section>'


def failure_table(stats: StatsRegistry) -> str:
    if not stats.failures:
        return '<p class="sub">No failures.</p>'
    failures = sorted(report.failures_csv_rows(stats), key=lambda row: -row[3])
    rows = [_row([_cell(method, None), _cell(name, None), _cell(error, None), _cell(count, "int"),
                  _cell(first, None), _cell(last, None)])
            for method, name, error, count, first, last in failures]
    return _table(("Method", "Name", "Error", "# Occurrences", "First seen", "Last seen"), rows, "failures")


def exception_table(stats: StatsRegistry) -> str:
    if not stats.exceptions:
        return '<p class="sub">No exceptions.</p>'
    rows = [_row([_cell(count, "int"), _cell(message, None), f"<td><pre>{escape(traceback)}</pre></td>"])
            for count, message, traceback, _ in sorted(report.exceptions_csv_rows(stats), key=lambda r: -r[0])]
    return _table(("Count", "Message", "Traceback"), rows, "exceptions")


def _verdict(ok: Any) -> str:
    if ok is None:
        return "<td>—</td>"
    return '<td class="pass">PASS</td>' if ok else '<td class="fail">FAIL</td>'


def _actual(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    return "—" if value is None else str(value)


def _measured(verdict: dict[str, Any]) -> str:
    """The actual figure with its unit: the tail of the verdict's printed line (``p95<500ms: 312 ms``)."""
    line = verdict.get("line")
    if isinstance(line, str) and ": " in line:
        return line.rpartition(": ")[2]
    return _actual(verdict.get("actual"))


def threshold_section(verdicts: Any) -> str:
    """``meta["thresholds"]``: [{expression, actual, ok, line, ...}], as PerfRun.thresholds stores them."""
    if not verdicts:
        return ""
    rows = [_row([_cell(item.get("expression", ""), None), _cell(_measured(item), None), _verdict(item.get("ok"))])
            for item in verdicts if isinstance(item, dict)]
    return f'<section id="thresholds"><h2>Thresholds</h2>{_table(("Threshold", "Actual", "Verdict"), rows)}</section>'


def audit_section(audit: Any) -> str:
    """``meta["audit"]``: {ok, checks: [{name, ok, detail}]}, as PerfRun.audit stores it."""
    if not isinstance(audit, dict) or not audit:
        return ""
    overall = '<span class="pass">passed</span>' if audit.get("ok") else '<span class="fail">failed</span>'
    rows = [_row([_cell(check.get("name", ""), None), _verdict(check.get("ok")), _cell(check.get("detail", ""), None)])
            for check in audit.get("checks", []) if isinstance(check, dict)]
    table = _table(("Check", "Verdict", "Detail"), rows) if rows else ""
    return f'<section id="audit"><h2>Data-integrity audit</h2><p>Audit {overall}.</p>{table}</section>'


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key} {count}" for key, count in sorted(value.items(), key=lambda item: -item[1]))
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return "—" if value in (None, "") else str(value)


def meta_section(stats: StatsRegistry, duration: float, meta: dict[str, Any]) -> str:
    """The run's identity and totals; meta keys this module does not know are listed too, not dropped."""
    total = stats.total
    known = {
        "Label": meta.get("label"), "Host": meta.get("host"), "Status": meta.get("status"),
        "Users": meta.get("users"), "Scenarios": meta.get("scenarios"), "User split": meta.get("user_split"),
        "Seed": meta.get("seed"),
        "Period": f"{_when(stats.start_time)} – {_when(stats.start_time + duration)}",
        "Duration": charts.format_elapsed(duration) if duration >= 1 else f"{duration:.1f}s",
        "Requests": f"{total.num_requests:,} ({total.rps(duration):,.2f} req/s)",
        "Failures": f"{total.num_failures:,} ({total.fail_ratio:.2%})",
    }
    handled = {"label", "host", "status", "users", "scenarios", "user_split", "seed", "thresholds", "audit"}
    extra = {key.replace("_", " ").capitalize(): value for key, value in meta.items() if key not in handled}
    rows = [f"<tr><th>{escape(name)}</th><td>{escape(_text(value))}</td></tr>"
            for name, value in {**known, **extra}.items()]
    return f'<section id="meta"><table class="meta"><tbody>{"".join(rows)}</tbody></table></section>'


def _distributions(stats: StatsRegistry) -> list[str]:
    endpoints = [
        (f"{entry.method} {entry.name}".strip(), entry.histogram.to_json()) for entry in stats.sorted_entries()
    ]
    endpoints.append((AGGREGATED, stats.total.histogram.to_json()))
    return charts.distribution_charts(endpoints)


def render_html(stats: StatsRegistry, duration: float, meta: dict[str, Any]) -> str:
    """The whole report as one string (write_html saves it)."""
    label = meta.get("label") or ""
    title = f"Load test report{': ' + label if label else ''}"
    sections = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">{escape(_text(meta.get("host")))} · {escape(_text(meta.get("status")))}</p>',
        meta_section(stats, duration, meta),
        threshold_section(meta.get("thresholds")),
        audit_section(meta.get("audit")),
        f'<section id="charts"><h2>Charts</h2><div class="charts">{"".join(charts.timeline_charts(stats.samples))}'
        "</div></section>",
        f'<section id="requests"><h2>Request statistics</h2>{request_table(stats, duration)}</section>',
        f'<section id="response-times"><h2>Response time statistics</h2>{percentile_table(stats, duration)}'
        "</section>",
        server_table(stats),
        f'<section id="distribution"><h2>Response-time distribution per endpoint</h2>'
        f'<div class="charts">{"".join(_distributions(stats))}</div></section>',
        f'<section id="failures"><h2>Failures statistics</h2>{failure_table(stats)}</section>',
        f'<section id="exceptions"><h2>Exceptions statistics</h2>{exception_table(stats)}</section>',
        f"<footer>Written by perfkit run_perf at {escape(_when(datetime.now(tz=UTC).timestamp()))}.</footer>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(part for part in sections if part)}</body></html>\n"
    )


def write_html(path: str | os.PathLike[str], stats: StatsRegistry, duration: float, meta: dict[str, Any]) -> Path:
    """Write the report to ``path`` (folders created) and return where it went."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(stats, duration, meta), encoding="utf-8")
    return target
