"""A capacity search (``run_perf --find-capacity``): a load profile that decides its next step from the last one.

The search raises the load in steps (users in the closed model, iterations a second in the open one). Each step
runs ``settle`` seconds, which are left out of its figures (users logging in, queues filling), then ``hold``
seconds, the window it is judged on: the run's thresholds evaluated over that window's own requests
(``perf.load.stage_figures.registry_between``), never over the run so far. At the first step that fails, the
search narrows down between the last load that passed and the first that failed, halving the gap until it is
within ``resolution`` of the passing load. It stops there, at a ceiling (the most load allowed, a time budget),
or when the generator limits itself: a step whose generator CPU was saturated (or, in the open model, whose
arrivals were dropped while every threshold held) measured this machine, not the server, and the search ends
there without a capacity (``GENERATOR_LIMIT``).

It is a ``Profile``, so both runners follow it as they follow stages: the closed model's follower and the open
model's arrival schedule ask ``target(elapsed)`` as they go, and the step boundaries are decided inside that call,
on the event loop where the figures are recorded. What it found is ``as_json()``: the layout ``PerfRun.capacity``
stores (docs/capacity.md); ``perf.analysis.capacity`` adds what broke first, the USL fit and the verdict.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from perf.load.profile import Kind, Profile
from perf.load.runner import CPU_WARNING_PERCENT
from perf.load.stage_figures import registry_between
from perf.load.stats import StageMark, StatsEntry, StatsRegistry
from perf.load.thresholds import Threshold, Verdict, evaluate

# How the search ended (``CapacitySearch.status``); "searching" while it runs.
SEARCHING, FOUND, FIRST_STEP_FAILED, CEILING, BUDGET, GENERATOR_LIMIT, STOPPED = (
    "searching", "found", "first_step_failed", "ceiling", "budget", "generator_limit", "stopped")
RAISE, NARROW = "raise", "narrow"
# In the open model, a step that dropped more than this share of its arrivals (every user of the pool busy) while
# every threshold held was limited by the pool, not by the server: raise --users.
DROPPED_LIMIT_PERCENT = 1.0
# The open model's loads are rounded to this many decimals (iterations a second): a bisection ends before the
# difference between two loads is noise in the schedule.
RATE_DECIMALS = 2


@dataclass(frozen=True)
class CapacitySettings:
    """How the search steps: where it starts, how it grows, how long each step settles and holds, when to stop."""

    kind: Kind
    start: float
    factor: float | None
    increment: float | None
    settle: float
    hold: float
    resolution: float  # a share: 0.1 ends the narrowing once the gap is within 10 % of the passing load
    max_load: float
    budget: float  # seconds, the whole search
    thresholds: tuple[Threshold, ...]

    def rounded(self, load: float) -> float:
        """A load the runners can run: whole users, or a rate to RATE_DECIMALS."""
        return float(max(1, round(load))) if self.kind == "users" else round(load, RATE_DECIMALS)

    def raised(self, load: float) -> float:
        """The next step up: times the factor, or plus the increment; at least one user (or 0.01/s) more."""
        grown = load + self.increment if self.increment is not None else load * (self.factor or 2.0)
        smallest = 1.0 if self.kind == "users" else 10.0 ** -RATE_DECIMALS
        return self.rounded(max(grown, load + smallest))

    def as_json(self) -> dict[str, Any]:
        return {"start": self.start, "factor": self.factor, "increment": self.increment, "settle": self.settle,
                "hold": self.hold, "resolution": self.resolution, "max_load": self.max_load, "budget": self.budget,
                "thresholds": [threshold.text for threshold in self.thresholds]}


@dataclass
class Step:
    """One step of the search: its load and place on the run's clock (seconds since the search began), and once
    judged, what its window measured."""

    index: int
    load: float
    phase: str
    start: float
    settle_end: float
    end: float
    window: StatsRegistry | None = None
    seconds: float = 0.0
    verdicts: tuple[Verdict, ...] = ()
    cpu_percent: float = 0.0
    dropped_percent: float | None = None
    passed: bool = False
    generator_limited: bool = False

    @property
    def total(self) -> StatsEntry:
        assert self.window is not None, "judge the step first"
        return self.window.total

    @property
    def requests_per_second(self) -> float:
        return self.total.rps(self.seconds) if self.window is not None else 0.0

    def place_json(self) -> dict[str, Any]:
        """Where the step lies: what the live page shows of the step under way."""
        return {"index": self.index, "load": self.load, "phase": self.phase, "start": round(self.start, 3),
                "settle_end": round(self.settle_end, 3), "end": round(self.end, 3)}

    def as_json(self) -> dict[str, Any]:
        """The step as ``PerfRun.capacity["steps"]`` holds it (docs/capacity.md)."""
        total = self.total
        answered = total.num_requests
        rps = self.requests_per_second
        mean_s = total.avg_response_time / 1000.0 if answered else 0.0
        return {
            **self.place_json(), "seconds": round(self.seconds, 3),
            "requests": answered, "failures": total.num_failures,
            "failure_percent": 100.0 * total.num_failures / answered if answered else 0.0,
            "requests_per_second": rps, "p50": total.percentile(0.5), "p95": total.percentile(0.95),
            "p99": total.percentile(0.99), "concurrency": rps * mean_s,
            "cpu_percent": round(self.cpu_percent, 1), "dropped_percent": self.dropped_percent,
            "passed": self.passed, "generator_limited": self.generator_limited,
            "verdicts": [verdict.as_dict() for verdict in self.verdicts],
            "endpoints": [endpoint_json(entry) for entry in self.window.sorted_entries()] if self.window else [],
        }


def endpoint_json(entry: StatsEntry) -> dict[str, Any]:
    """An endpoint's figures in a step, with where its time went when the server said (Server-Timing): the
    application's time, the database's and its queries, and the rest of the client's time, which under load is
    the wait for a free worker (queueing)."""
    server = entry.server
    client = entry.avg_response_time if entry.num_requests else None
    app = server.avg_app_time if server is not None else None
    return {
        "method": entry.method, "name": entry.name, "requests": entry.num_requests,
        "failures": entry.num_failures, "p95": entry.percentile(0.95), "client_ms": client,
        "app_ms": app, "db_ms": server.avg_db_time if server is not None else None,
        "queries": server.avg_queries if server is not None else None,
        "queue_ms": max(0.0, client - app) if client is not None and app is not None else None,
    }


# (iterations scheduled, iterations dropped) so far: the open model's counters, for its steps' dropped share.
ArrivalCounts = Callable[[], tuple[int, int]]


@dataclass
class _Marks:
    """What stood when a step's window opened: the figures, the process's CPU time, the open model's counters."""

    stats: StageMark
    elapsed: float  # on the profile's clock
    cpu: float
    arrivals: tuple[int, int] | None


