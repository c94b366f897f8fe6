"""One ``run_perf`` request, checked in one pass before any user starts.

``RunRequest`` holds the options as given (its fields are the command's option names);
``check_request`` turns it into a ``RunSetup`` or raises ``UsageError``: one line that names the
fix, exit code 2, and nothing sent, stored or written.
"""

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError

from perf import packs
from perf.analysis import compare
from perf.cli.capacity import DEFAULT_POOL, capacity_search
from perf.cli.exit_codes import FAILURES
from perf.cli.profiles import MAX_USERS, ProfileChoice, choose_profile
from perf.conf import load_config, perf_settings
from perf.config import PerfConfig
from perf.load.capacity import CapacitySearch
from perf.load.context import RunContext
from perf.load.profile import whole_users
from perf.load.runner import RunPlan
from perf.load.thresholds import Threshold, parse_threshold
from perf.load.user import User, select_tasks, task_tags
from perf.models import PerfPlan, PerfRun
from perf.options import (
    MAX_DURATION,
    allowed_remote_host,
    check_base_url,
    check_rate,
    check_seconds,
    escaped,
    is_loopback_host,
    parse_duration,
    parse_percent,
    parse_wait,
)
from perf.reports.locust_csv import CSV_SUFFIXES
from perf.store.database import DatabaseUnavailable, check_ready

MAX_PROCESSES_PER_CORE = 4
# What -u, -r and -t mean when not given (None in RunRequest: a load profile refuses -u and -r given with it).
DEFAULT_USERS = 10
DEFAULT_SPAWN_RATE = 1.0
DEFAULT_DURATION = "1m"
SEED_RANGE = (-(2**63), 2**63 - 1)  # what the run's seed column holds
LABEL_LENGTH: int = PerfRun._meta.get_field("label").max_length or 0


class UsageError(Exception):
    """Bad input: reported as one line, exit code 2."""


@dataclass(frozen=True)
class RunRequest:
    """The command's options, unvalidated; each field is named as the option's ``dest``."""

    users: int | None = None  # DEFAULT_USERS
    spawn_rate: float | None = None  # DEFAULT_SPAWN_RATE
    duration: str | None = None  # DEFAULT_DURATION, or a load profile's length
    scenarios: tuple[str, ...] = ()
    host: str | None = None
    allow_remote: bool = False
    wait: str | None = None
    seed: int | None = None
    label: str = ""
    stop_timeout: float = 0.0
    csv: str | None = None
    csv_full_history: bool = False
    print_stats: int | None = None
    json: str | None = None
    html: str | None = None
    junit: str | None = None
    summary_md: str | None = None
    exit_code_on_error: int = FAILURES
    save: bool = True
    thresholds: tuple[str, ...] = ()
    abort_on_threshold: bool = False
    threshold_warmup: str = "10s"
    audit: bool = True
    compare_to: str | None = None
    fail_on_regression: str | None = None
    processes: str | None = None
    distributed: str | None = None
    shards: int = 1
    rate: float | None = None
    bootstrap: bool = False
    request_log: str | None = None
    stages: str | None = None
    rate_stages: str | None = None
    shape: str | None = None
    find_capacity: bool = False
    start_load: float | None = None
    max_users: float | None = None
    max_rate: float | None = None
    step_factor: float | None = None
    step_increment: float | None = None
    settle: str | None = None
    hold: str | None = None
    resolution: str | None = None
    budget: str | None = None
    iterations: int | None = None
    iterations_per_user: bool = False
    tags: str | None = None
    exclude_tags: str | None = None
    launch_id: str = ""  # from the admin's "New run" page only
    plan: str | None = None  # a saved plan's name (PerfPlan): its options, then the ones given over them

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> "RunRequest":
        """The fields out of a command's parsed options (which hold Django's own ones too)."""
        values = {f.name: options[f.name] for f in fields(cls) if f.name in options}
        for name, value in values.items():
            if isinstance(value, list):
                values[name] = tuple(value)
        return cls(**values)


