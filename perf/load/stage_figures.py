"""Each stage's own figures: what a load profile's stage added to the run, told apart by the stage marks.

At every stage boundary the runner marks the registry (``StatsRegistry.mark_stage``: each entry's cumulative
figures at that moment). A stage's figures are the next mark (or the end of the run) minus its own: counts and
sums subtract, and histograms do too (``Histogram.minus``), so a stage's percentiles are exactly those of the
requests it recorded, within the histogram's 1 %. Minimum and maximum cannot be subtracted: a stage's are its
lowest and highest buckets, clamped into the run's measured range. Thresholds are evaluated over a stage's
figures as they are over the run's (``perf.load.thresholds.evaluate``), so a run can pass overall and show
the stage that broke the rule.

A run split into shares (forked workers, Celery shards) is marked where its requests happen: each share marks its
own registry at its stage boundaries, on the run's clock, and sends its marks with its figures (a worker's with
the delta they belong to, a shard's beside its tables in its row: ``share_json``). The run's marks are the shares'
added up stage by stage (``merge_marks``), so a request lands in the stage during which its share recorded it,
however late its report reached the parent (a second) or the coordinator (three).
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from perf.load.histogram import bucket_value
from perf.load.profile import StageSpan
from perf.load.stats import AGGREGATED, StageMark, StatsEntry, StatsRegistry
from perf.load.thresholds import Threshold, Verdict, evaluate

# A stage shorter than this (a run cut off at a boundary) has no rate worth showing.
MIN_STAGE_SECONDS = 0.001


def entry_since(entry: StatsEntry, before: StatsEntry | None) -> StatsEntry:
    """The requests ``entry`` recorded since ``before`` (a copy of it taken earlier; None: since the start)."""
    if before is None:
        before = StatsEntry(entry.method, entry.name)
    delta = StatsEntry(entry.method, entry.name)
    delta.num_requests = entry.num_requests - before.num_requests
    delta.num_failures = entry.num_failures - before.num_failures
    delta.total_response_time = entry.total_response_time - before.total_response_time
    delta.total_content_length = entry.total_content_length - before.total_content_length
    delta.new_connections = entry.new_connections - before.new_connections
    delta.reopened_connections = entry.reopened_connections - before.reopened_connections
    delta.histogram = entry.histogram.minus(before.histogram)
    if entry.server is not None:
        delta.server = entry.server.minus(before.server)
    if delta.histogram.counts and entry.min_response_time is not None:
        low, high = bucket_value(min(delta.histogram.counts)), bucket_value(max(delta.histogram.counts))
        delta.min_response_time = min(max(low, entry.min_response_time), entry.max_response_time)
        delta.max_response_time = min(max(high, entry.min_response_time), entry.max_response_time)
    return delta


def registry_between(before: StageMark | None, after: StageMark | StatsRegistry) -> StatsRegistry:
    """A registry holding what was recorded between two marks (``after`` may be the registry at the end)."""
    delta = StatsRegistry()
    for key, entry in after.entries.items():
        delta.entries[key] = entry_since(entry, None if before is None else before.entries.get(key))
    delta.total = entry_since(after.total, None if before is None else before.total)
    return delta


@dataclass(frozen=True)
class StageFigures:
    """One stage of the profile: where it lies on the clock, what it measured, and each threshold's verdict."""

    span: StageSpan
    seconds: float  # how long the run spent in it (less than the span when the run ended early)
    stats: StatsRegistry
    verdicts: tuple[Verdict, ...] = ()

    @property
    def total(self) -> StatsEntry:
        return self.stats.total

    @property
    def requests_per_second(self) -> float:
        return self.total.rps(self.seconds)

    def as_json(self) -> dict[str, Any]:
        """What ``PerfRun.stages`` and the JSON summary's ``stages`` hold, one object a stage."""
        total, span = self.total, self.span
        return {
            "index": span.index, "name": span.name, "start": span.start, "end": span.end,
            "start_target": span.start_target, "target": span.target, "seconds": round(self.seconds, 3),
            "requests": total.num_requests, "failures": total.num_failures,
            "requests_per_second": self.requests_per_second,
            "failures_per_second": total.failures_per_second(self.seconds),
            "avg_response_time": total.avg_response_time if total.num_requests else None,
            "p50": total.percentile(0.5), "p95": total.percentile(0.95), "p99": total.percentile(0.99),
            "thresholds": [verdict.as_dict() for verdict in self.verdicts],
        }


