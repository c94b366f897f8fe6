"""The backend's Celery tasks: sending emails off the request path, as the platform does.

A task carries only the address and the token; the worker renders the templates and sends through
Django's email backend (``EMAIL_URL``: SMTP to Mailpit, or to the mail catcher, in the stacks). A mail
server that refuses or is down is retried a few times with a growing pause, then given up with one
line in the worker's log: the registration it belongs to committed long ago and stays valid (the user
can ask for a fresh link by registering again).
"""

import logging
import smtplib
from typing import Any

from backend import emails
from backend.celery import app

logger = logging.getLogger(__name__)

SEND_VERIFICATION_EMAIL = "backend.send_verification_email"
# Tries after the first; the pauses between them are 1, 2 and 4 s.
MAX_RETRIES = 3


@app.task(name=SEND_VERIFICATION_EMAIL, bind=True, max_retries=MAX_RETRIES, ignore_result=True)
def send_verification_email(self: Any, email: str, token: str) -> str:
    """Render and send the verification email; "sent", or "failed" once the retries are spent."""
    try:
        emails.send_verification_email(email, token)
    except (smtplib.SMTPException, OSError) as exc:
        if self.request.retries >= self.max_retries:
            logger.error("verification email to %s not sent after %d tries: %s: %s", email,
                         self.request.retries + 1, type(exc).__name__, exc)
            return "failed"
        raise self.retry(exc=exc, countdown=2 ** self.request.retries) from exc
    return "sent"
