"""A plan's trends in the admin: p50/p95/p99, req/s and the failure rate over its last N runs, for the whole run or
one endpoint, the baseline run drawn across and the noise verdicts (``PerfRun.regressions``) marked; every point a
link to its run (docs/continuous.md, "Trends").

A plan runs every night for years: the page must cost the same with 1,000 runs as with 10. It reads a constant
number of queries whatever the history: the plan, the last N runs' summary columns (on the index
``(plan, -started_at)``), the endpoints those runs measured, and the chosen endpoint's rows in them (on the unique
index ``(run, method, name)``). Nothing is read per run.

URL name: ``admin:perf_perfplan_trends`` (the plan's id); ``?runs=N`` (default 50, at most 200) and
``?endpoint=METHOD name`` (as the run page names an endpoint; none: the Aggregated figures).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from perf.analysis.noise import AGGREGATED, IMPROVED, REGRESSED
from perf.models import EndpointStats, PerfPlan, PerfRun
from perf.reports import charts, formats

VIEW_PERMISSION = "perf.view_perfrun"  # the trends are the runs' figures
DEFAULT_RUNS = 50
MAX_RUNS = 200  # beyond, points crowd a chart 1,000 px wide; older runs stay in the run list
RUN_COUNTS = (10, 20, 50, 100, 200)
TEMPLATE = "admin/perf/perfplan/trends.html"
# The summary columns a trend reads from each run (and the baseline's), nothing else.
RUN_COLUMNS = ("pk", "started_at", "git_revision", "label", "hostname", "p50", "p95", "p99", "requests_per_second",
               "total_requests", "total_failures", "regressions")
ENDPOINT_COLUMNS = ("run_id", "p50", "p95", "p99", "requests_per_second", "num_requests", "num_failures")


def run_count(asked: str | None) -> int:
    """``?runs=``: a whole number from 1 to MAX_RUNS; anything else is the default."""
    try:
        return min(max(int(asked or DEFAULT_RUNS), 1), MAX_RUNS)
    except ValueError:
        return DEFAULT_RUNS


def endpoint_key(method: str, name: str) -> str:
    """An endpoint as the run page and the noise verdicts name it: ``GET /events/``."""
    return f"{method} {name}".strip()


def failure_percent(requests: int, failures: int) -> float | None:
    return 100.0 * failures / requests if requests else None


def flags_of(regressions: Mapping[str, Any] | None, endpoint: str, metric: str) -> str:
    """A run's verdict on one endpoint and metric, when it is a mark: "regressed", "improved", or ""."""
    for verdict in (regressions or {}).get("verdicts") or ():
        if verdict.get("endpoint") == endpoint and verdict.get("metric") == metric:
            return verdict["verdict"] if verdict.get("verdict") in (REGRESSED, IMPROVED) else ""
    return ""


@dataclass(frozen=True)
class TrendRun:
    """One run of the trend: its summary columns, and the chosen endpoint's figures when one is chosen."""

    pk: int
    started_at: Any
    revision: str
    label: str
    hostname: str
    figures: dict[str, float | None]  # p50, p95, p99, rps, failure_rate; None: not measured
    regressions: Mapping[str, Any] | None

    @property
    def regressed(self) -> list[str]:
        """What regressed beyond the noise in this run: "GET /events/ p95"."""
        return [f"{v.get('endpoint')} {v.get('metric')}" for v in (self.regressions or {}).get("verdicts") or ()
                if v.get("verdict") == REGRESSED]


def _figures(row: Mapping[str, Any], requests: str, failures: str) -> dict[str, float | None]:
    return {"p50": row["p50"], "p95": row["p95"], "p99": row["p99"], "rps": row["requests_per_second"],
            "failure_rate": failure_percent(row[requests], row[failures])}


