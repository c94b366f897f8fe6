"""Everything the run page and the ``--html`` report show, built once from (registry, duration, description).

The admin page of a stored run, its live updates, its downloads and ``run_perf --html`` all go
through ``build_report``: a stored run is first turned back into a registry and a ``RunDescription``
(perf.reports.stored, perf.reports.description), the very type ``run_perf`` describes its run with at
the end, so there is one code path for running, finished and never-stored runs.
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
from perf.reports.capacity_view import CapacityView, capacity_view, kind_label
from perf.reports.console import ran_short
from perf.reports.description import ComparisonResult, RunDescription, ShardResult, StageResult, ThresholdResult
from perf.reports.profile_view import ProfileView, StageNow

# A scenario's own mark in an endpoint's name (docs/scenarios.md): the tables say what it means, once, below them.
BOTTLENECK_MARK = "[BOTTLENECK]"
# A running run whose process has not written for this long has probably died.
STALE_AFTER = 30.0
STATUS_CLASSES = {"running": "running", "completed": "completed", "aborted": "aborted", "failed": "failed",
                  "lost": "lost"}
P95_COLUMN = locust_csv.STATS_CSV_HEADER.index("95%")
P99_COLUMN = locust_csv.STATS_CSV_HEADER.index("99%")
FIRST_PERCENTILE_COLUMN = locust_csv.STATS_CSV_HEADER.index("50%")


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
    comparison: ComparisonResult | None = None

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
class StageRow:
    """One stage of the load profile, its figures formatted; ``verdicts`` line up with ``StagesTable.thresholds``
    (None where a stage holds no verdict for that threshold)."""

    name: str  # "stage 2 (50 → 200)"
    span: str  # "10s – 30s"
    ran: str  # "ran 12s" when the run ended inside the stage, else ""
    cells: list[str]
    verdicts: list[Check | None]

    @property
    def ok(self) -> bool:
        return all(check is None or check.ok for check in self.verdicts)


@dataclass(frozen=True)
class StagesTable:
    """The per-stage table of a run that followed a load profile laid out in stages."""

    unit: str  # what the targets in the stages' names count: "users" or "iterations/s"
    headers: list[str]
    thresholds: list[str]  # each threshold's expression, a column each
    rows: list[StageRow]


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
    shards: tuple[ShardResult, ...]
    options: list[Figure]
    options_json: str
    description: RunDescription
    stop_requested_by: str = ""
    profile: ProfileView | None = None
    stages: StagesTable | None = None
    capacity: CapacityView | None = None  # a capacity search's result, steps and fit (perf.reports.capacity_view)
    kind: str = ""  # "Capacity search" in the header of one; "" for a load test
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


def _verdicts(run: RunDescription) -> Verdicts:
    audit = run.audit
    checks = [Check(check.name, check.ok, detail=check.detail) for check in audit.checks] if audit else []
    return Verdicts(None if audit is None else audit.ok, checks, [_threshold(item) for item in run.thresholds],
                    run.comparison)


def _threshold(verdict: ThresholdResult) -> Check:
    """``p95<500ms``: measured ``312 ms`` against the limit ``< 500 ms``."""
    if verdict.unit == "ms" and verdict.actual is not None:
        measured = fmt.ms_unit(verdict.actual)  # whole ms, as every other time on the page
    elif ": " in verdict.line:
        measured = verdict.line.rpartition(": ")[2]  # with its unit: "3.33%", "41.2 req/s", "no requests were recorded"
    else:
        measured = fmt.MISSING if verdict.actual is None else f"{verdict.actual:,.2f}"
    limit = (f"{verdict.operator} {fmt.limit(verdict.limit, verdict.unit)}".strip()
             if verdict.limit is not None else "")
    return Check(verdict.expression, verdict.ok, measured, limit)


def stop_note(reason: str, status: str) -> str:
    """How a run that did not simply complete ended, for the console and the page. A run that ``failed`` with
    a stop reason lost a distributed shard (``perf.distributed.coordinator``), which stopped nothing: the other shards
    ran to the end."""
    return f"A shard failed: {reason}" if status == "failed" else f"Stopped early: {reason}"


def ending_notes(run: RunDescription) -> list[str]:
    """How the run ended when it did not simply complete: its error, and why it stopped early; the page's notes and
    the Markdown summary's heading say it in the same words."""
    notes = []
    if run.error:
        # A lost run's error is already its whole story ("lost: its process stopped answering at ...").
        notes.append(run.error if run.status == "lost" else f"Failed: {run.error}")
    if run.stop_reason:
        notes.append(stop_note(run.stop_reason, run.status))
    return notes


