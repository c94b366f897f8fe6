"""Starting ``run_perf`` from the admin: the same command, checked by its own parser and checks, run as a
detached process that outlives the web request (and the web worker) that started it.

The page builds the command line a user would type, so there is one validation with one set of
messages: argparse's, then ``perf.cli.invocation.check_request``'s. The started process is tagged with a
``--launch-id``; the page waits until the run it stores appears, and shows the process's own
one-line error if it exits before that.
"""

import shlex
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, load_command_class
from django.db import transaction
from django.utils import timezone

from perf.cli.invocation import RunRequest, UsageError, apply_plan, check_request, given_options
from perf.conf import perf_settings
from perf.models import Launch, LaunchGate, PerfRun
from perf.reports.run_log import log_path_for
from perf.store import liveness

# How long the page waits for the started process to store its run (imports, checks, the first row).
START_TIMEOUT = 30.0
LAUNCH_TASK = "perf.tasks.launch_run"


class LaunchError(Exception):
    """The run could not start; the message is the command's own one line."""


class Busy(LaunchError):
    """Another run is running, and the user did not ask to start anyway."""


@dataclass(frozen=True)
class WebLimits:
    """The most a run started from the browser may ask for (``PERF_WEB_MAX_*``). Runs are detached processes that
    outlive the web server, so these bound what one click can set going; the command line is not bound by them."""

    users: int = 1000  # and a capacity search's ceiling, users or iterations a second
    duration: float = 3600.0  # and a capacity search's budget
    runs: int = 2  # at once, "Start anyway" included

    @classmethod
    def from_settings(cls) -> "WebLimits":
        return cls(users=perf_settings.PERF_WEB_MAX_USERS, duration=perf_settings.PERF_WEB_MAX_DURATION,
                   runs=perf_settings.PERF_WEB_MAX_RUNS)


def check_arguments(args: list[str]) -> RunRequest:
    """Parse ``args`` with ``run_perf``'s own parser and check them as the command does."""
    command = load_command_class("perf", "run_perf")
    parser = command.create_parser("manage.py", "run_perf")
    try:
        options = vars(parser.parse_args(args))
    except CommandError as exc:  # the parser's error when not called from a terminal
        raise LaunchError(str(exc).removeprefix("Error: ")) from None
    request = RunRequest.from_options(options)
    try:
        request = apply_plan(request, given_options(parser, options))  # --plan: checked as the command runs it
        check_request(request)
    except UsageError as exc:
        raise LaunchError(str(exc)) from None
    return request


def command_words(args: list[str]) -> list[str]:
    """``python manage.py run_perf ARGS`` as a person would type it in a POSIX shell, word by word, each quoted where
    it must be (``'--threshold=p95<500ms'``); the page shows it, and the started process gets ``args`` as they are."""
    return [shlex.quote(word) for word in ("python", "manage.py", "run_perf", *args)]


def reserve(requested_by: str, anyway: bool, limits: WebLimits) -> str:
    """A launch id for a run that may start now, or LaunchError (Busy when only "start anyway" would help).

    The check and the reservation are one transaction behind ``LaunchGate``: of two starts sent at the same
    moment, the second sees the first's reservation (a ``Launch`` row, counted until its run is stored)."""
    now = timezone.now()
    with transaction.atomic():
        if not LaunchGate.objects.filter(pk=1).update(locked_at=now):
            LaunchGate.objects.get_or_create(pk=1)
            LaunchGate.objects.filter(pk=1).update(locked_at=now)
        running = list(liveness.alive_runs().values_list("pk", flat=True)[: limits.runs])
        pending = (Launch.objects.filter(requested_at__gte=now - timedelta(seconds=START_TIMEOUT))
                   .exclude(launch_id__in=PerfRun.objects.exclude(launch_id="").values("launch_id")).count())
        busy = len(running) + pending
        if busy >= limits.runs:
            raise LaunchError(f"{busy} {'run is' if busy == 1 else 'runs are'} running already, the most this page "
                              f"may start at once (PERF_WEB_MAX_RUNS = {limits.runs}); wait for one to end")
        if busy and not anyway:
            which = f"Run {running[0]} is" if running else "Another run is starting and"
            raise Busy(f"{which} still running: two runs on one machine measure each other; "
                       "tick this box to start anyway.")
        launch_id = uuid.uuid4().hex
        Launch.objects.create(launch_id=launch_id, requested_by=requested_by[:150], requested_at=now)
    return launch_id