def stage_figures(stats: StatsRegistry, spans: Sequence[StageSpan], duration: float,
                  thresholds: Sequence[Threshold] = ()) -> list[StageFigures]:
    """Every stage the run reached, from its marks; the last one reached runs to the end of the run (requests
    that ended during the end grace included). ``duration`` is the run's, in seconds."""
    marks = {mark.index: mark for mark in stats.stage_marks}
    reached = [span for span in spans if span.index == 0 or span.index in marks]
    figures = []
    for position, span in enumerate(reached):
        following = reached[position + 1] if position + 1 < len(reached) else None
        after: StageMark | StatsRegistry = marks[following.index] if following is not None else stats
        between = registry_between(marks.get(span.index), after)
        end = span.end if following is not None else min(span.end, duration)
        seconds = max(end - span.start, MIN_STAGE_SECONDS)
        verdicts = tuple(evaluate(list(thresholds), between, seconds)) if thresholds else ()
        figures.append(StageFigures(span, seconds, between, verdicts))
    return figures


def stages_json(figures: Sequence[StageFigures]) -> list[dict[str, Any]]:
    return [stage.as_json() for stage in figures]


# --- the marks of a run split into shares -------------------------------------------------------------------------

# A share's stage marks ride beside its tables in its report's JSON (a Celery shard's row) under this key.
MARKS_KEY = "stage_marks"


def _added(parts: Iterable[StageMark | StatsRegistry], index: int, at: float) -> StageMark:
    """A mark holding the figures of ``parts`` added up (each entry's, exactly: histograms add key-wise)."""
    entries: dict[tuple[str, str], StatsEntry] = {}
    total = StatsEntry("", AGGREGATED)
    for part in parts:
        for key, entry in part.entries.items():
            mine = entries.get(key)
            if mine is None:
                mine = entries[key] = StatsEntry(entry.method, entry.name)
            mine.merge(entry)
        total.merge(part.total)
    return StageMark(index, at, entries, total)


def mark_after(base: StatsRegistry, mark: StageMark) -> StageMark:
    """A mark taken on a registry that held only what came after ``base`` (a forked worker's, drained at every
    report) as it stands on the whole: ``base`` plus the mark."""
    return _added((base, mark), mark.index, mark.at)


def _at_boundary(share: StatsRegistry, index: int) -> StageMark | StatsRegistry:
    """Where ``share`` stood when stage ``index`` began: its first mark of it. A share that never marked it stood
    where it was at its next boundary (its first mark of a later stage), or at its end: it ended before the stage
    (its requests belong to the stages before)."""
    return next((mark for mark in share.stage_marks if mark.index >= index), share)


def merge_marks(shares: Sequence[StatsRegistry]) -> list[StageMark]:
    """The run's stage marks from its shares' (each share a registry of its cumulative figures and its marks, in
    the order taken): stage by stage, the sum of where each share stood when it began it. A stage is marked when any
    share began it; the mark's time is the earliest share's. The first mark of a stage counts when a share marked
    one twice (a change of target that arrived after the old stage of its number had begun)."""
    indices = sorted({mark.index for share in shares for mark in share.stage_marks})
    merged = []
    for index in indices:
        at = min(mark.at for share in shares for mark in share.stage_marks if mark.index == index)
        merged.append(_added((_at_boundary(share, index) for share in shares), index, at))
    return merged


def mark_json(mark: StageMark) -> dict[str, Any]:
    return {"index": mark.index, "at": mark.at, "entries": [entry.to_dict() for entry in mark.entries.values()],
            "total": mark.total.to_dict()}


def mark_from_json(data: Mapping[str, Any]) -> StageMark:
    entries = [StatsEntry.from_dict(item) for item in data["entries"]]
    return StageMark(int(data["index"]), float(data["at"]), {(entry.method, entry.name): entry for entry in entries},
                     StatsEntry.from_dict(data["total"]))


def share_json(stats: StatsRegistry, since: float | None = None) -> dict[str, Any]:
    """A share's report: its tables (``StatsRegistry.to_json``) and beside them its stage marks, those taken at
    ``since`` (time.time()) or later when given."""
    marks = [mark for mark in stats.stage_marks if since is None or mark.at >= since]
    return {**stats.to_json(), MARKS_KEY: [mark_json(mark) for mark in marks]}


def share_from_json(data: Mapping[str, Any]) -> StatsRegistry:
    """A share's registry back from ``share_json``'s form, its marks with it (none in a report that has none)."""
    stats = StatsRegistry.from_json(data)
    stats.stage_marks = [mark_from_json(item) for item in data.get(MARKS_KEY, [])]
    return stats
