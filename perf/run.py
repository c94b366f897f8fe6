"""One ``run_perf`` invocation from options to stored run: the only place where the engine
(``perf.load``), the platform scenarios and the Django models meet.
"""

import signal
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

import gevent
import requests
from django.db import connection

from perf import persist
from perf.clients.mailpit import MailpitClient
from perf.config import PerfConfig, load_config
from perf.load import report
from perf.load.runner import LoadRunner, RunPlan, Tick, split_counts
from perf.load.session import HttpSession
from perf.load.stats import StatsRegistry
from perf.load.user import User
from perf.options import check_base_url, is_loopback_host, parse_duration, parse_wait, site_root
from perf.progress import ProgressPrinter
from perf.scenarios import SCENARIOS, find_scenario
from perf.scenarios.base import ScenarioContext


class UsageError(Exception):
    """Bad input: reported as one line, exit code 2."""


@dataclass(frozen=True)
class RunRequest:
    """The command's options, unvalidated."""

    users: int = 10
    spawn_rate: float = 1.0
    duration: str = "1m"
    scenarios: tuple[str, ...] = ()
    host: str | None = None
    allow_remote: bool = False
    wait: str | None = None
    seed: int | None = None
    label: str = ""
    stop_timeout: float = 0.0
    csv: str | None = None
    json: str | None = None
    exit_code_on_error: int = 1
    save: bool = True

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> "RunRequest":
        return cls(
            users=options["users"], spawn_rate=options["spawn_rate"], duration=options["duration"],
            scenarios=tuple(options["scenario"]), host=options["host"], allow_remote=options["allow_remote"],
            wait=options["wait"], seed=options["seed"], label=options["label"], stop_timeout=options["stop_timeout"],
            csv=options["csv"], json=options["json"], exit_code_on_error=options["exit_code_on_error"],
            save=not options["no_save"],
        )


@dataclass
class RunOutcome:
    status: str
    exit_code: int
    stats: StatsRegistry
    run_id: int | None


@dataclass(frozen=True)
class RunSetup:
    """Validated inputs, ready to run."""

    config: PerfConfig
    host: str
    plan: RunPlan
    scenarios: list[type[User]]


def prepare(request: RunRequest) -> RunSetup:
    """Check every option before any user starts; raise UsageError naming the fix."""
    try:
        config = load_config()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if request.users < 1:
        raise UsageError(f"--users must be at least 1, got {request.users}")
    if not request.spawn_rate > 0:
        raise UsageError(f"--spawn-rate must be greater than 0, got {request.spawn_rate:g}")
    if request.stop_timeout < 0:
        raise UsageError(f"--stop-timeout must not be negative, got {request.stop_timeout:g}")
    try:
        duration = parse_duration(request.duration)
        wait = parse_wait(request.wait) if request.wait else None
        host = check_base_url(request.host or config.backend_url)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    scenarios = []
    for name in request.scenarios:
        found = find_scenario(name)
        if found is None:
            raise UsageError(f"unknown scenario {name!r}; valid scenarios: {', '.join(SCENARIOS)}")
        if found not in scenarios:
            scenarios.append(found)
    if not request.allow_remote and not is_loopback_host(host):
        raise UsageError(f"{host} is not a loopback address; load goes to this machine only unless --allow-remote")
    plan = RunPlan(users=request.users, spawn_rate=request.spawn_rate, duration=duration,
                   stop_timeout=request.stop_timeout, wait=wait, seed=request.seed)
    return RunSetup(config=replace(config, backend_url=host), host=host, plan=plan,
                    scenarios=scenarios or list(SCENARIOS.values()))


def check_reachable(host: str) -> None:
    url = f"{host}/healthcheck"
    try:
        response = requests.get(url, timeout=5)
    except requests.RequestException as exc:
        raise UsageError(
            f"cannot reach {url} ({type(exc).__name__}); start the server (make serve) or pass --host"
        ) from None
    if response.status_code != 200:
        raise UsageError(f"{url} answered {response.status_code}, not 200; is this the API root? pass --host")


def git_revision() -> str:
    try:
        result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).resolve().parent.parent)
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def execute(request: RunRequest, out: TextIO, style: Any = None) -> RunOutcome:
    setup = prepare(request)
    check_reachable(setup.host)
    plan, config = setup.plan, setup.config
    stats = StatsRegistry()
    context = ScenarioContext(config=config, mailpit=MailpitClient(config.mailpit_url))

    def make_session(registry: StatsRegistry) -> HttpSession:
        return HttpSession(setup.host, registry.record, timeout=config.request_timeout)

    progress = ProgressPrinter(out, plan.duration)
    run = None
    names = [cls.__name__ for cls in setup.scenarios]
    runner = LoadRunner(setup.scenarios, plan, stats, make_session, context=context)
    split = split_counts(runner.spawn_order)
    if request.save:
        run = persist.start_run(
            label=request.label, host=setup.host, options=_options_record(request), users=plan.users,
            spawn_rate=plan.spawn_rate, planned_duration=plan.duration, scenarios=names, user_split=split,
            seed=plan.seed, git_revision=git_revision(), database_vendor=connection.vendor,
        )

    def on_tick(tick: Tick) -> None:
        progress(tick)
        if run is not None:
            persist.add_samples(run, [tick.sample])

    def on_cpu_warning(percent: float) -> None:
        progress.message(f"WARNING: generator CPU usage above 90% ({percent:.0f}%): measured response times may "
                         "be inflated; use fewer users or more processes")

    runner.on_tick = on_tick
    runner.on_cpu_warning = on_cpu_warning
    out.write(f"Running {plan.users} users ({_split_text(split)}) at {plan.spawn_rate:g}/s for "
              f"{plan.duration:g}s against {setup.host}\n")
    handlers = [gevent.signal_handler(sig, runner.request_stop, "aborted") for sig in (signal.SIGINT, signal.SIGTERM)]
    started = time.monotonic()
    try:
        status = runner.run()
    except BaseException as exc:
        if run is not None:
            persist.finish_run(run, stats, "failed", time.monotonic() - started, error=repr(exc),
                               cpu_warning=runner.cpu_warned, max_cpu_percent=runner.max_cpu_percent)
        raise
    finally:
        for handler in handlers:
            handler.cancel()
        progress.finish()
    duration = time.monotonic() - started

    out.write("\n" + report.summary_tables(stats, duration) + "\n")
    if request.csv:
        report.write_csv(request.csv, stats, duration)
    if request.json:
        meta = {"label": request.label, "host": setup.host, "users": plan.users, "status": status,
                "scenarios": names, "user_split": split, "seed": plan.seed}
        report.write_json(request.json, report.summary_json(stats, duration, meta))
    for note in context.notes:
        out.write(f"Note: {note}\n")
    if runner.cpu_warned:
        out.write("CPU usage was too high at some point during the run: figures may be inflated.\n")
    run_id = None
    if run is not None:
        persist.finish_run(run, stats, status, duration, cpu_warning=runner.cpu_warned,
                           max_cpu_percent=runner.max_cpu_percent)
        run_id = run.pk
        out.write(f"Run {run.pk} {status}: {site_root(setup.host)}/admin/perf/perfrun/{run.pk}/change/\n")
    exit_code = request.exit_code_on_error if stats.total.num_failures else 0
    return RunOutcome(status=status, exit_code=exit_code, stats=stats, run_id=run_id)


def _split_text(split: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(split.items(), key=lambda item: -item[1]))


def _options_record(request: RunRequest) -> dict[str, Any]:
    return {key: value for key, value in vars(request).items() if key != "save"} | {"save": request.save}
