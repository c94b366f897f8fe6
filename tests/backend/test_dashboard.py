"""The dashboard (docs/api.md, "Dashboard") over HTTP: what each list holds, its shape, and its cost per page."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backend.models import EventRSVP, OrganizationStaff, Ticket
from tests.factories import access_token, make_event, make_member, make_org, make_tier, make_user

LISTS = ["/dashboard/events", "/dashboard/organizations", "/dashboard/tickets", "/dashboard/rsvps"]


def buy(event, user, **fields) -> Ticket:
    tier = make_tier(event)
    return Ticket.objects.create(event=event, tier=tier, user=user, **fields)


def rsvp(event, user, status="yes") -> EventRSVP:
    return EventRSVP.objects.create(event=event, user=user, status=status)


def ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["results"]]


def past_event(**fields):
    start = timezone.now() - timedelta(days=3)
    return make_event(start=start, end=start + timedelta(hours=3), **fields)


# --- events ----------------------------------------------------------------------------------------


def test_dashboard_events_lists_only_events_the_user_relates_to_in_start_order(api, orm):
    user = make_user()
    owned = make_event(make_org(owner=user), start=timezone.now() + timedelta(days=9))
    staffed_org = make_org()
    OrganizationStaff.objects.create(organization=staffed_org, user=user)
    staffed = make_event(staffed_org, start=timezone.now() + timedelta(days=8))
    member_org = make_org()
    make_member(member_org, user)
    as_member = make_event(member_org, start=timezone.now() + timedelta(days=7))
    ticketed = make_event(requires_ticket=True, start=timezone.now() + timedelta(days=6))
    buy(ticketed, user, status=Ticket.Status.CANCELLED)
    yes = make_event(start=timezone.now() + timedelta(days=5))
    rsvp(yes, user, "yes")
    maybe = make_event(start=timezone.now() + timedelta(days=4))
    rsvp(maybe, user, "maybe")
    rsvp(make_event(), user, "no")
    make_event()  # public but unrelated
    rsvp(past_event(), user, "yes")

    response = api.get("/dashboard/events", token=access_token(user))

    assert ids(response) == [str(e.id) for e in (maybe, yes, ticketed, as_member, staffed, owned)]
    assert response.json()["count"] == 6


def test_dashboard_events_include_past_on_request(api, orm):
    user = make_user()
    event = past_event()
    rsvp(event, user)

    response = api.get("/dashboard/events", token=access_token(user), params={"include_past": "true"})

    assert ids(response) == [str(event.id)]


def test_dashboard_event_is_an_event_in_list_with_its_attendee_count(api, orm):
    user = make_user()
    event = make_event()
    rsvp(event, user)
    rsvp(event, make_user())
    rsvp(event, make_user(), "no")

    [item] = api.get("/dashboard/events", token=access_token(user)).json()["results"]

    assert item["id"] == str(event.id)
    assert item["attendee_count"] == 2
    assert item["organization"]["id"] == str(event.organization.id)
    assert item["city"]["name"] == "Vienna"
    assert {"slug", "start", "end", "visibility", "status", "requires_ticket", "is_full", "timezone"} <= item.keys()


def test_dashboard_events_filter_by_search(api, orm):
    user = make_user()
    wanted = make_event(name="Harbour jazz night")
    rsvp(wanted, user)
    rsvp(make_event(), user)

    response = api.get("/dashboard/events", token=access_token(user), params={"search": "jazz"})

    assert ids(response) == [str(wanted.id)]


# --- organizations -------------------------------------------------------------------------------


def test_dashboard_organizations_lists_owned_staffed_and_member_organizations(api, orm):
    user = make_user()
    owned = make_org(owner=user, name="a-owned")
    staffed = make_org(name="b-staffed")
    OrganizationStaff.objects.create(organization=staffed, user=user)
    member = make_org(name="c-member")
    make_member(member, user)
    make_org()

    response = api.get("/dashboard/organizations", token=access_token(user))

    assert ids(response) == [str(owned.id), str(staffed.id), str(member.id)]
    item = response.json()["results"][0]
    assert item["slug"] == owned.slug
    assert item["membership_grace_period_days"] == 7
    assert item["city"]["name"] == "Vienna"


# --- tickets -------------------------------------------------------------------------------------


def test_dashboard_tickets_lists_own_tickets_of_events_not_ended_newest_first(api, orm):
    user = make_user()
    event = make_event(requires_ticket=True)
    older = buy(event, user)
    newer = buy(event, user, status=Ticket.Status.PENDING)
    buy(event, make_user())
    buy(past_event(requires_ticket=True), user)

    response = api.get("/dashboard/tickets", token=access_token(user))

    assert ids(response) == [str(newer.id), str(older.id)]
    item = response.json()["results"][0]
    assert item["status"] == "pending"
    assert item["tier"]["id"] == str(newer.tier_id)
    assert item["event"]["id"] == str(event.id)


def test_dashboard_tickets_are_paginated_by_twenty(api, orm):
    user = make_user()
    event = make_event(requires_ticket=True)
    tier = make_tier(event)
    Ticket.objects.bulk_create(Ticket(event=event, tier=tier, user=user) for _ in range(25))
    token = access_token(user)

    first = api.get("/dashboard/tickets", token=token).json()
    second = api.get("/dashboard/tickets", token=token, params={"page": 2}).json()

    assert (first["count"], len(first["results"]), len(second["results"])) == (25, 20, 5)
    assert first["next"].endswith("page=2") and first["previous"] is None
    assert second["next"] is None


# --- rsvps ---------------------------------------------------------------------------------------


def test_dashboard_rsvps_lists_every_answer_for_events_not_ended_newest_first(api, orm):
    user = make_user()
    event_a, event_b = make_event(), make_event()
    first = rsvp(event_a, user, "no")
    second = rsvp(event_b, user, "maybe")
    rsvp(past_event(), user)
    rsvp(event_a, make_user())

    response = api.get("/dashboard/rsvps", token=access_token(user))

    assert ids(response) == [str(second.id), str(first.id)]
    item = response.json()["results"][0]
    assert set(item) == {"id", "status", "note", "created_at", "updated_at", "event"}
    assert item["status"] == "maybe"
    assert item["event"]["id"] == str(event_b.id)
    assert item["event"]["slug"] == event_b.slug


def test_dashboard_rsvps_filter_by_status(api, orm):
    user = make_user()
    wanted = rsvp(make_event(), user, "yes")
    rsvp(make_event(), user, "no")

    response = api.get("/dashboard/rsvps", token=access_token(user), params={"status": "yes"})

    assert ids(response) == [str(wanted.id)]


# --- shared ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", LISTS)
def test_dashboard_list_of_a_user_with_nothing_is_empty(api, orm, path):
    response = api.get(path, token=access_token(make_user()))

    assert response.status_code == 200
    assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}


@pytest.mark.parametrize("path", LISTS)
def test_dashboard_list_without_a_token_is_401(api, path):
    assert api.get(path).status_code == 401


def _queries(path: str, user) -> int:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {access_token(user)}")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/api{path}")
    assert response.status_code == 200
    return len(queries)


def _user_with(count: int):
    """A user related to ``count`` events through tickets, RSVPs and memberships."""
    user = make_user()
    for _ in range(count):
        org = make_org()
        make_member(org, user)
        ticket_event = make_event(org, requires_ticket=True)
        buy(ticket_event, user)
        rsvp(make_event(org), user)
    return user


@pytest.mark.parametrize("path", LISTS)
def test_dashboard_page_costs_the_same_queries_for_2_or_30_rows(orm, path):
    assert _queries(path, _user_with(2)) == _queries(path, _user_with(30))
