"""A project's own load shape, as ``PERF_SHAPES`` names one (tests/perf/test_load_profiles.py)."""

from typing import ClassVar

from perf import ParameterKind, Shape


class Pulse(Shape):
    """``pulse:low=L,high=H,period=P,length=T``: L users, H users every other P seconds, for T seconds; it decides
    as it goes (no stages laid out ahead), as Locust's shapes do."""

    parameters: ClassVar[dict[str, ParameterKind]] = {"low": "users", "high": "users", "period": "duration",
                                                      "length": "duration"}

    def __init__(self, high: float, low: float = 0, period: float = 1.0, length: float = 4.0) -> None:
        self.low, self.high, self.period, self.length = low, high, period, length

    @property
    def peak(self) -> float:
        return self.high

    def target(self, elapsed: float) -> float | None:
        if elapsed >= self.length:
            return None
        return self.high if int(elapsed // self.period) % 2 else self.low


class Breaks(Shape):
    """``breaks:users=N,after=T``: N users until its own code fails, T seconds in (a project's shape with a bug): the
    runner cannot go on without a target, and run_perf stores the run ``failed`` (tests/perf/test_run_description.py).
    """

    parameters: ClassVar[dict[str, ParameterKind]] = {"users": "users", "after": "duration"}

    def __init__(self, users: float = 3, after: float = 3.0) -> None:
        self.users, self.after = users, after

    @property
    def peak(self) -> float:
        return self.users

    def target(self, elapsed: float) -> float | None:
        if elapsed >= self.after:
            raise RuntimeError(f"the shape broke {self.after:g} s in")
        return self.users