def _notes(run: RunDescription, stats: StatsRegistry, now: float | None) -> list[str]:
    notes = ending_notes(run)
    if run.cpu_warning:
        at = f" (peak {run.max_cpu_percent:.0f}%)" if run.max_cpu_percent is not None else ""
        notes.append(f"The load generator's CPU was saturated{at}: latencies may be inflated.")
    model = run.open_model
    if model is not None and model.dropped_iterations:
        notes.append(f"Open model: {model.dropped_iterations:,} of {model.scheduled_iterations:,} iterations were "
                     "dropped (no free user): the server did not get the load asked for.")
    cut_off = cut_off_count(stats)
    if cut_off:
        notes.append(f"{cut_off:,} request{'s were' if cut_off != 1 else ' was'} still unanswered when the run's end "
                     "grace ran out: counted as failures (CutOff in the failures table).")
    # A process that died before its first progress write left only its start.
    heartbeat = run.heartbeat_at or run.started_at
    if run.running and now is not None and heartbeat is not None and now - heartbeat > STALE_AFTER:
        notes.append(f"No progress written for {fmt.duration(now - heartbeat)}: the run's process may have died.")
    return notes


def _subtitle(stats: StatsRegistry, duration: float, run: RunDescription) -> list[str]:
    parts = [run.host] if run.host else []
    parts.append(f"started {fmt.moment(run.started_at or stats.start_time)}")
    if run.users is not None and not run.is_capacity:  # a search's load changes step by step: its section says
        parts.append(fmt.plural(run.users, "user"))
    parts.append(fmt.duration(duration))
    return parts


def _title(run: RunDescription) -> str:
    if run.run_id is not None:
        return f"Run {run.run_id}: {run.label}" if run.label else f"Run {run.run_id}"
    what = "Capacity search report" if run.is_capacity else "Load test report"
    return f"{what}: {run.label}" if run.label else what


def _elapsed(run: RunDescription, duration: float, now: float | None) -> float:
    """Seconds since the run's start: a running run's clock goes on between its process's writes."""
    if run.running and now is not None and run.started_at is not None:
        return max(now - run.started_at, duration)
    return duration


# ---------------------------------------------------------------------------------------------- figures


def _latest(stats: StatsRegistry) -> Sample | None:
    return stats.samples[-1] if stats.samples else None


def _progress(stats: StatsRegistry, duration: float, run: RunDescription, profile: ProfileView | None = None
              ) -> tuple[list[Figure], float | None]:
    """What a running run is doing now: elapsed of planned, the stage under way when it has a profile, and the last
    sample's window figures."""
    planned = run.planned_duration
    done = min(duration / planned, 1.0) if planned is not None and planned > 0 else None
    elapsed = fmt.duration(duration) + (f" of {fmt.duration(planned)}" if done is not None else "")
    sample = _latest(stats)
    figures = [Figure("Elapsed", elapsed, f"{done:.0%}" if done is not None else "", wide=True)]
    stage = profile.now(duration) if profile is not None else None
    if profile is not None and stage is not None:
        figures += _stage_figures(stage, profile.unit)
    if sample is not None:
        figures += [
            Figure("Users now", fmt.count(sample.users), f"of {fmt.count(run.users)} {_users_word(run)[1]}"
                   if run.users is not None else ""),
            Figure("Requests/s", fmt.rate(sample.requests_per_second), "last 2 s"),
            Figure("Failures/s", fmt.rate(sample.failures_per_second), "last 2 s"),
            *(Figure(label, fmt.ms_unit(getattr(sample, label, None)), "last 10 s") for label in ("p50", "p95", "p99")),
        ]
    return figures, done


