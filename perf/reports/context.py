"""Everything the run page and the ``--html`` report show, built once from (registry, duration, meta).

The admin page of a stored run, its live updates, its downloads and ``run_perf --html`` all go
through ``build_report``: a stored run is first turned back into a registry and a meta dict
(perf.reports.stored), so there is one code path for running, finished and never-stored runs.
The figures come from perf.reports's CSV row builders, as the console and the CSV files do,
and are formatted here (perf.reports.formats), so templates only lay them out.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils.safestring import SafeString, mark_safe

from perf.load.runner import cut_off_count
from perf.load.stats import AGGREGATED, PERCENTILE_LABELS, Sample, StatsEntry, StatsRegistry
from perf.reports import charts, locust_csv
from perf.reports import formats as fmt

# A scenario's own mark in an endpoint's name (docs/scenarios.md): the tables say what it means, once, below them.
BOTTLENECK_MARK = "[BOTTLENECK]"
# A running run whose process has not written for this long has probably died.
STALE_AFTER = 30.0
STATUS_CLASSES = {"running": "running", "completed": "completed", "aborted": "aborted", "failed": "failed",
                  "lost": "lost"}
P95_COLUMN = locust_csv.STATS_CSV_HEADER.index("95%")
P99_COLUMN = locust_csv.STATS_CSV_HEADER.index("99%")
FIRST_PERCENTILE_COLUMN = locust_csv.STATS_CSV_HEADER.index("50%")
# Meta keys shown elsewhere than in the options list.
SHOWN_ELSEWHERE = {
    "label", "status", "thresholds", "audit", "comparison", "shards", "options", "stop_requested_by", "error",
    "stop_reason", "cpu_warning", "heartbeat_at", "run_id", "started_at", "finished_at",
}


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    detail: str = ""
    wide: bool = False  # takes two cells: "1m 10s of 5m 00s" does not fit one


@dataclass(frozen=True)
class Check:
    """One line of a verdict: an audit check, or a threshold with its measured value and limit."""

    name: str
    ok: bool | None
    value: str = ""
    limit: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Verdicts:
    audit: bool | None = None  # None: no audit ran
    audit_checks: list[Check] = field(default_factory=list)
    thresholds: list[Check] = field(default_factory=list)
    comparison: dict[str, Any] | None = None

    @property
    def any(self) -> bool:
        return self.audit is not None or bool(self.thresholds) or self.comparison is not None

    @property
    def thresholds_ok(self) -> bool:
        return all(check.ok for check in self.thresholds)


@dataclass(frozen=True)
class Row:
    """One table row: the endpoint's identity, then its figures already formatted."""

    method: str
    name: str
    cells: list[str]
    aggregated: bool = False


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[Row]

    @property
    def marks_bottlenecks(self) -> bool:
        """Whether a name carries the scenario's ``[BOTTLENECK]`` mark, which the legend then explains."""
        return any(BOTTLENECK_MARK in row.name for row in self.rows)


@dataclass(frozen=True)
class Choice:
    key: str
    label: str
    selected: bool


@dataclass(frozen=True)
class EndpointCharts:
    key: str
    label: str
    svgs: list[SafeString]


@dataclass
class Report:
    """What the section templates read; ``admin`` is filled in by the admin view only."""

    title: str
    status: str
    status_class: str
    running: bool
    subtitle: list[str]
    notes: list[str]
    verdicts: Verdicts
    progress: list[Figure]
    progress_done: float | None
    starting: str  # "Starting: 3 of 10 users": what a running run says until its first figures are written
    figures: list[Figure]
    timeline: list[SafeString]
    choices: list[Choice]
    endpoint: EndpointCharts | None
    all_endpoints: list[EndpointCharts]
    endpoints: Table
    percentiles: Table
    server: Table | None
    connections: Table | None
    distributions: list[EndpointCharts]
    failures: list[list[str]]
    exceptions: list[list[str]]
    shards: list[dict[str, Any]]
    options: list[Figure]
    options_json: str
    meta: dict[str, Any]
    stop_requested_by: str = ""
    admin: dict[str, Any] = field(default_factory=dict)

    @property
    def progress_percent(self) -> int | None:
        return None if self.progress_done is None else round(self.progress_done * 100)

    @property
    def choices_selected(self) -> str | None:
        """The endpoint whose charts show first: the one asked for, else the slowest."""
        return next((choice.key for choice in self.choices if choice.selected), None)