@dataclass
class CapacitySearch(Profile):
    """The search as a load profile: ``target(elapsed)`` answers the step under way's load, judges a step whose
    time is up, and decides the next one (or None: the search, and so the run, is over)."""

    settings: CapacitySettings
    steps: list[Step] = field(default_factory=list)
    status: str = SEARCHING
    limit: dict[str, Any] | None = None  # the ceiling it hit: {"kind": "max_users"|"max_rate"|"budget", "value"}
    # Told of each step judged (the store keeps the run's capacity current for the live page).
    on_step: Callable[["CapacitySearch"], None] | None = None
    _stats: StatsRegistry | None = None
    _arrivals: ArrivalCounts | None = None
    _marks: _Marks | None = None
    _low: float | None = None  # while narrowing: the highest load that passed
    _high: float | None = None  # and the lowest that failed
    _ended_at: float | None = None  # seconds into the search when it ended

    def __post_init__(self) -> None:
        self.kind = self.settings.kind

    def bind(self, stats: StatsRegistry, arrivals: ArrivalCounts | None = None) -> None:
        """The registry the steps are judged on (and the open model's counters), before the run starts."""
        self._stats, self._arrivals = stats, arrivals

    # --- Profile ------------------------------------------------------------------------------------------------

    @property
    def duration(self) -> float | None:
        return self.settings.budget

    @property
    def peak(self) -> float:
        """The most it may ask for: the pool and the spawn order are sized for the ceiling."""
        return self.settings.max_load

    def over_at(self) -> float | None:
        return self._ended_at

    def target(self, elapsed: float) -> float | None:
        if self.status != SEARCHING:
            if self._ended_at is None:
                self._ended_at = elapsed
            return None
        if not self.steps:
            self._begin(self.settings.rounded(self.settings.start), RAISE, elapsed)
        step = self.steps[-1]
        if elapsed >= step.settle_end and self._marks is None:
            self._marks = self._mark(elapsed)
        if elapsed < step.end:
            return step.load
        self._judge(step, elapsed)
        following = self._next(step, elapsed)
        if following is not None:  # placed before on_step: the live page then shows the step now under way
            self._begin(following[0], following[1], elapsed)
        if self.on_step is not None:
            self.on_step(self)
        if following is None:
            self._ended_at = elapsed
            return None
        return following[0]

    # --- the steps ----------------------------------------------------------------------------------------------

    def _begin(self, load: float, phase: str, at: float) -> None:
        settings = self.settings
        self.steps.append(Step(len(self.steps), load, phase, at, at + settings.settle,
                               at + settings.settle + settings.hold))
        self._marks = None

    def _mark(self, elapsed: float) -> _Marks:
        assert self._stats is not None, "bind() the registry first"
        arrivals = self._arrivals() if self._arrivals is not None else None
        return _Marks(self._stats.snapshot(-1), elapsed, time.process_time(), arrivals)

    def _judge(self, step: Step, elapsed: float) -> None:
        """The step's window (from its settling's end to ``elapsed``, on the profile's clock) against the
        thresholds, and the generator's part in it."""
        opened = self._marks or self._mark(step.settle_end)
        closed = self._mark(elapsed)
        step.window = registry_between(opened.stats, closed.stats)
        step.seconds = max(closed.elapsed - opened.elapsed, 1e-3)
        step.verdicts = tuple(evaluate(list(self.settings.thresholds), step.window, step.seconds))
        step.cpu_percent = 100.0 * (closed.cpu - opened.cpu) / step.seconds
        passed = bool(step.window.total.num_requests) and all(verdict.ok for verdict in step.verdicts)
        if opened.arrivals is not None and closed.arrivals is not None:
            scheduled = closed.arrivals[0] - opened.arrivals[0]
            dropped = closed.arrivals[1] - opened.arrivals[1]
            step.dropped_percent = round(100.0 * dropped / scheduled, 2) if scheduled else 0.0
        pool_short = passed and (step.dropped_percent or 0.0) > DROPPED_LIMIT_PERCENT
        step.generator_limited = step.cpu_percent > CPU_WARNING_PERCENT or pool_short
        step.passed = passed and not step.generator_limited

    def _next(self, step: Step, elapsed: float) -> tuple[float, str] | None:
        """The next step's (load, phase), or None with the search's status set."""
        settings = self.settings
        if step.generator_limited:
            self.status = GENERATOR_LIMIT
            return None
        if step.passed:
            self._low = step.load if self._low is None else max(self._low, step.load)
        elif self._high is None or step.load < self._high:
            self._high = step.load
        if self._low is None:
            self.status = FIRST_STEP_FAILED
            return None
        if self._high is None:
            load = settings.raised(step.load)
            if step.load >= settings.max_load:
                self.status = CEILING
                self.limit = {"kind": "max_users" if settings.kind == "users" else "max_rate",
                              "value": settings.max_load}
                return None
            following = (min(load, settings.max_load), RAISE)
        else:
            middle = settings.rounded((self._low + self._high) / 2)
            if (self._high - self._low) <= settings.resolution * self._low or middle in (self._low, self._high):
                self.status = FOUND
                return None
            following = (middle, NARROW)
        if elapsed + settings.settle + settings.hold > settings.budget:
            self.status = BUDGET
            self.limit = {"kind": "budget", "value": settings.budget}
            return None
        return following

    def stopped(self) -> None:
        """The run ended before the search did (a signal, Stop in the admin): the steps judged so far stand."""
        if self.status == SEARCHING:
            self.status = STOPPED

    # --- what it found ------------------------------------------------------------------------------------------

    def judged(self) -> list[Step]:
        return [step for step in self.steps if step.window is not None]

    def capacity_step(self) -> Step | None:
        """The highest load that passed every threshold (None after a generator limit: no capacity then)."""
        if self.status == GENERATOR_LIMIT:
            return None
        passed = [step for step in self.judged() if step.passed]
        return max(passed, key=lambda step: (step.load, step.index)) if passed else None

    def first_failing_step(self) -> Step | None:
        """The lowest load above the capacity that failed: the other side of the knee."""
        best = self.capacity_step()
        failed = [step for step in self.judged() if not step.passed and not step.generator_limited
                  and (best is None or step.load > best.load)]
        return min(failed, key=lambda step: (step.load, step.index)) if failed else None

    def as_json(self) -> dict[str, Any]:
        """``PerfRun.capacity`` as the engine knows it; ``perf.analysis.capacity.conclude`` completes it."""
        settings = self.settings
        current = self.steps[-1] if self.steps and self.steps[-1].window is None else None

        def point(step: Step | None) -> dict[str, Any] | None:
            if step is None:
                return None
            return {"load": step.load, "requests_per_second": step.requests_per_second, "step": step.index}

        return {
            "model": settings.kind, "unit": "users" if settings.kind == "users" else "iterations/s",
            "settings": settings.as_json(), "status": self.status,
            "current": current.place_json() if current is not None and self.status == SEARCHING else None,
            "steps": [step.as_json() for step in self.judged()],
            "capacity": point(self.capacity_step()), "first_failing": point(self.first_failing_step()),
            "limit": self.limit, "broke_first": None, "usl": None, "verdict": "",
        }
