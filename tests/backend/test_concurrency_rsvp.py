"""Properties that only show under load: RSVP capacity under concurrent claimants, and a
my-status whose query count does not grow with the caller's tickets."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from backend.models import EventRSVP, Ticket, User
from tests import factories

CAPACITY = 50
CLAIMANTS = 200


def _bulk_users(count: int) -> list[User]:
    prefix = factories.unique("racer")
    users = [
        User(username=f"{prefix}-{i}@example.com", email=f"{prefix}-{i}@example.com",
             password=factories.password_hash(), email_verified=True)
        for i in range(count)
    ]
    return User.objects.bulk_create(users)


@pytest.mark.slow
def test_concurrent_yes_rsvps_never_overfill_a_capped_event(live_server_process, orm):
    event = factories.make_event(max_attendees=CAPACITY)
    tokens = [factories.access_token(user) for user in _bulk_users(CLAIMANTS)]
    url = f"{live_server_process.url}/events/{event.id}/rsvp/yes"

    def claim(token: str) -> tuple[int, dict]:
        response = requests.post(url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(claim, tokens))

    accepted = [body for status, body in results if status == 200]
    refused = [body for status, body in results if status == 400]
    assert len(accepted) == CAPACITY
    assert len(refused) == CLAIMANTS - CAPACITY
    assert {body["reason_code"] for body in refused} == {"event_is_full"}
    assert EventRSVP.objects.filter(event=event, status=EventRSVP.Status.YES).count() == CAPACITY


def _my_status_queries(event, tier, ticket_count: int) -> int:
    user = factories.make_user()
    Ticket.objects.bulk_create(Ticket(event=event, tier=tier, user=user) for _ in range(ticket_count))
    client = Client(HTTP_AUTHORIZATION=f"Bearer {factories.access_token(user)}")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/api/events/{event.id}/my-status")
    assert response.status_code == 200
    assert len(response.json()["tickets"]) == ticket_count
    return len(queries)


def test_my_status_query_count_does_not_grow_with_tickets(orm):
    event = factories.make_event(requires_ticket=True, max_tickets_per_user=None, max_attendees=1000)
    tier = factories.make_tier(event)

    assert _my_status_queries(event, tier, 2) == _my_status_queries(event, tier, 40)
