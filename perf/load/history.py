"""The figures of Locust's ``_stats_history.csv``, one point a second: what a history row needs, and the
"current" rates and percentiles Locust computes over its last seconds.

A point holds the Aggregated figures of the run as they stand at one moment: the cumulative percentiles,
median, average, min, max and average size, the counts, the users, and the *current* request and failure
rates as Locust defines them. Points are packed (``HistoryPoints``) because a run keeps one per second for
its whole length, in memory and in the stored samples.

Locust keeps per-second request counts on each entry; perfkit's entries do not (recording a request
stays one bucket lookup), so the current rates here come from cumulative counts seen once a second
(``RateWindow``); the current percentiles, which only the CSV files show, are the reports'
(``perf.reports.windows``). Nothing here imports Django.
"""

from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate
from math import ceil, isnan, nan
from typing import NamedTuple, Protocol, overload

from perf.load.histogram import Histogram, bucket_value


class EntryFigures(Protocol):
    """What a history point reads of an entry (``perf.load.stats.StatsEntry`` has it): named here so that this
    module, which ``stats`` imports, never imports ``stats`` back."""

    @property
    def histogram(self) -> Histogram: ...
    @property
    def num_requests(self) -> int: ...
    @property
    def num_failures(self) -> int: ...
    @property
    def min_response_time(self) -> float | None: ...
    @property
    def max_response_time(self) -> float: ...
    @property
    def median_response_time(self) -> float | None: ...
    @property
    def avg_response_time(self) -> float: ...
    @property
    def avg_content_length(self) -> float: ...

# Locust's current_rps: the mean count of the seconds [last request - 12, last request - 2); the two newest
# seconds are left out because distributed reports may still be on their way.
RATE_WINDOW_START = 12
RATE_WINDOW_END = 2
# Locust's CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW: the "current" percentiles cover about the last 10 s.
PERCENTILE_WINDOW = 10.0


class HistoryPoint(NamedTuple):
    """One moment of the run for a history row; NaN where nothing was measured yet."""

    timestamp: float
    users: float
    rps: float  # current, over Locust's window
    fps: float
    p50: float  # the eleven percentiles of stats.PERCENTILES, cumulative over the run so far
    p66: float
    p75: float
    p80: float
    p90: float
    p95: float
    p98: float
    p99: float
    p999: float
    p9999: float
    p100: float
    requests: float
    failures: float
    median: float
    average: float
    minimum: float
    maximum: float
    content_size: float

    @property
    def percentiles(self) -> tuple[float, ...]:
        return self[4:15]


POINT_FIELDS = HistoryPoint._fields
_WIDTH = len(POINT_FIELDS)


class HistoryPoints(Sequence[HistoryPoint]):
    """Points packed in one array of floats: 176 bytes a point instead of ~1 KB as tuples of floats."""

    __slots__ = ("_values",)

    def __init__(self, values: Iterable[float] = ()) -> None:
        self._values = array("d", values)

    def append(self, point: Sequence[float]) -> None:
        self._values.extend(point)

    def __len__(self) -> int:
        return len(self._values) // _WIDTH

    @overload
    def __getitem__(self, index: int) -> HistoryPoint: ...

    @overload
    def __getitem__(self, index: slice) -> list[HistoryPoint]: ...

    def __getitem__(self, index: int | slice) -> HistoryPoint | list[HistoryPoint]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("history point index out of range")
        start = index * _WIDTH
        return HistoryPoint(*self._values[start:start + _WIDTH])

    def __iter__(self) -> Iterator[HistoryPoint]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HistoryPoints) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"HistoryPoints({len(self)} points)"

    def to_json(self) -> list[list[float | None]]:
        """One list a point, NaN as None: JSON (and PostgreSQL's jsonb) has no NaN."""
        return [[None if isnan(value) else value for value in point] for point in self]

    @classmethod
    def from_json(cls, data: object) -> "HistoryPoints":
        """Back from ``to_json``; anything not shaped like a point is left out rather than failing a report."""
        points = cls()
        if isinstance(data, list):
            for item in data:
                if isinstance(item, list) and len(item) == _WIDTH:
                    points.append([nan if value is None else float(value) for value in item])
        return points


