"""One ``run_perf`` invocation from a checked request to a stored run: the only place where the engine
(``perf.load``), the platform scenarios and the Django models meet.

The order of the end of a run is what keeps it safe: the figures are stored as finished first
(retried while the database is locked, ``perf.store.thread``), then the audit runs, then the output files
are written, each of which may fail on its own with one line and no harm to the stored run. Every
database call goes through the store's thread (``perf.store.thread``), so that signals are heard while it
waits and a connection the server ended is opened again. Exit codes are in ``perf.cli.exit_codes``.
"""

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import gevent
import requests
from django.db import DatabaseError, connection, connections

from perf import packs
from perf.analysis import audit, compare, noise
from perf.analysis import capacity as capacity_analysis
from perf.cli import exit_codes
from perf.cli.invocation import RunRequest, RunSetup, UsageError, check_request
from perf.cli.progress import ProgressPrinter
from perf.cli.stop_signals import StopSignals
from perf.conf import perf_settings
from perf.load.capacity import CapacitySearch
from perf.load.context import RunContext
from perf.load.hooks import RunHooks, Tick
from perf.load.request_log import RequestLog
from perf.load.runner import LoadRunner, Runner, split_counts
from perf.load.session import HttpSession
from perf.load.stage_figures import StageFigures, stage_figures, stages_json
from perf.load.stats import StatsRegistry
from perf.load.thresholds import Verdict, evaluate
from perf.models import PerfRun
from perf.options import escaped, site_root
from perf.reports import console, html_report, junit, summary_json, summary_md
from perf.reports.description import RunDescription, ShardResult
from perf.reports.files import unsaved_summary_path
from perf.reports.formats import plural
from perf.reports.live_csv import LiveCsv, LiveOutput
from perf.reports.output import Output
from perf.reports.report import stop_note
from perf.reports.stored import shards_of
from perf.store import liveness, persist
from perf.store.database import first_line
from perf.store.thread import DatabaseThread, RunStore, StoreError

# How often the start of a run looks for its first answers, to store them at once (``Invocation._first_figures``).
FIRST_FIGURES_POLL_S = 0.1


@dataclass
class RunOutcome:
    status: str
    exit_code: int
    stats: StatsRegistry
    run_id: int | None
    verdicts: list[Verdict] = field(default_factory=list)


def check_reachable(host: str) -> None:
    """One request before the run: ``PERF_HEALTHCHECK_PATH`` must answer 200 when the project names one
    (the platform's ``/healthcheck``); otherwise any HTTP answer from the host shows a server is there."""
    path = perf_settings.PERF_HEALTHCHECK_PATH
    url = f"{host}{path or '/'}"
    try:
        # Not followed: a redirect could take the check to a host the run is not allowed to reach.
        response = requests.get(url, timeout=5, allow_redirects=False)
    except requests.RequestException as exc:
        raise UsageError(
            f"cannot reach {url} ({type(exc).__name__}); start the server (make serve) or pass --host"
        ) from None
    if path and response.status_code != 200:
        raise UsageError(f"{url} answered {response.status_code}, not 200; is this the API root? pass --host")


def git_revision() -> str:
    try:
        result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).resolve().parent.parent)
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def execute(request: RunRequest, out: Output, err: Output | None = None, owns_process: bool = False) -> RunOutcome:
    """Run ``request`` to the end; UsageError (exit 2) before anything was sent or stored.

    ``owns_process``: the caller exits right after (the command), so stop signals that come once the
    run is stored and printed are ignored (``perf.cli.stop_signals``).
    """
    setup = check_request(request)
    if setup.seed_hook is not None:
        _bootstrap(setup.seed_hook, out)
    check_reachable(setup.host)
    return Invocation(request, setup, out, err or sys.stderr, owns_process).run()


def _bootstrap(hook: Callable[[], Sequence[str]], out: Output) -> None:
    """``--bootstrap``: the project's seed hook, its lines printed; a database that refuses is one line."""
    try:
        lines = hook()
    except (DatabaseError, ValueError) as exc:  # a hook refuses with ValueError (DEBUG=False, a bad setting)
        raise UsageError(f"--bootstrap could not write the data: {first_line(exc)}") from None
    out.write("".join(f"{line}\n" for line in lines or ()))


