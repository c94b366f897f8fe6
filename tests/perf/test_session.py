"""Specification of perf.load.session.HttpSession against the live events backend.

The session must look like ``requests`` to scenario code and report every request to one
hook as ``(method, name, elapsed_ms, content_length, error, server, opened)``.
"""

import pytest

from perf.load.session import HttpSession
from tests import factories
from tests.liveserver import free_port

pytestmark = pytest.mark.once  # by hand: the HTTP session against the live server; its database is incidental


class Hook:
    """Collects what the session reports."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float, int, str | None]] = []
        self.server_timings: list[tuple | None] = []
        self.opened: list[int] = []

    def __call__(
        self, method: str, name: str, elapsed_ms: float, size: int, error: str | None, server: tuple | None,
        opened: int,
    ) -> None:
        self.calls.append((method, name, elapsed_ms, size, error))
        self.server_timings.append(server)
        self.opened.append(opened)

    @property
    def errors(self) -> list[str | None]:
        return [call[4] for call in self.calls]


@pytest.fixture
def hook() -> Hook:
    return Hook()


@pytest.fixture
def session(live_server_process, hook):
    client = HttpSession(live_server_process.url, hook)
    yield client
    client.close()


def test_response_has_the_face_of_requests(session):
    response = session.get("/healthcheck")

    assert response.status_code == 200
    assert response.ok
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status": "ok"}
    assert '"status"' in response.text


def test_each_request_is_reported_once_with_its_time_and_size(session, hook):
    response = session.get("/healthcheck")

    assert len(hook.calls) == 1
    method, name, elapsed_ms, size, error = hook.calls[0]
    assert (method, name, error) == ("GET", "/healthcheck", None)
    assert elapsed_ms > 0
    assert size == len(response.content) > 0


def test_each_request_says_whether_it_opened_a_connection(session, hook):
    """The first request of a session opens its connection; the next ones reuse it (perf.load.transport)."""
    from perf.load.transport import NEW, REUSED

    session.get("/healthcheck")
    session.get("/healthcheck", name="again")
    with session.get("/healthcheck", name="caught", catch_response=True):
        pass

    assert hook.opened == [NEW, REUSED, REUSED]


def test_connection_counts_reach_the_endpoint_and_the_aggregated_entry():
    from perf.load.stats import StatsEntry, StatsRegistry
    from perf.load.transport import NEW, REOPENED, REUSED

    registry = StatsRegistry()
    for opened in (NEW, REUSED, REUSED, REOPENED):
        registry.record("GET", "/a", 5.0, 10, None, None, opened)
    entry = registry.entries[("GET", "/a")]

    assert (entry.new_connections, entry.reopened_connections) == (2, 1)
    assert (registry.total.new_connections, registry.total.reopened_connections) == (2, 1)
    assert entry.connections_per_100 == 50.0
    rebuilt = StatsEntry.from_dict(entry.to_dict())
    rebuilt.merge(entry)
    assert (rebuilt.new_connections, rebuilt.reopened_connections) == (4, 2)


def test_an_error_status_is_reported_as_a_failure_naming_it(session, hook):
    response = session.get("/no-such-endpoint")

    assert response.status_code == 404
    assert not response.ok
    assert "404" in hook.errors[0]


def test_name_groups_requests_instead_of_the_path(session, hook):
    session.get("/healthcheck", name="/health [probe]")

    assert hook.calls[0][1] == "/health [probe]"


def test_failure_text_names_the_template_not_the_url(session, hook):
    session.get("/events/123/nothing", name="/events/{id}/nothing")

    assert "/events/{id}/nothing" in hook.errors[0]
    assert "123" not in hook.errors[0]


def test_catch_response_can_fail_a_successful_request(session, hook):
    with session.get("/healthcheck", catch_response=True) as response:
        assert response.status_code == 200
        response.failure("status was not degraded")

    assert hook.errors == ["status was not degraded"]


def test_catch_response_can_accept_an_error_status(session, hook):
    with session.get("/no-such-endpoint", catch_response=True) as response:
        assert response.status_code == 404
        response.success()

    assert hook.errors == [None]


def test_catch_response_reports_an_unmarked_error_status_as_a_failure(session, hook):
    with session.get("/no-such-endpoint", catch_response=True):
        pass

    assert len(hook.calls) == 1
    assert "404" in hook.errors[0]


def test_catch_response_reports_nothing_until_the_block_ends(session, hook):
    with session.get("/healthcheck", catch_response=True):
        assert hook.calls == []

    assert len(hook.calls) == 1


def test_an_exception_inside_catch_response_is_the_failure(session, hook):
    with pytest.raises(KeyError), session.get("/healthcheck", catch_response=True) as response:
        response.json()["missing"]

    assert hook.errors == ["KeyError(\"'missing'\")"]


def test_a_refused_connection_is_a_failure_not_an_exception(hook):
    session = HttpSession(f"http://127.0.0.1:{free_port()}/api", hook, timeout=5)
    try:
        response = session.get("/healthcheck")
    finally:
        session.close()

    assert response.status_code == 0
    assert response.error
    assert not response.ok
    assert hook.calls[0][1] == "/healthcheck"
    assert hook.errors == [response.error]


def test_the_base_url_path_is_prepended(live_server_process, hook):
    session = HttpSession(live_server_process.url + "/", hook)
    try:
        response = session.get("/healthcheck")
    finally:
        session.close()

    assert response.url == "/api/healthcheck"
    assert response.json() == {"status": "ok"}


def test_query_parameters_are_encoded(session, orm):
    org = factories.make_org()
    word = factories.unique("Rock")
    wanted = factories.make_event(org, name=f"{word} & Roll")
    factories.make_event(org, name=f"{word} Ballads")

    response = session.get("/events/", params={"organization_slug": org.slug, "search": f"{word} & Roll"})

    assert response.status_code == 200
    assert [event["id"] for event in response.json()["results"]] == [str(wanted.id)]


def test_a_json_body_is_sent(session):
    response = session.post("/auth/token/pair", json={"username": "someone@example.com"})

    assert response.status_code == 400
    assert response.json() == {"password": ["password is required"]}


def test_session_headers_go_with_every_request(live_server_process, hook, orm):
    user = factories.make_user()
    session = HttpSession(live_server_process.url, hook,
                          headers={"Authorization": f"Bearer {factories.access_token(user)}"})
    try:
        responses = [session.get("/account/me") for _ in range(2)]
    finally:
        session.close()

    assert [response.status_code for response in responses] == [200, 200]
    assert responses[1].json()["email"] == user.email


def test_per_request_headers_override_the_session_headers(live_server_process, hook, orm):
    user = factories.make_user()
    session = HttpSession(live_server_process.url, hook, headers={"Authorization": "Bearer not-a-token"})
    try:
        response = session.get("/account/me", headers={"Authorization": f"Bearer {factories.access_token(user)}"})
    finally:
        session.close()

    assert response.status_code == 200


def test_the_backends_server_timing_header_reaches_the_hook(live_server_process, hook):
    session = HttpSession(live_server_process.url, hook)

    response = session.get("/events/")

    assert "app;dur=" in response.headers["Server-Timing"]
    app_ms, db_ms, queries = hook.server_timings[0]
    assert 0 < app_ms <= hook.calls[0][2]  # the app's time is part of what the client waited
    assert 0 <= db_ms <= app_ms
    assert queries >= 1  # the list is a database query


def test_a_header_value_with_a_line_break_is_a_failure_and_nothing_is_sent(session, hook):
    response = session.get("/healthcheck", headers={"Authorization": "Bearer x\r\nX-Evil: 1"})

    assert response.status_code == 0
    assert hook.errors == ["ValueError: refused to send: a line break in the URI or a header value would inject "
                           "a header"]