def _stage_figures(stage: StageNow, unit: str) -> list[Figure]:
    """``Stage 2 of 3`` (ramping 50 → 200 users), the target now, and the time left in the stage."""
    span = stage.span
    how = (f"holding {span.target:g} {unit}" if stage.holding
           else f"ramping {span.start_target:g} → {span.target:g} {unit}")
    return [
        Figure("Stage", f"{span.index + 1} of {stage.count}", how),
        Figure("Target now", f"{stage.target:,.0f}" if unit == "users" else f"{stage.target:,.1f}", unit),
        Figure("Left in stage", fmt.duration(stage.left), f"of {fmt.duration(span.end - span.start)}"),
    ]


def _starting(stats: StatsRegistry, duration: float, run: RunDescription) -> str:
    """Until a running run's first figures are written: how many of its users have started, so the page
    says what is happening rather than showing zeros. Before the first sample the count is the spawn
    schedule's (one user at once, then one per 1/spawn rate), which the runner keeps to."""
    if stats.total.num_requests:
        return ""
    planned, rate = run.users, run.spawn_rate
    sample = _latest(stats)
    if sample is not None:
        started: int | None = sample.users
    elif planned is not None and rate is not None and rate > 0:
        started = min(planned, int(rate * max(duration, 0.0)) + 1)
    else:
        started = None
    if planned is None:
        return "Starting: no figures yet"
    if started is None:
        return f"Starting: {fmt.plural(planned, 'user')} planned, no figures yet"
    return f"Starting: {started:,} of {fmt.plural(planned, 'user')}"


def _users_word(run: RunDescription) -> tuple[str, str]:
    """What a run's users number is: planned for a load test; a capacity search's ceiling (it steps below it), or
    the open model's pool."""
    search = run.capacity_result
    if search is None:
        return "planned", "planned"
    return ("ceiling", "at most") if search.model == "users" else ("pool", "in the pool")


