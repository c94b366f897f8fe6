"""One ``run_perf`` invocation from options to stored run: the only place where the engine
(``perf.load``), the platform scenarios and the Django models meet.

Exit codes: 0 all good · 1 some request failed (``--exit-code-on-error``) · 2 bad input ·
3 a ``--threshold`` was breached · 4 ``--fail-on-regression`` found a regression ·
5 the data-integrity audit found a broken invariant.
"""

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import gevent
import requests
from django.db import connection

from perf import compare, integrity, persist
from perf.clients.mailpit import MailpitClient
from perf.config import PerfConfig, load_config
from perf.load import html_report, report
from perf.load.runner import LoadRunner, RunPlan, Tick, split_counts
from perf.load.session import HttpSession
from perf.load.stats import StatsRegistry
from perf.load.thresholds import Threshold, Verdict, evaluate, parse_threshold
from perf.load.user import User
from perf.models import PerfRun
from perf.options import check_base_url, is_loopback_host, parse_duration, parse_wait, site_root
from perf.progress import ProgressPrinter
from perf.scenarios import SCENARIOS, find_scenario
from perf.scenarios.base import ScenarioContext

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_THRESHOLD, EXIT_REGRESSION, EXIT_AUDIT = 0, 1, 2, 3, 4, 5


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
    html: str | None = None
    exit_code_on_error: int = EXIT_FAILURES
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

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> "RunRequest":
        return cls(
            users=options["users"], spawn_rate=options["spawn_rate"], duration=options["duration"],
            scenarios=tuple(options["scenario"]), host=options["host"], allow_remote=options["allow_remote"],
            wait=options["wait"], seed=options["seed"], label=options["label"], stop_timeout=options["stop_timeout"],
            csv=options["csv"], json=options["json"], html=options["html"],
            exit_code_on_error=options["exit_code_on_error"], save=not options["no_save"],
            thresholds=tuple(options["threshold"]), abort_on_threshold=options["abort_on_threshold"],
            threshold_warmup=options["threshold_warmup"], audit=not options["no_audit"],
            compare_to=options["compare_to"], fail_on_regression=options["fail_on_regression"],
            processes=options["processes"], distributed=options["distributed"], shards=options["shards"],
            rate=options["rate"],
        )


@dataclass
class RunOutcome:
    status: str
    exit_code: int
    stats: StatsRegistry
    run_id: int | None
    verdicts: list[Verdict] = field(default_factory=list)


