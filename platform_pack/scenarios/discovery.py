"""Anonymous browsing: the event list, event pages and their ticket tiers."""

from perf import task
from platform_pack.scenarios.base import PlatformUser


class EventBrowser(PlatformUser):
    weight = 30

    def on_start(self) -> None:
        self.event_ids: list[str] = []

    def _some_event(self) -> str | None:
        if not self.event_ids:
            self.list_events()
        return self.rng.choice(self.event_ids) if self.event_ids else None

    @task(5)
    def list_events(self) -> None:
        response = self.api.list_events()
        if response.status_code == 200:
            # The contract's pagination key is "results" (docs/api.md, "Pagination").
            self.event_ids = [event["id"] for event in response.json()["results"]]

    @task(3)
    def event_detail(self) -> None:
        event_id = self._some_event()
        if event_id:
            self.api.event_detail(event_id)

    @task(2)
    def ticket_tiers(self) -> None:
        event_id = self._some_event()
        if event_id:
            self.api.tiers(event_id)
