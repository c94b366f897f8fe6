"""Locust's "current" figures per entry, for the console table and ``--csv-full-history``: each entry's rates
over its last seconds and the percentiles of what its last ~10 s added to its histogram.

Only the reports show these, so they live here, fed once a second with the registry as it stands; the
engine keeps cumulative figures only (``perf.load.history`` says why).
"""

from collections import deque
from collections.abc import Sequence

from perf.load.histogram import Histogram
from perf.load.history import PERCENTILE_WINDOW, RateWindow, histogram_percentiles
from perf.load.stats import StatsEntry, StatsRegistry


class _EntryWindow:
    """One entry's recent past: its rates, and what each observation added to its histogram."""

    __slots__ = ("rates", "seen", "added")

    def __init__(self, with_histograms: bool) -> None:
        self.rates = RateWindow()
        self.seen = Histogram() if with_histograms else None
        self.added: deque[tuple[float, Histogram]] = deque()

    def observe(self, entry: StatsEntry, now: float, start_time: float, last_request_at: float | None) -> None:
        self.rates.observe(now, entry.num_requests, entry.num_failures, start_time, last_request_at)
        if self.seen is None:
            return
        if entry.histogram.total < self.seen.total:
            self.seen, self.added = Histogram(), deque()  # a rebuilt registry went back: start again
        added = entry.histogram.minus(self.seen)
        self.seen.merge(added)
        self.added.append((now, added))
        while self.added and self.added[0][0] <= now - PERCENTILE_WINDOW:
            self.added.popleft()

    def window(self) -> Histogram:
        merged = Histogram()
        for _, added in self.added:
            merged.merge(added)
        return merged


class CurrentWindows:
    """Every entry's current rates (and, for ``--csv-full-history``, current percentiles), as Locust's
    console table and full history show them; fed once a second with the registry as it stands."""

    def __init__(self, percentiles: bool = False) -> None:
        self._percentiles = percentiles
        self._entries: dict[tuple[str, str], _EntryWindow] = {}
        self._total = _EntryWindow(percentiles)
        self._start_time = 0.0
        self._last_request_at: float | None = None

    def observe(self, stats: StatsRegistry, now: float) -> None:
        self._start_time = stats.start_time
        self._last_request_at = last = stats.total.last_request_at
        for key, entry in stats.entries.items():
            window = self._entries.get(key)
            if window is None:
                window = self._entries[key] = _EntryWindow(self._percentiles)
            window.observe(entry, now, stats.start_time, last)
        self._total.observe(stats.total, now, stats.start_time, last)

    def _window(self, entry: StatsEntry, aggregated: bool) -> _EntryWindow | None:
        return self._total if aggregated else self._entries.get((entry.method, entry.name))

    def rates(self, entry: StatsEntry, aggregated: bool = False) -> tuple[float, float]:
        window = self._window(entry, aggregated)
        return (0.0, 0.0) if window is None else window.rates.rates(self._start_time, self._last_request_at)

    def percentiles(self, entry: StatsEntry, fractions: Sequence[float],
                    aggregated: bool = False) -> list[float | None]:
        """Percentiles of the last ~10 s, clamped into the entry's [min, max]; None for an empty window."""
        window = self._window(entry, aggregated)
        if window is None or window.seen is None:
            return [None] * len(fractions)
        return histogram_percentiles(window.window(), fractions, entry.min_response_time, entry.max_response_time)
