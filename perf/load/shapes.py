"""Load shapes: a profile written as a class, picked with ``run_perf --shape NAME:PARAM=VALUE,…``.

A shape answers, for the seconds elapsed since the run began, the users it wants now (or iterations a second
when its ``kind`` is ``"rate"``), or None to end the run: Locust's ``LoadTestShape`` contract, our way. The
project names its own in ``PERF_SHAPES`` (name → dotted path of a ``Shape`` subclass); the three below are
built in. A shape's parameters are its ``__init__``'s keyword arguments, each read from the command line as
``parameters`` says (``"duration"``: ``30s``, ``5m``…; ``"users"``: a whole number; ``"rate"`` and
``"number"``: a number), so ``--shape step:add=10,every=30s,to=100`` calls ``StepShape(add=10, every=30.0,
to=100)``. Parsing that text is ``perf.cli.profiles``' job: one parser for every shape.

The built-ins are laid out in spans ahead (``SpanProfile``), so their runs have per-stage figures; a shape that
decides as it goes (no spans) still drives the run, and each sample stores the target it asked for.
"""

from math import ceil
from typing import ClassVar, Literal

from perf.load.profile import Kind, Profile, SpanProfile, StageSpan

ParameterKind = Literal["duration", "users", "rate", "number"]


class Shape(Profile):
    """The base of every shape. ``target(elapsed)`` is the contract; ``peak`` (the most users it will ask for)
    sizes the spawn order: a shape that cannot say it ahead leaves it 0 and ``--users`` caps it."""

    kind: Kind = "users"
    # Each ``__init__`` parameter's kind, for the command line's text; a parameter not listed is a number.
    parameters: ClassVar[dict[str, ParameterKind]] = {}
    # One line for ``--help`` and the error that lists the shapes.
    summary: ClassVar[str] = ""


class SpanShape(SpanProfile, Shape):
    """A shape laid out ahead in spans: its stages are known, so the run reports each one's figures."""

    def __init__(self, spans: list[StageSpan], kind: Kind = "users") -> None:
        SpanProfile.__init__(self, spans, kind)


class _Layout:
    """Spans laid end to end: each ``to`` runs from ``start_target`` (the previous end unless given)."""

    def __init__(self) -> None:
        self.spans: list[StageSpan] = []
        self.at = 0.0
        self.level = 0.0

    def to(self, duration: float, target: float, start_target: float | None = None) -> None:
        if duration <= 0:
            return
        begin = self.level if start_target is None else start_target
        self.spans.append(StageSpan(len(self.spans), self.at, self.at + duration, begin, target))
        self.at += duration
        self.level = target


def _check(name: str, value: float, shape: str, most: float | None = None, positive: bool = False) -> None:
    if value < 0 or (positive and value == 0):
        raise ValueError(f"--shape {shape}: {name} must be {'more than' if positive else 'at least'} 0, got {value:g}")
    if most is not None and value > most:
        raise ValueError(f"--shape {shape}: {name} must be at most {most:g}, got {value:g}")


class StepShape(SpanShape):
    """``step:add=K,every=T,to=N``: K users at once, K more every T, up to N, each step held T (a breakpoint
    test: watch where the figures bend)."""

    parameters: ClassVar[dict[str, ParameterKind]] = {"add": "users", "every": "duration", "to": "users"}
    summary = "add=K users every=T (a duration) up to to=N, each step held T"

    def __init__(self, add: float, every: float, to: float) -> None:
        _check("add", add, "step", positive=True)
        _check("every", every, "step", positive=True)
        _check("to", to, "step", positive=True)
        layout = _Layout()
        for step in range(1, ceil(to / add) + 1):
            level = min(step * add, to)
            layout.to(every, level, start_target=level)
        super().__init__(layout.spans)


class SpikeShape(SpanShape):
    """``spike:base=B,peak=P,before=D1,ramp=R,hold=D2,after=D3``: B users for D1, up to P within R, held D2,
    back to B within R, B for D3 (does the site survive a surge, and recover?)."""

    parameters: ClassVar[dict[str, ParameterKind]] = {"base": "users", "peak": "users", "before": "duration",
                                                      "ramp": "duration", "hold": "duration", "after": "duration"}
    summary = "base=B users, before=D1, up to peak=P within ramp=R, held hold=D2, back to B, after=D3"

    def __init__(self, base: float = 10, peak: float = 100, before: float = 60, ramp: float = 10, hold: float = 60,
                 after: float = 60) -> None:
        for name, value in (("base", base), ("ramp", ramp), ("before", before), ("after", after)):
            _check(name, value, "spike")
        _check("peak", peak, "spike", positive=True)
        _check("hold", hold, "spike", positive=True)
        if peak <= base:
            raise ValueError(f"--shape spike: peak ({peak:g}) must be above base ({base:g})")
        layout = _Layout()
        layout.level = base  # the run starts at the base at once
        layout.to(before, base)
        layout.to(ramp, peak)
        layout.to(hold, peak, start_target=peak)
        layout.to(ramp, base)
        layout.to(after, base, start_target=base)
        super().__init__(layout.spans)


class SoakShape(SpanShape):
    """``soak:users=N,ramp=R,hold=H,down=D``: up to N within R, held H (hours: leaks, pools, disks), then down to
    0 within D."""

    parameters: ClassVar[dict[str, ParameterKind]] = {"users": "users", "ramp": "duration", "hold": "duration",
                                                      "down": "duration"}
    summary = "up to users=N within ramp=R (default 5m), held hold=H (default 4h), down to 0 within down=D (1m)"

    def __init__(self, users: float, ramp: float = 300, hold: float = 4 * 3600, down: float = 60) -> None:
        _check("users", users, "soak", positive=True)
        _check("hold", hold, "soak", positive=True)
        _check("ramp", ramp, "soak")
        _check("down", down, "soak")
        layout = _Layout()
        layout.to(ramp, users)
        layout.to(hold, users, start_target=users)
        layout.to(down, 0)
        super().__init__(layout.spans)


BUILTIN_SHAPES: dict[str, type[Shape]] = {"step": StepShape, "spike": SpikeShape, "soak": SoakShape}
