"""Mailpit's API v1: find the verification link sent to an address.

The fallback when the backend does not hand the token back in ``X-Test-Verification-Token``
(SYSTEM_TESTING off). Not on the hot path, so it uses requests.
"""

import re
import time
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter

from perf import describe_error

TOKEN_PATTERN = re.compile(r"\?token=([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)")


@dataclass(frozen=True)
class TokenWait:
    """What polling came to: the token, or why not (the last poll's error; None if Mailpit answered)."""

    token: str | None
    error: str | None = None


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception of a chain.

    requests wraps a refused connection three deep (ConnectionError, MaxRetryError,
    NewConnectionError, then ConnectionRefusedError) and the outer messages quote the URL,
    which carries the address searched for: unique per user, one cause would become as many
    failure kinds as users.
    """
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
    return exc


def describe_mailpit_error(exc: requests.RequestException) -> str:
    """An error status by its code alone (requests' message quotes the URL), anything else by its root cause."""
    if exc.response is not None:
        return f"HTTPError: Mailpit answered {exc.response.status_code}"
    return describe_error(root_cause(exc))


# Idle connections kept for reuse. One client serves every registering user of a run at once, and
# requests keeps only 10 by default: beyond that each poll opened a new connection and logged
# "Connection pool is full, discarding connection" into the run's output.
MAX_IDLE_CONNECTIONS = 1000


class MailpitClient:
    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()
        self.http.mount(self.base_url, HTTPAdapter(pool_connections=1, pool_maxsize=MAX_IDLE_CONNECTIONS))

    def find_verification_token(self, email: str) -> str | None:
        """The token of the newest "verify" message to ``email``, or None if none has arrived."""
        search = self.http.get(
            f"{self.base_url}/api/v1/search", params={"query": f"to:{email}"}, timeout=self.timeout
        )
        search.raise_for_status()
        for message in search.json().get("messages", []):
            if "verify" not in message.get("Subject", "").lower():
                continue
            detail = self.http.get(f"{self.base_url}/api/v1/message/{message['ID']}", timeout=self.timeout)
            detail.raise_for_status()
            body = detail.json()
            match = TOKEN_PATTERN.search(body.get("Text", "") or "") or TOKEN_PATTERN.search(body.get("HTML", "") or "")
            if match:
                return match.group(1)
        return None

    def wait_for_verification_token(self, email: str, timeout: float, interval: float) -> TokenWait:
        """Poll until the token arrives or ``timeout`` seconds pass; without a token, the last poll's
        error says whether Mailpit was unreachable rather than the email late."""
        deadline = time.monotonic() + timeout
        while True:
            token, error = None, None
            try:
                token = self.find_verification_token(email)
            except requests.RequestException as exc:
                error = describe_mailpit_error(exc)
            if token or time.monotonic() >= deadline:
                return TokenWait(token, error)
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
