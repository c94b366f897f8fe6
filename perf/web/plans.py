"""Saved plans in the admin: their options checked on save by run_perf's own parser and checks, their runs, and
"Run now", which starts the plan as the New run page starts a run (``perf.web.launch``: the same permission, the
add permission on runs, and the same PERF_WEB_MAX_* limits, since the plan's fields go through the New run form).

URL names: ``admin:perf_perfplan_run`` (POST, the plan's id). "New run from this plan" opens the New run page with
``?plan=NAME``, its fields filled in from the plan (``perf.web.plan_fields.form_data``).
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html

from perf.cli.invocation import PLAN_OPTIONS
from perf.models import PerfPlan, PerfRun
from perf.store.persist import jsonable
from perf.web import launch, trends
from perf.web.plan_fields import form_data, plan_arguments
from perf.web.run_control import NewRunForm, default_host, in_form_words

START_PERMISSION = "perf.add_perfrun"  # what the New run page asks for


class PerfPlanForm(forms.ModelForm):
    """A plan's options and thresholds are valid when run_perf would take them: parsed by its parser, checked by
    its checks; they are stored as the parser read them (``"users": "20"`` is kept as 20)."""

    class Meta:
        model = PerfPlan
        fields = "__all__"

    def clean_options(self) -> dict[str, Any]:
        options = self.cleaned_data.get("options") or {}
        if not isinstance(options, dict):
            raise forms.ValidationError('Give the options as a JSON object, e.g. {"users": 20, "duration": "2m"}.')
        unknown = sorted(set(options) - set(PLAN_OPTIONS))
        if unknown:
            raise forms.ValidationError(f"A plan cannot set {', '.join(unknown)}; it may set "
                                        f"{', '.join(PLAN_OPTIONS)}.")
        return options

    def clean_thresholds(self) -> list[str]:
        thresholds = self.cleaned_data.get("thresholds") or []
        if not isinstance(thresholds, list) or not all(isinstance(rule, str) for rule in thresholds):
            raise forms.ValidationError('Give the thresholds as a JSON list of rules, e.g. ["p95<500ms"].')
        return thresholds

    def clean_metrics(self) -> list[str]:
        metrics = self.cleaned_data.get("metrics") or []
        if not isinstance(metrics, list) or not set(metrics) <= {"p95", "failure_rate"}:
            raise forms.ValidationError('Give a JSON list of "p95" and "failure_rate", or leave it empty for both.')
        return metrics

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.has_error("options") or self.has_error("thresholds"):
            return data
        options = dict(data.get("options") or {})
        if data.get("thresholds"):
            options["thresholds"] = data["thresholds"]
        try:
            request = launch.check_arguments(plan_arguments(options))
        except (ValueError, launch.LaunchError) as exc:
            self.add_error("options", f"run_perf refuses these options: {exc}")
            return data
        data["options"] = {name: jsonable(getattr(request, name)) for name in data.get("options") or {}}
        return data


class PerfPlanAdmin(admin.ModelAdmin):
    form = PerfPlanForm
    list_display = ("name", "description", "runs_link", "last_run", "fail_on_regression")
    search_fields = ("name", "description")
    raw_id_fields = ("baseline",)
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "description")}),
        ("What to run", {"fields": ("options", "thresholds")}),
        ("Regression rules (docs/continuous.md)", {
            "fields": ("noise_k", "history_size", "min_history", "min_band_percent", "metrics", "fail_on_regression",
                       "baseline")}),
        (None, {"fields": ("created_at", "updated_at")}),
    )
    change_form_template = "admin/perf/perfplan/change_form.html"

    @admin.display(description="runs")
    def runs_link(self, plan: PerfPlan) -> str:
        url = reverse("admin:perf_perfrun_changelist") + f"?plan__id__exact={plan.pk}"
        return format_html('<a href="{}">{}</a>', url, plan.runs.count())

    @admin.display(description="last run")
    def last_run(self, plan: PerfPlan) -> str:
        run = plan.runs.order_by("-started_at").first()
        if run is None:
            return "—"
        verdict = (run.regressions or {}).get("regressed")
        said = f", {verdict} regressed" if verdict else ""
        return format_html('<a href="{}">run {}</a> ({}{})', reverse("admin:perf_perfrun_change", args=[run.pk]),
                           run.pk, run.status, said)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [path("<int:pk>/run/", view(self.run_now_view), name="perf_perfplan_run"), trends.url(self),
                *super().get_urls()]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        context = {**(extra_context or {}), "can_start": request.user.has_perm(START_PERMISSION)}
        return super().change_view(request, object_id, form_url, context)

    # Outside the request's transaction, as the New run page: it waits for the row the started process writes.
    @method_decorator(transaction.non_atomic_requests)
    def run_now_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """POST: start the plan as it is saved, through the New run form's checks and limits; open the run's page,
        or come back to the plan's with what stopped it."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm(START_PERMISSION):
            raise PermissionDenied
        plan = get_object_or_404(PerfPlan, pk=pk)
        back = HttpResponseRedirect(reverse("admin:perf_perfplan_change", args=[pk]))
        host, _ = default_host(request)
        data = {**form_data(plan, host), "run_anyway": request.POST.get("run_anyway", "")}
        form = NewRunForm(data, user=request.user, limits=launch.WebLimits.from_settings())
        if not form.is_valid():
            problems = "; ".join(str(message) for said in form.errors.values() for message in said)
            self.message_user(request, f"Plan {plan.name} cannot start from this page: {problems}", messages.ERROR)
            return back
        run = self._start(request, form)
        if run is None:
            problems = "; ".join(str(message) for said in form.errors.values() for message in said)
            self.message_user(request, f"Plan {plan.name} did not start: {problems}", messages.ERROR)
            return back
        self.message_user(request, f"Run {run.pk} of plan {plan.name} started: this page follows it as it goes.")
        return HttpResponseRedirect(reverse("admin:perf_perfrun_change", args=[run.pk]))

    def _start(self, request: HttpRequest, form: NewRunForm) -> PerfRun | None:
        """As the New run page starts a run (``RunControlMixin._start``): checked, reserved, started."""
        args = form.arguments()
        try:
            launch.check_arguments(args)
            launch_id = launch.reserve(request.user.get_username(), bool(form.cleaned_data["run_anyway"]),
                                       form.limits)
            return launch.start(args, launch_id)
        except launch.LaunchError as exc:
            form.add_error(None, in_form_words(str(exc)))
            return None
