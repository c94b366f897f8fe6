"""Verification emails as the platform sends them: a Celery task queued on commit (EMAIL_VIA_CELERY).

These run the registration rule in this process (``backend.services.accounts.register``) with Celery in
eager mode, where a queued task runs at once in the caller: what is checked here is the decision (queue
or send, only after commit, never an error for the caller). A real worker, broker and SMTP server carry
the task end to end in tests/perf/test_mailpit_path.py.
"""

import logging
import time
import uuid
from collections.abc import Iterator

import pytest
from celery.signals import task_prerun
from django.db import transaction

from backend import tasks
from backend.celery import app
from backend.emails import send_verification_email_on_commit
from backend.services.accounts import Registration, register
from tests.liveserver import free_port, manage

PASSWORD = "Quiet-Lantern-47!"


def new_email() -> str:
    return f"celery-{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture
def ran_tasks() -> Iterator[list[str]]:
    """The names of the Celery tasks that ran in this process during the test."""
    names: list[str] = []

    def record(sender=None, **_):
        names.append(sender.name)

    task_prerun.connect(record, weak=False)
    yield names
    task_prerun.disconnect(record)


@pytest.fixture
def via_celery(settings) -> None:
    settings.EMAIL_VIA_CELERY = True
    settings.EMAIL_CELERY_QUEUE = f"email-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def eager() -> Iterator[None]:
    """Queued tasks run in the caller, at once (the settings module's CELERY_TASK_ALWAYS_EAGER, per test)."""
    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = saved


def test_registration_queues_the_email_task_which_sends_it(orm, via_celery, eager, ran_tasks, mailoutbox):
    address = new_email()

    registered = register(Registration(email=address, password=PASSWORD))

    assert ran_tasks == [tasks.SEND_VERIFICATION_EMAIL]
    [message] = mailoutbox
    assert message.to == [address] and message.subject == "Verify your email"
    assert f"?token={registered.verification_token}" in message.body


def test_without_the_setting_the_email_is_sent_in_the_request_without_celery(orm, settings, ran_tasks,
                                                                            mailoutbox):
    settings.EMAIL_VIA_CELERY = False
    address = new_email()

    register(Registration(email=address, password=PASSWORD))

    assert ran_tasks == []
    assert [message.to for message in mailoutbox] == [[address]]


def test_nothing_is_queued_for_a_transaction_that_rolls_back(orm, via_celery, eager, ran_tasks, mailoutbox):
    with pytest.raises(RuntimeError), transaction.atomic():
        send_verification_email_on_commit(new_email(), "a.b.c")
        raise RuntimeError("the registration failed after all")

    assert ran_tasks == [] and mailoutbox == []


def test_an_unreachable_broker_is_one_log_line_and_the_registration_stands(live_env):
    """In a process of its own, as the server runs it: the broker (with a password in its URL) refuses."""
    address = new_email()
    code = ("from backend.services.accounts import Registration, register; "
            f"print(register(Registration(email={address!r}, password={PASSWORD!r})).user.email)")
    env = {**live_env, "EMAIL_VIA_CELERY": "True", "LOG_LEVEL": "ERROR",
           "CELERY_BROKER_URL": f"redis://:s3cret-pw@127.0.0.1:{free_port()}/0"}
    started = time.monotonic()

    result = manage("shell", "--verbosity", "0", "-c", code, env=env, check=False)

    assert (result.returncode, result.stdout.strip()) == (0, address), result.stderr
    assert time.monotonic() - started < 15  # start-up included: quick publish retries, not a hung request
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"verification email to {address} not queued: broker redis://127.0.0.1:")
    assert "OperationalError" in line and "s3cret-pw" not in line


def test_a_failing_mail_server_in_the_request_is_logged_not_raised(orm, settings, caplog):
    settings.EMAIL_VIA_CELERY = False
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 5
    address = new_email()

    with caplog.at_level(logging.ERROR, logger="backend.emails"):
        register(Registration(email=address, password=PASSWORD))

    [record] = [record for record in caplog.records if record.name == "backend.emails"]
    assert record.getMessage().startswith(f"verification email to {address} not sent: ConnectionRefusedError")


def test_the_task_retries_a_failing_mail_server_then_gives_up_in_one_line(settings, caplog):
    """Run in this process (apply), the retries happen at once; a worker waits 1, 2 and 4 s between them."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 5

    with caplog.at_level(logging.ERROR, logger="backend.tasks"):
        result = tasks.send_verification_email.apply(args=("x@example.com", "a.b.c"))

    assert (result.state, result.result) == ("SUCCESS", "failed")
    [record] = caplog.records
    assert record.getMessage() == (f"verification email to x@example.com not sent after {tasks.MAX_RETRIES + 1} "
                                   f"tries: ConnectionRefusedError: [Errno 111] Connection refused")


def test_the_email_task_goes_to_the_email_queue_not_the_shards(orm, via_celery, settings, monkeypatch):
    """What is published: the task's name and the email queue (captured at the producer, no broker needed)."""
    published: list[tuple[tuple, str]] = []

    class Task:
        def apply_async(self, args, **options):
            published.append((args, options["queue"]))

    monkeypatch.setattr(tasks, "send_verification_email", Task())
    send_verification_email_on_commit("y@example.com", "a.b.c")

    assert published == [(("y@example.com", "a.b.c"), settings.EMAIL_CELERY_QUEUE)]
    assert settings.EMAIL_CELERY_QUEUE != settings.CELERY_TASK_DEFAULT_QUEUE
