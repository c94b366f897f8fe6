"""A run's load profile as the reports show it: its stages on the clock, the targets its samples recorded, and
where a running run stands in it (the live page's "Stage", "Target" and "Left in stage").

It reads what the run recorded (the description's profile spans, each sample's target) rather than rebuilding
the profile from its text: a stage added from the live page, or a shape that decided as it went, exists only
there. The same view serves a live run's own ``--html`` and a stored run's page.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from perf.load.profile import Kind, StageSpan
from perf.load.stats import Sample
from perf.reports.description import ProfileResult


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
    def of(cls, profile: "ProfileResult | None", samples: Iterable[Sample]) -> "ProfileView | None":
        """The run's profile (as its description holds it, read and checked once there) with the target each
        sample recorded; None for a run without one."""
        if profile is None or profile.kind not in ("users", "rate"):
            return None
        spans = tuple(sorted((StageSpan(int(span["index"]), span["start"], span["end"], span["start_target"],
                                        span["target"]) for span in profile.spans), key=lambda span: span.start))
        kind: Kind = "users" if profile.kind == "users" else "rate"
        points = tuple((sample.elapsed, sample.target) for sample in samples if sample.target is not None)
        return cls(kind, spans, points)
