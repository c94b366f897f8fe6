"""A plan's trends page (perf.web.trends): its charts over the plan's last N runs, for the whole run or one
endpoint, the baseline drawn across, the noise verdicts marked, every point a link to its run; the same few
queries with 10 runs as with 1,000; the view permission on runs; and the links to it from the plan and the run.
"""

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from perf.analysis import noise
from perf.models import EndpointStats, PerfPlan, PerfRun
from perf.reports import charts, formats
from perf.web import trends
from tests.factories import make_user, unique

ENDPOINTS = (("GET", "/events/"), ("GET", "/events/{id}/"), ("POST", "/events/{id}/rsvp/"))
SLOW = "POST /events/{id}/rsvp/"  # the endpoint whose p95 regressed in the runs ``regressed_every`` marks


def verdicts(p95: dict[str, float], slow: bool) -> dict[str, Any]:
    """A run's stored noise verdicts (NoiseReport.as_json): every endpoint within the noise, or the slow one's p95
    regressed."""
    found = []
    for key, value in p95.items():
        verdict = noise.REGRESSED if slow and key == SLOW else noise.WITHIN_NOISE
        found.append(noise.Verdict(key, "p95", verdict, value, 40.0, 4.0, 20))
        found.append(noise.Verdict(key, "failure_rate", noise.WITHIN_NOISE, 0.5, 0.5, 0.5, 20))
    report = noise.NoiseReport("bulk", noise.Rules(), runs=[], verdicts=found)
    return report.as_json()


def bulk_history(plan: PerfPlan, count: int, regressed_every: int = 0) -> list[PerfRun]:
    """``count`` completed runs of ``plan``, a night apart, each with its three endpoints and its Aggregated row,
    stored with bulk_create (a 1,000-run history in well under a second); every ``regressed_every``-th run (from
    the newest) slower on SLOW and judged so. Returns the runs oldest first."""
    start = timezone.now() - timedelta(days=count)
    runs = []
    for night in range(count):
        slow = bool(regressed_every) and (count - 1 - night) % regressed_every == 0
        runs.append(PerfRun(
            label=plan.name, plan=plan, status=PerfRun.Status.COMPLETED, started_at=start + timedelta(days=night),
            host="http://127.0.0.1:8000", options={"users": 10}, git_revision=f"{night:07x}abcdef", hostname="ci-1",
            total_requests=3000, total_failures=night % 7, requests_per_second=100.0 + night % 9,
            p50=20.0 + night % 5, p95=40.0 + night % 6 + (20 if slow else 0), p99=60.0 + night % 8,
            regressions=verdicts({"GET /events/": 30.0, SLOW: 62.0 if slow else 42.0, "Aggregated": 40.0}, slow)))
    PerfRun.objects.bulk_create(runs)
    stored = list(PerfRun.objects.filter(plan=plan).order_by("started_at", "id"))
    rows = []
    for night, run in enumerate(stored):
        for method, name in ENDPOINTS:
            slower = 20 if name == "/events/{id}/rsvp/" and run.regressions["regressed"] else 0
            rows.append(EndpointStats(run=run, method=method, name=name, num_requests=1000, num_failures=night % 3,
                                      p50=10.0 + night % 4, p95=30.0 + night % 5 + slower, p99=50.0 + night % 6,
                                      requests_per_second=33.0))
        rows.append(EndpointStats(run=run, method="", name="Aggregated", is_aggregated=True, num_requests=3000,
                                  num_failures=night % 7, p50=run.p50, p95=run.p95, p99=run.p99,
                                  requests_per_second=run.requests_per_second or 0.0))
    EndpointStats.objects.bulk_create(rows)
    return stored


def make_plan(count: int, **fields: Any) -> tuple[PerfPlan, list[PerfRun]]:
    plan = PerfPlan.objects.create(name=unique("trend"), options={"users": 10})
    runs = bulk_history(plan, count, **fields)
    return plan, runs


