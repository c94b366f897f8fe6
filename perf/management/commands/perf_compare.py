"""``manage.py perf_compare A B [--fail-on-regression 10%]``: compare two stored runs, optionally as a CI gate."""

import sys
from typing import Any

from django.core.management.base import CommandParser

from perf.analysis.compare import compare_runs, resolve_run
from perf.cli import exit_codes
from perf.management.base import PerfCommand
from perf.models import PerfRun
from perf.options import parse_percent
from perf.reports import formats
from perf.reports.formats import plural


def describe(run: PerfRun) -> str:
    """``run 5 (nightly, 2026-12-01 10:00, completed, 8 users, 1m 00s)``; a capacity search says it is one instead of
    its users, which change step by step."""
    when = run.started_at.strftime("%Y-%m-%d %H:%M") if run.started_at else "?"
    label = f"{run.label}, " if run.label else ""
    load = "capacity search" if run.kind == PerfRun.Kind.CAPACITY else plural(run.users, "user")
    return f"run {run.pk} ({label}{when}, {run.status}, {load}, {formats.duration(run.duration)})"


class Command(PerfCommand):
    help = ("Compare two stored runs per endpoint (req/s, p50, p95, p99, error %, queries/request) with deltas, and "
            "two capacity searches by their capacity first; regressions are marked, and --fail-on-regression turns "
            "them into exit code 4.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("base", metavar="A",
                            help="the baseline: a run id, last (newest completed run) or previous (the one before)")
        parser.add_argument("new", metavar="B", help="the run to judge against A: a run id, last or previous")
        parser.add_argument("--fail-on-regression", metavar="PERCENT",
                            help="exit 4 when an endpoint regresses by more than this, e.g. 10%%")

    def handle(self, *args: Any, **options: Any) -> None:
        gate = options["fail_on_regression"]
        try:
            percent = parse_percent(gate) if gate is not None else None
        except ValueError as exc:
            raise self.usage_error(str(exc)) from None
        self.require_database()
        try:
            base, new = resolve_run(options["base"]), resolve_run(options["new"])
        except ValueError as exc:
            raise self.usage_error(str(exc)) from None
        if base.pk == new.pk:
            raise self.usage_error(f"A and B are both run {base.pk}: name two different runs")

        comparison = compare_runs(base, new, percent)
        self.stdout.write(f"Base: {describe(base)}\nNew:  {describe(new)}\n")
        regressions = comparison.write(self.stdout, percent)
        if regressions:
            self.stdout.flush()
            sys.exit(exit_codes.REGRESSION)
