"""Browse stored runs: a list to find them, a read-only page per run with its endpoints and failures.

Runs come only from run_perf, so nothing measured can be added or edited here; a label and notes
are the only things a person adds afterwards.
"""

from django.contrib import admin
from django.db.models import F, FloatField, QuerySet
from django.db.models.functions import Cast, NullIf
from django.http import HttpRequest

from perf.models import EndpointStats, FailureStats, PerfRun

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


class EndpointStatsInline(ReadOnlyInline):
    model = EndpointStats
    verbose_name = "endpoint"
    verbose_name_plural = "endpoints (slowest p95 first)"
    fields = readonly_fields = (
        "bottleneck", "method", "name", "num_requests", "num_failures", "avg_ms", "median_ms", "p95_ms",
        "p99_ms", "max_ms", "requests_per_second",
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


@admin.register(PerfRun)
class PerfRunAdmin(admin.ModelAdmin):
    list_display = ("label", "started_at", "status", "users", "duration", "rps", "p95_ms", "error_percent")
    list_display_links = ("label", "started_at")
    list_filter = ("status", ("started_at", admin.DateFieldListFilter))
    search_fields = ("label", "host")
    date_hierarchy = "started_at"
    # Every column comes from the run's own row: one query per page, however many runs it lists.
    list_select_related = False
    inlines = [EndpointStatsInline, FailureStatsInline]
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
