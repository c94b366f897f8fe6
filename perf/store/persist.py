"""Saving a run as it goes and rebuilding it later: the only bridge between the engine and the models.

run_perf calls ``start_run`` once (a ``running`` row exists even if the process dies), ``save_progress``
every tick (the figures so far, for the admin's live page), and ``finish_run`` once at the end (or
again: it replaces what it wrote). ``perf.store.thread`` makes these calls from a thread of its own.
``load_registry`` turns stored rows back into a StatsRegistry so runs can be compared or merged.
"""

import json
import socket
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, overload

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from perf.load.history import HistoryPoints
from perf.load.stats import PERCENTILES, ExceptionEntry, FailureEntry, Sample, StatsEntry, StatsRegistry
from perf.models import EndpointStats, FailureStats, PerfPlan, PerfRun, StatsSample, percentile_field
from perf.store import liveness

FINAL_STATUSES = (PerfRun.Status.COMPLETED, PerfRun.Status.ABORTED, PerfRun.Status.FAILED)
# A sample's stats-history points ride in its ``endpoints`` JSON under this key, which no endpoint can have
# (theirs are "METHOD name", with a space). Samples stored before the points existed simply lack it.
HISTORY_KEY = "_history"
# Figures finish_run computes itself; **extra may set any other field (cpu_warning, error, ...).
_MEASURED = {
    "status", "actual_duration", "total_requests", "total_failures", "requests_per_second",
    "failures_per_second", "avg_response_time", "p50", "p95", "p99", "max_response_time", "exceptions",
}


class _LenientEncoder(DjangoJSONEncoder):
    """Command options may hold streams or paths (call_command(stdout=...)): keep their repr, not a crash."""

    def default(self, o: Any) -> Any:
        try:
            return super().default(o)
        except TypeError:
            return str(o)


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=_LenientEncoder))


@overload
def to_datetime(timestamp: float) -> datetime: ...
@overload
def to_datetime(timestamp: None) -> None: ...
def to_datetime(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, tz=UTC)


