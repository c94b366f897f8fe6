"""Emails the backend sends, built from templates and sent through Django's email backend.

Sending happens after the transaction that made the email necessary commits, so a rolled-back
registration never mails a link to an account that does not exist. How it is sent is the
``EMAIL_VIA_CELERY`` setting: off (the default), in the request's own process, as a plain
synchronous send; on, as the platform does it, by queueing a Celery task (``backend.tasks``) on the
``EMAIL_CELERY_QUEUE`` queue, which an email worker renders and sends. Either way a failing mail
server or broker is logged in one line and never turns a committed registration into an error response.
"""

import functools
import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

VERIFICATION_SUBJECT = "Verify your email"
# Publishing a task: two more tries within about half a second, then the email is logged as not queued.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.3}


def verification_link(token: str) -> str:
    """The frontend page that posts the token back to ``/account/verify`` (docs/api.md, "Authentication")."""
    return f"{settings.FRONTEND_BASE_URL.rstrip('/')}/login/confirm-email?token={token}"


def send_verification_email(email: str, token: str) -> None:
    """Send the text + HTML verification email to ``email`` now."""
    context = {"email": email, "link": verification_link(token)}
    message = EmailMultiAlternatives(
        subject=VERIFICATION_SUBJECT,
        body=render_to_string("backend/emails/verify_email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email],
    )
    message.attach_alternative(render_to_string("backend/emails/verify_email.html", context), "text/html")
    message.send()


def queue_verification_email(email: str, token: str) -> None:
    """Hand the email to a Celery worker; an unreachable broker is logged, not raised.

    Publishing is retried briefly (a broker that is down must not hold the request for long); the
    task itself retries a failing mail server (backend/tasks.py).
    """
    from backend.tasks import send_verification_email as task

    try:
        task.apply_async(args=(email, token), queue=getattr(settings, "EMAIL_CELERY_QUEUE", "email"), retry=True,
                         retry_policy=PUBLISH_RETRY_POLICY)
    except Exception as exc:  # kombu's OperationalError, or whatever the transport raises
        logger.error("verification email to %s not queued: broker %s: %s: %s", email,
                     _broker_location(), type(exc).__name__, exc)


def _deliver_verification_email(email: str, token: str) -> None:
    if getattr(settings, "EMAIL_VIA_CELERY", False):
        queue_verification_email(email, token)
        return
    try:
        send_verification_email(email, token)
    except Exception as exc:  # SMTP refusals, an unreachable server, a broken backend setting
        logger.error("verification email to %s not sent: %s: %s", email, type(exc).__name__, exc)


def send_verification_email_on_commit(email: str, token: str) -> None:
    """Send (or queue, with ``EMAIL_VIA_CELERY``) once the current transaction commits, at once when
    none is open; errors are only logged."""
    transaction.on_commit(functools.partial(_deliver_verification_email, email, token), robust=True)


def _broker_location() -> str:
    """The broker's scheme, host and port, never its credentials (the URL may carry a password)."""
    parts = urlsplit(str(getattr(settings, "CELERY_BROKER_URL", "") or ""))
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}"