def _figures(stats: StatsRegistry, duration: float, run: RunDescription) -> list[Figure]:
    total = stats.total
    measured = total.num_requests > 0
    error = 100.0 * total.num_failures / total.num_requests if measured else None
    return [
        Figure("Duration", fmt.duration(duration)),
        Figure(f"Users ({_users_word(run)[0]})", fmt.count(run.users)),
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


def _endpoint_charts(key: str, stats: StatsRegistry, marks: Sequence[float] = ()) -> EndpointCharts:
    return EndpointCharts(key, key.strip(), _safe(charts.endpoint_charts(key, stats.samples, marks)))


def _target_line(profile: ProfileView | None) -> charts.TargetLine | None:
    """What the profile asked for at each sample, drawn beside what the run did."""
    if profile is None or not profile.targets:
        return None
    return charts.TargetLine(profile.kind, profile.targets)


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


# ---------------------------------------------------------------------------------------------- stages

STAGE_HEADERS = ["Time", "# Requests", "Req/s", "p50 (ms)", "p95 (ms)", "p99 (ms)", "Failures"]


def _stage_verdicts(stage: StageResult) -> dict[str, Check]:
    """The stage's threshold verdicts by expression, written as the thresholds section writes the run's (one that
    does not hold the stored layout was left out when the stage was read)."""
    return {verdict.expression: _threshold(verdict) for verdict in stage.thresholds if verdict.expression}


def _stage_span(start: float | None, end: float | None) -> str:
    """``0s – 30s``, ``30s – 2m 30s``: where the stage lies on the run's clock."""
    def at(seconds: float | None) -> str:
        return "0s" if seconds == 0 else fmt.duration(seconds)
    return f"{at(start)} – {at(end)}"


def _stage_row(stage: StageResult, position: int, expressions: list[str], verdicts: dict[str, Check]) -> StageRow:
    name = stage.name or f"stage {(stage.index if stage.index is not None else position) + 1}"
    start, end, seconds = stage.start, stage.end, stage.seconds
    requests, failures = stage.requests, stage.failures
    error = 100.0 * failures / requests if requests and failures is not None else None
    cells = [fmt.count(requests), fmt.rate(stage.requests_per_second), fmt.ms(stage.p50), fmt.ms(stage.p95),
             fmt.ms(stage.p99), fmt.count(failures) + (f" ({fmt.percent(error)})" if error is not None else "")]
    return StageRow(name, _stage_span(start, end), ran_short(seconds, start, end), cells,
                    [verdicts.get(expression) for expression in expressions])


def _stages(run: RunDescription) -> StagesTable | None:
    """Each stage's own figures and verdicts (``RunDescription.stage_results``, as ``perf.load.stage_figures``
    wrote them); None for a run without stages. The thresholds' columns follow the run's own order."""
    stages = run.stage_results
    if not stages:
        return None
    verdicts = [_stage_verdicts(stage) for stage in stages]
    expressions = [item.expression for item in run.thresholds if item.expression]
    for found in verdicts:
        expressions += [expression for expression in found if expression not in expressions]
    rows = [_stage_row(stage, position, expressions, found)
            for position, (stage, found) in enumerate(zip(stages, verdicts, strict=True))]
    unit = "iterations/s" if run.profile is not None and run.profile.kind == "rate" else "users"
    return StagesTable(unit, STAGE_HEADERS, expressions, rows)


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


def _options(stats: StatsRegistry, duration: float, run: RunDescription) -> list[Figure]:
    """The run's configuration, as it was asked for and where it ran."""
    figures = [
        Figure("Period", f"{fmt.moment(run.started_at or stats.start_time)} – "
                         f"{fmt.moment(run.finished_at or stats.start_time + duration)}"),
        Figure("Measured duration", fmt.duration(duration)),
        Figure("Host", _text(run.host)),
        Figure("Users", _text(run.users)),
        Figure("Spawn rate (users/s)", _text(run.spawn_rate)),
        Figure("Planned duration", fmt.duration(run.planned_duration) if run.planned_duration is not None
               else fmt.MISSING),
        Figure("Scenarios", _text(run.scenarios)),
        Figure("User split", _text(run.user_split)),
        Figure("Seed", _text(run.seed)),
        Figure("Wait (s)", _text(run.wait)),
        Figure("Git revision", _text(run.git_revision)),
        Figure("Database", _text(run.database_vendor)),
        Figure("Generator CPU peak (%)", _text(run.max_cpu_percent)),
    ]
    if run.open_model is not None:
        figures.append(Figure("Open model", _text(run.open_model.as_json())))
    return figures


# ---------------------------------------------------------------------------------------------- the report


def build_report(stats: StatsRegistry, duration: float, run: RunDescription, *, endpoint: str | None = None,
                 every_endpoint: bool = False, now: float | None = None) -> Report:
    """The whole report. ``endpoint`` picks the per-endpoint charts (``"GET /events/"``; default the slowest);
    ``every_endpoint`` draws them for each endpoint instead (a file has no server to ask for another one).
    ``now`` (epoch seconds) lets a running run notice a process that stopped writing. A run with a load profile
    shows the stage under way, and its charts the target line and the stage boundaries."""
    running = run.running
    profile = ProfileView.of(run.profile, stats.samples)
    choices, chosen = _choices(stats, endpoint)
    progress, done = _progress(stats, duration, run, profile) if running else ([], None)
    marks = profile.boundaries if profile is not None else ()
    return Report(
        title=_title(run),
        status=run.status,
        status_class=STATUS_CLASSES.get(run.status, "unknown"),
        running=running,
        subtitle=_subtitle(stats, duration, run),
        notes=_notes(run, stats, now),
        verdicts=_verdicts(run),
        progress=progress,
        progress_done=done,
        starting=_starting(stats, duration, run) if running else "",
        figures=_figures(stats, duration, run),
        timeline=_safe(charts.timeline_charts(stats.samples, _target_line(profile), marks)),
        choices=choices,
        endpoint=None if chosen is None or every_endpoint else _endpoint_charts(chosen, stats, marks),
        all_endpoints=[_endpoint_charts(choice.key, stats, marks) for choice in choices] if every_endpoint else [],
        endpoints=_endpoint_table(stats, duration, running),
        percentiles=_percentile_table(stats, duration),
        server=_server_table(stats),
        connections=_connections_table(stats),
        distributions=_distributions(stats),
        failures=_failures(stats),
        exceptions=_exceptions(stats),
        shards=run.shards,
        options=_options(stats, duration, run),
        options_json=json.dumps(run.options, indent=2, sort_keys=True, default=str) if run.options else "",
        description=run,
        stop_requested_by=run.stop_requested_by,
        profile=profile,
        stages=_stages(run),
        capacity=capacity_view(run.capacity_result, _elapsed(run, duration, now)) if run.is_capacity else None,
        kind=kind_label(run.is_capacity),
    )