def to_timestamp(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _model_fields(model: type[models.Model]) -> set[str]:
    return {f.name for f in model._meta.concrete_fields if not f.primary_key}


def _check_fields(given: Iterable[str], allowed: set[str], caller: str) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise TypeError(f"{caller}() got unknown PerfRun fields {unknown}; allowed: {sorted(allowed)}")


def _blank_text_for_none(values: dict[str, Any]) -> None:
    """Options arrive as None when not given (``--label``); text columns store that as ''."""
    text_fields = {f.name for f in PerfRun._meta.concrete_fields if isinstance(f, models.CharField | models.TextField)}
    for key in text_fields & set(values):
        if values[key] is None:
            values[key] = ""


def start_run(**config: Any) -> PerfRun:
    """Write the ``running`` row before the first request, so even a killed run leaves a trace."""
    _check_fields(config, _model_fields(PerfRun), "start_run")
    _blank_text_for_none(config)
    config.setdefault("database_vendor", connection.vendor)
    config.setdefault("hostname", socket.gethostname()[:255])
    config["options"] = jsonable(config.get("options", {}))
    if "plan" not in config and config["options"].get("plan"):
        # run_perf --plan NAME: the run links to the plan by its row, so a renamed plan keeps its history.
        config["plan"] = PerfPlan.objects.filter(name=config["options"]["plan"]).first()
    config["status"] = PerfRun.Status.RUNNING
    return PerfRun.objects.create(**config)


def _sample_row(run: PerfRun, sample: Sample) -> StatsSample:
    return StatsSample(
        run=run,
        timestamp=to_datetime(sample.timestamp),
        elapsed=sample.elapsed,
        users=sample.users,
        requests_per_second=sample.requests_per_second,
        failures_per_second=sample.failures_per_second,
        p50=sample.p50,
        p95=sample.p95,
        p99=sample.p99,
        avg_response_time=sample.avg_response_time,
        total_requests=sample.total_requests,
        total_failures=sample.total_failures,
        endpoints=_endpoints_json(sample),
        target=sample.target,
        iterations_per_second=sample.iterations_per_second,
    )


def _endpoints_json(sample: Sample) -> dict[str, Any]:
    endpoints: dict[str, Any] = {name: list(figures) for name, figures in sample.endpoints.items()}
    if sample.history:
        endpoints[HISTORY_KEY] = sample.history.to_json()
    return endpoints


def _sample_from_row(row: StatsSample) -> Sample:
    endpoints = dict(row.endpoints or {})
    history = HistoryPoints.from_json(endpoints.pop(HISTORY_KEY, None))
    return Sample(
        timestamp=row.timestamp.timestamp(),
        elapsed=row.elapsed,
        users=row.users,
        requests_per_second=row.requests_per_second,
        failures_per_second=row.failures_per_second,
        p50=row.p50,
        p95=row.p95,
        p99=row.p99,
        avg_response_time=row.avg_response_time,
        total_requests=row.total_requests,
        total_failures=row.total_failures,
        endpoints={name: (figures[0], figures[1]) for name, figures in endpoints.items()},
        history=history,
        target=row.target,
        iterations_per_second=row.iterations_per_second,
    )


def add_samples(run: PerfRun, samples: Iterable[Sample]) -> None:
    """Store time-series points; a point already stored (same timestamp) is skipped, not duplicated."""
    rows = [_sample_row(run, sample) for sample in samples]
    if rows:
        StatsSample.objects.bulk_create(rows, ignore_conflicts=True)


def _endpoint_row(run: PerfRun, entry: StatsEntry, duration: float, aggregated: bool) -> EndpointStats:
    row = EndpointStats(
        run=run,
        method=entry.method,
        name=entry.name,
        is_aggregated=aggregated,
        num_requests=entry.num_requests,
        num_failures=entry.num_failures,
        avg_response_time=entry.avg_response_time,
        min_response_time=entry.min_response_time,
        max_response_time=entry.max_response_time,
        median_response_time=entry.median_response_time,
        avg_content_length=entry.avg_content_length,
        requests_per_second=entry.rps(duration),
        failures_per_second=entry.failures_per_second(duration),
        total_response_time=entry.total_response_time,
        total_content_length=entry.total_content_length,
        first_request_at=to_datetime(entry.first_request_at),
        last_request_at=to_datetime(entry.last_request_at),
        histogram=entry.histogram.to_json(),
        new_connections=entry.new_connections,
        reopened_connections=entry.reopened_connections,
    )
    server = entry.server
    if server is not None:
        row.server_timed_requests = server.count
        row.avg_app_time = server.avg_app_time
        row.p95_app_time = server.p95_app_time
        row.avg_db_time = server.avg_db_time
        row.avg_queries = server.avg_queries
        row.avg_network_time = server.avg_network_time
        row.server_timing = server.to_dict()
    for fraction in PERCENTILES:
        setattr(row, percentile_field(fraction), entry.percentile(fraction))
    return row


def _failure_row(run: PerfRun, failure: FailureEntry) -> FailureStats:
    return FailureStats(
        run=run,
        method=failure.method,
        name=failure.name,
        error=failure.error,
        occurrences=failure.occurrences,
        first_seen=to_datetime(failure.first_seen),
        last_seen=to_datetime(failure.last_seen),
    )


def _write_figures(locked: PerfRun, stats: StatsRegistry, duration: float) -> None:
    """Replace the run's endpoint and failure rows and set its headline figures (not saved yet)."""
    total = stats.total
    locked.endpoints.all().delete()
    locked.failures.all().delete()
    EndpointStats.objects.bulk_create(
        [_endpoint_row(locked, entry, duration, aggregated=False) for entry in stats.sorted_entries()]
        + [_endpoint_row(locked, total, duration, aggregated=True)]
    )
    FailureStats.objects.bulk_create([_failure_row(locked, failure) for failure in stats.failures.values()])
    add_samples(locked, stats.samples)
    measured = total.num_requests > 0
    locked.actual_duration = duration
    locked.total_requests = total.num_requests
    locked.total_failures = total.num_failures
    locked.requests_per_second = total.rps(duration)
    locked.failures_per_second = total.failures_per_second(duration)
    locked.avg_response_time = total.avg_response_time if measured else None
    locked.p50 = total.percentile(0.5)
    locked.p95 = total.percentile(0.95)
    locked.p99 = total.percentile(0.99)
    locked.max_response_time = total.max_response_time if measured else None
    locked.exceptions = [
        {"message": e.message, "traceback": e.traceback, "count": e.count} for e in stats.exceptions.values()
    ]


def save_progress(run: PerfRun, stats: StatsRegistry, duration: float) -> None:
    """The figures so far of a run still running (the admin's live page reads them).
    ``stats`` must not change meanwhile: pass a snapshot."""
    with transaction.atomic():
        locked = PerfRun.objects.select_for_update().get(pk=run.pk)
        liveness.revive(locked)  # taken for lost while it was only held up: its writes win
        if locked.status != PerfRun.Status.RUNNING:
            return  # finished meanwhile: what finish_run stored stays
        _write_figures(locked, stats, duration)
        locked.heartbeat_at = timezone.now()
        locked.save()


def control_requests(run: PerfRun | int) -> tuple[str, dict[str, Any] | None]:
    """What the admin asks of a running run, in one cheap read (polled by ``perf.store.thread`` every 0.5 s): who
    pressed Stop ("" when no one has), and the change of target last asked for from the live page (or None)."""
    pk = run if isinstance(run, int) else run.pk
    row = PerfRun.objects.filter(pk=pk).values_list("stop_requested_at", "stop_requested_by", "target_change").first()
    if row is None:
        return "", None
    asked_at, who, change = row
    return ("" if asked_at is None else (who or "someone")), change


def stop_requested_by(run: PerfRun | int) -> str:
    """Who pressed Stop in the admin for this run, or "" (``control_requests``' first half)."""
    return control_requests(run)[0]


def admin_stop_reason(who: str) -> str:
    """The stop reason of a run stopped from the admin: the same words whichever process heard it first."""
    return f"stopped from the admin by {who or 'someone'}"


def finish_run(run: PerfRun, stats: StatsRegistry, status: str, duration: float, **extra: Any) -> PerfRun:
    """Store the final figures in one transaction; calling it again replaces them (no duplicate rows).

    ``duration`` (seconds) divides the request counts into rates. ``extra`` sets other run fields,
    e.g. ``cpu_warning``, ``max_cpu_percent``, ``error`` or ``finished_at``. Samples still in
    ``stats.samples`` that ``add_samples`` has not stored yet are stored here.
    """
    if status not in FINAL_STATUSES:
        raise ValueError(f"finish_run() status must be one of {[s.value for s in FINAL_STATUSES]}, not {status!r}")
    _check_fields(extra, _model_fields(PerfRun) - _MEASURED, "finish_run")
    _blank_text_for_none(extra)
    with transaction.atomic():
        locked = PerfRun.objects.select_for_update().get(pk=run.pk)
        liveness.revive(locked)
        _write_figures(locked, stats, duration)
        locked.status = status
        locked.finished_at = timezone.now()
        for key, value in extra.items():
            setattr(locked, key, jsonable(value) if key == "options" else value)
        locked.save()
    run.refresh_from_db()
    return run


def _entry_from_row(row: EndpointStats) -> StatsEntry:
    return StatsEntry.from_dict(
        {
            "method": row.method,
            "name": row.name,
            "num_requests": row.num_requests,
            "num_failures": row.num_failures,
            "total_response_time": row.total_response_time,
            "min_response_time": row.min_response_time,
            "max_response_time": row.max_response_time,
            "total_content_length": row.total_content_length,
            "histogram": row.histogram,
            "first_request_at": to_timestamp(row.first_request_at),
            "last_request_at": to_timestamp(row.last_request_at),
            "server": row.server_timing or None,
            "new_connections": row.new_connections,
            "reopened_connections": row.reopened_connections,
        }
    )


def load_registry(run: PerfRun) -> StatsRegistry:
    """Rebuild the registry a run stored: entries with histograms, failures, exceptions and samples.

    The result is for reading, comparing and merging; it cannot continue sampling where the run left off.
    """
    registry = StatsRegistry(start_time=run.started_at.timestamp())
    for row in run.endpoints.all():
        entry = _entry_from_row(row)
        if row.is_aggregated:
            registry.total = entry
        else:
            registry.entries[(row.method, row.name)] = entry
    for failure in run.failures.all():
        registry.failures[(failure.method, failure.name, failure.error)] = FailureEntry(
            failure.method, failure.name, failure.error, failure.occurrences,
            failure.first_seen.timestamp(), failure.last_seen.timestamp(),
        )
    for item in run.exceptions or []:
        registry.exceptions[item["message"]] = ExceptionEntry(item["message"], item["traceback"], item["count"])
    registry.samples = [_sample_from_row(row) for row in run.samples.order_by("timestamp")]
    return registry
