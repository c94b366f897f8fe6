"""The tables ``run_perf`` prints, in Locust's console layout: requests, percentiles, the server-side
breakdown, connections, the error report and exceptions.

Pure functions over a ``StatsRegistry``; the command decides where the text goes.
"""

from collections.abc import Callable, Sequence
from typing import Any

from tabulate import SEPARATING_LINE, DataRow, Line, TableFormat, tabulate

from perf.load.stats import PERCENTILE_LABELS, PERCENTILES, StatsEntry, StatsRegistry
from perf.reports import formats as fmt
from perf.reports.locust_csv import NOT_AVAILABLE

# Locust's console look: columns separated by one space, rule lines with "|" where columns meet.
_RULE = Line("", "-", "|", "")
_CONSOLE_FORMAT = TableFormat(
    lineabove=None, linebelowheader=_RULE, linebetweenrows=None, linebelow=None,
    headerrow=DataRow("", " ", ""), datarow=DataRow("", " ", ""), padding=0, with_header_hide=None,
)


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


def failures_table(stats: StatsRegistry) -> str:
    """Locust's "Error report", most frequent first; empty string when nothing failed (Locust prints nothing)."""
    if not stats.failures:
        return ""
    failures = sorted(stats.sorted_failures(), key=lambda f: -f.occurrences)
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


def ran_short(seconds: float | None, start: float | None, end: float | None) -> str:
    """``ran 15s`` when the run ended inside a stage (it ran there half a second less than its span, or more), else
    "": a stage's req/s is over the time it ran, so a table that shows its span must say so. The console and the
    run page's Stages section both say it by this rule."""
    if seconds is None or start is None or end is None or seconds >= end - start - 0.5:
        return ""
    return f"ran {fmt.duration(seconds)}"


def stages_table(stages: Sequence[Any]) -> str:
    """Each stage of the load profile: its span and target, req/s, percentiles, failures and how many of the
    thresholds it passed (``perf.load.stage_figures.StageFigures``); '' for a run without stages."""
    if not stages:
        return ""
    rows = []
    for stage in stages:
        total, span = stage.total, stage.span
        passed = sum(1 for verdict in stage.verdicts if verdict.ok)
        ran = ran_short(stage.seconds, span.start, span.end)
        rows.append([
            str(span.index + 1), f"{span.start:g}-{span.end:g}s" + (f" ({ran})" if ran else ""),
            f"{span.start_target:g} → {span.target:g}",
            str(total.num_requests), f"{stage.requests_per_second:.2f}",
            _console_ms(total.percentile(0.5)), _console_ms(total.percentile(0.95)),
            _console_ms(total.percentile(0.99)), f"{total.num_failures}({total.fail_ratio * 100:.2f}%)",
            f"{passed}/{len(stage.verdicts)}" if stage.verdicts else "-",
        ])
    headers = ["Stage", "Time", "Target", "# reqs", "req/s", "50%", "95%", "99%", "# fails", "Thresholds"]
    return "Per stage of the load profile\n" + _table(headers, rows, numeric_from=3)


def stage_verdict_lines(stages: Sequence[Any]) -> list[str]:
    """A line for each threshold a stage failed (the run's own verdicts are printed apart)."""
    return [f"FAIL stage {stage.span.index + 1}: {verdict.line()}" for stage in stages for verdict in stage.verdicts
            if not verdict.ok]


def capacity_table(capacity: dict[str, Any]) -> str:
    """A capacity search's steps in the order they ran (``PerfRun.capacity["steps"]``, docs/capacity.md): load,
    req/s, percentiles of the judged window, failures, the generator's CPU and whether the step passed."""
    steps = capacity.get("steps") or []
    if not steps:
        return ""
    rows = []
    for step in steps:
        result = "LIMIT" if step["generator_limited"] else "PASS" if step["passed"] else "FAIL"
        rows.append([
            str(step["index"] + 1), step["phase"], f"{step['load']:g}", str(step["requests"]),
            f"{step['requests_per_second']:.2f}", _console_ms(step["p50"]), _console_ms(step["p95"]),
            _console_ms(step["p99"]), f"{step['failures']}({step['failure_percent']:.2f}%)",
            f"{step['cpu_percent']:.0f}%", result,
        ])
    unit = "Users" if capacity["model"] == "users" else "Iter/s"
    headers = ["Step", "Phase", unit, "# reqs", "req/s", "50%", "95%", "99%", "# fails", "CPU", "Result"]
    return ("Capacity search: each step judged on its last "
            f"{capacity['settings']['hold']:g} s\n" + _table(headers, rows, numeric_from=2))


def capacity_step_line(step: dict[str, Any], unit: str) -> str:
    """One step as it is judged, for the progress output: ``step 3 (raise) 40 users: 99.5 req/s, p95 25 ms: PASS``."""
    result = "generator-limited" if step["generator_limited"] else "PASS" if step["passed"] else "FAIL"
    failed = [verdict["line"] for verdict in step["verdicts"] if not verdict["ok"]]
    return (f"step {step['index'] + 1} ({step['phase']}) {step['load']:g} {unit}: "
            f"{step['requests_per_second']:.1f} req/s, p95 {_console_ms(step['p95'])} ms, "
            f"{step['failure_percent']:.1f}% failed, CPU {step['cpu_percent']:.0f}%: {result}"
            + (f" ({'; '.join(failed)})" if failed else ""))
