"""Logged-in users getting free tickets and pay-what-you-can tickets."""

from decimal import ROUND_DOWN, Decimal

from perf import StopUser, task
from platform_pack.scenarios.base import LoggedInUser
from platform_pack.seeded import TICKET_FREE_EVENT_SLUG, TICKET_PWYC_EVENT_SLUG


class TicketUser(LoggedInUser):
    """Shared flow: find the event, pick the tier from the tier list, check out."""

    event_slug = ""

    def on_start(self) -> None:
        super().on_start()
        self.ticket_event = self.event_id(self.event_slug)
        response = self.api.tiers(self.ticket_event)
        tier = self.pick_tier(response.json()) if response.status_code == 200 else None
        if tier is None:
            self.context.note_once(f"No suitable tier on {self.event_slug!r}: run bootstrap_perf_tests.")
            raise StopUser
        self.tier = tier

    def pick_tier(self, tiers: list[dict]) -> dict | None:
        raise NotImplementedError

    def guest_name(self) -> str:
        return f"Load Guest {self.rng.randrange(1_000_000)}"

    def buy(self) -> None:
        raise NotImplementedError

    @task(2)
    def status_and_tiers(self) -> None:
        self.api.my_status(self.ticket_event)
        self.api.tiers(self.ticket_event)

    @task(1)
    def checkout(self) -> None:
        self.buy()

    @task(1)
    def full_flow(self) -> None:
        self.api.my_status(self.ticket_event)
        self.api.tiers(self.ticket_event)
        self.buy()
        self.api.my_status(self.ticket_event)


class FreeTicketUser(TicketUser):
    weight = 10
    event_slug = TICKET_FREE_EVENT_SLUG

    def pick_tier(self, tiers: list[dict]) -> dict | None:
        return next((tier for tier in tiers if tier["payment_method"] == "free"), None)

    def buy(self) -> None:
        self.api.checkout(self.ticket_event, self.tier["id"], self.guest_name())


class PWYCTicketUser(TicketUser):
    weight = 5
    event_slug = TICKET_PWYC_EVENT_SLUG

    def pick_tier(self, tiers: list[dict]) -> dict | None:
        return next((tier for tier in tiers if tier["price_type"] == "pwyc"), None)

    def price(self) -> str:
        """A price inside the tier's range, to the cent (no maximum → up to ten times the minimum)."""
        low = Decimal(self.tier["pwyc_min"])
        high = Decimal(self.tier["pwyc_max"]) if self.tier["pwyc_max"] is not None else low * 10
        cents = self.rng.randint(int(low * 100), int(high * 100))
        return str((Decimal(cents) / 100).quantize(Decimal("0.01"), rounding=ROUND_DOWN))

    def buy(self) -> None:
        self.api.checkout_pwyc(self.ticket_event, self.tier["id"], self.guest_name(), self.price())
