"""Starting and stopping runs from the admin (mixed into ``perf.admin.PerfRunAdmin``).

URL names: ``admin:perf_perfrun_stop`` (POST, the run's id) and the model's own add page,
``admin:perf_perfrun_add``, which is the "New run" form: it starts the same ``run_perf`` a user
would type (``perf.web.launch``) and opens the new run's live page. ``admin:perf_perfrun_command_line``
(POST, the form's fields) answers with that command line, which the page shows before it is started.
"""

import os
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS, ImproperlyConfigured, PermissionDenied
from django.core.validators import MaxValueValidator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator

from perf import packs
from perf.cli.profiles import parse_shape
from perf.conf import load_config
from perf.models import PerfPlan, PerfRun
from perf.options import MAX_RATE, check_rate, is_loopback_host, parse_duration, parse_stages, parse_wait
from perf.reports import formats
from perf.store import liveness
from perf.web import capacity_fields, launch, plan_fields
from perf.web.shape_choices import ShapeChoice, shape_choices

# The command's words for the form's, so that an error from run_perf's own checks speaks the page's language.
_FORM_WORDS = {
    "--allow-remote": 'the "Allow a remote host" box is ticked', "--spawn-rate": "Spawn rate", "--users": "Users",
    "--duration": "Duration", "--scenario": "Scenarios", "--host": "Host", "--wait": "Think time",
    "--label": "Label", "--threshold": "Thresholds", "--bootstrap": "Seed first", "--stages": "Stages",
    "--rate-stages": "Rate stages", "--shape": "Shape", "--plan": "Plan",
    # A capacity search's (perf.web.capacity_fields): the page sends --rate only as an open-model search's first step.
    "--find-capacity": "Find capacity", "--start-load": "Start load", "--rate": "Start load", "--max-users": "Ceiling",
    "--max-rate": "Ceiling", "--step-factor": "Step factor", "--step-increment": "Step increment", "--settle": "Settle",
    "--hold": "Hold", "--resolution": "Resolution", "--budget": "Budget",
    "the ceiling --max-users": "the Ceiling", "the ceiling --max-rate": "the Ceiling",
    "bad --threshold": "Bad threshold", "bad --host": "Bad host", "bad --wait": "Bad think time",
}
_FORM_WORDS_PATTERN = re.compile("|".join(re.escape(option) for option in sorted(_FORM_WORDS, key=len, reverse=True)))


def in_form_words(message: str) -> str:
    """A message of run_perf's checks with each option named as the form's field."""
    return _FORM_WORDS_PATTERN.sub(lambda match: _FORM_WORDS[match.group()], message)


def default_host(request: HttpRequest) -> tuple[str, str]:
    """The host the form offers, and where it comes from: ``LOCUST_BACKEND_URL`` when set; else this page's own
    server with ``PERF_HOST``'s path when the page is served from this machine (the admin may be on another port
    than PERF_HOST names); else ``PERF_HOST``."""
    config = load_config()
    if "LOCUST_BACKEND_URL" in os.environ:
        return config.backend_url, "LOCUST_BACKEND_URL"
    own = f"{request.scheme}://{request.get_host()}"
    if is_loopback_host(own):
        return own + urlsplit(config.backend_url).path, "this page's own server, with PERF_HOST's path"
    return config.backend_url, "PERF_HOST"


