"""A plan's trends page (perf.web.trends) at 10, 100 and 1,000 stored runs: its time and its query count.

Goal (issue 22, "Trends"): the page stays fast with 1,000 runs in a plan, its query count the same at every size
(nothing read per run). Run: .venv/bin/python benchmarks/trends.py [--sizes 10 100 1000] [--repeat 5]
     [--database-url postgres://postgres@127.0.0.1:5432/postgres]

Without --database-url a fresh SQLite file in a temporary folder is used; with a PostgreSQL URL a scratch database
is made beside it and dropped afterwards. Each size is a plan of its own, filled with bulk_create by the tests'
builder (tests.perf.test_trends.bulk_history: three endpoints and the Aggregated row per run, every 10th run
regressed on one endpoint). Each page is asked in-process through django.test.Client as a superuser, once to warm
up, then ``--repeat`` times timed (the median is printed) and once counted with CaptureQueriesContext. Two pages a
size: the default (the last 50 runs, all endpoints) and one endpoint over the last 200 runs. Then the database's
plan for the three queries that read the history (the runs, their endpoints, one endpoint's rows): on an index.
Exit code 1 when a query count differs between sizes.
"""

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scratch_database import database_url_problem, scratch_database  # noqa: E402


def measure(client, url: str, repeat: int) -> tuple[float, int]:
    """The page's median time (ms) over ``repeat`` requests, and its query count."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    assert client.get(url).status_code == 200, url  # warm: content types, permissions, templates
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, url
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    return statistics.median(times), len(queries)


def explain(plan, endpoint: tuple[str, str]) -> list[str]:
    """The database's plan for the queries of ``plan``'s page that read its history (as perf.web.trends makes
    them): the runs, the endpoints they measured, one endpoint's rows."""
    from django.db import connection

    from perf.models import EndpointStats, PerfRun
    from perf.web import trends

    if connection.vendor == "postgresql":  # bulk-filled tables have no statistics until autovacuum comes by
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE perf_perfrun, perf_endpointstats")

    runs = (PerfRun.objects.filter(plan=plan, status=PerfRun.Status.COMPLETED, kind=PerfRun.Kind.LOAD)
            .order_by("-started_at", "-id").values(*trends.RUN_COLUMNS)[:trends.MAX_RUNS])
    pks = list(runs.values_list("pk", flat=True))
    rows = EndpointStats.objects.filter(run_id__in=pks, method=endpoint[0], name=endpoint[1]).order_by().values(
        *trends.ENDPOINT_COLUMNS)
    names = (EndpointStats.objects.filter(run_id__in=pks, is_aggregated=False).values_list("method", "name")
             .distinct().order_by("name", "method"))
    found = [f"runs:          {runs.explain()}", f"endpoints:     {names.explain()}",
             f"endpoint rows: {rows.explain()}"]
    # The runs' ids, 200 of them, say nothing of the plan.
    return [re.sub(r"\{\d+(,\d+){3,}\}", "{…ids…}", text) for text in found]


def run(sizes: list[int], repeat: int) -> tuple[list[list[str]], list[str], bool]:
    from django.test import Client

    from perf.models import PerfPlan
    from tests.factories import make_user, unique
    from tests.perf.test_trends import SLOW, bulk_history

    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    rows, counts, plan = [], {}, None
    for size in sizes:
        plan = PerfPlan.objects.create(name=unique("bench"), options={"users": 10})
        started = time.perf_counter()
        bulk_history(plan, size, regressed_every=10)
        filled = time.perf_counter() - started
        base = f"/admin/perf/perfplan/{plan.pk}/trends/"
        for label, url in (("last 50, all endpoints", base), ("last 200, one endpoint", f"{base}?endpoint={SLOW}"
                                                                                          "&runs=200")):
            ms, queries = measure(client, url, repeat)
            counts.setdefault(label, set()).add(queries)
            rows.append([f"{size:,}", label, f"{ms:.1f}", str(queries), f"{filled:.2f}"])
    method, name = SLOW.split(" ", 1)
    plans = explain(plan, (method, name)) if plan is not None else []
    return rows, plans, all(len(found) == 1 for found in counts.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000], help="runs per plan")
    parser.add_argument("--repeat", type=int, default=5, help="timed requests per page (the median is printed)")
    parser.add_argument("--database-url", help="a PostgreSQL server URL; a scratch database is made beside it")
    args = parser.parse_args()
    if min(args.sizes) < 1 or args.repeat < 1:
        parser.error("sizes and --repeat must be at least 1")

    problem = database_url_problem(args.database_url)
    if problem:
        parser.error(problem)
    with scratch_database(args.database_url, "trends") as vendor:
        rows, plans, equal = run(args.sizes, args.repeat)

    from tabulate import tabulate

    print(f"Trends page on {vendor}, median of {args.repeat} requests:")
    print(tabulate(rows, headers=["runs in plan", "page", "ms", "queries", "fill (s)"], disable_numparse=True))
    print("\nQuery plans at the largest size:")
    print("\n".join(plans))
    print("\nquery counts equal at every size" if equal else "\nQUERY COUNTS DIFFER between sizes")
    sys.exit(0 if equal else 1)


if __name__ == "__main__":
    main()
