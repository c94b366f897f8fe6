"""my-status over HTTP: the eligibility shape before a user acts, the status shape after (docs/api.md)."""

import uuid

from backend.models import (
    Event,
    EventRSVP,
    OrganizationQuestionnaire,
    Questionnaire,
    Ticket,
)
from tests import factories

ELIGIBILITY_KEYS = {
    "allowed", "event_id", "reason", "reason_code", "next_step", "questionnaires_missing",
    "questionnaires_pending_review", "questionnaires_failed", "retry_on", "missing_profile_fields",
    "pending_offers_count", "next_batch_at", "waitlist_position", "active_offer_expires_at", "event_remaining",
}
STATUS_KEYS = {
    "tickets", "rsvp", "can_purchase_more", "remaining_tickets", "event_remaining", "feedback_questionnaires",
}


def _status(api, event, user):
    response = api.get(f"/events/{event.id}/my-status", token=factories.access_token(user))
    assert response.status_code == 200, response.text
    return response.json()


def test_my_status_without_token_is_401(api, orm):
    event = factories.make_event()

    response = api.get(f"/events/{event.id}/my-status")

    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}


def test_my_status_of_invisible_event_is_404(api, orm):
    event = factories.make_event(visibility=Event.Visibility.PRIVATE)

    response = api.get(f"/events/{event.id}/my-status", token=factories.access_token(factories.make_user()))

    assert response.status_code == 404


def test_my_status_of_unknown_event_is_404(api, orm):
    response = api.get(f"/events/{uuid.uuid4()}/my-status", token=factories.access_token(factories.make_user()))

    assert response.status_code == 404


def test_fresh_rsvp_event_gives_allowed_eligibility(api, orm):
    event = factories.make_event()

    body = _status(api, event, factories.make_user())

    assert set(body) == ELIGIBILITY_KEYS
    assert body["allowed"] is True
    assert body["event_id"] == str(event.id)
    assert body["event_remaining"] == 1  # the model's default cap of one ticket per user
    assert all(body[key] is None for key in ELIGIBILITY_KEYS - {"allowed", "event_id", "event_remaining"})


def test_rsvp_holder_gets_the_status_shape(api, orm):
    event = factories.make_event()
    user = factories.make_user()
    EventRSVP.objects.create(event=event, user=user, status=EventRSVP.Status.MAYBE)

    body = _status(api, event, user)

    assert body == {
        "tickets": [],
        "rsvp": {"event_id": str(event.id), "status": "maybe", "note": ""},
        "can_purchase_more": True,
        "remaining_tickets": [],
        "event_remaining": 1,
        "feedback_questionnaires": [],
    }


def test_status_shape_after_an_rsvp_over_http(api, orm):
    event = factories.make_event()
    user = factories.make_user()
    token = factories.access_token(user)
    assert api.post(f"/events/{event.id}/rsvp/yes", token=token).status_code == 200

    body = _status(api, event, user)

    assert body["rsvp"] == {"event_id": str(event.id), "status": "yes", "note": ""}


def test_questionnaire_gated_event_lists_the_missing_questionnaire(api, orm):
    event = factories.make_event()
    questionnaire = Questionnaire.objects.create(
        name=factories.unique("questionnaire"), status=Questionnaire.Status.PUBLISHED
    )
    link = OrganizationQuestionnaire.objects.create(organization=event.organization, questionnaire=questionnaire)
    link.events.add(event)

    body = _status(api, event, factories.make_user())

    assert set(body) == ELIGIBILITY_KEYS
    assert body["allowed"] is False
    assert body["reason_code"] == "questionnaire_missing"
    assert body["next_step"] == "complete_questionnaire"
    assert body["questionnaires_missing"] == [str(questionnaire.id)]


def test_ticket_event_without_tickets_gives_allowed_eligibility(api, orm):
    event = factories.make_event(requires_ticket=True, max_tickets_per_user=None)
    factories.make_tier(event)

    body = _status(api, event, factories.make_user())

    assert body["allowed"] is True
    assert body["event_remaining"] is None