@pytest.fixture
def admin_client(orm) -> Client:
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def page(client: Client, plan: PerfPlan, query: str = "") -> tuple[str, int]:
    """The trends page's HTML and the queries it took (a second request: the session and user are then cached
    no more than in the first, so the count is what every request pays)."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/admin/perf/perfplan/{plan.pk}/trends/{query}")
    assert response.status_code == 200, response.content[:2000]
    return response.content.decode(), len(queries)


def points(html: str, series: str) -> list[str]:
    """The run pages a chart's series links to, left to right."""
    start = html.index(f'<g class="series" data-series="{series}">')
    chunk = html[start:html.index("</svg>", start)]
    following = chunk.find('<g class="series"', 1)
    chunk = chunk if following < 0 else chunk[:following]
    return re.findall(r'<a href="(/admin/perf/perfrun/\d+/change/)" class="run-point"', chunk)


def test_the_page_costs_the_same_few_queries_with_10_or_1000_runs(admin_client: Client) -> None:
    small, _ = make_plan(10)
    big, _ = make_plan(1000)
    counts = {}
    for name, plan in (("small", small), ("big", big)):
        page(admin_client, plan)  # warm: the content types and permissions the admin caches
        counts[name, "all"] = page(admin_client, plan)[1]
        counts[name, "endpoint"] = page(admin_client, plan, f"?endpoint={SLOW}&runs=200")[1]
    assert counts["small", "all"] == counts["big", "all"] <= 8, counts
    assert counts["small", "endpoint"] == counts["big", "endpoint"] <= 9, counts


def test_the_last_n_runs_each_a_link_regressions_marked_and_the_baseline_drawn(admin_client: Client) -> None:
    plan, runs = make_plan(120, regressed_every=10)
    plan.baseline = runs[0]
    plan.save()
    html, _ = page(admin_client, plan)
    # The default 50, oldest to newest, every point its run's page, in each of the five series.
    expected = [f"/admin/perf/perfrun/{run.pk}/change/" for run in runs[-50:]]
    for series in ("p50", "p95", "p99", "req/s", "failure rate"):
        assert points(html, series) == expected, series
    # The Aggregated p95 did not regress beyond the noise in any run: no mark; the slow endpoint's did.
    assert 'data-flag="regressed"' not in html
    assert "5 of these runs regressed beyond the noise" in html
    assert f"{SLOW} p95" in html  # the runs table says what regressed
    # The baseline: a dashed line per series, named by its run.
    assert html.count('<g class="baseline"') == 5 and f"baseline: run {runs[0].pk}" in html
    # The axis names runs by revision and date, the newest always.
    assert f">{runs[-1].git_revision[:7]}</text>" in html
    assert f">{timezone.localtime(runs[-1].started_at):%m-%d}</text>" in html


def test_one_endpoint_its_own_rows_and_its_regressions(admin_client: Client) -> None:
    plan, runs = make_plan(30, regressed_every=10)
    html, _ = page(admin_client, plan, f"?endpoint={SLOW}&runs=20")
    assert f'<option value="{SLOW}" selected>' in html
    assert points(html, "p95") == [f"/admin/perf/perfrun/{run.pk}/change/" for run in runs[-20:]]
    flagged = re.findall(r'<a href="/admin/perf/perfrun/(\d+)/change/" class="run-point" data-flag="regressed"',
                         html)
    assert flagged == [str(runs[-11].pk), str(runs[-1].pk)]
    # Its p95 from its own rows: 30 + night % 5, plus 20 in a regressed run.
    newest = EndpointStats.objects.get(run=runs[-1], name="/events/{id}/rsvp/")
    assert f"p95 {formats.ms_unit(newest.p95)}, regressed" in html
    # An endpoint these runs never measured is the Aggregated view, not an error.
    other, _ = page(admin_client, plan, "?endpoint=GET%20/nowhere/")
    assert '<option value="" selected>' in other


def test_the_number_of_runs_is_capped_and_bad_values_are_the_default() -> None:
    assert trends.run_count("7") == 7
    assert trends.run_count("100000") == trends.MAX_RUNS == 200
    assert trends.run_count("0") == 1
    assert trends.run_count("many") == trends.run_count(None) == trends.DEFAULT_RUNS == 50


