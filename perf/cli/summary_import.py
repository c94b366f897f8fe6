"""A run's JSON summary read back and stored: the way back from ``perf.reports.summary_json``.

When the database refuses a run's final save, ``run_perf`` keeps the whole summary in a file (exit 6)
and the stored row holds only its last progress write, some seconds short of what the console
printed. ``manage.py perf_import FILE`` stores that file once the database answers: the same row
when the file names it (``meta.unsaved`` with ``meta.run_id``), finished with every figure, failure,
exception and sample the console saw. Any ``--json`` summary can be imported the same way, as a new run.
The ``meta`` is read by ``RunDescription.from_json``, which also reads summaries written before it existed.
"""

import json
import os
from dataclasses import fields, replace
from typing import Any

from django.db import connection, transaction

from perf.load.history import POINT_FIELDS, HistoryPoints
from perf.load.stats import Sample, StatsRegistry
from perf.models import PerfRun
from perf.reports.description import CAPACITY, RunDescription
from perf.store import persist

# A sample's fields that a summary may lack (written before they existed) or holds in another form.
_LATER_FIELDS = ("endpoints", "history", "target", "iterations_per_second")


def read_summary(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The summary in ``path``; ValueError (one line) when it cannot be read or is not a run's summary."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not JSON ({exc}); a truncated file cannot be imported") from None
    missing = [key for key in ("meta", "duration", "start_time", "entries")
               if not isinstance(data, dict) or key not in data]
    if missing:
        raise ValueError(f"{path} is not a run summary written by run_perf (no {', '.join(missing)})")
    return data


def registry_from_summary(data: dict[str, Any]) -> StatsRegistry:
    """Every entry (Aggregated included), failure, exception and sample of the summary, as the run had them;
    ValueError when they are not shaped as run_perf writes them."""
    try:
        return _registry(data)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a run summary written by run_perf ({type(exc).__name__}: {exc})") from None


def _registry(data: dict[str, Any]) -> StatsRegistry:
    """The tables through the registry's own JSON reader (the summary lists Aggregated among the entries,
    flagged), then the start and the time series, which that form leaves out."""
    entries = data["entries"]
    registry = StatsRegistry.from_json({
        "entries": [item for item in entries if not item.get("aggregated")],
        "total": next((item for item in entries if item.get("aggregated")), None),
        "failures": data.get("failures", []),
        "exceptions": data.get("exceptions", []),
    })
    registry.start_time = data["start_time"]
    registry.samples = [_sample(item) for item in data.get("samples", [])]
    return registry


def _sample(data: dict[str, Any]) -> Sample:
    plain = {f.name: data[f.name] for f in fields(Sample) if f.name not in _LATER_FIELDS}
    endpoints = {name: tuple(figures) for name, figures in data.get("endpoints", {}).items()}
    history = HistoryPoints.from_json([[point[name] for name in POINT_FIELDS] for point in data.get("history", [])])
    # A summary written before load profiles has no target, one written before the open model's samples counted
    # iterations no iterations_per_second: None, as a run without a profile or of the closed model.
    return Sample(**plain, endpoints=endpoints, history=history, target=data.get("target"),
                  iterations_per_second=data.get("iterations_per_second"))


def store_summary(data: dict[str, Any]) -> PerfRun:
    """Finish the run the summary names with its figures, or store it as a new run; ValueError for a summary
    not shaped as run_perf writes it, DatabaseError goes up.

    The row named by an unsaved summary's ``meta.run_id`` is used only while it still looks like the same
    run (same label and host): a database reset since could have given its id to another run.
    """
    description = RunDescription.from_json(data["meta"])
    if description.capacity is None and isinstance(data.get("capacity"), dict):  # a file whose meta lost it
        description = replace(description, kind=CAPACITY, capacity=data["capacity"])
    stats = registry_from_summary(data)
    with transaction.atomic():  # a new row and its figures, or nothing
        return _store(description, data, stats)


def _store(run: RunDescription, data: dict[str, Any], stats: StatsRegistry) -> PerfRun:
    row = PerfRun.objects.filter(pk=run.run_id, label=run.label, host=run.host).first() \
        if run.unsaved and run.run_id is not None else None
    if row is None:
        row = persist.start_run(label=run.label, host=run.host, users=run.users or 0, spawn_rate=run.spawn_rate or 0.0,
                                planned_duration=run.planned_duration, scenarios=list(run.scenarios),
                                user_split=run.user_split, seed=run.seed, options=run.options,
                                git_revision=run.git_revision, database_vendor=run.database_vendor or connection.vendor,
                                started_at=persist.to_datetime(data["start_time"]))
    return persist.finish_run(
        row, stats, run.status, data["duration"], cpu_warning=run.cpu_warning, max_cpu_percent=run.max_cpu_percent,
        stop_reason=run.stop_reason, error=run.error, thresholds=[item.as_json() for item in run.thresholds],
        open_model=None if run.open_model is None else run.open_model.as_json(),
        audit=None if run.audit is None else run.audit.as_json(),
        profile=None if run.profile is None else run.profile.as_json(), stages=[dict(stage) for stage in run.stages],
        kind=run.kind, capacity=run.capacity,
        finished_at=persist.to_datetime(data["start_time"] + data["duration"]))