class NewRunForm(capacity_fields.CapacityFields):
    """What ``run_perf`` is asked most often; the command line it makes is checked by the command itself.

    Fields that are worth more than a run appear only for users with their permission: "Seed first"
    (``perf.seed_data``) and "Allow a remote host" (``perf.run_remote``). The most a run may ask for here are
    ``PERF_WEB_MAX_*`` (``perf.web.launch.WebLimits``)."""

    plan = forms.ChoiceField(
        required=False, label="Plan",
        help_text="Run as a saved plan: what this page has no field for comes from the plan, and the "
                  "run is judged against the plan's history. Open the page from the plan (its \"New run from this "
                  "plan\" link) to start with its fields filled in.")
    users = forms.IntegerField(initial=10, min_value=1, required=False, help_text="Peak number of simulated users.")
    spawn_rate = forms.FloatField(initial=2.0, required=False, help_text="Users started per second.")
    duration = forms.CharField(initial="1m", max_length=32, required=False,
                               help_text="90, 90s, 5m, 1h30m; ramp-up included.")
    stages = forms.CharField(
        required=False, max_length=2000, widget=forms.TextInput(attrs={"class": "vTextField", "spellcheck": "false"}),
        help_text="The load over time instead, as k6's stages: DURATION:TARGET, comma-separated, each stage ramping "
                  "from the previous target (0 at first) to its own, e.g. 30s:10,2m:10,30s:0. The run lasts as long "
                  "as its stages: Users, Spawn rate and Duration then stay empty.")
    rate_stages = forms.CharField(
        required=False, max_length=2000, label="Rate stages",
        widget=forms.TextInput(attrs={"class": "vTextField", "spellcheck": "false"}),
        help_text="The open model instead: iterations begun a second, whatever the latency, as DURATION:RATE stages "
                  "ramping as Stages do, e.g. 30s:5,2m:5,30s:0. Users is then the pool they run on; Spawn rate and "
                  "Duration stay empty, and so does Think time.")
    shape = forms.ChoiceField(required=False, help_text="Or a load shape class: a built-in, or one of the project's "
                                                        "PERF_SHAPES, with its parameters below.")
    shape_parameters = forms.CharField(
        required=False, max_length=500, label="Shape parameters",
        widget=forms.TextInput(attrs={"class": "vTextField", "spellcheck": "false"}),
        help_text="KEY=VALUE, comma-separated, e.g. add=5,every=30s,to=20; a duration takes its unit (30s, 5m, 1h30m), "
                  "users a whole number. A parameter left out takes its default, shown in brackets:")
    scenarios = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple, required=False,
        help_text="None ticked: all of them, by weight (PERF_SCENARIOS).")
    host = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"class": "vTextField"}),
                           help_text="API root URL; a loopback address unless allowed below.")
    allow_remote = forms.BooleanField(required=False, label="Allow a remote host",
                                      help_text="A host that is not a loopback address; it must be listed in "
                                                "PERF_ALLOWED_HOSTS.")
    wait = forms.CharField(required=False, max_length=32, label="Think time",
                           help_text="MIN,MAX seconds between tasks (empty: each scenario's own, 1–3 s).")
    label = forms.CharField(required=False, max_length=200, widget=forms.TextInput(attrs={"class": "vTextField"}))
    thresholds = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                 help_text="One rule a line, e.g. p95<500ms or error_rate<1%.")
    bootstrap = forms.BooleanField(required=False, label="Seed first",
                                   help_text="Make the data the scenarios need before the load (PERF_SEED_HOOK).")
    run_anyway = forms.BooleanField(required=False, label="Start anyway",
                                    help_text="Even though another run is running.")

    # Fields a user sees only with the permission named.
    GUARDED = {"bootstrap": "perf.seed_data", "allow_remote": "perf.run_remote"}
    # What the stages decide when there are some: the command refuses them together, and so does the page.
    SET_BY_STAGES = ("users", "spawn_rate", "duration")
    # The open model's stages set the rate and the run's length; Users is the pool the iterations run on.
    SET_BY_RATE_STAGES = ("spawn_rate", "duration")
    # The load profiles, one at most: the fields that ask for one, as the page names them.
    PROFILES = {"stages": "Stages", "rate_stages": "Rate stages", "shape": "Shape", "find_capacity": "Find capacity"}
    # Find capacity's fields (declared in capacity_fields.CapacityFields) after the load profiles they stand beside.
    field_order = ["plan", "users", "spawn_rate", "duration", "stages", "rate_stages", "shape", "shape_parameters",
                   "find_capacity", *capacity_fields.SETTINGS]

    def __init__(self, *args: Any, user: Any = None, limits: launch.WebLimits | None = None, **kwargs: Any) -> None:
        """The scenarios and the seed hook are the project's (``perf.packs``), read when the page is asked for."""
        super().__init__(*args, **kwargs)
        self.limits = limits or launch.WebLimits()
        try:
            configured = packs.scenarios()
            has_seed_hook = packs.seed_hook() is not None
        except ImproperlyConfigured as exc:
            configured, has_seed_hook = {}, False
            self.pack_error = str(exc)
        else:
            self.pack_error = ""
        plan = self.fields["plan"]
        assert isinstance(plan, forms.ChoiceField)
        plan.choices = _plan_choices  # read when shown or when one is chosen: a form without a plan reads no plans
        scenarios = self.fields["scenarios"]
        assert isinstance(scenarios, forms.MultipleChoiceField)
        scenarios.choices = [(name, f"{name} (weight {cls.weight})") for name, cls in configured.items()]
        choices, self.shape_error = shape_choices()
        self.shapes: dict[str, ShapeChoice] = {choice.name: choice for choice in choices}
        shape = self.fields["shape"]
        assert isinstance(shape, forms.ChoiceField)
        shape.choices = [("", "none"), *((name, name) for name in self.shapes)]
        if self.shape_error:
            shape.help_text += f" Only the built-ins now: {self.shape_error}."
        users = self.fields["users"]
        users.validators.append(MaxValueValidator(self.limits.users, message=(
            f"Users are at most {self.limits.users:,} from this page (PERF_WEB_MAX_USERS); larger runs start from "
            "the command line.")))
        users.widget.attrs["max"] = self.limits.users
        users.help_text = f"Peak number of simulated users; at most {self.limits.users:,} from this page."
        self.fields["duration"].help_text += f" At most {formats.duration(self.limits.duration)} from this page."
        self.fields["stages"].help_text += (f" At most {self.limits.users:,} users and "
                                            f"{formats.duration(self.limits.duration)} in all from this page.")
        self.fields["rate_stages"].help_text += f" At most {formats.duration(self.limits.duration)} in all."
        self.offer_capacity_within(self.limits.users, self.limits.duration)
        if not has_seed_hook:
            del self.fields["bootstrap"]
        for name, permission in self.GUARDED.items():
            if name in self.fields and not (user is not None and user.has_perm(permission)):
                del self.fields[name]

    def clean_spawn_rate(self) -> float | None:
        if self.cleaned_data["spawn_rate"] is None:
            return None
        try:
            return check_rate("Spawn rate", self.cleaned_data["spawn_rate"])
        except ValueError as exc:
            raise forms.ValidationError(f"{exc}.") from None

    def clean_duration(self) -> str:
        text = self.cleaned_data["duration"].strip()
        if not text:
            return ""
        try:
            seconds = parse_duration(text)
        except ValueError:
            raise forms.ValidationError("Duration must be a positive time like 90, 90s, 5m or 1h30m.") from None
        if seconds > self.limits.duration:
            raise forms.ValidationError(f"Duration is at most {formats.duration(self.limits.duration)} from this page "
                                        "(PERF_WEB_MAX_DURATION); longer runs start from the command line.")
        return text

    def clean_wait(self) -> str:
        text = self.cleaned_data["wait"].strip()
        if text:
            try:
                parse_wait(text)
            except ValueError:
                raise forms.ValidationError("Think time must be two numbers of seconds, the smaller first, like "
                                            "0.5,2 (each 0 or at least 0.001), or empty.") from None
        return text

    def clean_stages(self) -> str:
        """Spaces around a stage dropped; the stages themselves are checked in ``clean``, with the other profiles."""
        return _joined(self.cleaned_data["stages"])

    def clean_rate_stages(self) -> str:
        return _joined(self.cleaned_data["rate_stages"])

    def clean_shape_parameters(self) -> str:
        return _joined(self.cleaned_data["shape_parameters"])

    def clean(self) -> dict[str, Any]:
        if self.pack_error:
            raise forms.ValidationError(self.pack_error)
        data = super().clean() or {}
        # Asked for, even when refused: the fields a profile sets are then not needed.
        asked = [name for name in self.PROFILES if str(self.data.get(name, "")).strip()]
        if str(self.data.get("shape_parameters", "")).strip() and "shape" not in asked:
            self.add_error("shape_parameters", "Shape parameters need a Shape: pick one, or leave them empty.")
        if len(asked) > 1:
            for name in asked:  # one message for the mistake, not one per field besides
                self.errors.pop(name, None)
                data.pop(name, None)
            self.errors.pop("shape_parameters", None)
            raise forms.ValidationError(f"{' and '.join(self.PROFILES[name] for name in asked)} cannot be combined: "
                                        "give one load profile.")
        if not asked:
            self._require(data, self.SET_BY_STAGES)
        elif asked == ["stages"] and data.get("stages") is not None:
            self._check_stages(data, "stages", whole=True)
        elif asked == ["rate_stages"] and data.get("rate_stages") is not None:
            self._check_stages(data, "rate_stages", whole=False)
        elif asked == ["shape"] and data.get("shape"):
            self._check_shape(data)
        elif asked == ["find_capacity"]:
            self._check_capacity(data)
        return data

    def _require(self, data: dict[str, Any], names: tuple[str, ...], message: str = "") -> None:
        """Each of ``names`` given, or its own error (``message``, else Django's "This field is required.")."""
        for name in names:
            if data.get(name) in (None, "") and not self.has_error(name):
                self.add_error(name, forms.ValidationError(message or self.fields[name].error_messages["required"],
                                                           code="required"))

    def _given(self, data: dict[str, Any], names: tuple[str, ...]) -> bool:
        return any(data.get(name) not in (None, "") for name in names)

    def _check_stages(self, data: dict[str, Any], name: str, whole: bool) -> None:
        """The command line's parser, so the page gives its message (the field's label for the option); then the
        page's own limits, which the command line does not have; then the fields the stages set, left empty."""
        label = self.PROFILES[name]
        try:
            stages = parse_stages(data[name], option=label, whole=whole, most=None if whole else MAX_RATE)
        except ValueError as exc:
            self.add_error(name, f"{exc}.")
            return
        peak = max(stage.target for stage in stages) if whole else None
        if not self._within_limits(name, f"{label} ask for", f"{label} last", peak,
                                   sum(stage.duration for stage in stages)):
            return
        if whole and self._given(data, self.SET_BY_STAGES):
            self.add_error(name, "With Stages, the stages set the users and the run's length: leave Users, "
                                 "Spawn rate and Duration empty.")
        elif not whole:
            if self._given(data, self.SET_BY_RATE_STAGES):
                self.add_error(name, "With Rate stages, the stages set the arrival rate and the run's length: leave "
                                     "Spawn rate and Duration empty.")
            self._require(data, ("users",), "With Rate stages, Users is the pool the iterations run on: give it.")

    def _check_shape(self, data: dict[str, Any]) -> None:
        """``run_perf --shape``'s own parser (perf.cli.profiles), its message in the page's words; the page's limits
        on the shape's peak and length where it knows them; the fields the shape sets left empty, and those it does
        not set given (the page bounds every run it starts)."""
        choice = self.shapes[data["shape"]]
        text = f"{choice.name}:{data['shape_parameters']}" if data.get("shape_parameters") else choice.name
        try:
            _, _, shape = parse_shape(text)
        except (ValueError, ImproperlyConfigured) as exc:
            self.add_error("shape_parameters", f"{in_form_words(str(exc))}.")
            return
        data["shape_text"] = text
        peak = shape.peak if choice.knows_peak else None
        if not self._within_limits("shape_parameters", f"Shape {choice.name} asks for", f"Shape {choice.name} lasts",
                                   peak, shape.duration if choice.knows_length else None):
            return
        given = [name for name in choice.sets if data.get(name) not in (None, "")]
        if given:
            sets = [what for name, what in (("users", "the users"), ("duration", "the run's length"))
                    if name in choice.sets] or ["when users start and stop"]
            self.add_error("shape", f"With Shape {choice.name}, the shape sets {_listed(sets)}: leave "
                                    f"{_listed([str(self[name].label) for name in choice.sets])} empty.")
        if "users" not in choice.sets:
            self._require(data, ("users",), f"Shape {choice.name} asks for iterations a second: give Users, the "
                                            "pool they run on." if choice.is_rate else
                          f"Shape {choice.name} does not say ahead how many users it asks for: give Users, the most "
                          "it may.")
        if "duration" not in choice.sets:
            self._require(data, ("duration",), f"Shape {choice.name} does not say ahead how long it lasts: give "
                                               "Duration, the run's length.")

    def _check_capacity(self, data: dict[str, Any]) -> None:
        """A capacity search's settings within the page's limits, its thresholds given and the fields it sets left
        empty (perf.web.capacity_fields); run_perf's own checks judge the rest."""
        search, problems = capacity_fields.check_search(data, self.limits.users, self.limits.duration)
        for name, message in problems:
            if not self.has_error(name):  # one message a field: the first is what to fix first
                self.add_error(name, message)
        data["capacity_search"] = search

    def _within_limits(self, field: str, asks: str, lasts: str, peak: float | None, length: float | None) -> bool:
        """PERF_WEB_MAX_USERS and PERF_WEB_MAX_DURATION for a profile's peak and length (None: not known ahead,
        and then bounded by Users and Duration, which the page asks for)."""
        if peak is not None and peak > self.limits.users:
            self.add_error(field, f"{asks} {peak:,.0f} users; at most {self.limits.users:,} from this page "
                                  "(PERF_WEB_MAX_USERS); larger runs start from the command line.")
            return False
        if length is not None and length > self.limits.duration:
            self.add_error(field, f"{lasts} {formats.duration(length)} in all; at most "
                                  f"{formats.duration(self.limits.duration)} from this page "
                                  "(PERF_WEB_MAX_DURATION); longer runs start from the command line.")
            return False
        return True

    def arguments(self) -> list[str]:
        """The ``run_perf`` command line these answers make. Values go as ``--option=value``, so that one starting
        with "-" (a label, say) stays a value and is never read as an option."""
        data = self.cleaned_data
        if data["stages"]:
            args = [f"--stages={data['stages']}"]
        elif data["rate_stages"]:
            args = [f"--rate-stages={data['rate_stages']}", f"--users={data['users']}"]
        elif data["shape"]:
            args = [f"--shape={data['shape_text']}"]
            args += [f"--{name}={data[name]}" for name in ("users", "duration") if data[name] not in (None, "")]
        elif data.get("capacity_search"):
            args = data["capacity_search"].arguments()
        else:
            args = [f"--users={data['users']}", f"--spawn-rate={data['spawn_rate']:g}",
                    f"--duration={data['duration']}"]
        args.append(f"--host={data['host'].strip()}")
        args += [f"--scenario={name}" for name in data["scenarios"]]
        for option in ("wait", "label"):
            if data[option].strip():
                args.append(f"--{option}={data[option].strip()}")
        args += [f"--threshold={rule.strip()}" for rule in data["thresholds"].splitlines() if rule.strip()]
        if data.get("allow_remote"):
            args.append("--allow-remote")
        if data.get("bootstrap"):
            args.append("--bootstrap")
        if data.get("plan"):
            args.append(f"--plan={data['plan']}")
        return args


