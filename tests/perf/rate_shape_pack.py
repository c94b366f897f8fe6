"""A project's own shape of the open model (its kind is "rate"), as ``PERF_SHAPES`` names one: none of the
built-ins sets an arrival rate, and such a shape must be refused where ``--rate-stages`` is (tests/perf/
test_run_perf.py)."""

from typing import ClassVar

from perf import ParameterKind, SpanShape, StageSpan


class Arrivals(SpanShape):
    """``arrivals:rate=R,length=T``: R iterations a second for T."""

    parameters: ClassVar[dict[str, ParameterKind]] = {"rate": "rate", "length": "duration"}

    def __init__(self, rate: float = 5, length: float = 10.0) -> None:
        super().__init__([StageSpan(0, 0.0, length, rate, rate)], kind="rate")