def endpoint_key(entry: StatsEntry) -> str:
    """How samples name an endpoint: ``"GET /events/"`` (perf.load.stats.StatsRegistry.take_sample)."""
    return f"{entry.method} {entry.name}"


# ---------------------------------------------------------------------------------------------- header


def _verdicts(meta: dict[str, Any]) -> Verdicts:
    audit = meta.get("audit") if isinstance(meta.get("audit"), dict) and meta.get("audit") else None
    checks = [Check(str(item.get("name", "")), item.get("ok"), detail=str(item.get("detail") or ""))
              for item in (audit or {}).get("checks", []) if isinstance(item, dict)]
    thresholds = [_threshold(item) for item in meta.get("thresholds") or [] if isinstance(item, dict)]
    comparison = meta.get("comparison") if isinstance(meta.get("comparison"), dict) else None
    return Verdicts(None if audit is None else bool(audit.get("ok")), checks, thresholds, comparison)


def _threshold(verdict: dict[str, Any]) -> Check:
    """``p95<500ms``: measured ``312 ms`` against the limit ``< 500 ms``."""
    line, actual = verdict.get("line"), verdict.get("actual")
    if verdict.get("unit") == "ms" and isinstance(actual, int | float):
        measured = fmt.ms_unit(actual)  # whole ms, as every other time on the page
    elif isinstance(line, str) and ": " in line:
        measured = line.rpartition(": ")[2]  # with its unit: "3.33%", "41.2 req/s", "no requests were recorded"
    else:
        measured = fmt.MISSING if actual is None else f"{actual:,.2f}" if isinstance(actual, float) else str(actual)
    bound = verdict.get("limit")
    limit = (f"{verdict.get('operator', '')} {fmt.limit(bound, str(verdict.get('unit', '')))}".strip()
             if isinstance(bound, int | float) else "")
    return Check(str(verdict.get("expression", "")), bool(verdict.get("ok")), measured, limit)


def stop_note(reason: str) -> str:
    """How a run that did not simply complete ended, for the console and the page. A dead distributed shard
    (``perf.distributed``: its reason starts with "shard ") stopped nothing: the other shards ran to the end."""
    return f"A shard failed: {reason}" if reason.startswith(("shard ", "shards ")) else f"Stopped early: {reason}"


def _notes(meta: dict[str, Any], stats: StatsRegistry, running: bool, now: float | None) -> list[str]:
    notes = []
    if meta.get("error"):
        # A lost run's error is already its whole story ("lost: its process stopped answering at ...").
        notes.append(meta["error"] if meta.get("status") == "lost" else f"Failed: {meta['error']}")
    if meta.get("stop_reason"):
        notes.append(stop_note(str(meta["stop_reason"])))
    if meta.get("cpu_warning"):
        peak = meta.get("max_cpu_percent")
        at = f" (peak {peak:.0f}%)" if isinstance(peak, int | float) else ""
        notes.append(f"The load generator's CPU was saturated{at}: latencies may be inflated.")
    open_model = meta.get("open_model")
    if isinstance(open_model, dict) and open_model.get("dropped"):
        notes.append(f"Open model: {open_model['dropped']:,} of {open_model.get('scheduled', 0):,} iterations were "
                     "dropped (no free user): the server did not get the load asked for.")
    cut_off = cut_off_count(stats)
    if cut_off:
        notes.append(f"{cut_off:,} request{'s were' if cut_off != 1 else ' was'} still unanswered when the run's end "
                     "grace ran out: counted as failures (CutOff in the failures table).")
    # A process that died before its first progress write left only its start.
    heartbeat = meta.get("heartbeat_at") or meta.get("started_at")
    if running and now is not None and isinstance(heartbeat, int | float) and now - heartbeat > STALE_AFTER:
        notes.append(f"No progress written for {fmt.duration(now - heartbeat)}: the run's process may have died.")
    return notes


def _subtitle(stats: StatsRegistry, duration: float, meta: dict[str, Any]) -> list[str]:
    parts = [str(meta["host"])] if meta.get("host") else []
    parts.append(f"started {fmt.moment(meta.get('started_at') or stats.start_time)}")
    if meta.get("users") is not None:
        parts.append(fmt.plural(meta["users"], "user"))
    parts.append(fmt.duration(duration))
    return parts


