"""Browse stored runs: a list to find them, a report page per run, and a side-by-side page comparing
two of them (the "Compare" action).

The run page is the ``--html`` report, rendered from the same templates (perf.reports): verdicts,
key figures, charts, tables, failures, options. While a run is ``running`` its page polls
``<pk>/live/`` every 2 s and swaps each section for a freshly rendered one, so the figures and
charts grow in place; without JavaScript the page is complete as of its last load. The run's
Locust CSV files, JSON summary and HTML report can be downloaded from the page, whatever options
the run was started with. Starting and stopping runs is perf.web.run_control's.

Measured figures are never form fields: a label and notes are the only things a person adds.
"""

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import FloatField, QuerySet
from django.db.models.functions import Cast, NullIf
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html

from perf.analysis import compare
from perf.models import PerfPlan, PerfRun
from perf.options import parse_percent
from perf.reports import downloads, formats, render
from perf.reports.report import STATUS_CLASSES, Report
from perf.reports.run_log import run_log
from perf.reports.stored import stored_inputs, stored_report
from perf.store import liveness
from perf.web.plans import PerfPlanAdmin
from perf.web.run_control import RunControlMixin, TargetChangeMixin, target_unit

EDITABLE = ("label", "notes")
LOG_TEMPLATE = "admin/perf/perfrun/run_log.html"


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
        row("measured duration", lambda run: formats.duration(run.duration)),
        row("requests", lambda run: f"{run.total_requests:,}"),
        row("failures", lambda run: f"{run.total_failures:,} ({formats.percent(run.error_percent)})"),
        row("req/s", lambda run: "—" if run.requests_per_second is None else f"{run.requests_per_second:,.2f}"),
        row("avg (ms)", lambda run: formats.ms(run.avg_response_time)),
        row("p50 (ms)", lambda run: formats.ms(run.p50)),
        row("p95 (ms)", lambda run: formats.ms(run.p95)),
        row("p99 (ms)", lambda run: formats.ms(run.p99)),
        row("max (ms)", lambda run: formats.ms(run.max_response_time)),
        row("generator CPU warning", lambda run: "yes" if run.cpu_warning else "no"),
    ]


def _run_report_admin(admin_: "PerfRunAdmin", request: HttpRequest, run: PerfRun) -> dict[str, Any]:
    """What only the admin page has: the Stop button, download and live URLs (the file has no server)."""
    running = run.status == PerfRun.Status.RUNNING
    return {
        "run_pk": run.pk,
        "can_stop": running and not run.stop_requested_by and admin_.has_change_permission(request, run),
        "can_mark": running and admin_.has_change_permission(request, run),  # lost or failed, by hand
        # A new target from the live page (perf.web.run_control.TargetChangeMixin): users, or an open-model run's
        # rate; and the last one asked.
        # A capacity search sets its own load (perf.load.capacity): no target to change by hand.
        "can_change_target": running and not run.stop_requested_by and run.kind != PerfRun.Kind.CAPACITY
        and admin_.has_change_permission(request, run),
        "target_unit": target_unit(run),  # users, or an open-model run's iterations a second
        "target_change": run.target_change if running else None,
        "lost_after": f"{liveness.lost_after():g}",
        "live_url": reverse("admin:perf_perfrun_live", args=[run.pk]),
        "plan": plan_link(run),
        "downloads": [
            {"url": reverse("admin:perf_perfrun_download", args=[run.pk, download.kind]), "label": download.label,
             "filename": _filename(run, download)}
            for download in downloads.DOWNLOADS
        ],
    }


def plan_link(run: PerfRun) -> dict[str, str] | None:
    """The run's plan for its header: its name, its page and its trends (one query, for runs of a plan only)."""
    name = PerfPlan.objects.filter(pk=run.plan_id).values_list("name", flat=True).first() if run.plan_id else None
    if name is None:
        return None
    return {"name": name, "url": reverse("admin:perf_perfplan_change", args=[run.plan_id]),
            "trends_url": reverse("admin:perf_perfplan_trends", args=[run.plan_id])}


def _filename(run: PerfRun, download: downloads.Download) -> str:
    return f"perf-run-{run.pk}.{download.extension}"