@dataclass(frozen=True)
class RunSetup:
    """Validated inputs, ready to run."""

    config: PerfConfig
    host: str
    plan: RunPlan
    scenarios: list[type[User]]
    context: RunContext
    thresholds: list[Threshold]
    threshold_warmup: float
    baseline: PerfRun | None
    regression_percent: float | None
    processes: int = 1
    seed_hook: Callable[[], Sequence[str]] | None = None  # with --bootstrap: called before the load
    profile: dict[str, Any] | None = None  # the load profile as PerfRun.profile stores it (perf.cli.profiles)
    capacity: CapacitySearch | None = None  # run_perf --find-capacity: the search, which is also plan.profile
    saved_plan: PerfPlan | None = None  # run_perf --plan NAME: judged against its history at the end


def check_request(request: RunRequest) -> RunSetup:
    """Check every option before any user starts; raise UsageError naming the fix."""
    try:
        _check_text(request)
        config = load_config()
        thresholds = [parse_threshold(text) for text in request.thresholds]
        search = capacity_search(request, thresholds)
        _check_one_profile(request)
        chosen = choose_profile(request.stages, request.rate_stages, request.shape)
        if chosen is not None:
            _check_profile_options(request, chosen[0])
        duration = parse_duration(request.duration or DEFAULT_DURATION)
        wait = parse_wait(request.wait) if request.wait else None
        host = check_base_url(request.host or config.backend_url)
        warmup = parse_duration(request.threshold_warmup)
        regression = parse_percent(request.fail_on_regression) if request.fail_on_regression else None
        _check_numbers(request)
        _check_iterations(request)
        tags = parse_tags("--tags", request.tags)
        exclude = parse_tags("--exclude-tags", request.exclude_tags) or frozenset()
        for option, path in (("--csv", request.csv), ("--json", request.json), ("--html", request.html),
                             ("--junit", request.junit), ("--summary-md", request.summary_md),
                             ("--request-log", request.request_log)):
            if path:
                check_output_path(option, path, prefix=option == "--csv")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    scenarios, context = _pack(request.scenarios, audit=request.audit)
    if tags is not None or exclude:
        scenarios = _select_tagged(scenarios, tags, exclude, context)
    seed_hook = _seed_hook() if request.bootstrap else None
    processes = _processes(request.processes)
    _check_modes(request, processes, bool(thresholds), regression, _rate_profile(chosen[0] if chosen else None))
    _check_target(host, request.allow_remote)
    if request.save or request.audit or request.compare_to or request.plan:
        try:
            check_ready(apps=("perf",))
        except DatabaseUnavailable as exc:
            raise UsageError(f"{exc} (or pass --no-save --no-audit)") from None
    baseline = None
    if request.compare_to:
        try:
            baseline = compare.resolve_run(request.compare_to)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    saved_plan = find_plan(request.plan) if request.plan else None
    users = request.users or DEFAULT_USERS
    profile, stored = (None, None) if chosen is None else (chosen[0].profile, chosen[1])
    if profile is not None:
        # The profile's length, or -t when given and shorter; a shape that decides as it goes ends the run itself.
        length = profile.duration if profile.duration is not None else MAX_DURATION
        duration = min(length, duration) if request.duration else length
        if profile.kind == "users" and profile.peak > 0:
            users = whole_users(profile.peak)  # the spawn order's length: the most the profile asks for
    spawn_rate = request.spawn_rate or DEFAULT_SPAWN_RATE
    if search is not None:
        profile, duration = search, search.settings.budget
        if search.kind == "users":
            users = whole_users(search.settings.max_load)
        else:  # the open model's pool, built in about a second unless -r says otherwise
            users = request.users or DEFAULT_POOL
            spawn_rate = request.spawn_rate or float(users)
    plan = RunPlan(users=users, spawn_rate=spawn_rate, duration=duration,
                   stop_timeout=request.stop_timeout, wait=wait, seed=request.seed,
                   request_timeout=config.request_timeout, profile=profile, iterations=request.iterations,
                   iterations_per_user=request.iterations_per_user)
    return RunSetup(config=replace(config, backend_url=host), host=host, plan=plan, scenarios=scenarios,
                    context=context, thresholds=thresholds, threshold_warmup=warmup,
                    baseline=baseline, regression_percent=regression, processes=processes, seed_hook=seed_hook,
                    profile=stored, capacity=search, saved_plan=saved_plan)