class Invocation:
    """One run from its checked setup to its outcome; holds what the steps of the end share."""

    def __init__(self, request: RunRequest, setup: RunSetup, out: Output, err: Output, owns_process: bool) -> None:
        self.request, self.setup, self.out, self.err = request, setup, out, err
        self.stats = StatsRegistry()
        self.context = setup.context
        # run_perf --request-log: opened before the runner forks any worker, which inherit it.
        self.request_log = RequestLog(request.request_log) if request.request_log else None
        self.progress = ProgressPrinter(out, setup.plan.duration)
        self.live = self._live_output()
        hooks = RunHooks(
            on_tick=self._on_tick,
            on_cpu_warning=self._on_cpu_warning,
            on_message=self.progress.message,  # e.g. a distributed shard that died, said when it happens
            on_second=self.live.second,  # the CSV files and --print-stats, about once a second
            before_fork=connections.close_all,  # a --processes worker must not hold the database's sockets too
        )
        self.runner = build_runner(request, setup, self.stats, self._make_session, self.context, hooks)
        if setup.capacity is not None:
            from perf.load.open_model import OpenModelRunner

            runner = self.runner
            setup.capacity.bind(self.stats, runner.arrival_counts if isinstance(runner, OpenModelRunner) else None)
            setup.capacity.on_step = self._on_capacity_step
        self.split = split_counts(self.runner.spawn_order)
        self.store = RunStore() if request.save else None
        # The audit and the comparison read through a thread too: the stored run's, or one of their own.
        self.database: DatabaseThread = self.store if self.store is not None else DatabaseThread()
        self.signals = StopSignals(self._on_stop_signal, self._on_hurry_signal, ignore_after=owns_process)

    @cached_property
    def git_revision(self) -> str:
        """Asked once: the run's row at the start and its files at the end name the same revision."""
        return git_revision()

    def _make_session(self, registry: StatsRegistry) -> HttpSession:
        return HttpSession(self.setup.host, registry.record, timeout=self.setup.config.request_timeout,
                           request_log=self.request_log)

    def _on_stop_signal(self, reason: str) -> None:
        """The first signal: stop the users (when they still run), and say what the process still waits for."""
        self.runner.request_stop(reason)
        waiting = self.database.waiting_for()
        if waiting:
            self.progress.message(f"{reason}; {waiting}; a second signal gives up")

    def _on_hurry_signal(self, name: str) -> None:
        """The second signal: cut the requests in flight short and stop waiting for the database."""
        self.runner.cut_now()
        self.database.give_up()
        self.progress.message(f"{name} again: stopping as fast as possible, without the audit and output files; "
                              "what was measured is still stored, or kept in a file if the database does not answer")

    def _on_tick(self, tick: Tick) -> None:
        self.progress(tick)
        if self.store is not None:
            self.store.save_progress(self.stats, tick.elapsed)  # hands the figures over; never waits for the database
        setup = self.setup
        if self.request.abort_on_threshold and tick.elapsed >= setup.threshold_warmup:
            # An endpoint not reached yet is no breach mid-run (its final verdict still fails).
            verdicts = evaluate(setup.thresholds, self.stats, tick.elapsed)
            breached = [v for v in verdicts if not v.ok and v.actual is not None]
            if breached:
                self.runner.request_stop(f"threshold breached: {breached[0].line()}"[:200])

    def _live_output(self) -> LiveOutput:
        request = self.request
        csv = LiveCsv(request.csv, self.stats, request.csv_full_history, self._live_error) if request.csv else None
        return LiveOutput(self.stats, csv, request.print_stats, self.progress.message)

    def _live_error(self, message: str) -> None:
        """One line on stderr, after the progress line it would otherwise break."""
        self.progress.finish()
        self.err.write(message + "\n")
        self.err.flush()

    def _on_cpu_warning(self, percent: float) -> None:
        self.progress.message(f"WARNING: generator CPU usage above 90% ({percent:.0f}%): measured response times "
                              "may be inflated; use fewer users or more processes")

    def run(self) -> RunOutcome:
        with self.signals:
            try:
                if self.store is not None:
                    if not self._start():
                        return RunOutcome(status=PerfRun.Status.ABORTED, exit_code=self.signals.exit_code or 0,
                                          stats=self.stats, run_id=None)
                    self.runner.attach_store(self.store)
                    # A capacity search sets its own load: a change of target from the live page has no say in it.
                    change = self.runner.change_target if self.setup.capacity is None else None
                    self.store.watch_stop(lambda who: self.runner.request_stop(persist.admin_stop_reason(who)),
                                          on_change=change)
                self.out.write(self._starting_line() + "\n")
                self.live.begin(self.store.run.started_at.timestamp() if self.store and self.store.run else None)
                started = time.monotonic()
                first = gevent.spawn(self._first_figures, started) if self.store is not None else None
                try:
                    with self.runner.second_clock():
                        reason = self.runner.run()
                except BaseException as exc:
                    self.signals.load_ended()
                    self.progress.finish()
                    self._save_failed(time.monotonic() - started, exc)
                    raise
                finally:
                    if first is not None:
                        first.kill()
                self.signals.load_ended()
                self.progress.finish()
                return self._finish(reason, time.monotonic() - started)
            finally:
                self.database.close()
                self.out.flush()
                self.err.flush()

    def _on_capacity_step(self, search: CapacitySearch) -> None:
        """A step was judged: say so, and keep the stored run's capacity current for the live page."""
        found = search.as_json()
        if found["steps"]:
            self.progress.message(console.capacity_step_line(found["steps"][-1], found["unit"]))
        if self.store is not None:
            self.store.update_later(capacity=found)

    def _starting_line(self) -> str:
        plan, profile, search = self.setup.plan, self.setup.profile, self.setup.capacity
        if search is not None:
            settings = search.settings
            unit = "users" if settings.kind == "users" else "iterations/s"
            growth = (f"+{settings.increment:g}" if settings.increment is not None else f"x{settings.factor:g}")
            pool = f", a pool of {plural(plan.users, 'user')}" if settings.kind == "rate" else ""
            return (f"Finding the capacity: {unit} from {settings.start:g} ({growth} a step, up to "
                    f"{settings.max_load:g}{pool}), each step settling {settings.settle:g}s and judged on "
                    f"{settings.hold:g}s against {', '.join(t.text for t in settings.thresholds)}; at most "
                    f"{settings.budget:g}s against {self.setup.host}")
        if profile is None:
            return (f"Running {plural(plan.users, 'user')} ({_split_text(self.split)}) at {plan.spawn_rate:g}/s for "
                    f"{plan.duration:g}s against {self.setup.host}")
        option = {"shape": "--shape"}.get(profile["source"], "--rate-stages" if profile["kind"] == "rate" else
                                          "--stages")
        size = (f"a pool of {plural(plan.users, 'user')}" if profile["kind"] == "rate" else
                f"up to {plural(plan.users, 'user')}")
        return (f"Following {option} {profile['text']} ({plural(len(profile['spans']), 'stage')}), {size} "
                f"({_split_text(self.split)}), for {plan.duration:g}s against {self.setup.host}")

    def _first_figures(self, started: float) -> None:
        """Store the figures as soon as the first answers are in, rather than at the first tick (2 s in): the
        admin's page of a run just started shows them within a second. No sample is taken: the time series
        and the CSV history keep their cadence."""
        assert self.store is not None
        while not self.stats.samples and not self.runner.stopping:
            if self.stats.total.num_requests:
                self.store.save_progress(self.stats, time.monotonic() - started)
                return
            gevent.sleep(FIRST_FIGURES_POLL_S)

    def _start(self) -> bool:
        """Write the ``running`` row; False when a signal came while the database kept it waiting."""
        plan, request = self.setup.plan, self.request
        assert self.store is not None
        try:
            self.store.call(liveness.mark_lost)  # dead runs stop claiming to run before this one does
            self.store.start(label=request.label, host=self.setup.host, options=dict(vars(request)),
                             users=plan.users, spawn_rate=plan.spawn_rate, planned_duration=plan.duration,
                             scenarios=list(self.runner.scenarios), user_split=self.split, seed=plan.seed,
                             git_revision=self.git_revision, database_vendor=connection.vendor,
                             launch_id=request.launch_id, profile=self.setup.profile, kind=self._kind,
                             capacity=self.setup.capacity.as_json() if self.setup.capacity is not None else None)
        except StoreError as exc:
            if self.signals.first is not None:
                self.err.write(f"interrupted by {self.signals.first.name}: {exc}; nothing was run\n")
                return False
            raise UsageError(f"{exc}; nothing was run (or pass --no-save)") from None
        return True

    @property
    def _kind(self) -> str:
        return PerfRun.Kind.CAPACITY if self.setup.capacity is not None else PerfRun.Kind.LOAD

    def _save_failed(self, duration: float, exc: BaseException) -> None:
        """The runner itself broke: keep what it measured, as ``failed``, and write its files as an aborted run's are
        written (no audit, no verdicts: the load did not run its course), before the error goes up. The files
        describe the run as the stored row does, its error included."""
        error = repr(exc)[:2000]
        search = self.setup.capacity
        capacity = search.as_json() if search is not None else None
        unsaved = False
        if self.store is not None and self.store.run is not None:
            extra = {"capacity": capacity} if capacity is not None else {}
            try:
                self.store.finish(self.stats, PerfRun.Status.FAILED, duration, error=error, **extra,
                                  open_model=self.runner.outcome(), cpu_warning=self.runner.cpu_warned,
                                  max_cpu_percent=self.runner.max_cpu_percent)
            except (StoreError, DatabaseError) as save_error:
                self.err.write(f"could not store the failed run: {first_line(save_error)}\n")
                unsaved = True
        self._write_files(duration, self._describe(PerfRun.Status.FAILED, "", duration, [], [], unsaved=unsaved,
                                                   capacity=capacity, error=error))

    def _finish(self, reason: str, duration: float) -> RunOutcome:
        """Print, store, audit, write the files and compare, in the order that never loses the run."""
        out, runner, stats, hurry = self.out, self.runner, self.stats, self.signals.hurried
        status = _status(reason, runner.broken)
        out.write("\n" + console.summary_tables(stats, duration) + "\n")
        for line in runner.summary_lines() + runner.end_lines():
            out.write(line + "\n")
        if reason != "completed":
            out.write(stop_note(reason, status) + "\n")
        capacity = self._capacity(reason)
        # A capacity search judges each step on its own window: the run as a whole (passing steps and failing ones
        # together) is no verdict of anything.
        verdicts = evaluate(self.setup.thresholds, stats, duration) if capacity is None else []
        for verdict in verdicts:
            out.write(("PASS " if verdict.ok else "FAIL ") + verdict.line() + "\n")
        stages = self._stages(duration)
        if stages:
            out.write("\n" + console.stages_table(stages) + "\n")
            for line in console.stage_verdict_lines(stages):
                out.write(line + "\n")
        thresholds = [v.as_dict() for v in verdicts]
        staged = stages_json(stages)
        refused = (self._store_final(status, duration, reason, thresholds, staged, capacity)
                   if self.store is not None else None)
        stored = self.store is not None and refused is None
        description = self._describe(status, reason, duration, thresholds, staged, unsaved=refused is not None,
                                     capacity=capacity)
        if refused is not None:
            self._keep_summary(refused, duration, description)
        audit_report = self._audit() if self.request.audit and not hurry() else None
        if audit_report is not None:
            out.write("\n".join(audit_report.lines()) + "\n")
            description = description.with_audit(audit_report.as_dict())
            if stored:
                self._store_audit(audit_report.as_dict())
        for note in self.context.notes:
            out.write(f"Note: {note}\n")
        if runner.cpu_warned:
            out.write("CPU usage was too high at some point during the run: figures may be inflated.\n")
        regressions: list[str] = []
        run = self.store.run if self.store is not None and stored else None
        if run is not None and self.setup.baseline is not None and not hurry():
            regressions, compared = self._compare(run)
            if compared is not None:
                description = description.with_comparison(compared)
        if self.setup.saved_plan is not None and capacity is None and not hurry():
            regressed, noise_report = self._judge_noise(run, status)
            regressions += regressed
            if noise_report is not None:
                description = description.with_noise(noise_report)
        self._write_files(duration, description)
        if run is not None:
            out.write(f"Run {run.pk} {status}: {site_root(self.setup.host)}/admin/perf/perfrun/{run.pk}/change/\n")
        if self.signals.exit_code is not None:
            exit_code = self.signals.exit_code
        elif self.store is not None and not stored:
            exit_code = exit_codes.NOT_STORED
        else:
            exit_code = _exit_code(self.request, stats, verdicts, audit_report, regressions, status, capacity)
        return RunOutcome(status=status, exit_code=exit_code, stats=stats, run_id=run.pk if run else None,
                          verdicts=verdicts)

    def _stages(self, duration: float) -> list[StageFigures]:
        """Each stage's own figures and verdicts, when the run followed a profile laid out in stages."""
        profile = self.runner.plan.profile  # the run's, or what a change of target from the live page made of it
        if profile is None or not profile.spans():
            return []
        return stage_figures(self.stats, profile.spans(), duration, self.setup.thresholds)

    def _capacity(self, reason: str) -> dict[str, Any] | None:
        """A capacity search's result, explained (``perf.analysis.capacity``), its steps and verdict printed."""
        search = self.setup.capacity
        if search is None:
            return None
        if reason != "completed":
            search.stopped()
        found = capacity_analysis.conclude(search.as_json())
        table = console.capacity_table(found)
        if table:
            self.out.write("\n" + table + "\n")
        self.out.write("\n" + found["verdict"] + "\n")
        return found

    def _store_final(self, status: str, duration: float, reason: str, thresholds: list[dict[str, Any]],
                     stages: list[dict[str, Any]], capacity: dict[str, Any] | None) -> StoreError | None:
        """Store the run as finished; the error when the database refuses for good (``_keep_summary`` follows)."""
        assert self.store is not None
        extra = {"capacity": capacity} if capacity is not None else {}
        try:
            self.store.finish(self.stats, status, duration, thresholds=thresholds, stages=stages, **extra,
                              open_model=self.runner.outcome(),
                              cpu_warning=self.runner.cpu_warned, max_cpu_percent=self.runner.max_cpu_percent,
                              stop_reason="" if reason == "completed" else reason)
            return None
        except StoreError as exc:
            return exc

    def _describe(self, status: str, reason: str, duration: float, thresholds: list[dict[str, Any]],
                  stages: list[dict[str, Any]], unsaved: bool, capacity: dict[str, Any] | None = None,
                  error: str = "") -> RunDescription:
        """The run as its files describe it, after the final save: what the admin's downloads of the stored run
        say too (``RunDescription.from_run``). The stored row, when there is one, gives its id and the moments
        the database recorded; an unsaved run keeps the id ``perf_import`` finishes later."""
        request, plan, runner = self.request, self.setup.plan, self.runner
        row = self.store.run if self.store is not None else None
        wanted = row is not None and request.distributed and not unsaved and not self.signals.hurried()
        shards = self._shards(row) if row is not None and wanted else ()
        return RunDescription.live(
            row=row, status=status, reason=reason, label=request.label, host=self.setup.host, users=plan.users,
            spawn_rate=plan.spawn_rate, planned_duration=plan.duration, scenarios=tuple(runner.scenarios),
            user_split=self.split, seed=plan.seed, wait=request.wait, options=persist.jsonable(vars(request)),
            started_at=self.stats.start_time, finished_at=self.stats.start_time + duration,
            git_revision=self.git_revision, database_vendor=connection.vendor, cpu_warning=runner.cpu_warned,
            max_cpu_percent=runner.max_cpu_percent, thresholds=thresholds, open_model=runner.outcome(),
            unsaved=unsaved, shards=shards, stages=stages, capacity=capacity, error=error,
            # The stored row's: a change of target from the live page is a stage of it (RunStore keeps it current).
            profile=row.profile if row is not None and row.profile else self.setup.profile)

    def _shards(self, run: PerfRun) -> tuple[ShardResult, ...]:
        """A distributed run's shards as their rows last said; none when the database does not answer."""
        try:
            return self.database.call(shards_of, run)
        except (DatabaseError, StoreError) as exc:
            self.err.write(f"the shards' rows could not be read for the reports: {first_line(exc)}\n")
            return ()

    def _keep_summary(self, exc: StoreError, duration: float, description: RunDescription) -> None:
        """The database refused the final save: the summary goes to the --json file when one was asked for,
        else to a file of its own; ``manage.py perf_import FILE`` stores it once the database answers."""
        target = Path(self.request.json) if self.request.json else Path(tempfile.gettempdir())
        try:
            if not self.request.json:
                target = unsaved_summary_path(description.run_id)
            summary_json.write_json(target, summary_json.summary_json(self.stats, duration, description))
        except OSError as error:
            self.err.write(f"{exc}; nor could the run's summary be written to {target}: {error.strerror or error}\n")
            return
        self.err.write(f"{exc}; the run's summary is in {target} (store it later: manage.py perf_import {target})\n")

    def _audit(self) -> audit.AuditReport | None:
        try:
            return self.database.call_unless_given_up(audit.run_checks, packs.audit_checks(), self.context.facts)
        except (DatabaseError, StoreError) as exc:
            if self.signals.hurry:
                return None  # skipped, as the second signal's line said
            self.err.write(f"integrity audit skipped: the database did not answer ({first_line(exc)})\n")
            return None

    def _compare(self, run: PerfRun) -> tuple[list[str], dict[str, Any] | None]:
        """Print the comparison with the baseline; return its regressions and the verdict for the reports."""
        baseline, gate = self.setup.baseline, self.setup.regression_percent
        assert baseline is not None
        try:
            comparison = self.database.call(compare.compare_runs, baseline, run, percent=gate)
        except (DatabaseError, StoreError) as exc:
            self.err.write(f"comparison with run {baseline.pk} skipped: the database did not answer "
                           f"({first_line(exc)})\n")
            return [], None
        self.out.write(f"\nCompared with run {baseline.pk}:\n")
        regressions = comparison.write(self.out, gate)
        return regressions, comparison.verdict(compare.DEFAULT_PERCENT if gate is None else gate, gate is not None)

    def _judge_noise(self, run: PerfRun | None, status: str) -> tuple[list[str], dict[str, Any] | None]:
        """``--plan``: each endpoint against the plan's last comparable runs (``perf.analysis.noise``), printed and
        stored on the run; (the endpoints that regressed when the plan fails on them, the verdicts as stored)."""
        plan = self.setup.saved_plan
        assert plan is not None
        if status != PerfRun.Status.COMPLETED:
            self.out.write(f"\nNot judged against plan {plan.name}'s history: the run did not complete.\n")
            return [], None
        try:
            report = self.database.call(noise.judge_run, plan, self.stats, persist.jsonable(vars(self.request)), run)
        except (DatabaseError, StoreError) as exc:
            self.err.write(f"plan {plan.name}'s history could not be read: {first_line(exc)}\n")
            return [], None
        self.out.write("\n" + "\n".join(report.lines()) + "\n")
        verdicts = {**report.as_json(), "fail_on_regression": plan.fail_on_regression}
        if run is not None and self.store is not None:
            try:
                self.store.update(regressions=verdicts)
            except StoreError as exc:
                self.err.write(f"could not store the noise verdicts: {exc}\n")
        regressed = [verdict.endpoint for verdict in report.regressed] if plan.fail_on_regression else []
        return regressed, verdicts

    def _store_audit(self, verdict: dict[str, Any]) -> None:
        assert self.store is not None
        try:
            self.store.update(audit=verdict)
        except StoreError as exc:
            self.err.write(f"could not store the audit: {exc}\n")

    def _write_files(self, duration: float, description: RunDescription) -> None:
        """Each file on its own: one that cannot be written is one line, and the others are still written;
        none after a second signal (heard between files too)."""
        stats, request = self.stats, self.request
        writers = (
            # Written as the run went: the history holds every row already, the other three get the final figures.
            ("--csv", request.csv, lambda path: self.live.finish_csv(duration)),
            ("--json", request.json,
             lambda path: summary_json.write_json(path, summary_json.summary_json(stats, duration, description))),
            ("--html", request.html, lambda path: html_report.write_html(path, stats, duration, description)),
            ("--junit", request.junit, lambda path: junit.write_junit(path, stats, duration, description)),
            ("--summary-md", request.summary_md,
             lambda path: summary_md.write_summary_md(path, stats, duration, description)),
            # A GitHub Actions step: its job summary gets the same Markdown, whether --summary-md was given or not.
            (f"the job summary ${summary_md.GITHUB_STEP_SUMMARY}", os.environ.get(summary_md.GITHUB_STEP_SUMMARY),
             lambda path: summary_md.append_step_summary(
                 path, summary_md.summary_markdown(stats, duration, description))),
        )
        for option, path, write in writers:
            if not path:
                continue
            if self.signals.hurried():  # a second signal while the previous file was written (that blocks the loop)
                return
            try:
                write(path)
            except OSError as exc:
                self.err.write(f"could not write {option} {escaped(str(path))}: {exc.strerror or exc}\n")


