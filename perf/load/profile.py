"""Load profiles: how many users (or iterations a second) a run wants at each moment of it.

A profile answers one question for the runner, at every tick: for the time elapsed since the run began, what
is the target now, or is it over? That is Locust's ``LoadTestShape`` contract, and k6's ``stages`` are one
kind of answer: each stage ramps linearly from the previous target (0 at the start) to its own over its
duration, and the run lasts as long as the stages together.

``kind`` says what the target counts: ``"users"`` (the closed model: users running at once) or ``"rate"``
(the open model: iterations begun a second). A runner that runs a share of the run (a forked worker, a Celery
shard) follows its share of the target (``perf.load.shares``).

Parsing the command line's text (``--stages 30s:50,2m:50``) is ``perf.options.parse_stages``: one parser for
the command line and the New run page, so both give the same message.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from math import floor
from typing import Any, Literal

Kind = Literal["users", "rate"]


def whole_users(target: float) -> int:
    """The users a target asks for: rounded half up (a ramp from 0 to 10 over 10 s runs its first user from
    0.5 s on), never below 0. The one rounding of every runner and share."""
    return max(0, floor(target + 0.5))


@dataclass(frozen=True)
class Stage:
    """Ramp linearly to ``target`` over ``duration`` seconds, from where the stage before it ended."""

    duration: float
    target: float


@dataclass(frozen=True)
class StageSpan:
    """One stage placed on the run's clock, for the reports: seconds since the start, the target at each end."""

    index: int
    start: float
    end: float
    start_target: float
    target: float

    @property
    def name(self) -> str:
        """``stage 2 (50 → 200)``: how tables and charts name it."""
        return f"stage {self.index + 1} ({self.start_target:g} → {self.target:g})"


class Profile:
    """The target over time. Subclasses answer ``target``; ``spans`` place their stages on the clock (a shape
    that decides as it goes has none until it has run: the runner stores the targets it was given)."""

    kind: Kind = "users"

    def target(self, elapsed: float) -> float | None:
        """The target at ``elapsed`` seconds, or None once the profile is over (the run then ends)."""
        raise NotImplementedError

    def spans(self) -> tuple[StageSpan, ...]:
        return ()

    @property
    def duration(self) -> float | None:
        """The profile's own length in seconds, when it has one (``-t`` may cut a run shorter)."""
        spans = self.spans()
        return spans[-1].end if spans else None

    def over_at(self) -> float | None:
        """Seconds into the profile at which it is over: its length, known in advance by default; a profile that
        decides as it goes (a capacity search) says once it has ended. The open model's schedule ends there."""
        return self.duration

    @property
    def peak(self) -> float:
        """The highest target it will ask for, when known in advance (0 when not): sizes pools and checks."""
        return max((span.target for span in self.spans()), default=0.0)


class SpanProfile(Profile):
    """A target that runs linearly through spans laid end to end on the clock; between two spans it may jump
    (a step shape's next step). Over once the last span ends."""

    def __init__(self, spans: Sequence[StageSpan], kind: Kind = "users") -> None:
        if not spans:
            raise ValueError("a profile needs at least one stage")
        self._spans = tuple(spans)
        self.kind = kind

    def spans(self) -> tuple[StageSpan, ...]:
        return self._spans

    def target(self, elapsed: float) -> float | None:
        for span in self._spans:
            if elapsed < span.end:
                share = (elapsed - span.start) / (span.end - span.start) if span.end > span.start else 1.0
                return span.start_target + max(0.0, share) * (span.target - span.start_target)
        return None


class StagedProfile(SpanProfile):
    """k6's stages: linear ramps from target to target, starting at 0."""

    def __init__(self, stages: Sequence[Stage], kind: Kind = "users") -> None:
        if not stages:
            raise ValueError("a staged profile needs at least one stage")
        self.stages = tuple(stages)
        spans, start, previous = [], 0.0, 0.0
        for index, stage in enumerate(self.stages):
            spans.append(StageSpan(index, start, start + stage.duration, previous, stage.target))
            start, previous = start + stage.duration, stage.target
        super().__init__(spans, kind)


def span_at(profile: Profile, elapsed: float) -> StageSpan | None:
    """The stage of ``profile`` under way at ``elapsed`` (the last one at its very end), None after it or when
    the profile has no stages."""
    spans = profile.spans()
    for span in spans:
        if elapsed < span.end:
            return span
    return spans[-1] if spans and elapsed == spans[-1].end else None


def spans_json(spans: Sequence[StageSpan]) -> list[dict[str, Any]]:
    """The stages as ``PerfRun.profile["spans"]`` stores them (perf/models.py)."""
    return [{"index": span.index, "start": span.start, "end": span.end, "start_target": span.start_target,
             "target": span.target} for span in spans]


def spans_from_json(items: Sequence[dict[str, Any]]) -> tuple[StageSpan, ...]:
    return tuple(StageSpan(int(item["index"]), float(item["start"]), float(item["end"]),
                           float(item["start_target"]), float(item["target"])) for item in items)


class HeldProfile(Profile):
    """A change of target from the live page: ``base`` until ``at`` seconds, then ``target`` held until ``end``
    (the run's end). Its spans are the base's up to ``at`` (the one under way cut there, its later ones
    dropped) and one more that starts at ``at``, so the reports show the change as a stage of its own."""

    def __init__(self, base: Profile, at: float, target: float, end: float) -> None:
        self.base, self.at, self.held, self.end = base, at, target, max(end, at)
        self.kind = base.kind

    def target(self, elapsed: float) -> float | None:
        if elapsed < self.at:
            return self.base.target(elapsed)
        return self.held if elapsed < self.end else None

    def spans(self) -> tuple[StageSpan, ...]:
        kept = []
        for span in self.base.spans():
            if span.start >= self.at:
                break
            if span.end <= self.at:
                kept.append(span)
                continue
            share = (self.at - span.start) / (span.end - span.start)
            reached = span.start_target + share * (span.target - span.start_target)
            kept.append(StageSpan(span.index, span.start, self.at, span.start_target, reached))
        return (*kept, StageSpan(len(kept), self.at, self.end, self.held, self.held))


def plain_profile(target: float, at: float, kind: Kind = "users") -> Profile:
    """What a run started without a profile (``-u N``, ``--rate R``) did until ``at`` seconds, as one stage: the
    base a change of target from the live page is laid on. Users ramp up from 0 to their number (the spawn rate);
    an open model's rate is held from its schedule's start (its pool is built before the clock starts), so its
    stage is flat."""
    return SpanProfile([StageSpan(0, 0.0, max(at, 0.0), target if kind == "rate" else 0.0, target)], kind)