def _plan_choices() -> list[tuple[str, str]]:
    return [("", "none"), *((name, name) for name in PerfPlan.objects.values_list("name", flat=True))]


def _named(form: NewRunForm, name: str, message: str) -> str:
    """A form's error as one line: its field's label first unless the message names it already."""
    if name == NON_FIELD_ERRORS:
        return message
    label = str(form[name].label)
    return message if label in message else f"{label}: {message}"


def _joined(text: str) -> str:
    """A comma-separated option's text with the spaces around each item dropped, as the command line gets it."""
    return ",".join(item.strip() for item in text.split(",")) if text.strip() else ""


def _listed(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return " and ".join(items) if len(items) < 3 else f"{', '.join(items[:-1])} and {items[-1]}"


if TYPE_CHECKING:  # what the mixin is mixed into: the type checker sees ModelAdmin's methods
    _AdminBase = admin.ModelAdmin[PerfRun]
else:
    _AdminBase = object


def run_to_change(model_admin: "admin.ModelAdmin[PerfRun]", request: HttpRequest, pk: int) -> PerfRun:
    """The run that Stop or a change of target acts on, once runs whose process died are marked lost (so the
    answer says so); PermissionDenied without the change permission on it."""
    liveness.mark_lost_on_read()
    run = get_object_or_404(PerfRun, pk=pk)
    if not model_admin.has_change_permission(request, run):
        raise PermissionDenied
    return run


class RunControlMixin(_AdminBase):
    """Stop (change permission) and New run (add permission) for ``PerfRunAdmin``."""

    # Outside the request's transaction: the page waits for the row another process writes, which a
    # transaction's snapshot (SQLite's, for one) would never show it.
    @method_decorator(transaction.non_atomic_requests)
    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
                 ) -> HttpResponse:
        """The "New run" page: validate as the command does, start it, open its live page."""
        form = self._new_run_form(request)
        if request.method == "POST" and form.is_valid():
            run = self._start(request, form)
            if run is not None:
                self.message_user(request, f"Run {run.pk} started: this page follows it as it goes.")
                return HttpResponseRedirect(reverse("admin:perf_perfrun_change", args=[run.pk]))
        context = {**self.admin_site.each_context(request), "is_nav_sidebar_enabled": False,
                   "opts": self.model._meta, "title": "New run",
                   "form": form, "running": list(liveness.alive_runs()[:5])}
        return TemplateResponse(request, "admin/perf/perfrun/new_run.html", context)

    def _new_run_form(self, request: HttpRequest) -> NewRunForm:
        """The New run form for ``request``'s user, bound to its POST; PermissionDenied without the add permission,
        or with a guarded field asked for without its own."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        for name, permission in NewRunForm.GUARDED.items():  # asked for without the right: refused, not ignored
            if request.method == "POST" and request.POST.get(name) and not request.user.has_perm(permission):
                raise PermissionDenied
        host, host_source = default_host(request)
        initial: dict[str, Any] = {"host": host}
        plan = PerfPlan.objects.filter(name=request.GET.get("plan") or "").first() if request.method == "GET" else None
        if plan is not None:  # ?plan=NAME: the plan's fields, to change before starting
            initial = plan_fields.form_data(plan, host)
        form = NewRunForm(request.POST or None, initial=initial, user=request.user,
                          limits=launch.WebLimits.from_settings())
        form.fields["host"].help_text += f" Offered: {host_source}."
        return form

    def command_line_view(self, request: HttpRequest) -> HttpResponse:
        """POST the New run form as it stands: the command line it makes (``command``, and its shell ``words``), or
        what is wrong with it (``problems``, as the page would say them on submit). The page's script shows it as
        the fields change; nothing is started, and run_perf's own checks wait for the submit."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        form = self._new_run_form(request)
        if form.is_valid():
            words = launch.command_words(form.arguments())
            return JsonResponse({"command": " ".join(words), "words": words, "problems": []})
        problems = [_named(form, name, str(message)) for name, said in form.errors.items() for message in said]
        return JsonResponse({"command": "", "words": [], "problems": problems})

    def _start(self, request: HttpRequest, form: NewRunForm) -> PerfRun | None:
        """The started run, or None with the reason added to the form."""
        args = form.arguments()
        try:
            launch.check_arguments(args)  # a mistake first: it needs fixing whatever else is running
            launch_id = launch.reserve(request.user.get_username(), form.cleaned_data["run_anyway"], form.limits)
        except launch.Busy as exc:
            form.add_error("run_anyway", str(exc))
            return None
        except launch.LaunchError as exc:
            form.add_error(None, in_form_words(str(exc)))
            return None
        try:
            return launch.start(args, launch_id)
        except launch.LaunchError as exc:
            form.add_error(None, in_form_words(str(exc)))
            return None

    def control_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [path("<int:pk>/stop/", view(self.stop_view), name="perf_perfrun_stop"),
                path("add/command-line/", view(self.command_line_view), name="perf_perfrun_command_line")]

    def stop_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Ask a running run to stop: its process reads the flag within 2 s and stores the run ``aborted``.
        A run whose process is dead is said to be lost; the flag is set all the same, for the shards of a
        distributed run (they read it themselves) and for a process that was only held up."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        run = run_to_change(self, request, pk)
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


