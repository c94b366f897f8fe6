"""What the backend says about its own time: the ``Server-Timing`` header and its statistics.

``perf.middleware`` sends ``app;dur=12.4, db;dur=3.1;desc="5 queries"``; the session parses it
per response and each endpoint's statistics keep the sums and an app-time histogram.
"""

import re
from typing import Any

from perf.load.histogram import Histogram, bucket_key

# (app ms, database ms, query count) from a Server-Timing header; any part may be missing.
ServerTiming = tuple[float | None, float | None, int | None]

# perf.middleware's exact form, read with one match: half the cost of the general reading below, which
# every other form (other servers' metrics, another order) still gets.
_MIDDLEWARE_FORM = re.compile(r'app;dur=(\d+\.\d+), db;dur=(\d+\.\d+);desc="(\d+) quer(?:y|ies)"\Z')


def parse_server_timing(value: str) -> ServerTiming | None:
    """Read ``app;dur=12.4, db;dur=3.1;desc="5 queries"`` (perf.middleware's header).

    Unknown metrics are ignored; None when neither ``app`` nor ``db`` is there.
    """
    match = _MIDDLEWARE_FORM.match(value)
    if match is not None:
        app_ms, db_ms, count = match.groups()
        return float(app_ms), float(db_ms), int(count)
    app = db = None
    queries = None
    for metric in value.split(","):
        name, *params = metric.split(";")
        name = name.strip()
        if name not in ("app", "db"):
            continue
        duration = description = None
        for param in params:
            key, _, raw = param.strip().partition("=")
            if key == "dur":
                try:
                    duration = float(raw)
                except ValueError:
                    duration = None
            elif key == "desc":
                description = raw.strip('"')
        if name == "app":
            app = duration
        else:
            db = duration
            first = description.split(" ", 1)[0] if description else ""
            queries = int(first) if first.isdigit() else None
    if app is None and db is None:
        return None
    return app, db, queries



class ServerStats:
    """What the backend said about its own time (``Server-Timing``) for one endpoint.

    Client time minus app time is what the app never sees: network, the wait for a free
    worker, and the server's own overhead; under load it is usually the queue.
    """

    __slots__ = ("count", "app_total", "db_total", "queries_total", "network_total", "app_histogram")

    def __init__(self) -> None:
        self.count = 0
        self.app_total = 0.0
        self.db_total = 0.0
        self.queries_total = 0
        self.network_total = 0.0
        self.app_histogram = Histogram()

    def log(self, response_time: float, app: float, db: float | None, queries: int | None,
            app_key: int | None = None) -> None:
        """Count one timed request; ``app_key`` is the app time's bucket when the caller has it."""
        self.count += 1
        self.app_total += app
        if db:
            self.db_total += db
        if queries:
            self.queries_total += queries
        if response_time > app:
            self.network_total += response_time - app
        histogram = self.app_histogram
        if app_key is None:
            app_key = bucket_key(app)
        counts = histogram.counts
        counts[app_key] = counts.get(app_key, 0) + 1
        histogram.total += 1

    def merge(self, other: "ServerStats") -> None:
        self.count += other.count
        self.app_total += other.app_total
        self.db_total += other.db_total
        self.queries_total += other.queries_total
        self.network_total += other.network_total
        self.app_histogram.merge(other.app_histogram)

    def minus(self, earlier: "ServerStats | None") -> "ServerStats":
        """What was timed since ``earlier`` (a copy of these figures taken before; None: since the start)."""
        if earlier is None:
            return ServerStats.from_dict(self.to_dict())
        delta = ServerStats()
        delta.count = self.count - earlier.count
        delta.app_total = self.app_total - earlier.app_total
        delta.db_total = self.db_total - earlier.db_total
        delta.queries_total = self.queries_total - earlier.queries_total
        delta.network_total = self.network_total - earlier.network_total
        delta.app_histogram = self.app_histogram.minus(earlier.app_histogram)
        return delta

    def _avg(self, total: float) -> float | None:
        return total / self.count if self.count else None

    @property
    def avg_app_time(self) -> float | None:
        return self._avg(self.app_total)

    @property
    def p95_app_time(self) -> float | None:
        return self.app_histogram.percentile(0.95)

    @property
    def avg_db_time(self) -> float | None:
        return self._avg(self.db_total)

    @property
    def avg_queries(self) -> float | None:
        return self._avg(self.queries_total)

    @property
    def avg_network_time(self) -> float | None:
        return self._avg(self.network_total)

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "app_total": self.app_total,
            "db_total": self.db_total,
            "queries_total": self.queries_total,
            "network_total": self.network_total,
            "app_histogram": self.app_histogram.to_json(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ServerStats":
        stats = cls()
        for key in ("count", "app_total", "db_total", "queries_total", "network_total"):
            setattr(stats, key, data[key])
        stats.app_histogram = Histogram.from_json(data["app_histogram"])
        return stats
