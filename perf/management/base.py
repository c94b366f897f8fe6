"""What the perf commands share: whole option names only, and bad input as one line with exit code 2.

argparse takes any unambiguous prefix of an option by default, so ``--user 5`` would silently mean
``--users 5`` (and a later option ``--user-agent`` would change what old scripts do). Django's own
commands keep that default; these three do not. argparse also prints its whole usage text above a
parse error; here the error is the one line, and ``--help`` is named for the rest.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from perf import exit_codes
from perf.database import DatabaseUnavailable, check_ready


class ExactParser(CommandParser):
    """Django's parser, with parse errors as one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if self.called_from_command_line:
            self.exit(exit_codes.USAGE, f"{self.prog}: error: {message} (see --help)\n")
        super().error(message)


class PerfCommand(BaseCommand):
    """A management command with exact option names whose usage errors exit 2."""

    # The apps whose tables the command needs, migrated (checked before any work).
    needs_apps: tuple[str, ...] = ("perf",)

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.__class__ = ExactParser  # BaseCommand builds a CommandParser; only error() differs
        parser.allow_abbrev = False
        return parser

    def usage_error(self, message: str) -> CommandError:
        return CommandError(message, returncode=exit_codes.USAGE)

    def require_database(self) -> None:
        """One line naming the database and the fix when it is down or not migrated."""
        try:
            check_ready(apps=self.needs_apps)
        except DatabaseUnavailable as exc:
            raise self.usage_error(str(exc)) from None
