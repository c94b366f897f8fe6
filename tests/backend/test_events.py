"""Event discovery and detail over HTTP (docs/api.md, "Events and RSVP")."""

import uuid
from datetime import timedelta

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backend.models import Event, EventRSVP, OrganizationStaff, Ticket
from tests import factories


def _org_events(api, org, token=None, **params):
    """The events of one organization as the list shows them (the shared database holds others)."""
    response = api.get("/events/", token=token, params={"organization_slug": org.slug, "page_size": 200, **params})
    assert response.status_code == 200
    return response.json()["results"]


def test_list_has_the_pagination_shape(api, orm):
    org = factories.make_org()
    factories.make_event(org)
    factories.make_event(org)

    response = api.get("/events/", params={"organization_slug": org.slug, "page_size": 1})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2
    assert len(body["results"]) == 1
    assert body["previous"] is None
    assert body["next"].startswith("http") and "page=2" in body["next"]


def test_second_page_links_back_and_ends(api, orm):
    org = factories.make_org()
    factories.make_event(org)
    factories.make_event(org)

    body = api.get("/events/", params={"organization_slug": org.slug, "page_size": 1, "page": 2}).json()

    assert len(body["results"]) == 1
    assert body["next"] is None
    assert "page=1" in body["previous"]


def test_page_past_the_end_is_404(api, orm):
    org = factories.make_org()
    factories.make_event(org)

    response = api.get("/events/", params={"organization_slug": org.slug, "page": 5})

    assert response.status_code == 404


def test_bad_page_size_is_422(api):
    for bad in ("0", "201", "many"):
        response = api.get("/events/", params={"page_size": bad})

        assert response.status_code == 422, bad
        assert response.json()["detail"][0]["loc"] == ["query", "page_size"]


def test_bad_boolean_filter_is_422(api):
    response = api.get("/events/", params={"requires_ticket": "perhaps"})

    assert response.status_code == 422


def test_invalid_token_on_the_list_is_401(api):
    response = api.get("/events/", token="not-a-jwt")

    assert response.status_code == 401


def test_anonymous_list_shows_only_public_listed_upcoming_events(api, orm):
    org = factories.make_org()
    shown = factories.make_event(org)
    closed = factories.make_event(org, status=Event.Status.CLOSED)
    factories.make_event(org, visibility=Event.Visibility.PRIVATE)
    factories.make_event(org, visibility=Event.Visibility.UNLISTED)
    factories.make_event(org, status=Event.Status.DRAFT)
    factories.make_event(org, start=timezone.now() - timedelta(days=2))

    ids = {event["id"] for event in _org_events(api, org)}

    assert ids == {str(shown.id), str(closed.id)}


def test_include_past_adds_past_events(api, orm):
    org = factories.make_org()
    past = factories.make_event(org, start=timezone.now() - timedelta(days=2))

    ids = [event["id"] for event in _org_events(api, org, include_past="true")]

    assert ids == [str(past.id)]


def test_list_is_ordered_by_start(api, orm):
    org = factories.make_org()
    now = timezone.now()
    late = factories.make_event(org, start=now + timedelta(days=20))
    early = factories.make_event(org, start=now + timedelta(days=5))
    middle = factories.make_event(org, start=now + timedelta(days=10))

    ids = [event["id"] for event in _org_events(api, org)]

    assert ids == [str(early.id), str(middle.id), str(late.id)]


def test_member_sees_the_private_events_of_their_organization(api, orm):
    org = factories.make_org()
    member = factories.make_user()
    factories.make_member(org, member)
    private = factories.make_event(org, visibility=Event.Visibility.PRIVATE)

    ids = [event["id"] for event in _org_events(api, org, token=factories.access_token(member))]

    assert ids == [str(private.id)]


def test_staff_see_drafts_and_members_do_not(api, orm):
    org = factories.make_org()
    staff, member = factories.make_user(), factories.make_user()
    OrganizationStaff.objects.create(organization=org, user=staff)
    factories.make_member(org, member)
    draft = factories.make_event(org, status=Event.Status.DRAFT)

    assert [e["id"] for e in _org_events(api, org, token=factories.access_token(staff))] == [str(draft.id)]
    assert _org_events(api, org, token=factories.access_token(member)) == []


