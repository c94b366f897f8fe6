"""Every failure record names its cause, however the request failed.

A request that got no answer has status 0 and an empty body: a failure text built from
those ("register answered 0: ") says nothing. These tests fail requests for real, against
loopback ports where nothing listens or nothing answers, and read the failures out of the
same StatsRegistry a run records into (grouped by method, name and error, as Locust does).
The calls run in this process as in test_session.py: the sockets are plain, not patched.
"""

import errno
import os
import random
import socket
from collections.abc import Iterator

import pytest

from perf.load.session import MAX_ERROR_LENGTH, HttpSession, describe_error
from perf.load.stats import StatsRegistry
from platform_pack.clients.api import EMAIL_WAIT, EMAIL_WAIT_METHOD, REGISTER, VERIFY, ApiClient
from platform_pack.clients.mailpit import MailpitClient
from platform_pack.config import PlatformConfig
from platform_pack.context import PlatformContext
from platform_pack.scenarios.auth import NewUserRegistration
from tests.liveserver import free_port

REFUSED = f"ConnectionRefusedError: [Errno {errno.ECONNREFUSED}] {os.strerror(errno.ECONNREFUSED)}"


@pytest.fixture
def stats() -> StatsRegistry:
    return StatsRegistry()


@pytest.fixture
def dead_url() -> str:
    """An API root on a loopback port where nothing listens: every connection is refused."""
    return f"http://127.0.0.1:{free_port()}/api"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """An API root whose port accepts connections (the kernel's backlog) but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/api"


def errors(stats: StatsRegistry) -> dict[tuple[str, str, str], int]:
    return {key: failure.occurrences for key, failure in stats.failures.items()}


def registration_user(base_url: str, stats: StatsRegistry, mailpit_url: str | None = None) -> NewUserRegistration:
    config = PlatformConfig(email_poll_timeout=0.3, email_poll_interval=0.1)
    context = PlatformContext(config=config, mailpit=MailpitClient(mailpit_url) if mailpit_url else None)
    if mailpit_url is None:
        context.mailpit = None  # no client at all (the context would make one for the configured URL)
    return NewUserRegistration(HttpSession(base_url, stats.record, timeout=5), random.Random(1), context)


def test_a_refused_request_is_recorded_by_its_exception_class_and_message(dead_url, stats):
    session = HttpSession(dead_url, stats.record, timeout=5)
    try:
        responses = [session.get("/healthcheck"), session.get("/healthcheck")]
    finally:
        session.close()

    assert [response.status_code for response in responses] == [0, 0]
    assert responses[0].error == REFUSED
    # One cause, one failure kind: the text carries nothing that differs between requests.
    assert errors(stats) == {("GET", "/healthcheck", REFUSED): 2}


def test_a_request_nobody_answers_is_recorded_as_timed_out(silent_url, stats):
    session = HttpSession(silent_url, stats.record, timeout=0.2)
    try:
        session.get("/healthcheck")
    finally:
        session.close()

    assert errors(stats) == {("GET", "/healthcheck", "TimeoutError: timed out"): 1}


def test_registration_against_a_dead_port_names_the_refusal_not_answered_0(dead_url, stats):
    user = registration_user(dead_url, stats)
    try:
        user.register_and_verify()
    finally:
        user.client.close()

    assert errors(stats) == {("POST", REGISTER, REFUSED): 1}
    assert not any("answered 0" in error for _, _, error in stats.failures)


def test_a_wrong_status_still_quotes_status_and_body(live_server_process, stats):
    session = HttpSession(live_server_process.url, stats.record)
    try:
        with ApiClient(session).verify("not-a-token") as response:
            accepted = response.expect_status(200, label="verify")
    finally:
        session.close()

    assert not accepted
    [(method, name, error)] = stats.failures
    assert (method, name) == ("POST", VERIFY)
    assert error.startswith("verify answered 400: ") and "Invalid token" in error


def test_an_unreachable_mailpit_is_named_not_reported_as_a_late_email(dead_url, stats):
    """Registration answered, no token came: the wait's failure says Mailpit refused, not a time-out."""
    user = registration_user(dead_url, stats, mailpit_url=f"http://127.0.0.1:{free_port()}")

    assert user._token_from_mailpit("someone@example.com") is None
    assert user._token_from_mailpit("someone-else@example.com") is None

    assert errors(stats) == {(EMAIL_WAIT_METHOD, EMAIL_WAIT, REFUSED): 2}


def test_without_mailpit_the_wait_is_a_time_out(dead_url, stats):
    user = registration_user(dead_url, stats)

    assert user._token_from_mailpit("someone@example.com") is None

    assert errors(stats) == {(EMAIL_WAIT_METHOD, EMAIL_WAIT, "TimeoutError: no verification email within 0.3s"): 1}


def test_a_long_message_is_cut_the_same_way_each_time():
    first, second = describe_error(ValueError("x" * 5000)), describe_error(ValueError("x" * 5000))

    assert first == second
    assert len(first) == MAX_ERROR_LENGTH and first.startswith("ValueError: xxx")


def test_object_addresses_are_left_out_so_one_cause_stays_one_failure_kind():
    texts = {describe_error(RuntimeError(f"lost {object()!r}")) for _ in range(3)}

    assert texts == {"RuntimeError: lost <object object>"}
