"""GET /events/{id}/tickets/tiers (docs/api.md, "Tickets"): the tiers a caller sees and may buy."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from backend.models import Event, OrganizationStaff, TicketTier
from tests import factories


@pytest.fixture
def event(orm):
    """A ticket event, deleted afterwards: some tests set tier counters with no tickets behind
    them, which the post-run integrity audit of later load runs would rightly report."""
    event = factories.make_event(requires_ticket=True, max_tickets_per_user=None)
    yield event
    event.delete()


def tiers_path(event) -> str:
    return f"/events/{event.id}/tickets/tiers"


def by_name(response) -> dict:
    return {tier["name"]: tier for tier in response.json()}


def test_tiers_are_a_plain_array_ordered_by_display_order_then_name(api, event):
    factories.make_tier(event, name="b-second", display_order=1)
    factories.make_tier(event, name="c-first", display_order=0)
    factories.make_tier(event, name="a-third", display_order=2)
    factories.make_tier(event, name="a-second", display_order=1)

    response = api.get(tiers_path(event))

    assert response.status_code == 200
    assert [tier["name"] for tier in response.json()] == ["c-first", "a-second", "b-second", "a-third"]


def test_event_without_tiers_lists_nothing(api, event):
    response = api.get(tiers_path(event))

    assert response.status_code == 200
    assert response.json() == []


def test_pwyc_tier_shows_money_as_two_place_strings(api, event):
    tier = factories.make_tier(
        event,
        price=Decimal("10"),
        price_type=TicketTier.PriceType.PWYC,
        pwyc_min=Decimal("5"),
        pwyc_max=Decimal("50"),
        payment_method=TicketTier.PaymentMethod.OFFLINE,
    )

    [data] = api.get(tiers_path(event)).json()

    assert data["id"] == str(tier.id)
    assert data["event_id"] == str(event.id)
    assert (data["price"], data["pwyc_min"], data["pwyc_max"]) == ("10.00", "5.00", "50.00")
    assert (data["price_type"], data["payment_method"], data["currency"]) == ("pwyc", "offline", "EUR")


def test_fixed_tier_has_default_pwyc_min_and_no_pwyc_max(api, event):
    factories.make_tier(event)

    [data] = api.get(tiers_path(event)).json()

    assert (data["price"], data["price_type"], data["pwyc_min"], data["pwyc_max"]) == ("0.00", "fixed", "1.00", None)


def test_total_available_is_total_minus_sold_and_null_when_unlimited(api, event):
    factories.make_tier(event, name="limited", total_quantity=100, quantity_sold=37)
    factories.make_tier(event, name="unlimited", total_quantity=None)

    tiers = by_name(api.get(tiers_path(event)))

    assert tiers["limited"]["total_available"] == 63
    assert tiers["unlimited"]["total_available"] is None


def test_anonymous_caller_may_purchase_only_public_tiers(api, event):
    factories.make_tier(event, name="public")
    factories.make_tier(event, name="members", purchasable_by=TicketTier.PurchasableBy.MEMBERS)

    tiers = by_name(api.get(tiers_path(event)))

    assert tiers["public"]["can_purchase"] is True
    assert tiers["members"]["can_purchase"] is False


def test_members_tier_is_purchasable_by_a_member_but_not_by_another_user(api, event):
    factories.make_tier(event, purchasable_by=TicketTier.PurchasableBy.MEMBERS)
    member, stranger = factories.make_user(), factories.make_user()
    factories.make_member(event.organization, member)

    [as_member] = api.get(tiers_path(event), token=factories.access_token(member)).json()
    [as_stranger] = api.get(tiers_path(event), token=factories.access_token(stranger)).json()

    assert as_member["can_purchase"] is True
    assert as_stranger["can_purchase"] is False


def test_invited_tier_is_purchasable_by_staff_but_not_by_a_member(api, event):
    factories.make_tier(event, purchasable_by=TicketTier.PurchasableBy.INVITED)
    member, staff = factories.make_user(), factories.make_user()
    factories.make_member(event.organization, member)
    OrganizationStaff.objects.create(organization=event.organization, user=staff)

    [as_staff] = api.get(tiers_path(event), token=factories.access_token(staff)).json()
    [as_member] = api.get(tiers_path(event), token=factories.access_token(member)).json()

    assert as_staff["can_purchase"] is True
    assert as_member["can_purchase"] is False


def test_tier_outside_its_sales_window_cannot_be_purchased_by_a_user(api, event):
    now = timezone.now()
    factories.make_tier(event, name="open")
    factories.make_tier(event, name="not yet", sales_start_at=now + timedelta(days=1))
    factories.make_tier(event, name="over", sales_start_at=now - timedelta(days=2), sales_end_at=now - timedelta(1))
    token = factories.access_token(factories.make_user())

    tiers = by_name(api.get(tiers_path(event), token=token))

    purchasable = {name: tier["can_purchase"] for name, tier in tiers.items()}
    assert purchasable == {"open": True, "not yet": False, "over": False}


def test_tiers_of_an_event_the_caller_cannot_see_are_404(api, orm):
    event = factories.make_event(requires_ticket=True, visibility=Event.Visibility.PRIVATE)
    factories.make_tier(event)

    response = api.get(tiers_path(event))

    assert response.status_code == 404


def test_an_invalid_token_is_401_even_though_login_is_optional(api, event):
    response = api.get(tiers_path(event), token="not-a-jwt")

    assert response.status_code == 401