def test_search_matches_part_of_the_name(api, orm):
    org = factories.make_org()
    word = factories.unique("Jazz")
    match = factories.make_event(org, name=f"Late {word} night")
    factories.make_event(org, name="Chess club")

    ids = [event["id"] for event in _org_events(api, org, search=word.lower())]

    assert ids == [str(match.id)]


def test_requires_ticket_filter(api, orm):
    org = factories.make_org()
    ticketed = factories.make_event(org, requires_ticket=True)
    factories.make_event(org)

    ids = [event["id"] for event in _org_events(api, org, requires_ticket="true")]

    assert ids == [str(ticketed.id)]


def test_list_counts_yes_rsvps_and_live_tickets_as_attendees(api, orm):
    org = factories.make_org()
    rsvp_event = factories.make_event(org, max_attendees=2)
    ticket_event = factories.make_event(org, requires_ticket=True)
    tier = factories.make_tier(ticket_event)
    for status in ("yes", "yes", "no", "maybe"):
        EventRSVP.objects.create(event=rsvp_event, user=factories.make_user(), status=status)
    for status in (Ticket.Status.ACTIVE, Ticket.Status.PENDING, Ticket.Status.CANCELLED):
        Ticket.objects.create(event=ticket_event, tier=tier, user=factories.make_user(), status=status)

    by_id = {event["id"]: event for event in _org_events(api, org)}

    assert by_id[str(rsvp_event.id)]["attendee_count"] == 2
    assert by_id[str(rsvp_event.id)]["is_full"] is True
    assert by_id[str(ticket_event.id)]["attendee_count"] == 2
    assert by_id[str(ticket_event.id)]["is_full"] is False


def _list_queries(org) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = Client().get("/api/events/", {"organization_slug": org.slug, "page_size": 200})
    assert response.status_code == 200
    return len(queries)


def test_list_query_count_does_not_grow_with_events_or_attendees(orm):
    small, large = factories.make_org(), factories.make_org()
    factories.make_event(small)
    for _ in range(8):
        event = factories.make_event(large)
        EventRSVP.objects.create(event=event, user=factories.make_user(), status=EventRSVP.Status.YES)

    assert _list_queries(small) == _list_queries(large)


def test_list_item_has_the_event_fields(api, orm):
    org = factories.make_org()
    event = factories.make_event(org)

    (item,) = _org_events(api, org)

    assert item["id"] == str(event.id)
    assert item["slug"] == event.slug
    assert item["organization"]["slug"] == org.slug
    assert item["timezone"] == "Europe/Vienna"
    assert item["city"]["name"] == "Vienna"
    assert item["attendee_count"] == 0
    assert item["start"].endswith("Z")


def test_detail_by_id(api, orm):
    event = factories.make_event()

    response = api.get(f"/events/{event.id}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(event.id)
    assert body["address"] == "Test Venue, Vienna"
    assert body["schedule"] == []


def test_detail_by_organization_and_event_slug(api, orm):
    event = factories.make_event()

    response = api.get(f"/events/{event.organization.slug}/event/{event.slug}")

    assert response.status_code == 200
    assert response.json()["id"] == str(event.id)


def test_detail_includes_past_events(api, orm):
    event = factories.make_event(start=timezone.now() - timedelta(days=3))

    response = api.get(f"/events/{event.id}")

    assert response.status_code == 200


def test_detail_of_unknown_event_is_404(api):
    response = api.get(f"/events/{uuid.uuid4()}")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_detail_of_private_event_is_404_for_anonymous_callers(api, orm):
    event = factories.make_event(visibility=Event.Visibility.PRIVATE)

    assert api.get(f"/events/{event.id}").status_code == 404
    assert api.get(f"/events/{event.organization.slug}/event/{event.slug}").json() == {"detail": "Not found."}


def test_detail_by_slug_of_another_organization_is_404(api, orm):
    event = factories.make_event()
    other = factories.make_org()

    response = api.get(f"/events/{other.slug}/event/{event.slug}")

    assert response.status_code == 404
