"""A logged-in user looking at their dashboard lists."""

from perf import task
from platform_pack.scenarios.base import LoggedInUser


class DashboardUser(LoggedInUser):
    weight = 15

    @task(3)
    def events(self) -> None:
        self.api.dashboard_events()

    @task(2)
    def organizations(self) -> None:
        self.api.dashboard_organizations()

    @task(2)
    def tickets(self) -> None:
        self.api.dashboard_tickets()

    @task(1)
    def rsvps(self) -> None:
        self.api.dashboard_rsvps()

    @task(1)
    def all_four(self) -> None:
        self.api.dashboard_events()
        self.api.dashboard_organizations()
        self.api.dashboard_tickets()
        self.api.dashboard_rsvps()
