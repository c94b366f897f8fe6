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
