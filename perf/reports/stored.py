"""A stored run as the report's inputs: its registry (perf.store.persist.load_registry), duration and description.

Turning the rows back into what ``run_perf`` had in memory, rather than reading the rows directly,
is what lets the admin page, its downloads and ``--html`` share one code path: a run started
without ``--csv`` or ``--html`` gets the very same files from the admin afterwards.
"""

import time
from datetime import datetime

from perf.analysis import compare
from perf.load.stats import StatsRegistry
from perf.models import PerfRun
from perf.options import parse_percent
from perf.reports.description import ComparisonResult, RunDescription, ShardResult
from perf.reports.report import Report, build_report
from perf.store.persist import load_registry


def run_duration(run: PerfRun, stats: StatsRegistry, now: float) -> float:
    """Seconds the run has measured: the stored figure once written, else up to its last sign of life."""
    if run.actual_duration is not None:
        return run.actual_duration
    if run.heartbeat_at is not None:
        return max(run.heartbeat_at.timestamp() - run.started_at.timestamp(), 0.0)
    if stats.samples:
        return stats.samples[-1].elapsed
    return max(now - run.started_at.timestamp(), 0.0)


def baseline_of(run: PerfRun) -> PerfRun | None:
    """The run ``--compare-to`` named, resolved as it was when this run started (``last`` = the newest
    completed run before it), so the verdict does not change as newer runs are stored."""
    ref = str((run.options or {}).get("compare_to") or "").strip().lower()
    if not ref:
        return None
    if ref in ("last", "previous"):
        earlier = (PerfRun.objects.filter(status=PerfRun.Status.COMPLETED, started_at__lt=run.started_at)
                   .exclude(pk=run.pk).order_by("-started_at", "-id"))
        found = list(earlier[:2])
        position = 0 if ref == "last" else 1
        return found[position] if len(found) > position else None
    return PerfRun.objects.filter(pk=int(ref)).exclude(pk=run.pk).first() if ref.isdigit() else None


def comparison_of(run: PerfRun) -> ComparisonResult | None:
    """The ``--compare-to`` verdict of a finished run: its regressions at the ``--fail-on-regression``
    tolerance (or the default one)."""
    if run.status == PerfRun.Status.RUNNING:
        return None
    baseline = baseline_of(run)
    if baseline is None:
        return None
    gate = (run.options or {}).get("fail_on_regression")
    try:
        percent = parse_percent(str(gate)) if gate else compare.DEFAULT_PERCENT
    except ValueError:
        percent = compare.DEFAULT_PERCENT
    return ComparisonResult.from_json(compare.compare_runs(baseline, run, percent).verdict(percent, bool(gate)))


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def shards_of(run: PerfRun) -> tuple[ShardResult, ...]:
    """The shards of a distributed run as their rows last said; none for any other run."""
    return tuple(
        ShardResult(index=shard.index, status=shard.status, hostname=shard.hostname, users=shard.users,
                    requests=shard.requests, max_cpu_percent=shard.max_cpu_percent,
                    heartbeat_at=_epoch(shard.heartbeat_at), error=shard.error)
        for shard in run.shards.all()
    )


def describe(run: PerfRun) -> RunDescription:
    """A stored run's description, its comparison and shards included."""
    return RunDescription.from_run(run, comparison_of(run), shards_of(run))


def stored_inputs(run: PerfRun, now: float | None = None) -> tuple[StatsRegistry, float, RunDescription]:
    """(registry, duration, description) of a stored run, running or finished: what ``run_perf`` would pass."""
    stats = load_registry(run)
    return stats, run_duration(run, stats, time.time() if now is None else now), describe(run)


def stored_report(run: PerfRun, endpoint: str | None = None, every_endpoint: bool = False,
                  now: float | None = None) -> Report:
    now = time.time() if now is None else now
    stats, duration, description = stored_inputs(run, now)
    return build_report(stats, duration, description, endpoint=endpoint, every_endpoint=every_endpoint, now=now)
