"""What every platform scenario shares: the run's context, logging in, finding seeded events."""

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from perf.clients.api import ApiClient
from perf.clients.mailpit import MailpitClient
from perf.config import PerfConfig
from perf.load.user import StopUser, User
from perf.seeded import ORG_SLUG, perf_user_email


@dataclass
class ScenarioContext:
    """Shared by all simulated users of a run: configuration and what one user learned for all."""

    config: PerfConfig
    mailpit: MailpitClient | None = None
    notes: list[str] = field(default_factory=list)
    shared: dict[str, Any] = field(default_factory=dict)
    verified_emails: set[str] = field(default_factory=set)
    _accounts: itertools.count = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _finding: dict[str, threading.Lock] = field(default_factory=dict)

    def stride_accounts(self, start: int, step: int) -> None:
        """Take accounts start, start + step, …: how processes or shards of one run share the
        pre-seeded users without two of them ever logging in as the same one."""
        with self._lock:
            self._accounts = itertools.count(start, step)

    def next_account(self) -> str:
        """Pre-seeded accounts handed out in turn, so users share one only beyond N users."""
        with self._lock:
            index = next(self._accounts)
        return perf_user_email(index % self.config.num_preseeded_users)

    def find_once(self, key: str, find: Callable[[], Any]) -> Any:
        """``shared[key]``, found by the first user who asks while the others wait for it, so a
        lookup costs the server once a run rather than once a user. None is not kept: the next
        user to ask tries again."""
        with self._lock:
            finding = self._finding.setdefault(key, threading.Lock())
        with finding:
            if key not in self.shared:
                value = find()
                if value is not None:
                    self.shared[key] = value
            return self.shared.get(key)

    def note_once(self, message: str) -> None:
        """Remember a remark for the end of the run (once, however many users make it)."""
        with self._lock:
            if message not in self.notes:
                self.notes.append(message)


class PlatformUser(User):
    """A simulated user of the platform's API."""

    context: ScenarioContext

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.api = ApiClient(self.client)

    def event_id(self, event_slug: str) -> str:
        """Look up a seeded event once, as the Locust suite does at start; stop if it is missing."""
        response = self.api.event_by_slug(ORG_SLUG, event_slug)
        if response.status_code != 200:
            self.context.note_once(f"Seeded event {event_slug!r} not found: run bootstrap_perf_tests first.")
            raise StopUser
        return response.json()["id"]


class LoggedInUser(PlatformUser):
    """Logs in as a pre-seeded user at start; stops if that fails (the failure is recorded)."""


    def on_start(self) -> None:
        self.email = self.context.next_account()
        if not self.api.login(self.email, self.context.config.default_password):
            raise StopUser