def read_runs(plan: PerfPlan, count: int) -> list[dict[str, Any]]:
    """The plan's last ``count`` completed load tests, newest first: one query on ``(plan, -started_at)``."""
    runs = PerfRun.objects.filter(plan=plan, status=PerfRun.Status.COMPLETED, kind=PerfRun.Kind.LOAD)
    return list(runs.order_by("-started_at", "-id").values(*RUN_COLUMNS)[:count])


def read_endpoints(pks: Sequence[int]) -> dict[str, tuple[str, str]]:
    """The endpoints these runs measured, key → (method, name), in name order: one query."""
    rows = (EndpointStats.objects.filter(run_id__in=pks, is_aggregated=False)
            .values_list("method", "name").distinct().order_by("name", "method"))
    return {endpoint_key(method, name): (method, name) for method, name in rows}


def read_endpoint_rows(pks: Sequence[int], method: str, name: str) -> dict[int, dict[str, Any]]:
    """One endpoint's row in each of these runs, by run: one query on the unique index ``(run, method, name)``."""
    # No ordering: the model's, by run, would join the runs to sort by theirs.
    rows = EndpointStats.objects.filter(run_id__in=pks, method=method, name=name).order_by().values(
        *ENDPOINT_COLUMNS)
    return {row["run_id"]: row for row in rows}


def baseline_of(plan: PerfPlan, endpoint: tuple[str, str] | None) -> tuple[int | None, dict[str, float | None]]:
    """The plan's baseline run and its figures (the run's, or the chosen endpoint's): one query, none without one."""
    if plan.baseline_id is None:
        return None, {}
    if endpoint is None:
        row = PerfRun.objects.filter(pk=plan.baseline_id).values(*RUN_COLUMNS).first()
        return (plan.baseline_id, _figures(row, "total_requests", "total_failures")) if row else (None, {})
    found = read_endpoint_rows([plan.baseline_id], *endpoint).get(plan.baseline_id)
    return plan.baseline_id, _figures(found, "num_requests", "num_failures") if found else {}


def trend_runs(rows: Sequence[Mapping[str, Any]], endpoint_rows: Mapping[int, Mapping[str, Any]] | None
               ) -> list[TrendRun]:
    """The runs oldest first (left to right), with the run's figures or, when an endpoint is chosen, its own."""
    found = []
    for row in reversed(rows):
        if endpoint_rows is None:
            figures = _figures(row, "total_requests", "total_failures")
        else:
            mine = endpoint_rows.get(row["pk"])
            figures = _figures(mine, "num_requests", "num_failures") if mine else dict.fromkeys(
                ("p50", "p95", "p99", "rps", "failure_rate"))
        found.append(TrendRun(row["pk"], row["started_at"], row["git_revision"], row["label"], row["hostname"],
                              figures, row["regressions"]))
    return found


def _run_point(run: TrendRun) -> charts.RunPoint:
    when = timezone.localtime(run.started_at)
    revision = run.revision[:7] or "—"
    return charts.RunPoint(reverse("admin:perf_perfrun_change", args=[run.pk]), (revision, when.strftime("%m-%d")),
                           f"run {run.pk}, {run.revision[:12] or 'no revision'}, {when:%Y-%m-%d %H:%M}")


