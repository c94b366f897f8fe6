"""POST .../tickets/{tier_id}/checkout and .../checkout/pwyc (docs/api.md, "Tickets")."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from backend.models import (
    Event,
    OrganizationQuestionnaire,
    Questionnaire,
    Ticket,
    TicketTier,
)
from tests import factories

ONE_TICKET = {"tickets": [{"guest_name": "Ada Lovelace"}]}


@pytest.fixture
def event(orm):
    """A ticket event, deleted afterwards: some tests set tier counters with no tickets behind
    them, which the post-run integrity audit of later load runs would rightly report."""
    event = factories.make_event(requires_ticket=True, max_tickets_per_user=None)
    yield event
    event.delete()


@pytest.fixture
def free_tier(event):
    return factories.make_tier(event, total_quantity=100)


@pytest.fixture
def pwyc_tier(event):
    return factories.make_tier(
        event,
        price=Decimal("10"),
        price_type=TicketTier.PriceType.PWYC,
        pwyc_min=Decimal("5"),
        pwyc_max=Decimal("50"),
        payment_method=TicketTier.PaymentMethod.OFFLINE,
    )


@pytest.fixture
def token(orm):
    return factories.access_token(factories.make_user())


def checkout_path(tier, event=None) -> str:
    return f"/events/{(event or tier.event).id}/tickets/{tier.id}/checkout"


def pwyc_path(tier, event=None) -> str:
    return checkout_path(tier, event) + "/pwyc"


def buy(api, tier, token, body=None, **fields):
    """One fixed-price checkout of ``tier`` with a valid body unless told otherwise."""
    return api.post(checkout_path(tier), token=token, json=body if body is not None else {**ONE_TICKET, **fields})


def buy_pwyc(api, tier, token, price="23.17"):
    return api.post(pwyc_path(tier), token=token, json={**ONE_TICKET, "price_per_ticket": price})


# Success


def test_free_checkout_answers_active_tickets_without_payment(api, free_tier, token):
    response = buy(api, free_tier, token)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"checkout_url", "tickets", "reservation_id", "requires_payment"}
    assert (body["checkout_url"], body["reservation_id"], body["requires_payment"]) == (None, None, False)
    [ticket] = body["tickets"]
    assert (ticket["status"], ticket["price_paid"], ticket["guest_name"]) == ("active", None, "Ada Lovelace")
    assert ticket["tier"]["id"] == str(free_tier.id)
    assert ticket["event"]["id"] == str(free_tier.event_id)


def test_free_checkout_stores_the_ticket_and_counts_it_sold(api, free_tier, token):
    response = buy(api, free_tier, token)

    ticket = Ticket.objects.get(pk=response.json()["tickets"][0]["id"])
    assert (ticket.status, ticket.tier_id, ticket.guest_name) == (Ticket.Status.ACTIVE, free_tier.id, "Ada Lovelace")
    free_tier.refresh_from_db()
    assert free_tier.quantity_sold == 1


def test_several_tickets_in_one_checkout_are_all_created_and_counted(api, free_tier, token):
    response = buy(api, free_tier, token, tickets=[{"guest_name": "A"}, {"guest_name": "B"}, {"guest_name": "C"}])

    assert response.status_code == 200
    assert sorted(t["guest_name"] for t in response.json()["tickets"]) == ["A", "B", "C"]
    free_tier.refresh_from_db()
    assert free_tier.quantity_sold == 3
    assert Ticket.objects.filter(tier=free_tier).count() == 3


def test_pwyc_checkout_on_an_offline_tier_is_pending_at_the_chosen_price(api, pwyc_tier, token):
    response = buy_pwyc(api, pwyc_tier, token, price="23.17")

    assert response.status_code == 200
    [ticket] = response.json()["tickets"]
    assert (ticket["status"], ticket["price_paid"]) == ("pending", "23.17")
    assert Ticket.objects.get(pk=ticket["id"]).price_paid == Decimal("23.17")
    pwyc_tier.refresh_from_db()
    assert pwyc_tier.quantity_sold == 1


def test_pwyc_price_may_be_a_json_number(api, pwyc_tier, token):
    response = buy_pwyc(api, pwyc_tier, token, price=12.5)

    assert response.status_code == 200
    assert response.json()["tickets"][0]["price_paid"] == "12.50"


def test_offline_fixed_price_ticket_is_pending_at_the_tier_price(api, event, token):
    tier = factories.make_tier(event, payment_method=TicketTier.PaymentMethod.OFFLINE, price=Decimal("15"))

    [ticket] = buy(api, tier, token).json()["tickets"]

    assert (ticket["status"], ticket["price_paid"]) == ("pending", "15.00")


def test_at_the_door_ticket_is_active(api, event, token):
    tier = factories.make_tier(event, payment_method=TicketTier.PaymentMethod.AT_THE_DOOR, price=Decimal("15"))

    [ticket] = buy(api, tier, token).json()["tickets"]

    assert ticket["status"] == "active"


def test_online_checkout_returns_a_reservation_and_no_tickets(api, event, token):
    tier = factories.make_tier(event, payment_method=TicketTier.PaymentMethod.ONLINE, price=Decimal("15"))

    body = buy(api, tier, token).json()

    assert (body["tickets"], body["requires_payment"]) == ([], True)
    uuid.UUID(body["reservation_id"])
    assert Ticket.objects.get(tier=tier).status == Ticket.Status.PENDING


def test_guest_name_is_trimmed(api, free_tier, token):
    [ticket] = buy(api, free_tier, token, tickets=[{"guest_name": "  Grace Hopper  "}]).json()["tickets"]

    assert Ticket.objects.get(pk=ticket["id"]).guest_name == "Grace Hopper"


def test_blank_guest_name_falls_back_to_the_buyer_when_names_are_optional(api, orm):
    event = factories.make_event(requires_ticket=True, max_tickets_per_user=None, require_ticket_names=False)
    tier = factories.make_tier(event)
    user = factories.make_user(first_name="Alan", last_name="Turing")

    response = buy(api, tier, factories.access_token(user), tickets=[{"guest_name": "   ", "seat_id": None}])

    assert response.status_code == 200
    assert response.json()["tickets"][0]["guest_name"] == "Alan Turing"


# Request shape: 401, 422, 404


def test_checkout_without_a_token_is_401(api, free_tier):
    response = buy(api, free_tier, None)

    assert response.status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"tickets": []},
        {"tickets": "one"},
        {"tickets": ["Ada"]},
        {"tickets": [{"guest_name": "x" * 256}]},
        {"tickets": [{"guest_name": 7}]},
        {"tickets": [{"guest_name": "Ada", "seat_id": "not-a-uuid"}]},
    ],
    ids=["no tickets", "empty list", "not a list", "not an object", "name too long", "name not a string", "bad seat"],
)
def test_malformed_checkout_body_is_422(api, free_tier, token, body):
    response = buy(api, free_tier, token, body=body)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:3] == ["body", "payload", "tickets"]


@pytest.mark.parametrize("price", ["0.99", 0, "abc", None, "5.001"], ids=["below one", "zero", "text", "null", "3dp"])
def test_malformed_pwyc_price_is_422(api, pwyc_tier, token, price):
    response = buy_pwyc(api, pwyc_tier, token, price=price)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "payload", "price_per_ticket"]


def test_missing_pwyc_price_is_422(api, pwyc_tier, token):
    response = api.post(pwyc_path(pwyc_tier), token=token, json=ONE_TICKET)

    assert response.status_code == 422


def test_checkout_on_an_event_the_user_cannot_see_is_404(api, orm, token):
    event = factories.make_event(requires_ticket=True, visibility=Event.Visibility.PRIVATE)
    tier = factories.make_tier(event)

    response = buy(api, tier, token)

    assert response.status_code == 404


def test_checkout_of_a_tier_of_another_event_is_404(api, free_tier, token, orm):
    other_event = factories.make_event(requires_ticket=True)

    response = api.post(checkout_path(free_tier, event=other_event), token=token, json=ONE_TICKET)

    assert response.status_code == 404


# Routing and PWYC range


def test_pwyc_tier_on_the_fixed_price_endpoint_is_400(api, pwyc_tier, token):
    response = buy(api, pwyc_tier, token)

    assert response.status_code == 400
    assert response.json() == {"detail": "Use /checkout/pwyc endpoint for pay-what-you-can tickets"}


def test_fixed_tier_on_the_pwyc_endpoint_is_400(api, free_tier, token):
    response = buy_pwyc(api, free_tier, token)

    assert response.status_code == 400
    assert response.json() == {"detail": "This endpoint is only for pay-what-you-can tickets"}


def test_pwyc_price_below_the_tier_minimum_is_400(api, pwyc_tier, token):
    response = buy_pwyc(api, pwyc_tier, token, price="4.99")

    assert response.status_code == 400
    assert response.json() == {"detail": "PWYC amount must be at least 5.00"}


def test_pwyc_price_above_the_tier_maximum_is_400(api, pwyc_tier, token):
    response = buy_pwyc(api, pwyc_tier, token, price="50.01")

    assert response.status_code == 400
    assert response.json() == {"detail": "PWYC amount must be at most 50.00"}


def test_pwyc_range_is_checked_before_eligibility(api, orm, token):
    event = factories.make_event(requires_ticket=True, status=Event.Status.CLOSED)
    tier = factories.make_tier(event, price_type=TicketTier.PriceType.PWYC, pwyc_min=Decimal("5"))

    response = buy_pwyc(api, tier, token, price="2.00")

    assert response.json() == {"detail": "PWYC amount must be at least 5.00"}


# Eligibility


def test_questionnaire_gated_event_refuses_with_the_eligibility_object(api, event, free_tier, token):
    questionnaire = Questionnaire.objects.create(name=factories.unique("q"), status=Questionnaire.Status.PUBLISHED)
    link = OrganizationQuestionnaire.objects.create(organization=event.organization, questionnaire=questionnaire)
    link.events.add(event)

    response = buy(api, free_tier, token)

    assert response.status_code == 400
    body = response.json()
    assert (body["allowed"], body["reason_code"]) == (False, "questionnaire_missing")
    assert body["questionnaires_missing"] == [str(questionnaire.id)]
    assert "detail" not in body


def test_full_event_refuses_with_event_is_full(api, orm, token):
    event = factories.make_event(requires_ticket=True, max_attendees=1, max_tickets_per_user=None)
    tier = factories.make_tier(event)
    Ticket.objects.create(event=event, tier=tier, user=factories.make_user())

    response = buy(api, tier, token)

    assert response.status_code == 400
    assert response.json()["reason_code"] == "event_is_full"


# Who may buy, and when


def test_members_tier_is_403_for_a_non_member(api, event, token):
    tier = factories.make_tier(event, purchasable_by=TicketTier.PurchasableBy.MEMBERS)

    response = buy(api, tier, token)

    assert response.status_code == 403


def test_members_tier_is_sold_to_a_member(api, event):
    tier = factories.make_tier(event, purchasable_by=TicketTier.PurchasableBy.INVITED_AND_MEMBERS)
    member = factories.make_user()
    factories.make_member(event.organization, member)

    response = buy(api, tier, factories.access_token(member))

    assert response.status_code == 200


def test_invited_tier_is_403_for_a_member_but_sold_to_the_owner(api, event):
    tier = factories.make_tier(event, purchasable_by=TicketTier.PurchasableBy.INVITED)
    member = factories.make_user()
    factories.make_member(event.organization, member)

    as_member = buy(api, tier, factories.access_token(member))
    as_owner = buy(api, tier, factories.access_token(event.organization.owner))

    assert (as_member.status_code, as_owner.status_code) == (403, 200)


@pytest.mark.parametrize("window", ["not started", "ended"])
def test_checkout_outside_the_sales_window_is_403(api, event, token, window):
    now = timezone.now()
    factories.make_tier(event)  # keeps the event's "tickets on sale" gate open
    bounds = (
        {"sales_start_at": now + timedelta(days=1)}
        if window == "not started"
        else {"sales_start_at": now - timedelta(days=2), "sales_end_at": now - timedelta(days=1)}
    )
    tier = factories.make_tier(event, **bounds)

    response = buy(api, tier, token)

    assert response.status_code == 403
    assert response.json() == {"detail": "You're outside of the sale window."}


# Per-user caps and names


def test_second_ticket_beyond_the_event_cap_is_400(api, orm, token):
    event = factories.make_event(requires_ticket=True, max_tickets_per_user=1)
    tier = factories.make_tier(event)
    assert buy(api, tier, token).status_code == 200

    response = buy(api, tier, token)

    assert response.status_code == 400
    assert response.json() == {"detail": "You have reached the maximum number of tickets for this event."}


def test_more_tickets_than_the_tier_cap_allows_is_400(api, event, token):
    tier = factories.make_tier(event, max_tickets_per_user=2)
    assert buy(api, tier, token).status_code == 200

    response = buy(api, tier, token, tickets=[{"guest_name": "A"}, {"guest_name": "B"}])

    assert response.status_code == 400
    assert response.json() == {"detail": "You can only purchase 1 more ticket(s) for this tier."}
    assert Ticket.objects.filter(tier=tier).count() == 1


def test_cancelled_tickets_do_not_count_towards_the_cap(api, orm):
    event = factories.make_event(requires_ticket=True, max_tickets_per_user=1)
    tier = factories.make_tier(event)
    user = factories.make_user()
    Ticket.objects.create(event=event, tier=tier, user=user, status=Ticket.Status.CANCELLED)

    response = buy(api, tier, factories.access_token(user))

    assert response.status_code == 200


def test_missing_guest_name_is_400_when_the_event_requires_names(api, free_tier, token):
    response = buy(api, free_tier, token, tickets=[{"guest_name": "Ada"}, {"guest_name": None}])

    assert response.status_code == 400
    assert response.json() == {"detail": "This event requires a name on every ticket."}


# Capacity


def test_sold_out_tier_is_429(api, event, token):
    tier = factories.make_tier(event, total_quantity=5, quantity_sold=5)
    factories.make_tier(event)  # another tier keeps the event on sale

    response = buy(api, tier, token)

    assert response.status_code == 429
    assert response.json() == {"detail": "This ticket tier is sold out."}


def test_asking_for_more_than_the_tier_has_left_is_400_and_sells_nothing(api, event, token):
    tier = factories.make_tier(event, total_quantity=5, quantity_sold=3)

    response = buy(api, tier, token, tickets=[{"guest_name": name} for name in "ABC"])

    assert response.status_code == 400
    assert response.json() == {"detail": "Only 2 ticket(s) remaining for this tier."}
    tier.refresh_from_db()
    assert tier.quantity_sold == 3
    assert not Ticket.objects.filter(tier=tier).exists()


def test_asking_for_more_than_the_event_has_left_is_400(api, orm, token):
    event = factories.make_event(requires_ticket=True, max_attendees=3, max_tickets_per_user=None)
    tier = factories.make_tier(event)
    Ticket.objects.create(event=event, tier=tier, user=factories.make_user())

    response = buy(api, tier, token, tickets=[{"guest_name": name} for name in "ABC"])

    assert response.status_code == 400
    assert response.json() == {"detail": "Only 2 spot(s) remaining for this event."}