def test_only_completed_load_tests_of_the_plan_are_drawn(admin_client: Client) -> None:
    plan, runs = make_plan(3)
    PerfRun.objects.create(plan=plan, status=PerfRun.Status.FAILED, host="x", p95=1.0)
    PerfRun.objects.create(plan=plan, kind=PerfRun.Kind.CAPACITY, status=PerfRun.Status.COMPLETED, host="x")
    html, _ = page(admin_client, plan, "?runs=10")
    assert points(html, "p95") == [f"/admin/perf/perfrun/{run.pk}/change/" for run in runs]


def test_a_plan_without_runs_says_so(admin_client: Client) -> None:
    plan = PerfPlan.objects.create(name=unique("empty"))
    html, _ = page(admin_client, plan)
    assert "No completed load test of this plan yet" in html and "perf-chart-trend" not in html


def test_viewing_trends_needs_the_view_permission_on_runs(orm) -> None:
    plan, _ = make_plan(3)
    url = f"/admin/perf/perfplan/{plan.pk}/trends/"
    client = Client()
    user = make_user(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_perfplan", content_type__app_label="perf"))
    client.force_login(user)
    assert client.get(url).status_code == 403
    # The plan's page then has no link to them.
    assert "perf-trends-link" not in client.get(f"/admin/perf/perfplan/{plan.pk}/change/").content.decode()
    user.user_permissions.add(Permission.objects.get(codename="view_perfrun", content_type__app_label="perf"))
    client.force_login(user)  # a fresh user object: its permissions are read again
    assert client.get(url).status_code == 200
    assert Client().get(url).status_code == 302  # anonymous: the admin's login


def test_the_plan_links_to_its_trends_and_runs_and_a_run_names_its_plan(admin_client: Client) -> None:
    plan, runs = make_plan(2)
    plan_page = admin_client.get(f"/admin/perf/perfplan/{plan.pk}/change/").content.decode()
    assert f'href="/admin/perf/perfplan/{plan.pk}/trends/"' in plan_page
    assert f'href="/admin/perf/perfrun/?plan__id__exact={plan.pk}"' in plan_page
    run_page = admin_client.get(f"/admin/perf/perfrun/{runs[0].pk}/change/").content.decode()
    assert f'of plan <a href="/admin/perf/perfplan/{plan.pk}/change/">{plan.name}</a>' in run_page
    assert f'href="/admin/perf/perfplan/{plan.pk}/trends/"' in run_page
    alone = PerfRun.objects.create(host="x", status=PerfRun.Status.COMPLETED)
    assert "of plan" not in admin_client.get(f"/admin/perf/perfrun/{alone.pk}/change/").content.decode()


def test_trend_labels_never_touch_and_always_name_the_newest() -> None:
    assert charts.trend_labels(5, 900) == {0, 1, 2, 3, 4}
    many = charts.trend_labels(200, 900)
    assert 199 in many and len(many) <= 900 / charts.TREND_LABEL_WIDTH + 1
    gaps = {b - a for a, b in zip(sorted(many), sorted(many)[1:], strict=False)}
    assert len(gaps) == 1 and gaps.pop() * 900 / 200 >= charts.TREND_LABEL_WIDTH


def test_a_trend_chart_marks_points_and_draws_the_baseline() -> None:
    runs = [charts.RunPoint(f"/run/{i}/", (f"rev{i}", "05-0{i}"), f"run {i}") for i in range(3)]
    svg = charts.trend_chart("p95", runs, [charts.RunSeries("p95", "#000", (10.0, None, 30.0),
                                                            ("", "", "regressed"), baseline=12.0)],
                             "response time (ms)", formats.ms_unit, baseline_label="baseline: run 1")
    assert svg.count('class="run-point"') == 2  # no point where the run has no value
    assert '<a href="/run/2/" class="run-point" data-flag="regressed"><title>run 2: p95 30 ms, regressed' in svg
    assert "regressed beyond the noise" in svg and '<g class="baseline"' in svg
    empty = charts.trend_chart("p95", [], [charts.RunSeries("p95", "#000", ())], "ms", formats.ms_unit)
    assert "No run measured this yet" in empty