def test_ticket_holder_gets_tickets_newest_first_and_remaining_per_tier(api, orm):
    event = factories.make_event(requires_ticket=True, max_tickets_per_user=None, max_attendees=100)
    tier = factories.make_tier(event, max_tickets_per_user=5)
    user = factories.make_user(first_name="Ada", last_name="Lovelace")
    older = Ticket.objects.create(event=event, tier=tier, user=user, status=Ticket.Status.ACTIVE)
    newer = Ticket.objects.create(event=event, tier=tier, user=user, status=Ticket.Status.PENDING, guest_name="Bob")

    body = _status(api, event, user)

    assert set(body) == STATUS_KEYS
    assert [ticket["id"] for ticket in body["tickets"]] == [str(newer.id), str(older.id)]
    assert body["tickets"][0]["guest_name"] == "Bob"
    assert body["tickets"][1]["guest_name"] == "Ada Lovelace"
    assert body["tickets"][0]["tier"]["id"] == str(tier.id)
    assert body["tickets"][0]["event"]["id"] == str(event.id)
    assert body["rsvp"] is None
    assert body["remaining_tickets"] == [
        {"tier_id": str(tier.id), "remaining": 3, "sold_out": False, "can_purchase": True}
    ]
    assert body["can_purchase_more"] is True
    assert body["event_remaining"] is None
    assert body["feedback_questionnaires"] == []


def test_ticket_holder_at_the_event_cap_can_buy_no_more(api, orm):
    event = factories.make_event(requires_ticket=True, max_tickets_per_user=1)
    tier = factories.make_tier(event)
    user = factories.make_user()
    Ticket.objects.create(event=event, tier=tier, user=user)

    body = _status(api, event, user)

    assert body["event_remaining"] == 0
    assert body["remaining_tickets"][0]["remaining"] == 0
    assert body["can_purchase_more"] is False


def test_members_only_tier_is_not_purchasable_by_outsiders(api, orm):
    event = factories.make_event(requires_ticket=True, max_tickets_per_user=None)
    public = factories.make_tier(event, display_order=1)
    members = factories.make_tier(event, display_order=2, purchasable_by="members")
    user = factories.make_user()
    Ticket.objects.create(event=event, tier=public, user=user)

    body = _status(api, event, user)

    assert body["remaining_tickets"] == [
        {"tier_id": str(public.id), "remaining": None, "sold_out": False, "can_purchase": True},
        {"tier_id": str(members.id), "remaining": None, "sold_out": False, "can_purchase": False},
    ]


def test_sold_out_tier_is_flagged(api, orm):
    event = factories.make_event(requires_ticket=True, max_tickets_per_user=None)
    tier = factories.make_tier(event, total_quantity=1, quantity_sold=1)
    user = factories.make_user()
    Ticket.objects.create(event=event, tier=tier, user=user)

    body = _status(api, event, user)

    assert body["remaining_tickets"][0]["sold_out"] is True
    assert body["can_purchase_more"] is False


def test_only_cancelled_tickets_still_show_the_status_shape(api, orm):
    event = factories.make_event(requires_ticket=True)
    tier = factories.make_tier(event)
    user = factories.make_user()
    Ticket.objects.create(event=event, tier=tier, user=user, status=Ticket.Status.CANCELLED)

    body = _status(api, event, user)

    assert [ticket["status"] for ticket in body["tickets"]] == ["cancelled"]
    assert body["event_remaining"] == 1
    assert body["can_purchase_more"] is True


def test_full_capped_event_gives_event_is_full(api, orm):
    event = factories.make_event(max_attendees=1, waitlist_open=True)
    EventRSVP.objects.create(event=event, user=factories.make_user(), status=EventRSVP.Status.YES)

    body = _status(api, event, factories.make_user())

    assert set(body) == ELIGIBILITY_KEYS
    assert body["allowed"] is False
    assert body["reason_code"] == "event_is_full"
    assert body["next_step"] == "join_waitlist"