@dataclass(frozen=True)
class RunSetup:
    """Validated inputs, ready to run."""

    config: PerfConfig
    host: str
    plan: RunPlan
    scenarios: list[type[User]]
    thresholds: list[Threshold]
    threshold_warmup: float
    baseline: PerfRun | None
    regression_percent: float | None
    processes: int = 1


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
        thresholds = [parse_threshold(text) for text in request.thresholds]
        warmup = parse_duration(request.threshold_warmup)
        regression = compare.parse_percent(request.fail_on_regression) if request.fail_on_regression else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    scenarios = []
    for name in request.scenarios:
        found = find_scenario(name)
        if found is None:
            raise UsageError(f"unknown scenario {name!r}; valid scenarios: {', '.join(SCENARIOS)}")
        if found not in scenarios:
            scenarios.append(found)
    processes = _parse_processes(request.processes)
    if request.distributed not in (None, "celery"):
        raise UsageError(f"unknown --distributed {request.distributed!r}; the only backend is 'celery'")
    if request.shards < 1:
        raise UsageError(f"--shards must be at least 1, got {request.shards}")
    if request.distributed and not request.save:
        raise UsageError("--distributed shards report through the database: drop --no-save")
    modes = [flag for flag, on in (("--processes", processes > 1), ("--distributed", bool(request.distributed)),
                                   ("--rate", request.rate is not None)) if on]
    if len(modes) > 1:
        raise UsageError(f"{' and '.join(modes)} cannot be combined; choose one")
    if request.rate is not None and not request.rate > 0:
        raise UsageError(f"--rate must be greater than 0, got {request.rate:g}")
    if request.rate is not None and request.wait:
        raise UsageError("--wait does not apply with --rate: iterations arrive on the schedule, without think time")
    if request.abort_on_threshold and not thresholds:
        raise UsageError("--abort-on-threshold needs at least one --threshold")
    if regression is not None and not request.compare_to:
        raise UsageError("--fail-on-regression needs --compare-to RUN_ID|last")
    baseline = None
    if request.compare_to:
        if not request.save:
            raise UsageError("--compare-to compares stored runs: drop --no-save")
        try:
            baseline = compare.resolve_run(request.compare_to)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if not request.allow_remote and not is_loopback_host(host):
        raise UsageError(f"{host} is not a loopback address; load goes to this machine only unless --allow-remote")
    plan = RunPlan(users=request.users, spawn_rate=request.spawn_rate, duration=duration,
                   stop_timeout=request.stop_timeout, wait=wait, seed=request.seed)
    return RunSetup(config=replace(config, backend_url=host), host=host, plan=plan,
                    scenarios=scenarios or list(SCENARIOS.values()), thresholds=thresholds, threshold_warmup=warmup,
                    baseline=baseline, regression_percent=regression, processes=processes)


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
    names = [cls.__name__ for cls in setup.scenarios]
    run = None
    runner = build_runner(request, setup, stats, make_session, context)
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
        if request.abort_on_threshold and tick.elapsed >= setup.threshold_warmup:
            # An endpoint not reached yet is no breach mid-run (its final verdict still fails).
            verdicts = evaluate(setup.thresholds, stats, tick.elapsed)
            breached = [v for v in verdicts if not v.ok and v.actual is not None]
            if breached:
                runner.request_stop(f"threshold breached: {breached[0].line()}"[:200])

    def on_cpu_warning(percent: float) -> None:
        progress.message(f"WARNING: generator CPU usage above 90% ({percent:.0f}%): measured response times may "
                         "be inflated; use fewer users or more processes")

    runner.on_tick = on_tick
    runner.on_cpu_warning = on_cpu_warning
    if hasattr(runner, "on_message"):
        runner.on_message = progress.message  # e.g. a distributed shard that died, said when it happens
    if run is not None and hasattr(runner, "attach_run"):
        runner.attach_run(run.pk)  # distributed shards report under the run's id
    out.write(f"Running {plan.users} users ({_split_text(split)}) at {plan.spawn_rate:g}/s for "
              f"{plan.duration:g}s against {setup.host}\n")
    handlers = [gevent.signal_handler(sig, runner.request_stop, f"interrupted by {sig.name}")
                for sig in (signal.SIGINT, signal.SIGTERM)]
    started = time.monotonic()
    try:
        reason = runner.run()
    except BaseException as exc:
        if run is not None:
            persist.finish_run(run, stats, PerfRun.Status.FAILED, time.monotonic() - started, error=repr(exc),
                               cpu_warning=runner.cpu_warned, max_cpu_percent=runner.max_cpu_percent)
        raise
    finally:
        for handler in handlers:
            handler.cancel()
        progress.finish()
    duration = time.monotonic() - started
    if reason == "completed":
        status = PerfRun.Status.COMPLETED
    elif reason.startswith("shard "):
        status = PerfRun.Status.FAILED  # a distributed shard died: the figures are short, never "completed"
    else:
        status = PerfRun.Status.ABORTED

    out.write("\n" + report.summary_tables(stats, duration) + "\n")
    if hasattr(runner, "summary_line"):
        out.write(runner.summary_line() + "\n")
    open_model = runner.iteration_summary() if hasattr(runner, "iteration_summary") else None
    if open_model is not None:
        out.write("\n".join(runner.summary_lines()) + "\n")
    if reason != "completed":
        out.write(f"Stopped early: {reason}\n")
    verdicts = evaluate(setup.thresholds, stats, duration)
    for verdict in verdicts:
        out.write(("PASS " if verdict.ok else "FAIL ") + verdict.line() + "\n")
    audit_report = integrity.audit_load_test_data(context.verified_emails) if request.audit else None
    if audit_report is not None:
        out.write("\n".join(audit_report.lines()) + "\n")
    for note in context.notes:
        out.write(f"Note: {note}\n")
    if runner.cpu_warned:
        out.write("CPU usage was too high at some point during the run: figures may be inflated.\n")
    meta = {"label": request.label, "host": setup.host, "users": plan.users, "status": status,
            "scenarios": names, "user_split": split, "seed": plan.seed,
            "thresholds": [v.as_dict() for v in verdicts],
            "audit": audit_report.as_dict() if audit_report else None, "open_model": open_model}
    _write_files(request, stats, duration, meta)

    run_id = None
    regressions: list[str] = []
    if run is not None:
        persist.finish_run(
            run, stats, status, duration, cpu_warning=runner.cpu_warned, max_cpu_percent=runner.max_cpu_percent,
            stop_reason="" if reason == "completed" else reason, thresholds=[v.as_dict() for v in verdicts],
            audit=audit_report.as_dict() if audit_report else None, open_model=open_model,
        )
        run_id = run.pk
        if setup.baseline is not None:
            comparison = compare.compare_runs(setup.baseline, run, percent=setup.regression_percent)
            out.write(f"\nCompared with run {setup.baseline.pk}:\n{comparison.table()}\n")
            for note in comparison.notes:
                out.write(f"Note: {note}\n")
            if setup.regression_percent is not None:
                regressions = comparison.regressions(setup.regression_percent)
                for line in regressions:
                    out.write(f"REGRESSION {line}\n")
        out.write(f"Run {run.pk} {status}: {site_root(setup.host)}/admin/perf/perfrun/{run.pk}/change/\n")
    exit_code = _exit_code(request, stats, verdicts, audit_report, regressions, status)
    return RunOutcome(status=status, exit_code=exit_code, stats=stats, run_id=run_id, verdicts=verdicts)


