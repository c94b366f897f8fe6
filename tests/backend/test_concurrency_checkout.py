"""Many buyers at once never oversell a tier or an event (docs/api.md, "Tickets" and "Decisions").

Real concurrent HTTP requests against the multi-worker server: what is checked is what the
database holds afterwards, not what any single response says.
"""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from backend.models import Ticket, TicketTier, User
from tests import factories

pytestmark = pytest.mark.slow

THREADS = 50


def make_buyers(count: int) -> list[User]:
    users = []
    for _ in range(count):
        email = f"{factories.unique('buyer')}@example.com"
        users.append(User(username=email, email=email, password=factories.password_hash(), email_verified=True))
    return User.objects.bulk_create(users)


def checkout_all(base_url: str, paths_and_tokens: list[tuple[str, str]]) -> list[requests.Response]:
    """POST one single-ticket checkout per (path, token), THREADS at a time."""

    def post(item: tuple[str, str]) -> requests.Response:
        path, token = item
        return requests.post(
            f"{base_url}{path}",
            json={"tickets": [{"guest_name": "Racer"}]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(post, paths_and_tokens))


def test_200_buyers_of_a_50_ticket_tier_get_exactly_50_tickets(live_server_process, orm):
    event = factories.make_event(requires_ticket=True, max_attendees=0, max_tickets_per_user=None)
    tier = factories.make_tier(event, total_quantity=50)
    path = f"/events/{event.id}/tickets/{tier.id}/checkout"
    buyers = make_buyers(200)

    responses = checkout_all(live_server_process.url, [(path, factories.access_token(user)) for user in buyers])

    assert Counter(response.status_code for response in responses) == {200: 50, 429: 150}
    assert Ticket.objects.filter(tier=tier).count() == 50
    assert TicketTier.objects.get(pk=tier.pk).quantity_sold == 50


def test_buyers_spread_over_several_tiers_never_exceed_the_event_capacity(live_server_process, orm):
    event = factories.make_event(requires_ticket=True, max_attendees=20, max_tickets_per_user=None)
    # One unlimited tier per server thread, so tier locks alone would not serialize the buyers.
    tiers = [factories.make_tier(event, total_quantity=None) for _ in range(8)]
    paths = [f"/events/{event.id}/tickets/{tier.id}/checkout" for tier in tiers]
    buyers = make_buyers(100)

    responses = checkout_all(
        live_server_process.url,
        [(paths[i % len(paths)], factories.access_token(user)) for i, user in enumerate(buyers)],
    )

    statuses = Counter(response.status_code for response in responses)
    assert statuses[200] == 20
    assert set(statuses) <= {200, 400, 429}
    refusals = [response.json() for response in responses if response.status_code != 200]
    assert all(
        body == {"detail": "This event is sold out."} or body.get("reason_code") == "event_is_full" for body in refusals
    )
    assert Ticket.objects.filter(event=event).count() == 20
