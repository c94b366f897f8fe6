"""Mailpit's API v1: find the verification link sent to an address.

The fallback when the backend does not hand the token back in ``X-Test-Verification-Token``
(SYSTEM_TESTING off). Not on the hot path, so it uses requests.
"""

import re
import time

import requests

TOKEN_PATTERN = re.compile(r"\?token=([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)")


class MailpitClient:
    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()

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

    def wait_for_verification_token(self, email: str, timeout: float, interval: float) -> str | None:
        """Poll until the token arrives or ``timeout`` seconds pass (then None)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                token = self.find_verification_token(email)
            except requests.RequestException:
                token = None
            if token or time.monotonic() >= deadline:
                return token
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
