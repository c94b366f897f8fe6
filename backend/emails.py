"""Emails the backend sends, built from templates and sent through Django's email backend.

Sending happens after the transaction that made the email necessary commits, so a rolled-back
registration never mails a link to an account that does not exist; a failing mail server is
logged and does not turn a committed registration into an error response.
"""

import functools
import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

VERIFICATION_SUBJECT = "Verify your email"


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


def send_verification_email_on_commit(email: str, token: str) -> None:
    """Send once the current transaction commits (at once when none is open); errors are only logged."""
    transaction.on_commit(functools.partial(send_verification_email, email, token), robust=True)
