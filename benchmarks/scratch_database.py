"""A migrated database of a benchmark's own, for the length of a ``with`` block: a SQLite file in a temporary folder
by default, or a scratch database made beside the PostgreSQL server ``database_url`` names (and dropped after).

Django is set up inside the block, with ``settings_perf`` reading the scratch URL (it reads DATABASE_URL once), so a
benchmark imports its models only once in it. One helper for every benchmark that measures queries
(benchmarks/queries.py, benchmarks/trends.py), so none of them touches the developer's own database.
"""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def database_url_problem(database_url: str | None) -> str | None:
    """What is wrong with a benchmark's --database-url (None when nothing is): checked before anything is made."""
    from tests.liveserver import is_postgres

    if database_url and not is_postgres(database_url):
        return "--database-url takes a postgres:// URL; SQLite is the default"
    return None


@contextmanager
def scratch_database(database_url: str | None, name: str) -> Iterator[str]:
    """Yield the vendor's name ("SQLite" or "PostgreSQL") once Django is set up and migrated on the scratch database
    (``database_url`` checked first with :func:`database_url_problem`)."""
    from tests.liveserver import create_scratch_postgres, drop_scratch_postgres

    with tempfile.TemporaryDirectory() as folder:
        scratch = None
        if database_url:
            url, scratch = create_scratch_postgres(database_url)
        else:
            url = f"sqlite:///{Path(folder) / f'{name}.sqlite3'}"
        try:
            os.environ["DATABASE_URL"] = url
            os.environ["DJANGO_SETTINGS_MODULE"] = "settings_perf"
            import django

            django.setup()
            from django.core.management import call_command
            from django.db import connection, connections

            call_command("migrate", interactive=False, verbosity=0)
            yield "PostgreSQL" if connection.vendor == "postgresql" else "SQLite"
            connections.close_all()
        finally:
            if scratch:
                drop_scratch_postgres(database_url or "", scratch)
