"""A run's load profile as the reports show it: its stages on the clock, the targets its samples recorded, and
where a running run stands in it (the live page's "Stage", "Target" and "Left in stage").

It reads what the run stored (``PerfRun.profile``'s spans, ``StatsSample.target``) rather than rebuilding the
profile from its text: a stage added from the live page, or a shape that decided as it went, exists only there.
A profile that does not hold what the models' comment describes (a hand-edited row, an older layout) shows as no
profile: the page still shows the run, never an error.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from math import isfinite
from typing import Any

from perf.load.profile import Kind, StageSpan

SPAN_KEYS = ("index", "start", "end", "start_target", "target")


@dataclass(frozen=True)
class StageNow:
    """The stage under way at one moment: which of how many, what the profile asks for now, and how long it has left."""

    span: StageSpan
    count: int
    target: float
    left: float

    @property
    def holding(self) -> bool:
        return self.span.start_target == self.span.target


@dataclass(frozen=True)
class ProfileView:
    """``spans``: the stages placed on the run's clock; ``targets``: (elapsed, target) of each sample that has one."""

    kind: Kind
    spans: tuple[StageSpan, ...]
    targets: tuple[tuple[float, float], ...] = ()

    @property
    def unit(self) -> str:
        """What a target counts, as a figure's detail says it."""
        return "users" if self.kind == "users" else "iterations/s"

    @property
    def boundaries(self) -> tuple[float, ...]:
        """Where one stage ends and the next begins (not the run's start nor its end): the charts mark them."""
        return tuple(span.start for span in self.spans[1:])

    def now(self, elapsed: float) -> StageNow | None:
        """Where the run stands at ``elapsed`` seconds; None before the first stage and after the last."""
        for span in self.spans:
            if span.start <= elapsed < span.end:
                share = (elapsed - span.start) / (span.end - span.start)
                target = span.start_target + share * (span.target - span.start_target)
                return StageNow(span, len(self.spans), target, span.end - elapsed)
        return None

    @classmethod
    def from_json(cls, profile: Any, targets: Iterable[tuple[float, float | None]] = ()) -> "ProfileView | None":
        """``PerfRun.profile`` (and the samples' targets) as a view, or None for a run without a usable profile."""
        if not isinstance(profile, Mapping) or profile.get("kind") not in ("users", "rate"):
            return None
        spans = _spans(profile.get("spans"))
        if spans is None:
            return None
        kind: Kind = "users" if profile["kind"] == "users" else "rate"
        points = tuple((float(at), float(target)) for at, target in targets if target is not None)
        return cls(kind, spans, points)


def _spans(items: Any) -> tuple[StageSpan, ...] | None:
    """The stored spans, in order; None when any of them is not one (a missing key, a number that is not)."""
    if not isinstance(items, Sequence) or isinstance(items, str):
        return None
    spans = []
    for item in items:
        if not isinstance(item, Mapping) or not all(_number(item.get(key)) for key in SPAN_KEYS):
            return None
        span = StageSpan(int(item["index"]), float(item["start"]), float(item["end"]), float(item["start_target"]),
                         float(item["target"]))
        if span.end < span.start:
            return None
        spans.append(span)
    return tuple(sorted(spans, key=lambda span: span.start))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and isfinite(value)
