"""Response-time histogram with bounded relative error that merges exactly.

Buckets are geometric with ratio 1.02: a value ``t`` (ms) falls in bucket
``k = floor(log(t) / log(1.02))`` and is reported as the bucket's geometric midpoint
``1.02 ** (k + 0.5)``, at most 0.995 % from any value inside it. About 556 buckets cover
1 ms to 60 s; only touched buckets are stored. Two histograms merge by adding counts per
key, so per-process or per-shard histograms combine into exactly the histogram of all
requests (Locust's rounding has the same property but ~5 % error).
"""

from math import ceil, floor, log

RATIO = 1.02
_INV_LOG_RATIO = 1.0 / log(RATIO)
_SQRT_RATIO: float = RATIO**0.5  # float ** float is typed Any (a negative base would give a complex)
# Values below 1 µs (or zero) share one bucket: no real request is that fast.
_FLOOR_MS = 0.001
_FLOOR_KEY = floor(log(_FLOOR_MS) * _INV_LOG_RATIO)


def bucket_key(ms: float) -> int:
    """The bucket of a response time in milliseconds."""
    if ms <= _FLOOR_MS:
        return _FLOOR_KEY
    return floor(log(ms) * _INV_LOG_RATIO)


def bucket_value(key: int) -> float:
    """The value a bucket stands for: its geometric midpoint."""
    return RATIO**key * _SQRT_RATIO


class Histogram:
    """Counts per bucket key; memory is O(distinct buckets), never O(requests)."""

    __slots__ = ("counts", "total")

    def __init__(self, counts: dict[int, int] | None = None) -> None:
        self.counts: dict[int, int] = dict(counts) if counts else {}
        self.total = sum(self.counts.values())

    def record(self, ms: float) -> None:
        key = bucket_key(ms)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1
        self.total += 1

    def merge(self, other: "Histogram") -> None:
        counts = self.counts
        for key, count in other.counts.items():
            counts[key] = counts.get(key, 0) + count
        self.total += other.total

    def copy(self) -> "Histogram":
        return Histogram(self.counts)

    def minus(self, earlier: "Histogram") -> "Histogram":
        """The requests recorded since ``earlier`` (a copy of this histogram taken before)."""
        diff = {key: count - earlier.counts.get(key, 0) for key, count in self.counts.items()}
        return Histogram({key: count for key, count in diff.items() if count})

    def percentile(self, fraction: float) -> float | None:
        """Nearest-rank percentile (``fraction`` in 0..1); None when empty."""
        if not self.total:
            return None
        # ceil(fraction * total), minus a hair so that 0.95 * 100 is rank 95, not 96.
        rank = max(1, ceil(fraction * self.total - 1e-9))
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= rank:
                return bucket_value(key)
        return bucket_value(max(self.counts))

    def to_json(self) -> dict[str, int]:
        """Bucket key → count, keys as strings so the dict survives JSON."""
        return {str(key): count for key, count in sorted(self.counts.items())}

    @classmethod
    def from_json(cls, data: dict[str, int]) -> "Histogram":
        return cls({int(key): count for key, count in data.items()})