def start(args: list[str], launch_id: str | None = None) -> PerfRun:
    """Start ``manage.py run_perf ARGS`` and return the run it stored, or raise LaunchError with the
    command's own last line. Where it runs is the PERF_LAUNCH_VIA setting: ``process`` (default: a
    detached process beside the web server) or ``celery`` (a ``perf.tasks.launch_run`` task starts it
    on a worker, e.g. on a load machine). ``launch_id``: the one ``reserve`` gave, released here."""
    launch_id = launch_id or uuid.uuid4().hex
    try:
        return _start(args, launch_id)
    finally:  # the run is stored (and counted as running) or it failed: either way the reservation has done its work
        Launch.objects.filter(launch_id=launch_id).delete()


def _start(args: list[str], launch_id: str) -> PerfRun:
    try:
        via = perf_settings.PERF_LAUNCH_VIA  # "process" or "celery"; manage.py check names any other value
    except ImproperlyConfigured as exc:  # the page shows it as it shows a run that could not start
        raise LaunchError(str(exc)) from None
    if via == "celery":
        from perf.celery import app

        app.send_task(LAUNCH_TASK, kwargs={"args": args, "launch_id": launch_id})
        return wait_for_run(launch_id)
    process, log_path = spawn(args, launch_id)
    return wait_for_run(launch_id, process, log_path)


def spawn(args: list[str], launch_id: str) -> tuple[subprocess.Popen, Path]:
    """``manage.py run_perf ARGS --launch-id ID`` detached, its output in a log file of its own."""
    log_path = log_path_for(launch_id)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    manage = Path(settings.BASE_DIR) / "manage.py"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(manage), "run_perf", *args, "--launch-id", launch_id],
            cwd=settings.BASE_DIR, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session: a web worker's restart or a Ctrl-C does not end it
        )
    return process, log_path


def wait_for_run(launch_id: str, process: subprocess.Popen | None = None, log_path: Path | None = None) -> PerfRun:
    """The run the launched command stored. A launch that failed before storing one is a LaunchError
    with its last line: read from ``process`` here, or from the ``failed`` row a Celery task leaves."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        run = PerfRun.objects.filter(launch_id=launch_id).first()
        if run is not None:
            if run.status == PerfRun.Status.FAILED and not run.total_requests and run.error:
                raise LaunchError(run.error)
            return run
        if process is not None and process.poll() is not None:
            last = _last_line(log_path) if log_path is not None else ""
            raise LaunchError(last or f"run_perf exited with code {process.returncode}")
        time.sleep(0.2)
    where = (f"; its output is in {log_path}" if log_path
             else "; is a Celery worker running (celery -A perf.celery worker -P gevent)?")
    raise LaunchError(f"run_perf stored no run within {START_TIMEOUT:g} s{where}")


def record_failed_launch(args: list[str], launch_id: str, why: str) -> None:
    """For a launch the web page cannot watch (a Celery worker's): a ``failed`` row with the command's
    last line, which ``wait_for_run`` reports, unless the command stored its run after all."""
    if PerfRun.objects.filter(launch_id=launch_id).exists():
        return
    PerfRun.objects.create(launch_id=launch_id, status=PerfRun.Status.FAILED, host="", options={"args": args},
                           error=why, finished_at=timezone.now())


def _last_line(path: Path) -> str:
    """The command's one-line error, as it printed it."""
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].removeprefix("CommandError: ") if lines else ""