# What a plan may set (PerfPlan.options): the load and what judges it. Not the files a run writes (paths on the
# machine that starts it, which the admin's "Run now" must not choose), nor the options worth more than a run
# (--bootstrap, --allow-remote: the person starting it gives those), nor a capacity search (a plan's runs are
# compared with each other, endpoint by endpoint; a search's steps are not).
PLAN_OPTIONS = ("users", "spawn_rate", "duration", "stages", "rate_stages", "shape", "rate", "scenarios", "wait",
                "seed", "host", "stop_timeout", "thresholds", "abort_on_threshold", "threshold_warmup", "audit",
                "exit_code_on_error", "processes", "distributed", "shards", "compare_to", "fail_on_regression",
                "label", "iterations", "iterations_per_user", "tags", "exclude_tags")


def find_plan(name: str) -> PerfPlan:
    """The saved plan ``name``, or UsageError naming the plans there are."""
    try:
        plan = PerfPlan.objects.select_related("baseline").filter(name=name).first()
        names = [] if plan is not None else list(PerfPlan.objects.values_list("name", flat=True)[:10])
    except DatabaseError as exc:
        raise UsageError(f"--plan {escaped(name)}: the database did not answer ({str(exc).splitlines()[0]})") from None
    if plan is None:
        known = f"the plans are {', '.join(names)}" if names else "there are no plans yet (add one in the admin)"
        raise UsageError(f"unknown --plan {name!r}: {known}")
    return plan


def plan_values(plan: PerfPlan) -> dict[str, Any]:
    """The RunRequest fields a plan sets: its options, its thresholds, and its baseline as --compare-to."""
    values = {name: tuple(value) if isinstance(value, list) else value
              for name, value in (plan.options or {}).items() if name in PLAN_OPTIONS}
    if plan.thresholds:
        values["thresholds"] = tuple(plan.thresholds)
    if plan.baseline_id is not None and "compare_to" not in values:
        values["compare_to"] = str(plan.baseline_id)
    values.setdefault("label", plan.name)  # the admin's list names the plan's runs by it
    return values


def apply_plan(request: RunRequest, given: set[str]) -> RunRequest:
    """``run_perf --plan NAME``: the plan's options, with the ones ``given`` on the command line over them.
    The result is what the run stores as its options (PerfRun.options). UsageError for an unknown plan."""
    if not request.plan:
        return request
    values = plan_values(find_plan(request.plan))
    return replace(request, **{name: value for name, value in values.items() if name not in given})


def given_options(parser: Any, options: dict[str, Any]) -> set[str]:
    """The RunRequest fields given on the command line: those whose value is not the parser's default."""
    names = {f.name for f in fields(RunRequest)}
    return {name for name in names if name in options and options[name] != parser.get_default(name)
            and not (options[name] == [] and parser.get_default(name) in (None, []))}


def _check_one_profile(request: RunRequest) -> None:
    """A load profile sets the load over time: one at most."""
    given = [option for option, value in (("--stages", request.stages), ("--rate-stages", request.rate_stages),
                                          ("--shape", request.shape)) if value is not None]
    if len(given) > 1:
        raise ValueError(f"{' and '.join(given)} cannot be combined: give one load profile")


