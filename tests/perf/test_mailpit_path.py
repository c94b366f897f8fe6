"""The registration scenario's Mailpit path, end to end, with every piece real.

SYSTEM_TESTING is off, so the backend hands no token back in a header: registration commits, queues
the email task (EMAIL_VIA_CELERY) on Redis, a real ``celery -A backend.celery worker`` renders and
sends it over SMTP to the mail catcher (the Mailpit stand-in), and perf's Mailpit client finds the
token there; then verify and log in. The worker consumes a queue of this module's own, so parallel
test runs sharing the machine's Redis never take each other's emails. The services are the ones the
native stack demo starts (scripts/stack_services.py).
"""

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from perf.models import EndpointStats, PerfRun
from platform_pack.clients import api as names
from platform_pack.clients.mailpit import MailpitClient
from scripts.stack_services import Broker, Child, MailCatcherService, StackError, celery_worker, wait_celery_ready
from tests.liveserver import LiveServer, free_port, run_perf

pytestmark = [pytest.mark.slow, pytest.mark.once]  # by hand: the mail path; the live server's database is incidental
PASSWORD = "Quiet-Lantern-47!"


@pytest.fixture(scope="module")
def catcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailCatcherService]:
    service = MailCatcherService(tmp_path_factory.mktemp("catcher") / "mail-catcher.log")
    service.start()
    yield service
    assert service.child is not None
    service.child.stop()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    found = Broker(tmp_path_factory.mktemp("redis"), db=10)
    try:
        found.start()
    except StackError as exc:
        pytest.skip(str(exc))
    yield found
    if found.child is not None:
        found.child.stop()


@pytest.fixture(scope="module")
def mail_env(seeded: dict[str, str], catcher: MailCatcherService, broker: Broker) -> Iterator[dict[str, str]]:
    """The live database, with the platform's email path on and no test header."""
    queue = f"email-test-{uuid.uuid4().hex[:10]}"
    yield {**seeded, "SYSTEM_TESTING": "False", "EMAIL_VIA_CELERY": "True", "EMAIL_CELERY_QUEUE": queue,
           "EMAIL_URL": catcher.email_url, "CELERY_BROKER_URL": broker.url, "LOCUST_MAILPIT_URL": catcher.api_url}
    broker.forget([queue])


@pytest.fixture(scope="module")
def email_worker(mail_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Child]:
    worker = celery_worker("email-worker", "backend.celery", mail_env["EMAIL_CELERY_QUEUE"], "threads", 2, mail_env,
                           tmp_path_factory.mktemp("worker") / "email-worker.log")
    try:
        wait_celery_ready(worker)
        yield worker
    finally:
        worker.stop()


@pytest.fixture(scope="module")
def mail_server(mail_env: dict[str, str], email_worker: Child, tmp_path_factory) -> Iterator[LiveServer]:
    """A second gunicorn on the live database with the production email settings."""
    server = LiveServer(env=mail_env, port=free_port(), log_path=tmp_path_factory.mktemp("server") / "gunicorn.log")
    server.start(workers=2, threads=2)
    yield server
    server.stop()


def sent_by_worker(worker: Child) -> list[str]:
    """Ids of the email tasks the worker says it sent."""
    return re.findall(r"Task backend\.send_verification_email\[([^\]]+)\] succeeded in [^:]+: 'sent'",
                      worker.log.read_text())


def test_register_then_the_token_from_the_email_verifies_and_the_account_logs_in(mail_server, email_worker,
                                                                                   catcher):
    address = f"mailpath-{uuid.uuid4().hex[:12]}@example.com"
    api = requests.Session()
    body = {"email": address, "password1": PASSWORD, "password2": PASSWORD, "accept_toc_and_privacy": True}

    registered = api.post(f"{mail_server.url}/account/register", json=body, timeout=30)

    assert registered.status_code == 201, registered.text
    assert "x-test-verification-token" not in registered.headers  # SYSTEM_TESTING is off
    waited = MailpitClient(catcher.api_url).wait_for_verification_token(address, timeout=15, interval=0.1)
    assert waited.error is None and waited.token, "no verification email reached the catcher"
    verified = api.post(f"{mail_server.url}/account/verify", json={"token": waited.token}, timeout=30)
    assert verified.status_code == 200, verified.text
    assert verified.json()["user"]["email_verified"] is True
    login = api.post(f"{mail_server.url}/auth/token/pair", json={"username": address, "password": PASSWORD},
                     timeout=30)
    assert login.status_code == 200 and login.json()["access"]
    # It came through the worker: the email's task is in the worker's log as sent.
    assert sent_by_worker(email_worker)
    [message] = requests.get(f"{catcher.api_url}/api/v1/search", params={"query": f"to:{address}"},
                             timeout=10).json()["messages"]
    assert message["Subject"] == "Verify your email" and message["From"]["Address"] == "noreply@perfkit.local"


def test_a_short_run_perf_registers_verifies_and_logs_in_through_the_email_path(mail_server, email_worker,
                                                                                  mail_env, orm, tmp_path: Path):
    label = f"mailpath-{uuid.uuid4().hex[:8]}"
    sent_before = len(sent_by_worker(email_worker))

    result = run_perf(mail_env, "--users", "4", "--spawn-rate", "4", "--duration", "5s", "--wait", "0.1,0.3",
                      "--scenario", "NewUserRegistration", "--scenario", "ExistingUserLogin",
                      "--host", mail_server.url, "--label", label, timeout=120)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = PerfRun.objects.get(label=label)
    assert run.status == PerfRun.Status.COMPLETED and run.total_failures == 0
    rows = {(row.method, row.name): row for row in EndpointStats.objects.filter(run=run, is_aggregated=False)}
    for key in (("POST", names.REGISTER), ("POST", names.VERIFY), ("POST", names.LOGIN),
                (names.EMAIL_WAIT_METHOD, names.EMAIL_WAIT)):
        assert key in rows and rows[key].num_requests > 0 and rows[key].num_failures == 0, key
    # Every verification was preceded by a wait on the catcher, and each email was sent by the worker.
    assert rows[(names.EMAIL_WAIT_METHOD, names.EMAIL_WAIT)].num_requests >= rows[("POST", names.VERIFY)].num_requests
    assert len(sent_by_worker(email_worker)) - sent_before >= rows[("POST", names.VERIFY)].num_requests
    assert run.audit["ok"] is True
