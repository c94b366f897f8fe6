"""Cost of recording one request, and memory that does not grow with the request count.

Goal (issue: speed): recording ≤ 3 µs per request; RSS flat over 5 million recorded requests.
Run: .venv/bin/python benchmarks/stats.py [--requests 5000000]
"""

import argparse
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from perf.load.stats import StatsRegistry  # noqa: E402

ENDPOINTS = [("GET", f"/endpoint/{i}") for i in range(18)]


def rss_mb() -> float:
    """Resident set size now, from /proc (ru_maxrss would only show the peak)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5_000_000)
    args = parser.parse_args()
    rng = random.Random(1)
    # Pre-drawn inputs, so the loop times recording and not the random number generator.
    times = [rng.lognormvariate(3.5, 1.0) for _ in range(100_000)]
    stats = StatsRegistry()
    record = stats.record
    checkpoints = {args.requests * k // 5 for k in range(1, 6)}
    print(f"{'requests':>12} {'RSS MB':>8} {'µs/record':>10}")
    print(f"{0:>12} {rss_mb():8.1f} {'':>10}")
    done = 0
    start = time.perf_counter()
    mark = start
    while done < args.requests:
        method, name = ENDPOINTS[done % len(ENDPOINTS)]
        error = "HTTPError('500')" if done % 997 == 0 else None
        record(method, name, times[done % len(times)], 512, error, (5.0, 1.0, 3))
        done += 1
        if done in checkpoints:
            now = time.perf_counter()
            per_record = (now - mark) / (args.requests // 5) * 1e6
            print(f"{done:>12} {rss_mb():8.1f} {per_record:10.2f}")
            mark = now
    overall = (time.perf_counter() - start) / args.requests * 1e6
    buckets = sum(len(e.histogram.counts) for e in stats.entries.values())
    print(f"\nmean cost per record: {overall:.2f} µs (goal ≤ 3 µs: {'met' if overall <= 3 else 'NOT met'})")
    print(f"histogram buckets held: {buckets} for {args.requests:,} requests over {len(ENDPOINTS)} endpoints")


if __name__ == "__main__":
    main()
