"""Each stage's own figures: what a load profile's stage added to the run, told apart by the stage marks.

At every stage boundary the runner marks the registry (``StatsRegistry.mark_stage``: each entry's cumulative
figures at that moment). A stage's figures are the next mark (or the end of the run) minus its own: counts and
sums subtract, and histograms do too (``Histogram.minus``), so a stage's percentiles are exactly those of the
requests it recorded, within the histogram's 1 %. Minimum and maximum cannot be subtracted: a stage's are its
lowest and highest buckets, clamped into the run's measured range. Thresholds are evaluated over a stage's
figures as they are over the run's (``perf.load.thresholds.evaluate``), so a run can pass overall and show
the stage that broke the rule.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from perf.load.histogram import bucket_value
from perf.load.profile import StageSpan
from perf.load.stats import StageMark, StatsEntry, StatsRegistry
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
