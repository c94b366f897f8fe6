"""Starting and stopping runs from the admin (mixed into ``perf.admin.PerfRunAdmin``).

URL names: ``admin:perf_perfrun_stop`` (POST, the run's id) and the model's own add page,
``admin:perf_perfrun_add``, which is the "New run" form: it starts the same ``run_perf`` a user
would type (``perf.launch``) and opens the new run's live page.
"""

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator

from perf import launch, liveness, packs
from perf.config import load_config
from perf.models import PerfRun


class NewRunForm(forms.Form):
    """What ``run_perf`` is asked most often; the command line it makes is checked by the command itself."""

    users = forms.IntegerField(initial=10, min_value=1, help_text="Peak number of simulated users.")
    spawn_rate = forms.FloatField(initial=2.0, help_text="Users started per second.")
    duration = forms.CharField(initial="1m", max_length=32, help_text="90, 90s, 5m, 1h30m; ramp-up included.")
    scenarios = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple, required=False,
        help_text="None ticked: all of them, by weight (PERF_SCENARIOS).")
    host = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"class": "vTextField"}),
                           help_text="API root URL; a loopback address unless allowed below.")
    allow_remote = forms.BooleanField(required=False, label="Allow a remote host",
                                      help_text="A host that is not a loopback address (--allow-remote).")
    wait = forms.CharField(required=False, max_length=32, label="Think time",
                           help_text="MIN,MAX seconds between tasks (empty: each scenario's own, 1–3 s).")
    label = forms.CharField(required=False, max_length=200, widget=forms.TextInput(attrs={"class": "vTextField"}))
    thresholds = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                 help_text="One rule a line, e.g. p95<500ms or error_rate<1%.")
    bootstrap = forms.BooleanField(required=False, label="Seed first",
                                   help_text="Make the data the scenarios need before the load (PERF_SEED_HOOK).")
    run_anyway = forms.BooleanField(required=False, label="Start anyway",
                                    help_text="Even though another run is running.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """The scenarios and the seed hook are the project's (``perf.packs``), read when the page is asked for."""
        super().__init__(*args, **kwargs)
        try:
            configured = packs.scenarios()
            has_seed_hook = packs.seed_hook() is not None
        except ImproperlyConfigured as exc:
            configured, has_seed_hook = {}, False
            self.pack_error = str(exc)
        else:
            self.pack_error = ""
        self.fields["scenarios"].choices = [(name, f"{name} (weight {cls.weight})") for name, cls in configured.items()]
        if not has_seed_hook:
            del self.fields["bootstrap"]

    def clean(self) -> dict[str, Any]:
        if self.pack_error:
            raise forms.ValidationError(self.pack_error)
        return super().clean()

    def arguments(self) -> list[str]:
        """The ``run_perf`` command line these answers make."""
        data = self.cleaned_data
        args = ["--users", str(data["users"]), "--spawn-rate", f"{data['spawn_rate']:g}",
                "--duration", data["duration"].strip(), "--host", data["host"].strip()]
        for name in data["scenarios"]:
            args += ["--scenario", name]
        for option in ("wait", "label"):
            if data[option].strip():
                args += [f"--{option}", data[option].strip()]
        for rule in data["thresholds"].splitlines():
            if rule.strip():
                args += ["--threshold", rule.strip()]
        if data["allow_remote"]:
            args.append("--allow-remote")
        if data.get("bootstrap"):
            args.append("--bootstrap")
        return args


class RunControlMixin:
    """Stop (change permission) and New run (add permission) for ``PerfRunAdmin``."""

    # Outside the request's transaction: the page waits for the row another process writes, which a
    # transaction's snapshot (SQLite's, for one) would never show it.
    @method_decorator(transaction.non_atomic_requests)
    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
                 ) -> HttpResponse:
        """The "New run" page: validate as the command does, start it, open its live page."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        initial = {"host": load_config().backend_url}
        form = NewRunForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            run = self._start(request, form)
            if run is not None:
                self.message_user(request, f"Run {run.pk} started: this page follows it as it goes.")
                return HttpResponseRedirect(reverse("admin:perf_perfrun_change", args=[run.pk]))
        context = {**self.admin_site.each_context(request), "is_nav_sidebar_enabled": False,
                   "opts": self.model._meta, "title": "New run",
                   "form": form, "running": list(launch.running_runs()[:5])}
        return TemplateResponse(request, "admin/perf/perfrun/new_run.html", context)

    def _start(self, request: HttpRequest, form: NewRunForm) -> PerfRun | None:
        """The started run, or None with the reason added to the form."""
        args = form.arguments()
        try:
            launch.check_arguments(args)  # a mistake first: it needs fixing whatever else is running
        except launch.LaunchError as exc:
            form.add_error(None, str(exc))
            return None
        busy = launch.running_runs().first()
        if busy is not None and not form.cleaned_data["run_anyway"]:
            form.add_error("run_anyway", f"Run {busy.pk} is still running: two runs on one machine measure each "
                                         "other; tick this box to start anyway.")
            return None
        try:
            return launch.start(args)
        except launch.LaunchError as exc:
            form.add_error(None, str(exc))
            return None

    def control_urls(self) -> list[URLPattern]:
        return [path("<int:pk>/stop/", self.admin_site.admin_view(self.stop_view), name="perf_perfrun_stop")]

    def stop_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Ask a running run to stop: its process reads the flag within 2 s and stores the run ``aborted``.
        A run whose process is dead is said to be lost; the flag is set all the same, for the shards of a
        distributed run (they read it themselves) and for a process that was only held up."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        liveness.mark_lost_on_read()
        run = get_object_or_404(PerfRun, pk=pk)
        if not self.has_change_permission(request, run):
            raise PermissionDenied
        who = request.user.get_username()
        marked = PerfRun.objects.filter(
            pk=pk, status__in=(PerfRun.Status.RUNNING, PerfRun.Status.LOST), stop_requested_at__isnull=True
        ).update(stop_requested_by=who[:150], stop_requested_at=timezone.now())
        run.refresh_from_db()
        if run.status == PerfRun.Status.LOST:
            said = run.error if run.error.startswith("lost") else f"lost ({run.error})"
            self.message_user(request, f"Run {pk} is {said}.", messages.WARNING)
        elif marked:
            self.message_user(request, f"Stopping run {pk}: it ends within 2 s and keeps everything measured.")
        elif run.status != PerfRun.Status.RUNNING:
            self.message_user(request, f"Run {pk} is not running ({run.status}).", messages.WARNING)
        else:
            self.message_user(request, f"Run {pk} is already stopping.", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:perf_perfrun_change", args=[pk]))
