"""Session-wide fixtures: one live database, one live server, ORM access from tests.

The test process and the server share one database (pytest-django's "existing external
database" pattern): the server writes through HTTP, tests read (and arrange) through the
ORM. Nothing is rolled back between tests, so tests create their own rows with unique names.
"""

import os
from collections.abc import Iterator
from pathlib import Path

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


def once_reason(item: pytest.Item) -> str | None:
    """Why the PostgreSQL pass skips ``item``, or None when it runs there.

    Derived from the fixtures: a test that reaches no database-backed fixture tests nothing that differs between
    the two passes. A hand-written ``once`` mark is left only on tests that reach the database through the live
    server but test something the database cannot change (sockets, files, the browser, mail); each says why.
    """
    if DATABASE_FIXTURE not in item.fixturenames:
        return f"once (derived): no fixture of it reaches {DATABASE_FIXTURE}, so no database; run in the SQLite pass"
    if item.get_closest_marker("once"):
        return "once (marked by hand): its database is only the live server's, incidental; run in the SQLite pass"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``make test`` runs the suite twice, on SQLite and on PostgreSQL; the PostgreSQL pass skips the tests that
    would test nothing new there (:func:`once_reason`)."""
    if not is_postgres(os.environ.get("DATABASE_URL", "")):
        return
    for item in items:
        reason = once_reason(item)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def live_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLite file by default; a scratch PostgreSQL database when DATABASE_URL names a server."""
    server_url = os.environ.get("DATABASE_URL", "")
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
