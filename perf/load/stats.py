"""Per-endpoint statistics of a run: counts, times, sizes, failures and a time series.

Requests are grouped by (method, name template). Every request is logged twice, once to
its entry and once to the Aggregated entry, as Locust does, so the Aggregated percentiles
come from all requests rather than from averaging rows. Nothing keeps one value per
request: memory is O(endpoints + failure kinds + samples).
"""

import time
from array import array
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from math import isnan, nan
from typing import Any

from perf.load.histogram import Histogram, bucket_key
from perf.load.history import HistoryPoint, HistoryPoints, RateWindow, make_point
from perf.load.server_timing import ServerStats
from perf.load.transport import REOPENED, REUSED

# The percentiles Locust prints and writes to CSV.
PERCENTILES = (0.5, 0.66, 0.75, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0)
AGGREGATED = "Aggregated"


def percentile_label(fraction: float) -> str:
    """``50%``, ``99.9%``: integer percents without decimals, as Locust labels them."""
    percent = fraction * 100
    return f"{int(percent)}%" if percent == int(percent) else f"{percent:g}%"


PERCENTILE_LABELS = tuple(percentile_label(fraction) for fraction in PERCENTILES)


class StatsEntry:
    """All figures of one endpoint (or of all requests, for the Aggregated entry)."""

    __slots__ = (
        "method", "name", "num_requests", "num_failures", "total_response_time", "min_response_time",
        "max_response_time", "total_content_length", "histogram", "first_request_at", "last_request_at", "server",
        "new_connections", "reopened_connections",
    )

    def __init__(self, method: str, name: str) -> None:
        self.method = method
        self.name = name
        self.num_requests = 0
        self.num_failures = 0
        self.total_response_time = 0.0
        self.min_response_time: float | None = None
        self.max_response_time = 0.0
        self.total_content_length = 0
        self.histogram = Histogram()
        self.first_request_at: float | None = None
        self.last_request_at: float | None = None
        # Only when the backend sends Server-Timing (perf.middleware).
        self.server: ServerStats | None = None
        # TCP connections opened for these requests, and how many of them replaced a kept-alive one
        # the server had closed while it sat idle: each is a handshake a longer keep-alive would save.
        self.new_connections = 0
        self.reopened_connections = 0

    def log_server(self, response_time: float, app: float, db: float | None, queries: int | None,
                   app_key: int | None = None) -> None:
        server = self.server
        if server is None:
            server = self.server = ServerStats()
        server.log(response_time, app, db, queries, app_key)

    def log(self, response_time: float, content_length: int, failed: bool, now: float, key: int | None = None) -> None:
        """Count one request; ``key`` is its histogram bucket when the caller already has it."""
        self.num_requests += 1
        if failed:
            self.num_failures += 1
        self.total_response_time += response_time
        low = self.min_response_time
        if low is None or response_time < low:
            self.min_response_time = response_time
        if response_time > self.max_response_time:
            self.max_response_time = response_time
        self.total_content_length += content_length
        histogram = self.histogram
        if key is None:
            key = bucket_key(response_time)
        counts = histogram.counts
        counts[key] = counts.get(key, 0) + 1
        histogram.total += 1
        if self.first_request_at is None:
            self.first_request_at = now
        self.last_request_at = now

    def log_connection(self, opened: int) -> None:
        """A request that opened a connection (``perf.load.transport``'s NEW or REOPENED)."""
        self.new_connections += 1
        if opened == REOPENED:
            self.reopened_connections += 1

    def merge(self, other: "StatsEntry") -> None:
        """Add ``other``'s requests: the result equals logging both streams into one entry."""
        self.num_requests += other.num_requests
        self.num_failures += other.num_failures
        self.new_connections += other.new_connections
        self.reopened_connections += other.reopened_connections
        self.total_response_time += other.total_response_time
        if other.min_response_time is not None and (
            self.min_response_time is None or other.min_response_time < self.min_response_time
        ):
            self.min_response_time = other.min_response_time
        self.max_response_time = max(self.max_response_time, other.max_response_time)
        self.total_content_length += other.total_content_length
        self.histogram.merge(other.histogram)
        if other.server is not None:
            if self.server is None:
                self.server = ServerStats()
            self.server.merge(other.server)
        for attr, pick in (("first_request_at", min), ("last_request_at", max)):
            mine, theirs = getattr(self, attr), getattr(other, attr)
            setattr(self, attr, theirs if mine is None else mine if theirs is None else pick(mine, theirs))

    @property
    def avg_response_time(self) -> float:
        return self.total_response_time / self.num_requests if self.num_requests else 0.0

    @property
    def avg_content_length(self) -> float:
        return self.total_content_length / self.num_requests if self.num_requests else 0.0

    @property
    def connections_per_100(self) -> float:
        """Connections opened per 100 requests: near 0 when keep-alive holds, 100 when every request pays one."""
        return 100 * self.new_connections / self.num_requests if self.num_requests else 0.0

    @property
    def fail_ratio(self) -> float:
        if not self.num_requests:
            return 0.0
        return self.num_failures / self.num_requests

    def percentile(self, fraction: float) -> float | None:
        """The percentile, clamped into [min, max] so it never exceeds what was measured."""
        value = self.histogram.percentile(fraction)
        if value is None or self.min_response_time is None:
            return None
        return min(max(value, self.min_response_time), self.max_response_time)

    @property
    def median_response_time(self) -> float | None:
        return self.percentile(0.5)

    def rps(self, duration: float) -> float:
        return self.num_requests / duration if duration > 0 else 0.0

    def failures_per_second(self, duration: float) -> float:
        return self.num_failures / duration if duration > 0 else 0.0

    def copy(self) -> "StatsEntry":
        """An independent copy (a stage mark keeps one as the entry stood at a stage boundary)."""
        return StatsEntry.from_dict(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild the entry (for storage and for merging across processes)."""
        return {
            "method": self.method,
            "name": self.name,
            "num_requests": self.num_requests,
            "num_failures": self.num_failures,
            "total_response_time": self.total_response_time,
            "min_response_time": self.min_response_time,
            "max_response_time": self.max_response_time,
            "total_content_length": self.total_content_length,
            "histogram": self.histogram.to_json(),
            "first_request_at": self.first_request_at,
            "last_request_at": self.last_request_at,
            "server": self.server.to_dict() if self.server else None,
            "new_connections": self.new_connections,
            "reopened_connections": self.reopened_connections,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StatsEntry":
        entry = cls(data["method"], data["name"])
        for key in ("num_requests", "num_failures", "total_response_time", "min_response_time",
                    "max_response_time", "total_content_length", "first_request_at", "last_request_at"):
            setattr(entry, key, data[key])
        # Runs stored before connections were counted have no counts: 0, as "not seen".
        entry.new_connections = data.get("new_connections", 0)
        entry.reopened_connections = data.get("reopened_connections", 0)
        entry.histogram = Histogram.from_json(data["histogram"])
        if data.get("server"):
            entry.server = ServerStats.from_dict(data["server"])
        return entry


@dataclass
class FailureEntry:
    """One kind of failure: the same method, name and error text."""

    method: str
    name: str
    error: str
    occurrences: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0


@dataclass
class ExceptionEntry:
    """An exception raised by scenario code (not a failed request), grouped by its message."""

    message: str
    traceback: str
    count: int = 0


# Percentiles over time are taken over this many seconds: a 2 s window holds too few slow requests to be
# steady (its p95 swings by an order of magnitude from one tick to the next), as Locust's charts also know.
ROLLING_WINDOW = 10.0


class EndpointFigures(Mapping[str, tuple[float, float | None]]):
    """Each endpoint's (req/s, p95 ms) at one sample, packed in one array of floats.

    A run keeps one of these per tick for its whole length: as a dict of tuples it would cost ~130
    bytes an endpoint (~5 MB an hour for the platform's 18 endpoints), packed it costs 16. The names
    are one tuple shared by every sample taken while the set of endpoints stays the same.
    """

    __slots__ = ("_names", "_index", "_values")

    def __init__(self, names: tuple[str, ...], values: Iterable[float], index: dict[str, int] | None = None) -> None:
        self._names = names
        self._index = index if index is not None else {name: i for i, name in enumerate(names)}
        self._values = array("d", values)

    @classmethod
    def of(cls, figures: Mapping[str, Sequence[float | None]]) -> "EndpointFigures":
        """From ``{"METHOD name": (req/s, p95)}``, p95 None when unknown."""
        names = tuple(figures)
        return cls(names, (_nan_for_none(value) for name in names for value in figures[name][:2]))

    def __getitem__(self, name: str) -> tuple[float, float | None]:
        i = 2 * self._index[name]
        p95 = self._values[i + 1]
        return self._values[i], None if isnan(p95) else p95

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"EndpointFigures({dict(self.items())!r})"


def _nan_for_none(value: float | None) -> float:
    return nan if value is None else value


@dataclass(slots=True)  # a run keeps one per tick for its whole length
class Sample:
    """One point of the time series. Rates are over the window since the previous sample; the
    percentiles over the last ``ROLLING_WINDOW`` seconds. ``endpoints`` maps ``"METHOD name"`` to
    that endpoint's (req/s, p95) at this point. ``history`` holds the points of Locust's stats history
    (``StatsRegistry.mark_second``) made since the previous sample, this sample's own last."""

    timestamp: float
    elapsed: float
    users: int
    requests_per_second: float
    failures_per_second: float
    p50: float | None
    p95: float | None
    avg_response_time: float | None
    total_requests: int
    total_failures: int
    p99: float | None = None
    endpoints: Mapping[str, tuple[float, float | None]] = field(default_factory=dict)
    history: HistoryPoints = field(default_factory=HistoryPoints)
    # What the load profile asked for at this point (users, or iterations a second); None without a profile.
    target: float | None = None
    # Iterations started a second over the same window as the rates: what the open model did beside its target
    # (a task may send several requests, so req/s is another unit); None for the closed model, which counts none.
    iterations_per_second: float | None = None


@dataclass(slots=True)
class _Rolling:
    """One entry's recent past: where it stood at the last sample, and what each recent tick added.

    Keeping what each tick added (a few buckets) rather than a copy of the whole histogram at each
    tick keeps the memory of the rolling window from growing with the run's spread of latencies.
    """

    at: float
    requests: int
    failures: int
    time_sum: float
    histogram: Histogram  # cumulative, as of ``at`` (its own copy, kept up to date by merging each tick)
    ticks: deque[tuple[float, Histogram]]  # (when the tick began, what it added), oldest first


@dataclass(frozen=True)
class StageMark:
    """Each entry's cumulative figures when stage ``index`` of the load profile began (``StatsRegistry.mark_stage``):
    what a stage added is the next mark (or the end) minus this one (``perf.load.stage_figures``)."""

    index: int
    at: float  # time.time()
    entries: dict[tuple[str, str], StatsEntry]
    total: StatsEntry


@dataclass
class StatsRegistry:
    """Where every request of a run lands; the HTTP session reports here and knows no more."""

    entries: dict[tuple[str, str], StatsEntry] = field(default_factory=dict)
    total: StatsEntry = field(default_factory=lambda: StatsEntry("", AGGREGATED))
    failures: dict[tuple[str, str, str], FailureEntry] = field(default_factory=dict)
    exceptions: dict[str, ExceptionEntry] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    start_time: float = field(default_factory=time.time)
    # Per entry key ("" for Aggregated): its recent past, for the rates and the rolling window.
    _rolling: dict[str, _Rolling] = field(default_factory=dict)
    _endpoint_names: tuple[str, ...] = ()
    _endpoint_index: dict[str, int] = field(default_factory=dict)
    # Locust's stats history, a point a second: the newest, those not in a sample yet, and the counts
    # behind the current rates (perf.load.history).
    last_point: HistoryPoint | None = None
    _pending_history: HistoryPoints = field(default_factory=HistoryPoints)
    _history_rates: RateWindow = field(default_factory=RateWindow)
    # The load profile's stage boundaries, as the figures stood at each (perf.load.stage_figures).
    stage_marks: list[StageMark] = field(default_factory=list)
    # Iterations started so far, kept current by a runner that counts them (the open model) before each sample;
    # None for the closed model. Each sample turns what it grew by into iterations_per_second.
    iterations_started: int | None = None
    _iterations_sampled: int = 0

    def record(
        self,
        method: str,
        name: str,
        response_time: float,
        content_length: int,
        error: str | None = None,
        server: tuple[float | None, float | None, int | None] | None = None,
        opened: int = REUSED,
    ) -> None:
        """One request; ``server`` is (app ms, db ms, queries) from its Server-Timing header, ``opened``
        whether a connection was opened for it (``perf.load.transport``)."""
        now = time.time()
        entry = self.entries.get((method, name))
        if entry is None:
            entry = self.entries[(method, name)] = StatsEntry(method, name)
        failed = error is not None
        # The hot path: one bucket lookup serves the entry and the Aggregated entry.
        key = bucket_key(response_time)
        entry.log(response_time, content_length, failed, now, key)
        self.total.log(response_time, content_length, failed, now, key)
        if server is not None and (app := server[0]) is not None:
            _, db, queries = server
            app_key = bucket_key(app)
            entry.log_server(response_time, app, db, queries, app_key)
            self.total.log_server(response_time, app, db, queries, app_key)
        if opened:
            entry.log_connection(opened)
            self.total.log_connection(opened)
        if error is not None:
            self.record_failure(method, name, error, now)

    def record_failure(self, method: str, name: str, error: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        key = (method, name, error)
        failure = self.failures.get(key)
        if failure is None:
            failure = self.failures[key] = FailureEntry(method, name, error, 0, now, now)
        failure.occurrences += 1
        failure.last_seen = now

    def record_exception(self, message: str, traceback: str) -> None:
        entry = self.exceptions.get(message)
        if entry is None:
            entry = self.exceptions[message] = ExceptionEntry(message, traceback)
        entry.count += 1

    def sorted_failures(self) -> list[FailureEntry]:
        """Failures by (name, method, error), so that reruns' files and tables diff cleanly."""
        return sorted(self.failures.values(), key=lambda f: (f.name, f.method, f.error))

    def sorted_entries(self) -> list[StatsEntry]:
        """Entries by (name, method), the order of Locust's tables and CSV files."""
        return [self.entries[key] for key in sorted(self.entries, key=lambda k: (k[1], k[0]))]

    def mark_second(self, users: int, now: float | None = None) -> HistoryPoint:
        """A point of the stats history: the Aggregated figures as they stand (cumulative percentiles,
        min, max, sizes as of now) and Locust's current rates. It goes with the next sample, so a stored
        run keeps its history; runners make one a second and one at every sample."""
        now = time.time() if now is None else now
        total = self.total
        rates = self._history_rates
        rates.observe(now, total.num_requests, total.num_failures, self.start_time, total.last_request_at)
        point = make_point(total, now, users, rates.rates(self.start_time, total.last_request_at), PERCENTILES)
        self._pending_history.append(point)
        self.last_point = point
        return point

    def mark_stage(self, index: int, now: float | None = None) -> StageMark:
        """Stage ``index`` begins now: keep a copy of every entry's cumulative figures (a few entries, once a
        stage), so that each stage's own figures can be told apart at the end."""
        mark = self.snapshot(index, now)
        self.stage_marks.append(mark)
        return mark

    def snapshot(self, index: int, now: float | None = None) -> StageMark:
        """Every entry's cumulative figures as they stand, kept nowhere: a capacity search's step windows are
        told apart with these (``perf.load.capacity``), as stages are with their marks."""
        return StageMark(index, time.time() if now is None else now,
                         {key: entry.copy() for key, entry in self.entries.items()}, self.total.copy())

    def take_sample(self, users: int, now: float | None = None, target: float | None = None) -> Sample:
        """Close the current window and append its figures to the time series, with a history point
        as of now and those made since the previous sample."""
        now = time.time() if now is None else now
        self.mark_second(users, now)
        history, self._pending_history = self._pending_history, HistoryPoints()
        total = self.total
        iterations_per_second = self._iteration_rate(now)  # before the window moves on
        rps, fps, avg, window = self._windows("", total, now)
        entries = self.sorted_entries()
        names = tuple(f"{entry.method} {entry.name}" for entry in entries)
        if names != self._endpoint_names:  # a new endpoint: a new shared tuple, else the previous one is kept
            self._endpoint_names, self._endpoint_index = names, {name: i for i, name in enumerate(names)}
        values: list[float] = []
        for name, entry in zip(self._endpoint_names, entries, strict=True):
            entry_rps, _, _, entry_window = self._windows(name, entry, now)
            values += (entry_rps, _nan_for_none(self._clamped(entry_window.percentile(0.95), entry)))
        endpoints = EndpointFigures(self._endpoint_names, values, self._endpoint_index)
        sample = Sample(
            timestamp=now,
            elapsed=now - self.start_time,
            users=users,
            requests_per_second=rps,
            failures_per_second=fps,
            p50=self._clamped(window.percentile(0.5)),
            p95=self._clamped(window.percentile(0.95)),
            p99=self._clamped(window.percentile(0.99)),
            avg_response_time=avg,
            total_requests=total.num_requests,
            total_failures=total.num_failures,
            endpoints=endpoints,
            history=history,
            target=target,
            iterations_per_second=iterations_per_second,
        )
        self.samples.append(sample)
        return sample

    def _iteration_rate(self, now: float) -> float | None:
        """Iterations started a second since the previous sample (the window of the sample's req/s), or None when
        no runner counts them."""
        started = self.iterations_started
        if started is None:
            return None
        past = self._rolling.get("")
        since = self.start_time if past is None else past.at
        rate = (started - self._iterations_sampled) / max(now - since, 1e-9)
        self._iterations_sampled = started
        return rate

    def _windows(self, key: str, entry: "StatsEntry", now: float) -> tuple[float, float, float | None, Histogram]:
        """(req/s, failures/s, avg ms) since the previous sample and the histogram of the rolling window
        (the ticks since the newest tick start at least ROLLING_WINDOW ago), for one entry."""
        past = self._rolling.get(key)
        if past is None:
            past = self._rolling[key] = _Rolling(self.start_time, 0, 0, 0.0, Histogram(), deque())
        span = max(now - past.at, 1e-9)
        requests = entry.num_requests - past.requests
        rates = (requests / span, (entry.num_failures - past.failures) / span,
                 (entry.total_response_time - past.time_sum) / requests if requests else None)
        added = entry.histogram.minus(past.histogram)
        past.ticks.append((past.at, added))
        while len(past.ticks) > 1 and now - past.ticks[1][0] >= ROLLING_WINDOW:
            past.ticks.popleft()
        window = Histogram()
        for _, tick in past.ticks:
            window.merge(tick)
        past.at, past.requests, past.failures = now, entry.num_requests, entry.num_failures
        past.time_sum = entry.total_response_time
        past.histogram.merge(added)  # now equal to the entry's: only the buckets this tick touched change
        return (*rates, window)

    def _clamped(self, value: float | None, entry: "StatsEntry | None" = None) -> float | None:
        """A window percentile kept inside the entry's measured [min, max], as entry percentiles are."""
        entry = entry or self.total
        low = entry.min_response_time
        if value is None or low is None:
            return value
        return min(max(value, low), entry.max_response_time)

    def reset_tables(self) -> None:
        """Empty the request tables (entries, Aggregated, failures, exceptions), keeping the time series and
        its windows: a forked worker's registry after each report, a coordinator's before it merges its
        shards' latest figures again. New containers, not cleared ones: a registry handed over
        (``processes.WorkerStats.drain``) keeps the old ones."""
        self.entries, self.total, self.failures, self.exceptions = {}, StatsEntry("", AGGREGATED), {}, {}

    def to_json(self) -> dict[str, Any]:
        """The request tables as JSON (what a Celery shard reports, what a summary file holds): everything
        ``merge`` folds, not the time series."""
        return {
            "entries": [entry.to_dict() for entry in self.entries.values()],
            "total": self.total.to_dict(),
            "failures": [asdict(failure) for failure in self.failures.values()],
            "exceptions": [asdict(exception) for exception in self.exceptions.values()],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "StatsRegistry":
        """A registry with the tables of ``to_json``'s form; an absent part is empty."""
        stats = cls()
        for item in data.get("entries", []):
            entry = StatsEntry.from_dict(item)
            stats.entries[(entry.method, entry.name)] = entry
        if data.get("total"):
            stats.total = StatsEntry.from_dict(data["total"])
        for item in data.get("failures", []):
            failure = FailureEntry(**item)
            stats.failures[(failure.method, failure.name, failure.error)] = failure
        for item in data.get("exceptions", []):
            stats.exceptions[item["message"]] = ExceptionEntry(**item)
        return stats

    def merge(self, other: "StatsRegistry") -> None:
        """Fold another registry (another process or shard) into this one, exactly."""
        for key, entry in other.entries.items():
            mine = self.entries.get(key)
            if mine is None:
                mine = self.entries[key] = StatsEntry(entry.method, entry.name)
            mine.merge(entry)
        self.total.merge(other.total)
        for failure_key, failure in other.failures.items():
            mine_failure = self.failures.get(failure_key)
            if mine_failure is None:
                self.failures[failure_key] = FailureEntry(**vars(failure))
            else:
                mine_failure.occurrences += failure.occurrences
                mine_failure.first_seen = min(mine_failure.first_seen, failure.first_seen)
                mine_failure.last_seen = max(mine_failure.last_seen, failure.last_seen)
        for message, exception in other.exceptions.items():
            mine_exception = self.exceptions.setdefault(message, ExceptionEntry(message, exception.traceback))
            mine_exception.count += exception.count
