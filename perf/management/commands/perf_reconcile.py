"""``manage.py perf_reconcile --requests PATH --access-log PATH [--summary SUMMARY.json] [--timeout S]``:
check a run's figures against the server's access log (``perf.analysis.reconcile``).

Exit 0 when every check holds, 1 when one does not, 2 for input that cannot be read (one line naming the
file and line). It needs no database: both logs and the summary are files.
"""

import math
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser

from perf.analysis.reconcile import LogError, load_summary, reconcile
from perf.cli import exit_codes
from perf.conf import load_config
from perf.management.base import PerfCommand


class Command(PerfCommand):
    help = ("Reconcile a run with what the server saw: pair run_perf --request-log's lines with the server's "
            "access log (gunicorn.conf.py's format) by X-Perf-Request id and check counts per endpoint, failure "
            "causes, latency and double counts; exit 1 when a check fails.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--requests", required=True, metavar="PATH", help="the run's request log (--request-log)")
        parser.add_argument("--access-log", required=True, metavar="PATH",
                            help="the server's access log (gunicorn --access-logfile PATH)")
        parser.add_argument("--summary", metavar="SUMMARY.json",
                            help="the run's --json summary: its counts must be the request log's")
        parser.add_argument("--timeout", type=float, metavar="SECONDS",
                            help="the run's request time-out (default LOCUST_REQUEST_TIMEOUT, as run_perf's)")

    def handle(self, *args: Any, **options: Any) -> None:
        timeout = options["timeout"]
        if timeout is None:
            try:
                timeout = load_config().request_timeout
            except ValueError as exc:
                raise self.usage_error(str(exc)) from None
        if not math.isfinite(timeout) or timeout <= 0:
            raise self.usage_error(f"--timeout must be a positive number of seconds, got {options['timeout']}")
        try:
            summary = load_summary(options["summary"]) if options["summary"] else None
            result = reconcile(Path(options["requests"]), Path(options["access_log"]), timeout=timeout,
                               summary=summary)
        except LogError as exc:
            raise self.usage_error(str(exc)) from None
        self.stdout.write("\n".join(result.lines()) + "\n")
        if not result.ok:
            self.stdout.flush()
            sys.exit(exit_codes.FAILURES)