def _parse_processes(text: str | None) -> int:
    if text is None:
        return 1
    if text == "auto":
        return os.cpu_count() or 1
    try:
        count = int(text)
    except ValueError:
        raise UsageError(f"bad --processes {text!r}: use a number or 'auto' (one per core)") from None
    if count < 1:
        raise UsageError(f"--processes must be at least 1, got {count}")
    return count


def build_runner(request: RunRequest, setup: RunSetup, stats: StatsRegistry, make_session: Any,
                 context: ScenarioContext) -> Any:
    """The closed model in one process (default), in several forked processes, on Celery shards,
    or the open model (--rate). All four share LoadRunner's face: spawn_order, run(),
    request_stop(), on_tick, on_cpu_warning, cpu_warned, max_cpu_percent."""
    if setup.processes > 1:
        from perf.load.processes import ProcessRunner

        return ProcessRunner(setup.scenarios, setup.plan, stats, make_session, context=context,
                             processes=setup.processes)
    if request.distributed == "celery":
        from perf.distributed import CeleryRunner

        return CeleryRunner(setup.scenarios, setup.plan, stats, host=setup.host, shards=request.shards,
                            context=context)
    if request.rate is not None:
        from perf.load.open_model import OpenModelRunner

        return OpenModelRunner(setup.scenarios, setup.plan, stats, make_session, context=context, rate=request.rate)
    return LoadRunner(setup.scenarios, setup.plan, stats, make_session, context=context)


def _exit_code(request: RunRequest, stats: StatsRegistry, verdicts: list[Verdict],
               audit_report: "integrity.AuditReport | None", regressions: list[str], status: str) -> int:
    if audit_report is not None and not audit_report.ok:
        return EXIT_AUDIT
    if any(not verdict.ok for verdict in verdicts):
        return EXIT_THRESHOLD
    if status == PerfRun.Status.FAILED:
        return EXIT_FAILURES  # a shard died: what arrived is stored, but the run is short
    if regressions:
        return EXIT_REGRESSION
    if stats.total.num_failures:
        return request.exit_code_on_error
    return EXIT_OK


def _write_files(request: RunRequest, stats: StatsRegistry, duration: float, meta: dict[str, Any]) -> None:
    if request.csv:
        report.write_csv(request.csv, stats, duration)
    if request.json:
        report.write_json(request.json, report.summary_json(stats, duration, meta))
    if request.html:
        html_report.write_html(request.html, stats, duration, meta)


def _split_text(split: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(split.items(), key=lambda item: -item[1]))


def _options_record(request: RunRequest) -> dict[str, Any]:
    return dict(vars(request))