def _title(meta: dict[str, Any]) -> str:
    label, run_id = meta.get("label") or "", meta.get("run_id")
    if run_id is not None:
        return f"Run {run_id}: {label}" if label else f"Run {run_id}"
    return f"Load test report: {label}" if label else "Load test report"


# ---------------------------------------------------------------------------------------------- figures


def _latest(stats: StatsRegistry) -> Sample | None:
    return stats.samples[-1] if stats.samples else None


def _progress(stats: StatsRegistry, duration: float, meta: dict[str, Any]) -> tuple[list[Figure], float | None]:
    """What a running run is doing now: elapsed of planned, and the last sample's window figures."""
    planned = meta.get("planned_duration")
    done = min(duration / planned, 1.0) if isinstance(planned, int | float) and planned > 0 else None
    elapsed = fmt.duration(duration) + (f" of {fmt.duration(planned)}" if done is not None else "")
    sample = _latest(stats)
    figures = [Figure("Elapsed", elapsed, f"{done:.0%}" if done is not None else "", wide=True)]
    if sample is not None:
        figures += [
            Figure("Users now", fmt.count(sample.users), f"of {fmt.count(meta['users'])} planned"
                   if isinstance(meta.get("users"), int) else ""),
            Figure("Requests/s", fmt.rate(sample.requests_per_second), "last 2 s"),
            Figure("Failures/s", fmt.rate(sample.failures_per_second), "last 2 s"),
            *(Figure(label, fmt.ms_unit(getattr(sample, label, None)), "last 10 s") for label in ("p50", "p95", "p99")),
        ]
    return figures, done


def _starting(stats: StatsRegistry, duration: float, meta: dict[str, Any]) -> str:
    """Until a running run's first figures are written: how many of its users have started, so the page
    says what is happening rather than showing zeros. Before the first sample the count is the spawn
    schedule's (one user at once, then one per 1/spawn rate), which the runner keeps to."""
    if stats.total.num_requests:
        return ""
    planned, rate = meta.get("users"), meta.get("spawn_rate")
    sample = _latest(stats)
    if sample is not None:
        started: int | None = sample.users
    elif isinstance(planned, int) and isinstance(rate, int | float) and rate > 0:
        started = min(planned, int(rate * max(duration, 0.0)) + 1)
    else:
        started = None
    if not isinstance(planned, int):
        return "Starting: no figures yet"
    if started is None:
        return f"Starting: {fmt.plural(planned, 'user')} planned, no figures yet"
    return f"Starting: {started:,} of {fmt.plural(planned, 'user')}"


def _figures(stats: StatsRegistry, duration: float, meta: dict[str, Any]) -> list[Figure]:
    total = stats.total
    measured = total.num_requests > 0
    error = 100.0 * total.num_failures / total.num_requests if measured else None
    return [
        Figure("Duration", fmt.duration(duration)),
        Figure("Users (planned)", fmt.count(meta.get("users"))),
        Figure("Requests", fmt.count(total.num_requests)),
        Figure("Failures", fmt.count(total.num_failures), fmt.percent(error) if measured else ""),
        Figure("Requests/s", fmt.rate(total.rps(duration))),
        Figure("Failures/s", fmt.rate(total.failures_per_second(duration))),
        Figure("Median", fmt.ms_unit(total.median_response_time)),
        Figure("p95", fmt.ms_unit(total.percentile(0.95))),
        Figure("p99", fmt.ms_unit(total.percentile(0.99))),
        Figure("Average", fmt.ms_unit(total.avg_response_time if measured else None)),
        Figure("Max", fmt.ms_unit(total.max_response_time if measured else None)),
    ]


# ---------------------------------------------------------------------------------------------- charts


def _safe(svgs: Sequence[str]) -> list[SafeString]:
    # perf.reports.charts escapes every text it draws; the SVG is markup to keep as it is.
    return [mark_safe(svg) for svg in svgs]


def _choices(stats: StatsRegistry, wanted: str | None) -> tuple[list[Choice], str | None]:
    """Endpoints to choose from in table order; the one asked for, else the slowest by p95."""
    entries = stats.sorted_entries()
    keys = [endpoint_key(entry) for entry in entries]
    chosen = wanted if wanted in keys else None
    if chosen is None and entries:
        chosen = endpoint_key(max(entries, key=lambda entry: entry.percentile(0.95) or -1.0))
    return [Choice(key, key.strip(), key == chosen) for key in keys], chosen


