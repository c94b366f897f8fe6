"""``manage.py perf_import SUMMARY.json``: store a run's JSON summary, e.g. the one ``run_perf`` kept in a file
when the database refused its final save (exit 6)."""

import signal
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError

from perf.cli import exit_codes
from perf.cli.summary_import import read_summary, store_summary
from perf.management.base import PerfCommand
from perf.store.database import describe, first_line


class Command(PerfCommand):
    help = ("Store a run's JSON summary (the file run_perf names when the database refused the run's final save, "
            "or any --json file): the run it names is finished with its figures, or it is stored as a new run.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", metavar="SUMMARY.json", help="the summary file")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            data = read_summary(options["path"])
        except ValueError as exc:
            raise self.usage_error(str(exc)) from None
        self.require_database()
        try:
            run = store_summary(data)
        except ValueError as exc:  # a status or field the run model does not take
            raise self.usage_error(f"{options['path']}: {exc}") from None
        except DatabaseError as exc:
            raise CommandError(f"could not store the run in the {describe()}: {first_line(exc)}; try again later",
                               returncode=exit_codes.NOT_STORED) from None
        except KeyboardInterrupt:  # Ctrl-C while the database keeps the one transaction waiting: nothing was stored
            raise CommandError(f"interrupted: nothing was stored; {options['path']} is kept",
                               returncode=exit_codes.for_signal(signal.SIGINT)) from None
        self.stdout.write(f"Run {run.pk} {run.status}: {run.total_requests} requests stored from {options['path']}")
