"""``manage.py perf_mark_lost [--after SECONDS]``: mark running runs whose process stopped answering as ``lost``
(``perf.store.liveness``). The admin does this whenever it shows runs; schedule this command (cron, a Celery beat)
so that queries and dashboards outside the admin never see a dead run as running either.

Prints one line per run marked; exit 0 whether or not there was any, 2 for bad input or a database that is
down or not migrated.
"""

import math
from typing import Any

from django.core.management.base import CommandParser
from django.db import DatabaseError

from perf.management.base import PerfCommand
from perf.models import PerfRun
from perf.store import liveness
from perf.store.database import first_line


class Command(PerfCommand):
    help = ("Mark running runs whose process has written no progress for PERF_LOST_AFTER seconds (default 60) "
            "as lost, keeping their figures up to their last progress write.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--after", type=float, metavar="SECONDS",
                            # Not the setting's value: read here, a wrong one would fail before the checks name it.
                            help="silence that makes a run lost (default: the PERF_LOST_AFTER setting)")

    def handle(self, *args: Any, **options: Any) -> None:
        after = options["after"]
        if after is not None and (not math.isfinite(after) or after <= 0):
            raise self.usage_error(f"--after must be a positive number of seconds, got {after:g}")
        self.require_database()
        try:
            marked = liveness.mark_lost(after=after)
        except DatabaseError as exc:
            raise self.usage_error(f"could not mark lost runs: {first_line(exc)}") from None
        for run in PerfRun.objects.filter(pk__in=marked).order_by("pk"):
            self.stdout.write(f"Run {run.pk} {run.error}")
        if not marked:
            self.stdout.write("No lost runs.")
