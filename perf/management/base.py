"""What the perf commands share: whole option names only, and bad input as one line with exit code 2.

argparse takes any unambiguous prefix of an option by default, so ``--user 5`` would silently mean
``--users 5`` (and a later option ``--user-agent`` would change what old scripts do). Django's own
commands keep that default; these three do not. argparse also prints its whole usage text above a
parse error; here the error is the one line, and ``--help`` is named for the rest.

A long command's output may outlive its reader (``run_perf … | head -1``, a closed terminal, a log
pipe whose reader died): ``LossyOutput`` drops what cannot be written instead of failing the command.
"""

import os
from typing import Any

from django.core import checks
from django.core.management.base import BaseCommand, CommandError, CommandParser, SystemCheckError

from perf.cli import exit_codes
from perf.options import escaped
from perf.store.database import DatabaseUnavailable, check_ready


class ExactParser(CommandParser):
    """Django's parser, with parse errors as one line (the arguments it echoes, ``escaped``)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        message = escaped(message)
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

    def check(self, *args: Any, **kwargs: Any) -> None:
        """Django's system checks (run before every command), with a failure as one line and exit 2: the first
        error's message and id (``PERF_LOST_AFTER must be … (perf.E009)``); ``manage.py check`` lists them all
        with their hints. Warnings are printed as Django prints them."""
        try:
            super().check(*args, **kwargs)
        except SystemCheckError:
            raise self.usage_error(_first_error(*args, **kwargs)) from None

    def execute(self, *args: Any, **options: Any) -> Any:
        """Django's execute, with the line a failure ends on ``escaped``: an error may quote a path, a file's line
        or a label as the user gave it, and a CR or LF in it must not become a second, forged line."""
        try:
            return super().execute(*args, **options)
        except CommandError as exc:
            if len(exc.args) == 1 and isinstance(exc.args[0], str) and exc.args[0] != escaped(exc.args[0]):
                raise CommandError(escaped(exc.args[0]), returncode=exc.returncode) from None
            raise

    def usage_error(self, message: str) -> CommandError:
        return CommandError(message, returncode=exit_codes.USAGE)

    def require_database(self) -> None:
        """One line naming the database and the fix when it is down or not migrated."""
        try:
            check_ready(apps=self.needs_apps)
        except DatabaseUnavailable as exc:
            raise self.usage_error(str(exc)) from None


def _first_error(app_configs: Any = None, tags: Any = None, display_num_errors: bool = False,
                 include_deployment_checks: bool = False, fail_level: int = checks.ERROR, databases: Any = None) -> str:
    """One line for the serious issues of a failed check run (BaseCommand.check's arguments): they are asked
    again, because Django's SystemCheckError holds only its many-line report."""
    issues = checks.run_checks(app_configs=app_configs, tags=tags, include_deployment_checks=include_deployment_checks,
                               databases=databases)
    serious = [issue for issue in issues if issue.is_serious(fail_level) and not issue.is_silenced()]
    if not serious:  # not expected: the same checks failed a moment ago
        return "the system checks failed: run manage.py check to see why"
    first = serious[0]
    lines = str(first.msg).strip().splitlines() or [""]
    more = f"; {len(serious) - 1} more: manage.py check lists them" if len(serious) > 1 else ""
    return f"{lines[0]} ({first.id}){more}"


class LossyOutput:
    """A command's stdout or stderr whose reader may be gone: output that cannot be written is dropped.

    The first failed write or flush (a broken pipe, a terminal that hung up) marks the stream lost;
    later output is dropped without trying. The stream's file descriptor is pointed at /dev/null,
    because the interpreter flushes ``sys.stdout`` once more at exit and would print "Exception
    ignored ... BrokenPipeError" and exit 120 (Python's documented way out, "Note on SIGPIPE").
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.lost = False

    def write(self, text: str) -> None:
        if not self.lost:
            self._try(self._stream.write, text)

    def flush(self) -> None:
        if not self.lost:
            self._try(self._stream.flush)

    def isatty(self) -> bool:
        return not self.lost and self._stream.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _try(self, action: Any, *args: Any) -> None:
        try:
            action(*args)
        except (OSError, ValueError):  # ValueError: the file was closed under us
            self._lose()

    def _lose(self) -> None:
        self.lost = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self._stream.fileno())
            finally:
                os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass  # no descriptor of its own (a StringIO in tests): nothing flushes it at exit