# --- Changing a running run's target from its live page (issue 20, Locust's "Edit") ------------------------------


class TargetChangeMixin(_AdminBase):
    """A new target for a running run, from its live page: users, or an open-model run's rate (iterations a second,
    its pool staying its -u). Stored on the run (``PerfRun.target_change``), which its process (and every worker
    and shard) reads with the stop flag and holds to the end of the run."""

    def target_urls(self) -> list[URLPattern]:
        return [path("<int:pk>/target/", self.admin_site.admin_view(self.target_view), name="perf_perfrun_target")]

    def target_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """POST ``target``: the change permission, as Stop; a finished run, or a number outside 0 to
        PERF_WEB_MAX_USERS (an open-model run's rate: above 0, at most MAX_RATE), is refused with one line and
        nothing stored."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        run = run_to_change(self, request, pk)
        refusal = target_refusal(run, request.POST.get("target", ""), launch.WebLimits.from_settings())
        if refusal:
            self.message_user(request, refusal, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:perf_perfrun_change", args=[pk]))
        unit = target_unit(run)
        target = _target_number(request.POST["target"], unit)
        who = request.user.get_username()
        changed = PerfRun.objects.filter(pk=pk, status=PerfRun.Status.RUNNING, stop_requested_at__isnull=True).update(
            target_change={"target": target, "at": timezone.now().timestamp(), "by": who[:150]})
        if changed:
            self.message_user(request, f"Run {pk}: {target:g} {unit} asked for; the run follows within 2 s and "
                                       "holds it to its end.")
        else:
            self.message_user(request, f"Run {pk} is not running any more: its target stays as it was.",
                              messages.WARNING)
        return HttpResponseRedirect(reverse("admin:perf_perfrun_change", args=[pk]))


RATE_UNIT = "iterations a second"


def target_unit(run: PerfRun) -> str:
    """What a run's target counts, as the live page's form and messages say it: an open-model run (``--rate``,
    ``--rate-stages``) changes its rate, any other its users."""
    if (run.profile or {}).get("kind") == "rate" or run.open_model or (run.options or {}).get("rate"):
        return RATE_UNIT
    return "users"


def _target_number(text: str, unit: str) -> float:
    """The target asked for, checked by ``target_refusal``: a rate as a number, users as a whole one."""
    return float(text.strip()) if unit == RATE_UNIT else int(text.strip())


def target_refusal(run: PerfRun, text: str, limits: launch.WebLimits) -> str:
    """Why ``text`` cannot be the running run's new target, in one line naming the fix ("" when it can)."""
    if run.status != PerfRun.Status.RUNNING or run.stop_requested_at is not None:
        return f"Run {run.pk} is not running ({run.status}): only a running run's target can change."
    if run.kind == PerfRun.Kind.CAPACITY:
        return (f"Run {run.pk} is a capacity search: it sets its own load step by step, so its target cannot be "
                "changed by hand; stop it, or start a run of its own.")
    if target_unit(run) == RATE_UNIT:
        try:
            rate = float(text.strip())
        except ValueError:
            return (f"Target rate must be a number of iterations a second, above 0 and at most {MAX_RATE:,.0f}, "
                    f"not {text.strip()[:20]!r}.")
        try:
            check_rate("Target rate", rate)
        except ValueError as exc:
            return f"{exc} (iterations a second; the pool stays the run's users)."
        return ""
    try:
        target = int(text.strip())
    except ValueError:
        return f"Target users must be a whole number from 0 to {limits.users}, not {text.strip()[:20]!r}."
    if not 0 <= target <= limits.users:
        return f"Target users must be from 0 to {limits.users} (PERF_WEB_MAX_USERS), not {target}."
    return ""
