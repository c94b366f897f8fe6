"""Browse stored runs: a list to find them, a read-only page per run with its endpoints and failures,
and a side-by-side page comparing two of them (the "Compare" action).

Runs come only from run_perf, so nothing measured can be added or edited here; a label and notes
are the only things a person adds afterwards.
"""

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import F, FloatField, QuerySet
from django.db.models.functions import Cast, NullIf
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from perf import compare
from perf.models import EndpointStats, FailureStats, PerfRun, ShardReport
from perf.options import parse_percent

BOTTLENECK_MARK = "[BOTTLENECK]"
# The slowest endpoints by p95 count as bottlenecks even when the scenario did not name them so.
SLOWEST_BY_P95 = 3
EDITABLE = ("label", "notes")


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


class ReadOnlyInline(admin.TabularInline):
    """Rows written by run_perf: shown, never added, changed or deleted one by one."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: PerfRun | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: PerfRun | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: PerfRun | None = None) -> bool:
        return False


class ShardReportInline(ReadOnlyInline):
    """The Celery shards of a distributed run (none for other runs): who ran what, and any that died."""

    model = ShardReport
    verbose_name = "shard"
    fields = readonly_fields = ("index", "status", "hostname", "users", "requests", "max_cpu_percent",
                                "heartbeat_at", "error")


class EndpointStatsInline(ReadOnlyInline):
    model = EndpointStats
    verbose_name = "endpoint"
    verbose_name_plural = "endpoints (slowest p95 first)"
    fields = readonly_fields = (
        "bottleneck", "method", "name", "num_requests", "num_failures", "avg_ms", "median_ms", "p95_ms",
        "p99_ms", "max_ms", "requests_per_second", "app_ms", "db_ms", "queries", "client_minus_app_ms",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[EndpointStats]:
        # The Aggregated row last, as in the printed table.
        return (
            super().get_queryset(request)
            .with_p95_rank()
            .order_by("is_aggregated", F("p95").desc(nulls_last=True), "name", "method")
        )

    @admin.display(description="bottleneck", boolean=True)
    def bottleneck(self, row: EndpointStats) -> bool | None:
        if row.is_aggregated:
            return None
        slowest = row.p95 is not None and getattr(row, "p95_rank", SLOWEST_BY_P95 + 1) <= SLOWEST_BY_P95
        return BOTTLENECK_MARK in row.name or slowest

    @admin.display(description="app avg (ms)")
    def app_ms(self, row: EndpointStats) -> str:
        return _ms(row.avg_app_time)

    @admin.display(description="db avg (ms)")
    def db_ms(self, row: EndpointStats) -> str:
        return _ms(row.avg_db_time)

    @admin.display(description="queries/req")
    def queries(self, row: EndpointStats) -> str:
        return "-" if row.avg_queries is None else f"{row.avg_queries:.1f}"

    @admin.display(description="client−app (ms)")
    def client_minus_app_ms(self, row: EndpointStats) -> str:
        return _ms(row.avg_network_time)

    @admin.display(description="avg (ms)")
    def avg_ms(self, row: EndpointStats) -> str:
        return _ms(row.avg_response_time)

    @admin.display(description="median (ms)")
    def median_ms(self, row: EndpointStats) -> str:
        return _ms(row.median_response_time)

    @admin.display(description="p95 (ms)")
    def p95_ms(self, row: EndpointStats) -> str:
        return _ms(row.p95)

    @admin.display(description="p99 (ms)")
    def p99_ms(self, row: EndpointStats) -> str:
        return _ms(row.p99)

    @admin.display(description="max (ms)")
    def max_ms(self, row: EndpointStats) -> str:
        return _ms(row.max_response_time)


class FailureStatsInline(ReadOnlyInline):
    model = FailureStats
    verbose_name = "failure"
    fields = readonly_fields = ("method", "name", "error", "occurrences", "first_seen", "last_seen")


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}%"


def side_by_side(base: PerfRun, new: PerfRun) -> list[dict[str, Any]]:
    """Headline figures and load configuration of two runs, row by row; ``differs`` flags load options that differ
    (they are why a comparison may not be like-for-like)."""

    def row(label: str, show: Any, config: bool = False) -> dict[str, Any]:
        a, b = show(base), show(new)
        return {"label": label, "base": a, "new": b, "differs": config and a != b}

    return [
        row("label", lambda run: run.label or "—"),
        row("status", lambda run: run.status),
        row("started", lambda run: run.started_at.strftime("%Y-%m-%d %H:%M:%S") if run.started_at else "—"),
        row("git revision", lambda run: run.git_revision or "—"),
        row("host", lambda run: run.host, config=True),
        row("database", lambda run: run.database_vendor or "—", config=True),
        row("users", lambda run: run.users, config=True),
        row("spawn rate", lambda run: f"{run.spawn_rate:g}/s", config=True),
        row("planned duration", lambda run: compare.duration_text(run.planned_duration), config=True),
        row("user split", compare.split_text, config=True),
        row("wait (s)", compare.wait_text, config=True),
        row("seed", lambda run: "none" if run.seed is None else run.seed, config=True),
        row("measured duration", lambda run: run.duration_display),
        row("requests", lambda run: f"{run.total_requests:,}"),
        row("failures", lambda run: f"{run.total_failures:,} ({_percent(run.error_percent)})"),
        row("req/s", lambda run: "—" if run.requests_per_second is None else f"{run.requests_per_second:,.2f}"),
        row("avg (ms)", lambda run: _ms(run.avg_response_time)),
        row("p50 (ms)", lambda run: _ms(run.p50)),
        row("p95 (ms)", lambda run: _ms(run.p95)),
        row("p99 (ms)", lambda run: _ms(run.p99)),
        row("max (ms)", lambda run: _ms(run.max_response_time)),
        row("generator CPU warning", lambda run: "yes" if run.cpu_warning else "no"),
    ]


@admin.register(PerfRun)
class PerfRunAdmin(admin.ModelAdmin):
    actions = ["compare_selected"]
    list_display = ("label", "started_at", "status", "users", "duration", "rps", "p95_ms", "error_percent")
    list_display_links = ("label", "started_at")
    list_filter = ("status", ("started_at", admin.DateFieldListFilter))
    search_fields = ("label", "host")
    date_hierarchy = "started_at"
    # Every column comes from the run's own row: one query per page, however many runs it lists.
    list_select_related = False
    inlines = [EndpointStatsInline, FailureStatsInline, ShardReportInline]
    fieldsets = (
        (None, {"fields": ("label", "notes", "status", "started_at", "finished_at", "duration", "error")}),
        ("Load", {"fields": ("host", "users", "spawn_rate", "planned_duration", "actual_duration", "scenarios",
                             "user_split", "seed", "options")}),
        ("Results", {"fields": ("total_requests", "total_failures", "error_percent", "requests_per_second",
                                "failures_per_second", "avg_response_time", "p50", "p95", "p99",
                                "max_response_time", "samples_stored", "exceptions")}),
        ("Generator", {"fields": ("git_revision", "database_vendor", "cpu_warning", "max_cpu_percent")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[PerfRun]:
        # Lets the error % column sort by the ratio itself, in SQL.
        return super().get_queryset(request).annotate(
            failure_ratio=Cast("total_failures", FloatField()) / NullIf("total_requests", 0)
        )

    def get_readonly_fields(self, request: HttpRequest, obj: PerfRun | None = None) -> list[str]:
        measured = [f.name for f in PerfRun._meta.concrete_fields if not f.primary_key and f.name not in EDITABLE]
        return [*measured, "duration", "error_percent", "samples_stored"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: PerfRun, form, change: bool) -> None:
        # Save only what was edited: a run still in progress may have written new figures meanwhile.
        fields = [name for name in EDITABLE if name in form.changed_data]
        if fields:
            obj.save(update_fields=fields)

    @admin.display(description="duration", ordering="actual_duration")
    def duration(self, run: PerfRun) -> str:
        return run.duration_display

    @admin.display(description="req/s", ordering="requests_per_second")
    def rps(self, run: PerfRun) -> str:
        return "—" if run.requests_per_second is None else f"{run.requests_per_second:,.1f}"

    @admin.display(description="p95 (ms)", ordering="p95")
    def p95_ms(self, run: PerfRun) -> str:
        return _ms(run.p95)

    @admin.display(description="error %", ordering="failure_ratio")
    def error_percent(self, run: PerfRun) -> str:
        percent = run.error_percent
        return "—" if percent is None else f"{percent:.2f}%"

    @admin.display(description="samples stored")
    def samples_stored(self, run: PerfRun) -> int:
        return run.samples.count()

    # Comparing two runs: an action on the list, a page of its own.

    def get_urls(self) -> list[URLPattern]:
        # Before the model's own URLs, whose "<path:object_id>/" would take "compare/" for a run id.
        opts = self.model._meta
        name = f"{opts.app_label}_{opts.model_name}_compare"
        return [path("compare/", self.admin_site.admin_view(self.compare_view), name=name), *super().get_urls()]

    @admin.action(description="Compare the two selected runs")
    def compare_selected(self, request: HttpRequest, queryset: QuerySet[PerfRun]) -> HttpResponse | None:
        selected = queryset.count()
        if selected != 2:
            self.message_user(request, f"Select exactly two runs to compare ({selected} selected).", messages.ERROR)
            return None
        older, newer = queryset.order_by("started_at", "id")
        query = urlencode({"a": older.pk, "b": newer.pk})
        return HttpResponseRedirect(f"{reverse('admin:perf_perfrun_compare')}?{query}")

    def compare_view(self, request: HttpRequest) -> HttpResponse:
        """``?a=<base id>&b=<new id>[&percent=10]``: both runs side by side and the per-endpoint deltas."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            refs = [request.GET.get(key, "").strip() for key in ("a", "b")]
            if not all(refs):
                raise ValueError("choose two runs on the list and use the action “Compare the two selected runs”")
            base, new = (compare.resolve_run(ref) for ref in refs)
            if base.pk == new.pk:  # also ?a=last&b=<the last run's id>: a run against itself has no deltas
                raise ValueError(f"A and B are both run {base.pk}: name two different runs")
            percent = parse_percent(request.GET.get("percent") or str(compare.DEFAULT_PERCENT))
        except ValueError as exc:
            self.message_user(request, f"Cannot compare: {exc}", messages.ERROR)
            return redirect("admin:perf_perfrun_changelist")
        comparison = compare.compare_runs(base, new, percent)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Run {base.pk} → run {new.pk}",
            "base": base,
            "new": new,
            "base_url": reverse("admin:perf_perfrun_change", args=[base.pk]),
            "new_url": reverse("admin:perf_perfrun_change", args=[new.pk]),
            "headline": side_by_side(base, new),
            "comparison": comparison,
            "rows": comparison.as_rows(),
            "metric_labels": [metric.label for metric in compare.METRICS],
            "percent": percent,
            "min_requests": compare.MIN_REQUESTS,
        }
        return TemplateResponse(request, "admin/perf/perfrun/compare.html", context)
