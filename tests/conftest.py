"""Session-wide fixtures: one live database, one live server, ORM access from tests.

The test process and the server share one database (pytest-django's "existing external
database" pattern): the server writes through HTTP, tests read (and arrange) through the
ORM. Nothing is rolled back between tests, so tests create their own rows with unique names.
"""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
import requests
from django.conf import settings
from django.db import connections

from settings_perf import database_from_url
from tests.liveserver import (
    LiveServer,
    create_scratch_postgres,
    drop_scratch_postgres,
    free_port,
    is_postgres,
    manage,
    server_env,
)

# The fixture every database-backed fixture leads to (orm, django_db_setup, live_env, live_server_process, api,
# seeded, pytest-django's db …): it makes the pass's scratch database. A test whose fixtures never reach it
# cannot see which database the pass runs on.
DATABASE_FIXTURE = "live_database_url"

Pass = Literal["SQLite", "PostgreSQL"]

# ``make test`` runs the two passes at once on two cores, and the one that ends last sets the time. The tests
# that need one pass only (``once_reason``) all ran in the SQLite pass, which then took 14 minutes to the
# PostgreSQL pass's 10. With ``--two-passes`` (both passes get it, from ``make test``) the once tests of these
# modules run in the PostgreSQL pass instead, so that both passes end together. A rule by module, so that a
# module's tests share their module-scoped fixtures in one pass; a list, so that the share is chosen by measured
# times: these are among the slowest once modules (about 4 minutes together, the capacity searches' real runs
# included; test_stack.py only where PgBouncer is installed, as on CI), and with them both passes end within a
# minute of each other. Weigh them again when one pass grows much longer than the other. Every other module's
# once tests stay in the SQLite pass; without ``--two-passes`` (``make test-sqlite``, a bare ``pytest``) the SQLite
# pass runs them all, so none is lost when no PostgreSQL pass runs.
ONCE_IN_THE_POSTGRESQL_PASS = frozenset({
    "tests/adoption/test_adoption.py",
    "tests/perf/test_capacity_runs.py",
    "tests/perf/test_reconcile.py",
    "tests/perf/test_request_timeout.py",
    "tests/perf/test_stack.py",
})

# The PostgreSQL pass's server URL (DATABASE_URL names the server's own ``postgres`` database). It is taken out
# of the environment as the session starts, so that no test and no child process of the pass can reach that
# database: the pass's tests reach only the scratch database that ``live_database_url`` makes beside it, through
# the environment their fixtures build (``server_env``). A test that reaches no database fixture sees the
# environment the SQLite pass gives it (no DATABASE_URL: a child process it starts uses the settings' own
# default), whichever pass runs it.
SERVER_DATABASE_URL = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--two-passes", action="store_true",
                     help="this pass runs beside the other one (make test): the tests that need one pass only "
                          "are shared out between the passes by module (tests/conftest.py)")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SERVER_DATABASE_URL] = os.environ.pop("DATABASE_URL", "")


def this_pass(config: pytest.Config) -> Pass:
    return "PostgreSQL" if is_postgres(config.stash[SERVER_DATABASE_URL]) else "SQLite"


def once_reason(item: pytest.Item) -> str | None:
    """Why ``item`` needs one pass only, or None when it runs in both.

    Derived from the fixtures: a test that reaches no database-backed fixture tests nothing that differs between
    the two passes. A hand-written ``once`` mark is left only on tests that reach the database through the live
    server but test something the database cannot change (sockets, files, the browser, mail); each says why.
    """
    if DATABASE_FIXTURE not in item.fixturenames:
        return f"once (derived): no fixture of it reaches {DATABASE_FIXTURE}, so no database"
    if item.get_closest_marker("once"):
        return "once (marked by hand): its database is only the live server's, incidental"
    return None


def once_pass(item: pytest.Item, two_passes: bool) -> Pass:
    """The pass that runs a once test: the SQLite pass, or with ``two_passes`` the one its module is given."""
    module = item.path.relative_to(item.config.rootpath).as_posix()
    return "PostgreSQL" if two_passes and module in ONCE_IN_THE_POSTGRESQL_PASS else "SQLite"


def skip_reason(item: pytest.Item, here: Pass, two_passes: bool) -> str | None:
    """Why the pass ``here`` skips ``item``, or None when it runs it: each test runs in exactly one pass of
    ``make test`` (or both, when it reaches the database)."""
    reason = once_reason(item)
    if reason is None:
        return None
    there = once_pass(item, two_passes)
    return None if there == here else f"{reason}; run in the {there} pass"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``make test`` runs the suite twice, on SQLite and on PostgreSQL; a test that would test nothing new in the
    second pass runs in one of them only (:func:`skip_reason`)."""
    here, two_passes = this_pass(config), config.getoption("--two-passes")
    for item in items:
        reason = skip_reason(item, here, two_passes)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def live_database_url(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[str]:
    """SQLite file by default; a scratch PostgreSQL database when DATABASE_URL named a server."""
    server_url = pytestconfig.stash[SERVER_DATABASE_URL]
    if is_postgres(server_url):
        url, name = create_scratch_postgres(server_url)
        yield url
        for conn in connections.all():
            conn.close()
        drop_scratch_postgres(server_url, name)
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def mail_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the server's file email backend writes each message it sends."""
    return tmp_path_factory.mktemp("mail")


@pytest.fixture(scope="session")
def live_env(live_database_url: str, mail_dir: Path) -> dict[str, str]:
    return server_env(live_database_url, mail_dir)


@pytest.fixture(scope="session")
def django_db_setup(live_env: dict[str, str], live_database_url: str, django_db_blocker) -> None:
    """Migrate the live database in a child process and point this process's ORM at it."""
    manage("migrate", "--no-input", "-v0", env=live_env)
    with django_db_blocker.unblock():
        for conn in connections.all():
            conn.close()
        settings.DATABASES["default"].clear()
        settings.DATABASES["default"].update(database_from_url(live_database_url))
        settings.DATABASES["default"].setdefault("TIME_ZONE", None)
        settings.DATABASES["default"].setdefault("AUTOCOMMIT", True)
        settings.DATABASES["default"].setdefault("CONN_MAX_AGE", 0)
        settings.DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", False)
        settings.DATABASES["default"].setdefault("OPTIONS", {})
        settings.DATABASES["default"].setdefault("TEST", {})
        del connections["default"]


@pytest.fixture
def orm(django_db_setup, django_db_blocker) -> Iterator[None]:
    """ORM access to the live database, committed as it goes (no test transaction)."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture(scope="session")
def live_server_process(django_db_setup, live_env: dict[str, str], tmp_path_factory) -> Iterator[LiveServer]:
    server = LiveServer(env=live_env, port=free_port(), log_path=tmp_path_factory.mktemp("server") / "gunicorn.log")
    server.start()
    yield server
    server.stop()


class Api:
    """Speaks to the live server the way the platform's clients do (JSON, optional Bearer)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def request(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = {"Accept": "application/json", "Content-Type": "application/json", **kwargs.pop("headers", {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.session.request(method, f"{self.base_url}{path}", headers=headers, timeout=60, **kwargs)

    def get(self, path: str, token: str | None = None, **kwargs) -> requests.Response:
        return self.request("GET", path, token, **kwargs)

    def post(self, path: str, token: str | None = None, **kwargs) -> requests.Response:
        return self.request("POST", path, token, **kwargs)


@pytest.fixture(scope="session")
def api(live_server_process: LiveServer) -> Api:
    return Api(live_server_process.url)