def _check_profile_options(request: RunRequest, choice: ProfileChoice) -> None:
    """None of the options the profile replaces. Its kind, not its option, says which: a shape may set an arrival
    rate (the open model, as --rate-stages does) as well as users."""
    option = choice.option
    if choice.profile.kind == "rate":
        if request.rate is not None:
            raise ValueError(f"{option} sets the arrival rate over time: drop --rate")
        if request.wait:
            raise ValueError(f"--wait does not apply with {option}: iterations arrive on the schedule, "
                             "without think time")
        return
    if request.rate is not None:
        raise ValueError(f"{option} sets users over time (the closed model): drop --rate, or use --rate-stages")
    fixed = [flag for flag, value in (("-u/--users", request.users), ("-r/--spawn-rate", request.spawn_rate))
             if value is not None]
    if fixed and option == "--stages":
        raise ValueError(f"--stages sets the users over time: drop {' and '.join(fixed)}")
    if request.spawn_rate is not None:
        raise ValueError(f"{option} sets the users over time: drop -r/--spawn-rate")


def _check_text(request: RunRequest) -> None:
    """Every text option must be UTF-8. A byte that is not (``--label $'bad\\xff'``) reaches Python as a
    lone surrogate, which the database, the files and the terminal each refuse in their own way, late
    and with a traceback (or, for a path, on one database and not the other)."""
    for item in fields(request):
        value = getattr(request, item.name)
        for text in value if isinstance(value, tuple) else (value,):
            if isinstance(text, str) and not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    dest = item.name[:-1] if item.name in _PLURAL_DESTS else item.name
                    option = "--" + dest.replace("_", "-")
                    raise ValueError(f"{option} '{escaped(text)}' is not valid UTF-8 text: give it in UTF-8") from None


_PLURAL_DESTS = ("scenarios", "thresholds")  # repeatable options gathered under a plural dest


def _check_numbers(request: RunRequest) -> None:
    if request.users is not None and not 1 <= request.users <= MAX_USERS:
        raise ValueError(f"--users must be between 1 and {MAX_USERS:,}, got {request.users}; "
                         "beyond that, split the load over machines with --distributed")
    if request.spawn_rate is not None:
        check_rate("--spawn-rate", request.spawn_rate)
    check_seconds("--stop-timeout", request.stop_timeout)
    if request.rate is not None:
        check_rate("--rate", request.rate)
    if request.seed is not None and not SEED_RANGE[0] <= request.seed <= SEED_RANGE[1]:
        raise ValueError(f"--seed must fit in 64 bits (from {SEED_RANGE[0]} to {SEED_RANGE[1]})")
    if len(request.label or "") > LABEL_LENGTH:
        raise ValueError(f"--label is {len(request.label)} characters long; the most is {LABEL_LENGTH}")
    if not 1 <= request.exit_code_on_error <= 255:
        raise ValueError(f"--exit-code-on-error must be between 1 and 255 (an exit code is one byte, and 0 is "
                         f"a pass), got {request.exit_code_on_error}")
    if request.shards < 1:
        raise ValueError(f"--shards must be at least 1, got {request.shards}")
    if request.print_stats is not None and request.print_stats < 1:
        raise ValueError(f"--print-stats takes whole seconds, at least 1, got {request.print_stats}")


def _check_iterations(request: RunRequest) -> None:
    """``--iterations N`` (in all, or per user with ``--iterations-per-user``) in the runs that can count them:
    one process, forked workers (each takes its part of N) and the open model (in all only)."""
    if request.iterations is None:
        if request.iterations_per_user:
            raise ValueError("--iterations-per-user says how --iterations counts: give --iterations N too")
        return
    if request.iterations < 1:
        raise ValueError(f"--iterations must be at least 1, got {request.iterations}")
    if request.distributed:
        raise ValueError("--iterations cannot be combined with --distributed (the shards cannot count together): "
                         "use --processes, or bound the run with -t")
    if request.find_capacity:
        raise ValueError("--iterations cannot be combined with --find-capacity: a search's steps are timed")
    if request.iterations_per_user:
        other = next((option for option, value in (
            ("--rate", request.rate), ("--rate-stages", request.rate_stages), ("--stages", request.stages),
            ("--shape", request.shape)) if value is not None), None)
        if other in ("--rate", "--rate-stages"):
            raise ValueError(f"--iterations-per-user does not apply with {other}: the open model's iterations are "
                             "the schedule's, not a user's (drop --iterations-per-user: N in all)")
        if other is not None:
            raise ValueError(f"--iterations-per-user does not apply with {other}: a load profile starts and stops "
                             "users as it goes (drop --iterations-per-user: N in all)")