def _endpoint_charts(key: str, stats: StatsRegistry) -> EndpointCharts:
    return EndpointCharts(key, key.strip(), _safe(charts.endpoint_charts(key, stats.samples)))


def _distributions(stats: StatsRegistry) -> list[EndpointCharts]:
    """Each endpoint's response-time distribution, then the Aggregated one."""
    drawn = []
    for entry in [*stats.sorted_entries(), stats.total]:
        label = endpoint_key(entry).strip()
        drawn.append(EndpointCharts(label, label, _safe([charts.distribution_chart(label, entry.histogram.to_json())])))
    return drawn


# ---------------------------------------------------------------------------------------------- tables


def _ms_cell(value: Any) -> str:
    return fmt.ms(value) if isinstance(value, int | float) else fmt.MISSING


def _endpoint_table(stats: StatsRegistry, duration: float, running: bool) -> Table:
    """Locust's request statistics (web UI columns); "Current RPS" from the last 2 s while running."""
    headers = ["# Requests", "# Fails", "Median (ms)", "95%ile (ms)", "99%ile (ms)", "Average (ms)", "Min (ms)",
               "Max (ms)", "Average size (bytes)", "RPS", "Failures/s"]
    if running:
        headers.append("Current RPS")
    latest = _latest(stats)
    current = (getattr(latest, "endpoints", None) or {}) if latest else {}
    rows = []
    for row in locust_csv.stats_csv_rows(stats, duration):
        method, name = row[0], row[1]
        aggregated = method == "" and name == AGGREGATED
        key = f"{method} {name}"
        cells = [fmt.count(row[2]), fmt.count(row[3]), _ms_cell(row[4]), _ms_cell(row[P95_COLUMN]),
                 _ms_cell(row[P99_COLUMN]), _ms_cell(row[5] if row[2] else None), _ms_cell(row[6] if row[2] else None),
                 _ms_cell(row[7] if row[2] else None), fmt.count(row[8]), fmt.rate(row[9]), fmt.rate(row[10])]
        if running:
            now = latest.requests_per_second if aggregated and latest else (current.get(key) or [None])[0]
            cells.append(fmt.rate(now))
        rows.append(Row(method, name, cells, aggregated))
    return Table(headers, rows)


def _percentile_table(stats: StatsRegistry, duration: float) -> Table:
    headers = [f"{label}ile (ms)" for label in PERCENTILE_LABELS] + ["# Requests"]
    rows = [Row(row[0], row[1], [*(_ms_cell(value) for value in row[FIRST_PERCENTILE_COLUMN:]), fmt.count(row[2])],
                row[0] == "" and row[1] == AGGREGATED)
            for row in locust_csv.stats_csv_rows(stats, duration)]
    return Table(headers, rows)


def _server_table(stats: StatsRegistry) -> Table | None:
    """Where the time went, from the backend's Server-Timing header; None when it sent none.

    DB time keeps one decimal, as the console prints it: a query often takes less than a millisecond.
    """
    if stats.total.server is None:
        return None
    rows = []
    for entry in [*stats.sorted_entries(), stats.total]:
        server = entry.server
        cells = ([fmt.count(server.count), fmt.ms(server.avg_app_time), fmt.ms(server.p95_app_time),
                  fmt.tenths(server.avg_db_time), fmt.tenths(server.avg_queries), fmt.ms(server.avg_network_time)]
                 if server else ["0", *[fmt.MISSING] * 5])
        rows.append(Row(entry.method, entry.name, cells, entry is stats.total))
    headers = ["# Timed", "App avg (ms)", "App p95 (ms)", "DB avg (ms)", "Queries/req", "Client−app avg (ms)"]
    return Table(headers, rows)


def _connections_table(stats: StatsRegistry) -> Table | None:
    """TCP connections the generator opened per endpoint; None when none was counted (https, or an old run)."""
    if not stats.total.new_connections:
        return None
    rows = [Row(entry.method, entry.name,
                [fmt.count(entry.num_requests), fmt.count(entry.new_connections),
                 fmt.count(entry.reopened_connections), fmt.tenths(entry.connections_per_100)],
                entry is stats.total)
            for entry in [*stats.sorted_entries(), stats.total]]
    return Table(["# Requests", "Opened", "Reopened", "Opened per 100 requests"], rows)


