"""Starting ``run_perf`` from the admin: the same command, checked by its own parser and checks, run as a
detached process that outlives the web request (and the web worker) that started it.

The page builds the command line a user would type, so there is one validation with one set of
messages: argparse's, then ``perf.request.check_request``'s. The started process is tagged with a
``--launch-id``; the page waits until the run it stores appears, and shows the process's own
one-line error if it exits before that.
"""

import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.management import CommandError, load_command_class
from django.db.models import Q, QuerySet
from django.utils import timezone

from perf.models import PerfRun
from perf.request import RunRequest, UsageError, check_request

# How long the page waits for the started process to store its run (imports, checks, the first row).
START_TIMEOUT = 30.0
# A "running" run whose process has written nothing for this long is taken for dead (killed -9, a crash).
STALE_AFTER = timedelta(seconds=30)


class LaunchError(Exception):
    """The run could not start; the message is the command's own one line."""


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
        check_request(request)
    except UsageError as exc:
        raise LaunchError(str(exc)) from None
    return request


def running_runs() -> QuerySet[PerfRun]:
    """Runs whose process still shows signs of life (a recent start or progress write)."""
    alive_since = timezone.now() - STALE_AFTER
    return PerfRun.objects.filter(status=PerfRun.Status.RUNNING).filter(
        Q(heartbeat_at__gte=alive_since) | Q(heartbeat_at__isnull=True, started_at__gte=alive_since))


def start(args: list[str], log_dir: Path | None = None) -> PerfRun:
    """Start ``manage.py run_perf ARGS`` detached and return the run it stored; LaunchError if it
    ends first (its last line says why) or stores nothing within START_TIMEOUT."""
    launch_id = uuid.uuid4().hex
    log_dir = log_dir or Path(getattr(settings, "PERF_LAUNCH_LOG_DIR", Path(settings.BASE_DIR) / "var" / "runs"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"run-{timezone.now():%Y%m%d-%H%M%S}-{launch_id[:8]}.log"
    manage = Path(settings.BASE_DIR) / "manage.py"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(manage), "run_perf", *args, "--launch-id", launch_id],
            cwd=settings.BASE_DIR, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session: a web worker's restart or a Ctrl-C does not end it
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        run = PerfRun.objects.filter(launch_id=launch_id).first()
        if run is not None:
            return run
        if process.poll() is not None:
            raise LaunchError(_last_line(log_path) or f"run_perf exited with code {process.returncode}")
        time.sleep(0.2)
    raise LaunchError(f"run_perf stored no run within {START_TIMEOUT:g} s; its output is in {log_path}")


def _last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].removeprefix("CommandError: ") if lines else ""
