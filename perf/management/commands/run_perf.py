"""``python manage.py run_perf``: drive the configured scenarios against a live server and store the run."""

import argparse
import sys
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandParser

from perf import packs
from perf.cli.invocation import RunRequest, UsageError, apply_plan, given_options
from perf.cli.run import execute
from perf.management.base import LossyOutput, PerfCommand
from perf.management.gevent_patch import patch_standard_library


class Command(PerfCommand):
    help = "Load-test the live backend with gevent users running the configured, weighted scenarios."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("-u", "--users", type=int,
                            help="peak number of simulated users (default 10); with --rate or --rate-stages the pool "
                                 "of users, with --shape the most a shape without a known peak may ask for")
        parser.add_argument("-r", "--spawn-rate", type=float, help="users started per second (default 1)")
        parser.add_argument("-t", "--duration",
                            help="run time from start, ramp-up included: 90, 90s, 5m, 1h30m (default 1m; with a load "
                                 "profile its length, which -t may cut shorter)")
        parser.add_argument("--stages", metavar="D:N,…",
                            help="load profile, closed model: each stage ramps linearly to N users over D, from the "
                                 "previous target (0 at the start), e.g. 30s:50,2m:50,30s:200,1m:200,30s:0")
        parser.add_argument("--rate-stages", metavar="D:R,…",
                            help="load profile, open model: ramp the arrival rate to R iterations a second over "
                                 "each D, e.g. 1m:10,3m:100,1m:0 (--users is the pool)")
        parser.add_argument("--shape", metavar="NAME[:K=V,…]",
                            help="load profile from a shape class: step:add=10,every=30s,to=100, "
                                 "spike:base=10,peak=200,before=1m,ramp=10s,hold=1m,after=2m, "
                                 "soak:users=100,ramp=5m,hold=4h,down=1m, or one the project names in PERF_SHAPES")
        capacity = parser.add_argument_group(
            "capacity search", "--find-capacity raises the load in steps, judging each on its own window with the "
                               "--threshold rules, and narrows down to the highest load that passes them all")
        capacity.add_argument("--find-capacity", action="store_true",
                              help="search for the capacity (users; with --rate R, iterations a second from R)")
        capacity.add_argument("--start-load", type=float, metavar="N", help="the first step's users (default 10)")
        capacity.add_argument("--max-users", type=float, metavar="N", help="the most users a step may have "
                              "(default 1000)")
        capacity.add_argument("--max-rate", type=float, metavar="R", help="with --rate: the highest arrival rate a "
                              "step may have (default 1000)")
        capacity.add_argument("--step-factor", type=float, metavar="F", help="each step's load is the last one's "
                              "times F (default 2)")
        capacity.add_argument("--step-increment", type=float, metavar="N", help="each step adds N instead")
        capacity.add_argument("--settle", metavar="DURATION", help="per step, left out of its figures (default 10s)")
        capacity.add_argument("--hold", metavar="DURATION", help="per step, the window it is judged on (default 30s)")
        capacity.add_argument("--resolution", metavar="PERCENT", help="narrow down until the gap between the "
                              "passing and the failing load is within this (default 10%%)")
        capacity.add_argument("--budget", metavar="DURATION", help="the whole search's time (default 30m)")
        parser.add_argument("--iterations", type=int, metavar="N",
                            help="end the run (completed) after N task iterations in all, across users and "
                                 "--processes workers; -t still bounds it. A smoke test for CI")
        parser.add_argument("--iterations-per-user", action="store_true",
                            help="with --iterations: N per user instead; the run ends when every user has run its N "
                                 "(closed model only)")
        parser.add_argument("--tags", metavar="TAG,…",
                            help='run only the tasks with one of these @tag("…") tags; a scenario left with no task '
                                 "is left out")
        parser.add_argument("--exclude-tags", metavar="TAG,…", help="leave out the tasks with any of these tags")
        parser.add_argument("--scenario", dest="scenarios", action="append", default=[], metavar="NAME",
                            help=f"run only this scenario (repeatable, any case): {_scenario_names()}")
        parser.add_argument("--host", help="API root URL (default LOCUST_BACKEND_URL or http://localhost:8000/api)")
        parser.add_argument("--allow-remote", action="store_true", help="allow a host that is not a loopback address")
        parser.add_argument("--wait", metavar="MIN,MAX", help="think time between tasks in seconds (default 1,3)")
        parser.add_argument("--seed", type=int, help="seed the users' random choices for a reproducible run")
        parser.add_argument("--label", default="", help="a name for this run in the admin")
        parser.add_argument("--stop-timeout", type=float, default=0.0,
                            help="seconds users may finish their task at the end (default 0: stop at once)")
        parser.add_argument("--csv", metavar="PREFIX",
                            help="write Locust's four CSV files PREFIX_*.csv, every second while the run goes")
        parser.add_argument("--csv-full-history", action="store_true",
                            help="with --csv: a history row per endpoint each second too, every row's percentiles "
                                 "over the last 10 s (as Locust's flag)")
        parser.add_argument("--print-stats", type=int, metavar="N",
                            help="print the request statistics table every N seconds while the run goes")
        parser.add_argument("--json", metavar="PATH", help="write the whole summary as JSON")
        parser.add_argument("--exit-code-on-error", type=int, default=1,
                            help="exit code when any request failed, 1-255 (default 1)")
        parser.add_argument("--no-save", dest="save", action="store_false", help="do not store the run in the database")
        parser.add_argument("--html", metavar="PATH", help="write a self-contained HTML report (tables and charts)")
        parser.add_argument("--junit", metavar="PATH",
                            help="write the verdicts as JUnit XML for CI: a test per threshold, regression rule "
                                 "(with --compare-to) and audit check, failures holding the figures")
        parser.add_argument("--summary-md", metavar="PATH",
                            help="write a Markdown summary (key figures, verdicts, regressions, the run's link); "
                                 "also appended to $GITHUB_STEP_SUMMARY whenever that is set")
        parser.add_argument("--threshold", dest="thresholds", action="append", default=[], metavar="EXPR",
                            help='pass/fail rule, repeatable: p95<500ms, p99<1s, avg<200ms, error_rate<1%%, rps>50, '
                                 'or scoped "/events/{id}/my-status [BOTTLENECK]:p95<300ms"; a breach exits 3')
        parser.add_argument("--abort-on-threshold", action="store_true",
                            help="stop the run at the first threshold breach after the warm-up")
        parser.add_argument("--threshold-warmup", default="10s", metavar="DURATION",
                            help="with --abort-on-threshold, ignore breaches before this (default 10s)")
        parser.add_argument("--no-audit", dest="audit", action="store_false",
                            help="skip the data-integrity audit after the run")
        parser.add_argument("--compare-to", metavar="RUN_ID|last", help="compare with a stored run at the end")
        parser.add_argument("--processes", metavar="N|auto",
                            help="fork N worker processes (auto: one per core), each running its share of users")
        parser.add_argument("--distributed", choices=["celery"],
                            help="run the users as Celery shard tasks (perf.tasks.run_shard), e.g. on several machines")
        parser.add_argument("--shards", type=int, default=1, help="with --distributed: how many shard tasks")
        parser.add_argument("--rate", type=float, metavar="R",
                            help="open model: start R iterations per second whatever the latency (--users caps "
                                 "concurrency; latency counts from the intended start; late ones are dropped)")
        parser.add_argument("--request-log", metavar="PATH",
                            help="append a line per request (with the X-Perf-Request id it sent) to PATH, to reconcile "
                                 "the run with the server's access log: manage.py perf_reconcile")
        parser.add_argument("--bootstrap", action="store_true",
                            help="first make the data the scenarios need with the project's PERF_SEED_HOOK")
        # The admin's "New run" page tags the process it starts, to find the run it stores.
        parser.add_argument("--launch-id", default="", help=argparse.SUPPRESS)
        parser.add_argument("--fail-on-regression", metavar="PERCENT",
                            help="with --compare-to: exit 4 when an endpoint regresses by more than this, e.g. 10%%")
        parser.add_argument("--plan", metavar="NAME",
                            help="run a saved plan (admin: Perf plans); options given here override the plan's")

    def run_from_argv(self, argv: list[str]) -> None:
        patch_standard_library()  # from the command line only (perf/management/gevent_patch.py)
        super().run_from_argv(argv)

    def handle(self, *args: Any, **options: Any) -> None:
        request = RunRequest.from_options(options)
        if request.plan:
            try:
                request = apply_plan(request, given_options(self.create_parser("manage.py", "run_perf"), options))
            except UsageError as exc:
                raise self.usage_error(str(exc)) from None
        # A reader that goes away (| head, a closed terminal) must not end the run: its output is dropped.
        out, err = LossyOutput(self.stdout), LossyOutput(self.stderr)
        try:
            outcome = execute(request, out, err, owns_process=True)
        except UsageError as exc:
            raise self.usage_error(str(exc)) from None
        out.flush()
        err.flush()
        if outcome.exit_code:
            sys.exit(outcome.exit_code)


def _scenario_names() -> str:
    """For --help: the configured scenarios, or what is wrong with the setting (the run itself says it again)."""
    try:
        return ", ".join(packs.scenarios())
    except ImproperlyConfigured as exc:
        return f"none ({exc})"