def _status(reason: str, broken: bool) -> str:
    if broken:
        return PerfRun.Status.FAILED  # the runner could not run its whole load (a shard died): the figures are short
    return PerfRun.Status.COMPLETED if reason == "completed" else PerfRun.Status.ABORTED


def build_runner(request: RunRequest, setup: RunSetup, stats: StatsRegistry,
                 make_session: Callable[[StatsRegistry], HttpSession], context: RunContext, hooks: RunHooks) -> Runner:
    """The closed model in one process (default), in several forked processes, on Celery shards,
    or the open model (--rate): all four keep the contract of ``perf.load.runner.Runner``."""
    if setup.processes > 1:
        from perf.load.processes import ProcessRunner

        return ProcessRunner(setup.scenarios, setup.plan, stats, make_session, context=context,
                             processes=setup.processes, hooks=hooks)
    if request.distributed == "celery":
        from perf.distributed.coordinator import BrokerUnreachable, CeleryRunner

        try:
            return CeleryRunner(setup.scenarios, setup.plan, stats, host=setup.host, shards=request.shards,
                                context=context, hooks=hooks, request_timeout=setup.config.request_timeout,
                                request_log=request.request_log, profile=setup.profile)
        except BrokerUnreachable as exc:
            raise UsageError(str(exc)) from None
    profile = setup.plan.profile
    if request.rate is not None or (profile is not None and profile.kind == "rate"):
        from perf.load.open_model import OpenModelRunner

        # A rate profile (--rate-stages, a capacity search from --rate R) sets the rate itself; else --rate does.
        rate = request.rate if profile is None else None
        return OpenModelRunner(setup.scenarios, setup.plan, stats, make_session, context=context, hooks=hooks,
                               rate=rate)
    return LoadRunner(setup.scenarios, setup.plan, stats, make_session, context=context, hooks=hooks)


def _exit_code(request: RunRequest, stats: StatsRegistry, verdicts: list[Verdict],
               audit_report: audit.AuditReport | None, regressions: list[str], status: str,
               capacity: dict[str, Any] | None = None) -> int:
    if audit_report is not None and not audit_report.ok:
        return exit_codes.AUDIT
    if capacity is not None:
        # Failed requests are what a search looks for past the knee: its outcome alone decides.
        return {"generator_limit": exit_codes.GENERATOR_LIMIT,
                "first_step_failed": exit_codes.THRESHOLD}.get(capacity["status"], exit_codes.OK)
    if any(not verdict.ok for verdict in verdicts):
        return exit_codes.THRESHOLD
    if status == PerfRun.Status.FAILED:
        return exit_codes.FAILURES  # a shard died: what arrived is stored, but the run is short
    if regressions:
        return exit_codes.REGRESSION
    if stats.total.num_failures:
        return request.exit_code_on_error
    return exit_codes.OK


def _split_text(split: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(split.items(), key=lambda item: -item[1]))