def histogram_percentiles(histogram: Histogram, fractions: Sequence[float], low: float | None,
                          high: float) -> list[float | None]:
    """Every percentile of ``fractions``, each clamped into [low, high]: the very values ``StatsEntry.percentile``
    gives, from one sort and one running sum (in C) instead of a sort and a Python walk per fraction; the
    CSV files take a dozen per endpoint every second."""
    total = histogram.total
    if not total or low is None:
        return [None] * len(fractions)
    counts = histogram.counts
    keys = sorted(counts)
    running = list(accumulate(map(counts.__getitem__, keys)))
    last = len(keys) - 1
    values: list[float | None] = []
    for fraction in fractions:
        rank = max(1, ceil(fraction * total - 1e-9))  # as Histogram.percentile ranks
        key = keys[min(bisect_left(running, rank), last)]
        values.append(min(max(bucket_value(key), low), high))
    return values


def entry_percentiles(entry: EntryFigures, fractions: Sequence[float]) -> list[float | None]:
    """The entry's cumulative percentiles, as ``entry.percentile`` gives them, in one pass."""
    return histogram_percentiles(entry.histogram, fractions, entry.min_response_time, entry.max_response_time)


def _or_nan(value: float | None) -> float:
    return nan if value is None else value


def make_point(entry: EntryFigures, now: float, users: int, rates: tuple[float, float],
               fractions: Sequence[float]) -> HistoryPoint:
    """The history point of ``entry`` (the Aggregated one) as it stands at ``now``."""
    percentiles = entry_percentiles(entry, fractions)
    median = percentiles[fractions.index(0.5)] if 0.5 in fractions else entry.median_response_time
    measured = entry.num_requests > 0
    return HistoryPoint._make((  # _make: a type checker cannot count the unpacked percentiles
        now, users, *rates, *(_or_nan(value) for value in percentiles),
        entry.num_requests, entry.num_failures, _or_nan(median),
        entry.avg_response_time if measured else nan,
        _or_nan(entry.min_response_time),
        entry.max_response_time if measured else nan,
        entry.avg_content_length if measured else nan,
    ))


class RateWindow:
    """Cumulative (time, requests, failures) seen about once a second, enough to give Locust's current rates.

    Requests in a span of whole seconds are the cumulative count at its end minus the one at its start,
    each read off the line between the two nearest observations. A stretch without requests keeps only
    its two ends, so an idle run does not grow the window.
    """

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: deque[tuple[float, int, int]] = deque()

    def observe(self, now: float, requests: int, failures: int, start_time: float,
                last_request_at: float | None) -> None:
        seen = self._seen
        if seen and requests < seen[-1][1]:
            seen.clear()  # the figures went back (a rebuilt registry): start again rather than count negative
        if not seen:
            seen.append((min(start_time, now), 0, 0))
        if len(seen) >= 2 and seen[-1][1:] == seen[-2][1:] == (requests, failures):
            seen[-1] = (now, requests, failures)
        else:
            seen.append((now, requests, failures))
        oldest_needed = (now if last_request_at is None else min(now, last_request_at)) - RATE_WINDOW_START - 1
        while len(seen) > 2 and seen[1][0] <= oldest_needed:
            seen.popleft()

    def _at(self, moment: float) -> tuple[float, float]:
        """(requests, failures) recorded by ``moment``, interpolated between observations."""
        seen = self._seen
        if moment <= seen[0][0]:
            return float(seen[0][1]), float(seen[0][2])
        for (t0, r0, f0), (t1, r1, f1) in zip(seen, list(seen)[1:], strict=False):
            if moment <= t1:
                share = (moment - t0) / (t1 - t0) if t1 > t0 else 1.0
                return r0 + share * (r1 - r0), f0 + share * (f1 - f0)
        return float(seen[-1][1]), float(seen[-1][2])

    def rates(self, start_time: float, last_request_at: float | None) -> tuple[float, float]:
        """Locust's (current_rps, current_fail_per_sec): per-second means over [last - 12, last - 2) whole
        seconds of the run's last request (every entry's window ends there, as in Locust), the start
        clipped to the run's start; 0 when that span is empty."""
        if last_request_at is None or not self._seen:
            return 0.0, 0.0
        last = int(last_request_at)
        begin, end = max(last - RATE_WINDOW_START, int(start_time)), last - RATE_WINDOW_END
        if end <= begin:
            return 0.0, 0.0
        (r0, f0), (r1, f1) = self._at(begin), self._at(end)
        return max(r1 - r0, 0.0) / (end - begin), max(f1 - f0, 0.0) / (end - begin)