def ended_message(run: PerfRun) -> str:
    """What the live page says in place of its messages ("Run 5 started…", "Stopping run 5…") once the run
    has ended: they were true when the page was loaded, and are not any more."""
    why = f": {run.stop_reason}" if run.stop_reason else ""
    return f"Run {run.pk} has ended, {run.status}{why}."


@admin.register(PerfRun)
class PerfRunAdmin(RunControlMixin, TargetChangeMixin, admin.ModelAdmin):
    actions = ["compare_selected", "mark_lost_selected", "mark_failed_selected"]
    list_display = ("label", "started_at", "status_badge", "users", "duration", "rps", "p95_ms", "error_percent")
    list_display_links = ("label", "started_at")
    # A load test or a capacity search: their figures answer different questions, so the list tells them apart.
    list_filter = ("status", "kind", "plan", ("started_at", admin.DateFieldListFilter))
    search_fields = ("label", "host")
    date_hierarchy = "started_at"
    # Every column comes from the run's own row: one query per page, however many runs it lists.
    list_select_related = False
    # The figures are the report above the form (perf/templates/admin/perf/perfrun/change_form.html).
    fieldsets = (("Label and notes", {"fields": EDITABLE}),)

    def get_queryset(self, request: HttpRequest) -> QuerySet[PerfRun]:
        # Lets the error % column sort by the ratio itself, in SQL.
        return super().get_queryset(request).annotate(
            failure_ratio=Cast("total_failures", FloatField()) / NullIf("total_requests", 0)
        )

    def save_model(self, request: HttpRequest, obj: PerfRun, form, change: bool) -> None:
        # Save only what was edited: a run still in progress writes new figures meanwhile.
        fields = [name for name in EDITABLE if name in form.changed_data]
        if fields:
            obj.save(update_fields=fields)

    # The list.

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        liveness.mark_lost_on_read()  # a dead run never shows (or filters) as running
        return super().changelist_view(request, extra_context)

    @admin.display(description="status", ordering="status")
    def status_badge(self, run: PerfRun) -> str:
        return format_html('<span class="perf-badge perf-status perf-status-{}">{}</span>',
                           STATUS_CLASSES.get(run.status, "unknown"), run.status)

    @admin.display(description="duration", ordering="actual_duration")
    def duration(self, run: PerfRun) -> str:
        return formats.duration(run.duration)

    @admin.display(description="req/s", ordering="requests_per_second")
    def rps(self, run: PerfRun) -> str:
        return formats.rate(run.requests_per_second)

    @admin.display(description="p95 (ms)", ordering="p95")
    def p95_ms(self, run: PerfRun) -> str:
        return formats.ms(run.p95)

    @admin.display(description="error %", ordering="failure_ratio")
    def error_percent(self, run: PerfRun) -> str:
        return formats.percent(run.error_percent)

    # The run page: the report, then the label and notes form, then the options.

    def run_report(self, request: HttpRequest, run: PerfRun) -> Report:
        report = stored_report(run, endpoint=request.GET.get("endpoint") or None)
        report.admin = _run_report_admin(self, request, run)
        return report

    # The report's pages only read, outside a request-wide transaction: on SQLite (IMMEDIATE transactions)
    # that would take the write lock every 2 s per viewer, against the very run writing its progress. Saving
    # the label still happens in the admin's own transaction.
    @method_decorator(transaction.non_atomic_requests)
    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        liveness.mark_lost_on_read()
        run = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if run is not None and self.has_view_permission(request, run):
            report = self.run_report(request, run)
            placed = render.place(report)
            context.update(
                report=report,
                report_sections=[section for section in placed if section.name != render.LAST],
                last_section=next(section for section in placed if section.name == render.LAST),
                title=report.title,
                # Not the run's str(), whose "(…, running)" would stay in the window's title once the run ended:
                # the status is the badge in the report's header, which follows the run.
                subtitle=None,
                log=run_log(run),
                # A report wants the page's width: the navigation sidebar stays on the list.
                is_nav_sidebar_enabled=False,
                # Saving a label is no reason to start adding runs.
                show_save_and_add_another=False,
            )
        return super().change_view(request, object_id, form_url, context)

    @method_decorator(transaction.non_atomic_requests)
    def live_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """``{"status": ..., "sections": {name: html}, "log": html, "message": ...}``: the report's sections rendered
        again and the run's output (the admin's own section), for the page's script; ``message`` once the run ended."""
        liveness.mark_lost_on_read()  # a lost run's page stops polling and says why
        run = get_object_or_404(PerfRun, pk=pk)
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        report = self.run_report(request, run)
        payload = {"status": run.status, "sections": render.render_sections(report, request),
                   "log": render_to_string(LOG_TEMPLATE, {"log": run_log(run)}, request=request)}
        if run.status != PerfRun.Status.RUNNING:
            payload["message"] = ended_message(run)
        response = JsonResponse(payload)
        response["Cache-Control"] = "no-store"
        return response

    @method_decorator(transaction.non_atomic_requests)
    def download_view(self, request: HttpRequest, pk: int, kind: str) -> HttpResponse:
        """Locust's CSV files (zipped), the JSON summary or the HTML report, made from the stored run."""
        run = get_object_or_404(PerfRun, pk=pk)
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        download = downloads.BY_KIND.get(kind)
        if download is None:
            raise Http404(f"no download {kind!r}: use one of {', '.join(downloads.BY_KIND)}")
        stats, duration, meta = stored_inputs(run)
        content = downloads.make(kind, stats, duration, meta, f"perf-run-{run.pk}")
        response = HttpResponse(content, content_type=download.content_type)
        response["Content-Disposition"] = f'attachment; filename="{_filename(run, download)}"'
        return response

    # Comparing two runs: an action on the list, a page of its own.

    def get_urls(self) -> list[URLPattern]:
        # Before the model's own URLs, whose "<path:object_id>/" would take "compare/" for a run id.
        opts = self.model._meta
        prefix = f"{opts.app_label}_{opts.model_name}"
        view = self.admin_site.admin_view
        return [
            *self.control_urls(),
            *self.target_urls(),
            path("compare/", view(self.compare_view), name=f"{prefix}_compare"),
            path("<int:pk>/live/", view(self.live_view), name=f"{prefix}_live"),
            path("<int:pk>/mark/", view(self.mark_view), name=f"{prefix}_mark"),
            path("<int:pk>/download/<str:kind>/", view(self.download_view), name=f"{prefix}_download"),
            *super().get_urls(),
        ]

    # Marking a running run lost or failed by hand: a person may know before the heartbeat tells.

    def mark_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """POST ``status=lost|failed``: mark this running run so (change permission)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        run = get_object_or_404(PerfRun, pk=pk)
        if not self.has_change_permission(request, run):
            raise PermissionDenied
        status = request.POST.get("status", "")
        if status not in liveness.MARKABLE:
            return HttpResponseBadRequest(f"status must be {' or '.join(liveness.MARKABLE)}")
        self._mark(request, [pk], status)
        return HttpResponseRedirect(reverse("admin:perf_perfrun_change", args=[pk]))

    def _mark(self, request: HttpRequest, pks: list[int], status: str) -> None:
        who = request.user.get_username()
        marked = [pk for pk in pks if liveness.mark_by_hand(pk, status, who)]
        if marked:
            runs = f"run{'s' if len(marked) > 1 else ''} {', '.join(map(str, marked))}"
            self.message_user(request, f"Marked {status}: {runs}; figures up to the last progress write are kept.")
        skipped = [pk for pk in pks if pk not in marked]
        if skipped:
            self.message_user(request, f"Not running, left as they are: run{'s' if len(skipped) > 1 else ''} "
                                       f"{', '.join(map(str, skipped))}.", messages.WARNING)

    @admin.action(description="Mark the selected running runs lost", permissions=["change"])
    def mark_lost_selected(self, request: HttpRequest, queryset: QuerySet[PerfRun]) -> None:
        self._mark(request, list(queryset.values_list("pk", flat=True)), PerfRun.Status.LOST)

    @admin.action(description="Mark the selected running runs failed", permissions=["change"])
    def mark_failed_selected(self, request: HttpRequest, queryset: QuerySet[PerfRun]) -> None:
        self._mark(request, list(queryset.values_list("pk", flat=True)), PerfRun.Status.FAILED)

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
            # Two runs' figures side by side want the page's width (the navigation sidebar stays on the list).
            "is_nav_sidebar_enabled": False,
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


# Saved plans (run_perf --plan NAME): their options, rules and "Run now" (perf.web.plans).
admin.site.register(PerfPlan, PerfPlanAdmin)
