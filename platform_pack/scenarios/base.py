"""What every platform scenario shares: the run's context, logging in, finding seeded events."""

from typing import Any

from perf import StopUser, User
from platform_pack.clients.api import ApiClient
from platform_pack.context import PlatformContext
from platform_pack.seeded import ORG_SLUG


class PlatformUser(User):
    """A simulated user of the platform's API."""

    context: PlatformContext

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