def trend_charts(runs: Sequence[TrendRun], verdict_key: str, baseline: tuple[int | None, dict[str, float | None]],
                 description: str) -> list[SafeString]:
    """Response times (p50, p95, p99), requests per second and the failure rate over the runs; the noise verdicts
    (judged on p95 and the failure rate) marked on those two series."""
    points = [_run_point(run) for run in runs]
    baseline_pk, base = baseline
    label = f"baseline: run {baseline_pk}" if baseline_pk is not None else ""

    def series(name: str, color: str, metric: str = "") -> charts.RunSeries:
        flags = tuple(flags_of(run.regressions, verdict_key, metric) if metric else "" for run in runs)
        return charts.RunSeries(name, color, tuple(run.figures[key(name)] for run in runs), flags,
                                base.get(key(name)))

    def key(name: str) -> str:
        return {"req/s": "rps", "failure rate": "failure_rate"}.get(name, name)

    made: list[tuple[str, list[charts.RunSeries], str, Callable[[float], str]]] = [
        ("Response times", [series("p50", charts.COLORS["p50"]), series("p95", charts.COLORS["p95"], "p95"),
                            series("p99", charts.COLORS["p99"])], "response time (ms)", formats.ms_unit),
        ("Requests per second", [series("req/s", charts.COLORS["rps"])], "requests per second (req/s)",
         lambda value: f"{formats.rate(value)} req/s"),
        ("Failure rate", [series("failure rate", charts.COLORS["failures"], "failure_rate")], "failed requests (%)",
         formats.percent),
    ]
    # perf.reports.charts escapes every text it draws; the SVG is markup to keep as it is.
    return [mark_safe(charts.trend_chart(title, points, items, y_label, fmt, description=description,
                                         baseline_label=label))
            for title, items, y_label, fmt in made]


def table_rows(runs: Sequence[TrendRun]) -> list[dict[str, Any]]:
    """The runs under the charts, newest first, their figures written as the run page writes them: the page without
    its charts (a screen reader, a text browser) still has every number and every link."""
    return [{"pk": run.pk, "url": reverse("admin:perf_perfrun_change", args=[run.pk]),
             "when": timezone.localtime(run.started_at), "revision": run.revision[:12], "label": run.label,
             "hostname": run.hostname, "p50": formats.ms(run.figures["p50"]), "p95": formats.ms(run.figures["p95"]),
             "p99": formats.ms(run.figures["p99"]), "rps": formats.rate(run.figures["rps"]),
             "failure_rate": formats.percent(run.figures["failure_rate"]), "regressed": run.regressed}
            for run in reversed(runs)]


def trends_view(request: HttpRequest, pk: int, context: dict[str, Any]) -> HttpResponse:
    """The plan's trends; 403 without the view permission on runs."""
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied
    plan = get_object_or_404(PerfPlan, pk=pk)
    count = run_count(request.GET.get("runs"))
    rows = read_runs(plan, count)
    pks = [row["pk"] for row in rows]
    endpoints = read_endpoints(pks)
    chosen = request.GET.get("endpoint") or ""
    endpoint = endpoints.get(chosen)
    if endpoint is None:
        chosen = ""
    runs = trend_runs(rows, read_endpoint_rows(pks, *endpoint) if endpoint else None)
    baseline = baseline_of(plan, endpoint)
    description = f"Plan {plan.name}, {chosen or 'all endpoints'}"
    flagged = [run for run in runs if run.regressed]
    return TemplateResponse(request, TEMPLATE, {
        **context,
        "title": f"Trends of plan {plan.name}",
        "plan": plan,
        "rows": table_rows(runs),
        "flagged": len(flagged),
        "svgs": trend_charts(runs, chosen or AGGREGATED, baseline, description),
        "endpoints": list(endpoints),
        "chosen": chosen,
        "count": count,
        "counts": sorted({*RUN_COUNTS, count}),
        "max_runs": MAX_RUNS,
        "baseline_pk": baseline[0],
        "runs_url": reverse("admin:perf_perfrun_changelist") + f"?plan__id__exact={plan.pk}",
        "plan_url": reverse("admin:perf_perfplan_change", args=[plan.pk]),
        "is_nav_sidebar_enabled": False,
    })


def url(model_admin: admin.ModelAdmin) -> URLPattern:
    """The trends page's URL, for the plan admin's ``get_urls``: behind the admin's login like its other pages."""

    def view(request: HttpRequest, pk: int) -> HttpResponse:
        context = {**model_admin.admin_site.each_context(request), "opts": model_admin.opts}
        return trends_view(request, pk, context)

    return path("<int:pk>/trends/", model_admin.admin_site.admin_view(view), name="perf_perfplan_trends")
