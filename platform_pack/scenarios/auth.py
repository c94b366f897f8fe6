"""Logging in with a pre-seeded account, and registering a new one end to end."""

import random
import time
import uuid

from perf import describe_error, task
from platform_pack.clients.api import EMAIL_WAIT, EMAIL_WAIT_METHOD
from platform_pack.clients.mailpit import TokenWait
from platform_pack.context import VERIFIED_EMAILS
from platform_pack.scenarios.base import PlatformUser
from platform_pack.seeded import REGISTRATION_EMAIL_DOMAIN, REGISTRATION_EMAIL_PREFIX


class ExistingUserLogin(PlatformUser):
    """Each task logs in afresh (password hashing is the cost under test), then reads the account."""

    weight = 20

    @task
    def login_and_read_account(self) -> None:
        email = self.context.next_account()
        if self.api.login(email, self.context.config.default_password):
            self.api.me()


class NewUserRegistration(PlatformUser):
    """Register, fetch the verification token (response header, else Mailpit), verify."""

    weight = 5

    @task
    def register_and_verify(self) -> None:
        # Fresh per run even with --seed (which fixes task choice, not identities): a repeated seeded
        # run must not collide with the accounts the previous one registered.
        suffix = uuid.uuid4().hex[:16]
        email = f"{REGISTRATION_EMAIL_PREFIX}{suffix}@{REGISTRATION_EMAIL_DOMAIN}"
        password = registration_password(self.rng)
        body = {
            "email": email,
            "password1": password,
            "password2": password,
            "first_name": "Load",
            "last_name": "Tester",
            "accept_toc_and_privacy": True,
        }
        with self.api.register(body) as response:
            if not response.expect_status(200, 201, label="register"):
                return
            token = response.headers.get("x-test-verification-token")
        if not token:
            token = self._token_from_mailpit(email)
            if not token:
                return
        with self.api.verify(token) as response:
            if not response.expect_status(200, label="verify"):
                return
        # The integrity audit checks that every account the API said it verified really is.
        self.context.remember(VERIFIED_EMAILS, email)

    def _token_from_mailpit(self, email: str) -> str | None:
        """Poll Mailpit; every wait is recorded as ``WAIT email_verification_wait``, timed from the
        registration's answer to the token found (the delivery time of the platform's email path,
        at the poll interval's resolution). No token is that entry's failure, naming Mailpit's error
        when it could not be asked, a time-out when the email was late."""
        config = self.context.config
        mailpit = self.context.mailpit
        started = time.perf_counter()
        wait = TokenWait(None)
        if mailpit is not None:
            wait = mailpit.wait_for_verification_token(email, config.email_poll_timeout, config.email_poll_interval)
        waited_ms = (time.perf_counter() - started) * 1000.0
        error = None
        if wait.token is None:
            late = TimeoutError(f"no verification email within {config.email_poll_timeout:g}s")
            error = wait.error or describe_error(late)
        self.client.report(EMAIL_WAIT_METHOD, EMAIL_WAIT, waited_ms, 0, error)
        return wait.token


# No character of a hex digit: the registered email's suffix is hex, and Django's similarity validator
# refused about one hex password in 2,850 for looking like it (a failure the backend did not cause).
_PASSWORD_LETTERS = "ghjkmnpqrstvwxyzGHJKLMNPQRSTVWXYZ"


def registration_password(rng: random.Random) -> str:
    """A strong password that no part of a registration email can resemble."""
    return "".join(rng.choice(_PASSWORD_LETTERS) for _ in range(18)) + "!#"
