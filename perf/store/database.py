"""The database as the commands see it: naming it in one line, telling a lock from a real error,
and checking before any work that it answers and is migrated.

A user's mistake with ``DATABASE_URL`` (a server that is down, a database never migrated) would
otherwise surface as a 70-line traceback from deep inside the ORM; here it becomes one line that
names the database (never its password) and the fix.
"""

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.utils import DatabaseError, InterfaceError, OperationalError


class DatabaseUnavailable(Exception):
    """The database cannot be used: the message is one line naming it and the fix."""


def describe(alias: str = DEFAULT_DB_ALIAS) -> str:
    """``SQLite database /path/perf.sqlite3`` or ``postgresql database perfkit at 127.0.0.1:5432``.

    Built from the settings, not the URL, so that a password can never appear.
    """
    settings = connections[alias].settings_dict
    vendor = connections[alias].vendor
    if vendor == "sqlite":
        return f"SQLite database {settings.get('NAME')}"
    host = settings.get("HOST") or "localhost"
    port = settings.get("PORT") or "default port"
    return f"{vendor} database {settings.get('NAME')} at {host}:{port}"


def is_transient(error: BaseException) -> bool:
    """A lock, a busy database or a dropped connection: worth trying again, never a reason to lose a run."""
    return isinstance(error, OperationalError | InterfaceError)


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def check_ready(alias: str = DEFAULT_DB_ALIAS, apps: tuple[str, ...] = ("perf",)) -> None:
    """Raise DatabaseUnavailable unless the database answers and ``apps`` have no unapplied migration."""
    connection = connections[alias]
    try:
        connection.ensure_connection()
        executor = MigrationExecutor(connection)
        targets = [key for key in executor.loader.graph.leaf_nodes() if key[0] in apps]
        unapplied = executor.migration_plan(targets)
    except DatabaseError as error:
        connection.close()
        raise DatabaseUnavailable(
            f"cannot use the {describe(alias)} ({first_line(error)}): start it, or set DATABASE_URL to one that runs"
        ) from None
    if unapplied:
        raise DatabaseUnavailable(
            f"the {describe(alias)} is not migrated ({len(unapplied)} migrations pending): "
            "run `python manage.py migrate`"
        )