def _seen(stamp: str) -> str:
    """``2026-11-24T17:20:45Z`` (the CSV's form) as ``2026-11-24 17:20:45 UTC``."""
    return stamp.replace("T", " ").removesuffix("Z") + " UTC"


def _failures(stats: StatsRegistry) -> list[list[str]]:
    rows = sorted(locust_csv.failures_csv_rows(stats), key=lambda row: -row[3])
    return [[method, name, error, fmt.count(occurrences), _seen(first), _seen(last)]
            for method, name, error, occurrences, first, last in rows]


def _exceptions(stats: StatsRegistry) -> list[list[str]]:
    rows = sorted(locust_csv.exceptions_csv_rows(stats), key=lambda row: -row[0])
    return [[fmt.count(number), message, traceback] for number, message, traceback, _ in rows]


# ---------------------------------------------------------------------------------------------- options


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key} {amount}" for key, amount in sorted(value.items(), key=lambda item: -item[1])) \
            if all(isinstance(amount, int | float) for amount in value.values()) else json.dumps(value)
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value) or fmt.MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    return fmt.MISSING if value in (None, "") else str(value)


OPTION_LABELS = {
    "host": "Host", "users": "Users", "spawn_rate": "Spawn rate (users/s)", "planned_duration": "Planned duration",
    "scenarios": "Scenarios", "user_split": "User split", "seed": "Seed", "wait": "Wait (s)",
    "git_revision": "Git revision", "database_vendor": "Database", "max_cpu_percent": "Generator CPU peak (%)",
    "open_model": "Open model",
}


def _options(stats: StatsRegistry, duration: float, meta: dict[str, Any]) -> list[Figure]:
    """The run's configuration; meta keys this module does not know are listed too, not dropped."""
    known = [
        Figure("Period", f"{fmt.moment(meta.get('started_at') or stats.start_time)} – "
                         f"{fmt.moment(meta.get('finished_at') or stats.start_time + duration)}"),
        Figure("Measured duration", fmt.duration(duration)),
    ]
    for key, label in OPTION_LABELS.items():
        if key in meta:
            value = meta[key]
            text = fmt.duration(value) if key == "planned_duration" and value is not None else _text(value)
            known.append(Figure(label, text))
    extra = [Figure(key.replace("_", " ").capitalize(), _text(value)) for key, value in meta.items()
             if key not in SHOWN_ELSEWHERE and key not in OPTION_LABELS]
    return known + extra


# ---------------------------------------------------------------------------------------------- the report


def build_report(stats: StatsRegistry, duration: float, meta: dict[str, Any], *, endpoint: str | None = None,
                 every_endpoint: bool = False, now: float | None = None) -> Report:
    """The whole report. ``endpoint`` picks the per-endpoint charts (``"GET /events/"``; default the slowest);
    ``every_endpoint`` draws them for each endpoint instead (a file has no server to ask for another one).
    ``now`` (epoch seconds) lets a running run notice a process that stopped writing."""
    status = str(meta.get("status") or "")
    running = status == "running"
    choices, chosen = _choices(stats, endpoint)
    progress, done = _progress(stats, duration, meta) if running else ([], None)
    return Report(
        title=_title(meta),
        status=status,
        status_class=STATUS_CLASSES.get(status, "unknown"),
        running=running,
        subtitle=_subtitle(stats, duration, meta),
        notes=_notes(meta, stats, running, now),
        verdicts=_verdicts(meta),
        progress=progress,
        progress_done=done,
        starting=_starting(stats, duration, meta) if running else "",
        figures=_figures(stats, duration, meta),
        timeline=_safe(charts.timeline_charts(stats.samples)),
        choices=choices,
        endpoint=None if chosen is None or every_endpoint else _endpoint_charts(chosen, stats),
        all_endpoints=[_endpoint_charts(choice.key, stats) for choice in choices] if every_endpoint else [],
        endpoints=_endpoint_table(stats, duration, running),
        percentiles=_percentile_table(stats, duration),
        server=_server_table(stats),
        connections=_connections_table(stats),
        distributions=_distributions(stats),
        failures=_failures(stats),
        exceptions=_exceptions(stats),
        shards=[shard for shard in meta.get("shards") or [] if isinstance(shard, dict)],
        options=_options(stats, duration, meta),
        options_json=json.dumps(meta["options"], indent=2, sort_keys=True, default=str) if meta.get("options") else "",
        meta=meta,
        stop_requested_by=str(meta.get("stop_requested_by") or ""),
    )