def parse_tags(option: str, text: str | None) -> frozenset[str] | None:
    """``a,b``: the tag names, spaces around them ignored (None when the option is not given); ValueError for an
    empty name."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise ValueError(f"{option} takes tag names separated by commas, like checkout,browse; got {text!r}")
    return frozenset(names)


def _select_tagged(scenarios: list[type[User]], tags: frozenset[str] | None, exclude: frozenset[str],
                   context: RunContext) -> list[type[User]]:
    """The scenarios with only the tasks ``--tags`` and ``--exclude-tags`` select, as Locust selects them: with
    ``--tags``, a task runs if it has one of them; with ``--exclude-tags``, not if it has any of them. A scenario
    left with no task is left out, with a note at the end of the run; none left is a usage error."""
    kept: list[type[User]] = []
    for cls in scenarios:
        selected = select_tasks(cls, tags, exclude)
        if selected is None:
            context.note_once(f"scenario {cls.__name__} left out: none of its tasks is selected by "
                              f"{_selection_text(tags, exclude)}")
        else:
            kept.append(selected)
    if not kept:
        known = sorted({name for cls in scenarios for func, _ in cls.tasks for name in task_tags(func)})
        raise UsageError(f"no task to run: none is selected by {_selection_text(tags, exclude)}; tags in these "
                         f"scenarios: {', '.join(known) or 'none (mark tasks with @tag)'}")
    return kept


def _selection_text(tags: frozenset[str] | None, exclude: frozenset[str]) -> str:
    parts = ([f"--tags {','.join(sorted(tags))}"] if tags is not None else []) + (
        [f"--exclude-tags {','.join(sorted(exclude))}"] if exclude else [])
    return escaped(" and ".join(parts))


def _check_target(host: str, allow_remote: bool) -> None:
    """Load goes to this machine, or to a remote host both asked for (``--allow-remote``) and listed in
    ``PERF_ALLOWED_HOSTS``. Checked before anything is sent: not even the health check reaches another host."""
    if is_loopback_host(host):
        return
    if not allow_remote:
        raise UsageError(f"{host} is not a loopback address; load goes to this machine only unless --allow-remote")
    allowed = perf_settings.PERF_ALLOWED_HOSTS
    if not allowed_remote_host(host, allowed):
        raise UsageError(f"{host} is not in PERF_ALLOWED_HOSTS ({', '.join(allowed) or 'empty'}); "
                         "add its host name there to send load to it")


def _pack(names: tuple[str, ...], audit: bool) -> tuple[list[type[User]], RunContext]:
    """The scenarios asked for (all the configured ones when none is named) and the run's shared
    context, both from the scenario pack the settings name (``perf.packs``); its audit checks are
    looked up now, so that a wrong path fails before the load rather than after it."""
    try:
        configured = packs.scenarios()
        context = packs.make_context()
        if audit:
            packs.audit_checks()
    except (ImproperlyConfigured, ValueError) as exc:
        raise UsageError(str(exc)) from None
    chosen: list[type[User]] = []
    for name in names:
        found = packs.find_scenario(name, configured)
        if found is None:
            raise UsageError(f"unknown scenario {name!r}; valid scenarios: {', '.join(configured)}")
        if found not in chosen:
            chosen.append(found)
    untasked = [cls.__name__ for cls in chosen or configured.values() if not cls.tasks]
    if untasked:
        raise UsageError(f"scenario {untasked[0]} has no @task methods: mark at least one with @task")
    return chosen or list(configured.values()), context


def _seed_hook() -> Callable[[], Sequence[str]]:
    try:
        hook = packs.seed_hook()
    except ImproperlyConfigured as exc:
        raise UsageError(str(exc)) from None
    if hook is None:
        raise UsageError("--bootstrap needs a seed hook: set PERF_SEED_HOOK to a function that makes your data")
    return hook


def _processes(text: str | None) -> int:
    cores = os.cpu_count() or 1
    if text is None:
        return 1
    if text == "auto":
        return cores
    try:
        count = int(text)
    except ValueError:
        raise UsageError(f"bad --processes {text!r}: use a number or 'auto' (one per core)") from None
    most = MAX_PROCESSES_PER_CORE * cores
    if not 1 <= count <= most:
        raise UsageError(f"--processes must be between 1 and {most} ({MAX_PROCESSES_PER_CORE} per core), got {count}")
    return count


def _rate_profile(choice: ProfileChoice | None) -> str | None:
    """The option of a profile that sets an arrival rate, as the mode checks name it: ``--rate-stages``, or a shape
    whose kind is "rate" (``--shape NAME (an arrival rate)``: other shapes go with every mode)."""
    if choice is None or choice.profile.kind != "rate":
        return None
    if choice.option != "--shape":
        return choice.option
    return f"--shape {choice.text.partition(':')[0].strip()} (an arrival rate)"


def _check_modes(request: RunRequest, processes: int, has_thresholds: bool, regression: float | None,
                 rate_profile: str | None) -> None:
    """Options that only make sense together, or never together. The open model (``--rate``, or a profile of an
    arrival rate) runs in one process: it cannot be split over workers or shards."""
    if request.distributed not in (None, "celery"):
        raise UsageError(f"unknown --distributed {request.distributed!r}; the only backend is 'celery'")
    if request.distributed and not request.save:
        raise UsageError("--distributed shards report through the database: drop --no-save")
    modes = [flag for flag, on in (("--processes", processes > 1), ("--distributed", bool(request.distributed)),
                                   ("--rate", request.rate is not None),
                                   (rate_profile or "", rate_profile is not None)) if on]
    if len(modes) > 1:
        raise UsageError(f"{' and '.join(modes)} cannot be combined; choose one")
    if request.rate is not None and request.wait:
        raise UsageError("--wait does not apply with --rate: iterations arrive on the schedule, without think time")
    if request.csv_full_history and not request.csv:
        raise UsageError("--csv-full-history adds rows to the --csv history: give --csv PREFIX too")
    if request.abort_on_threshold and not has_thresholds:
        raise UsageError("--abort-on-threshold needs at least one --threshold")
    if regression is not None and not request.compare_to:
        raise UsageError("--fail-on-regression needs --compare-to RUN_ID|last")
    if request.compare_to and not request.save:
        raise UsageError("--compare-to compares stored runs: drop --no-save")
    if request.distributed and (request.tags is not None or request.exclude_tags is not None):
        raise UsageError("--tags and --exclude-tags cannot be combined with --distributed: each shard loads the "
                         "scenario pack whole; use --processes")


def check_output_path(option: str, path: str, prefix: bool = False) -> None:
    """Raise ValueError unless ``path`` can be written at the end of the run.

    Its folder must exist or be creatable, and be writable (tried for real, with a file that is
    removed at once: permissions alone do not tell of a read-only mount); the file itself must
    not be a folder. With ``prefix`` (``--csv``) the files are ``PATH_stats.csv`` and so on, the
    prefix taken as text as Locust does (``out/`` gives ``out/_stats.csv``). The paths in the message are
    ``escaped``: a path may hold a line break, which would end the one line early.
    """
    base = os.path.expanduser(path)
    files = [base + suffix for suffix in CSV_SUFFIXES] if prefix else [base]
    for file in files:
        if os.path.isdir(file):
            raise ValueError(escaped(f"{option} {path}: {file} is a folder; give a file "
                                     f"{'prefix' if prefix else 'path'}"))
    folder = Path(os.path.dirname(files[0]) or ".")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(escaped(f"{option} {path}: {existing} is a file, so the folder {folder} cannot be made"))
    try:
        probe = existing / f".perfkit-write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise ValueError(escaped(f"{option} {path}: cannot write in {existing} ({exc.strerror}); "
                                 "choose another path")) from None
