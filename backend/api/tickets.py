"""Ticket tiers and the single-tier checkouts (docs/api.md, "Tickets").

The views check the request's shape (422, as the platform's schemas do before its handlers
run) and find the event and tier (404); the selling rules live in
:mod:`backend.services.checkout`.
"""

import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.urls import path
from django.utils import timezone

from backend.api.base import api_view, json_body, validation_error
from backend.api.serializers import ticket_data, tier_data
from backend.models import TicketTier
from backend.services.checkout import Buyer, CheckoutResult, TicketRequest, can_purchase, checkout
from backend.services.visibility import get_visible_event

BODY = ["body", "payload"]
GUEST_NAME_MAX = 255
# The price columns: 10 digits, 2 of them decimals.
PRICE_MAX_DIGITS = 10
PRICE_PLACES = 2


@transaction.non_atomic_requests
@api_view(["GET"], auth="optional")
def ticket_tiers(request: HttpRequest, event_id: uuid.UUID) -> list[dict[str, Any]]:
    """The event's tiers with ``can_purchase`` for the caller: three or four queries at any size."""
    user = request.api_user
    event = get_visible_event(user, event_id)
    tiers = TicketTier.objects.filter(event=event).order_by("display_order", "name")
    buyer = Buyer(user, event) if user else None
    now = timezone.now()
    return [tier_data(tier, can_purchase(tier, buyer, now)) for tier in tiers]


def _optional_uuid(value: Any, loc: list) -> uuid.UUID | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise validation_error(loc, "UUID input should be a string, bytes or UUID object", "uuid_type")
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise validation_error(loc, "Input should be a valid UUID", "uuid_parsing") from exc


def _guest_name(value: Any, loc: list) -> str | None:
    """Trimmed, blank becomes None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise validation_error(loc, "Input should be a valid string", "string_type")
    value = value.strip()
    if len(value) > GUEST_NAME_MAX:
        raise validation_error(loc, f"String should have at most {GUEST_NAME_MAX} characters", "string_too_long")
    return value or None


def parse_tickets(body: dict[str, Any]) -> list[TicketRequest]:
    """The ``tickets`` list (at least one) plus the optional fields we accept but do not use."""
    for name, kind, type_, python_type in (
        ("discount_code", "string", "string_type", str),
        ("billing_info", "dictionary", "dict_type", dict),
        ("accessible_required", "boolean", "bool_type", bool),
    ):
        value = body.get(name)
        if value is not None and not isinstance(value, python_type):
            raise validation_error([*BODY, name], f"Input should be a valid {kind}", type_)
    _optional_uuid(body.get("price_category_id"), [*BODY, "price_category_id"])
    if "tickets" not in body:
        raise validation_error([*BODY, "tickets"], "Field required", "missing")
    items = body["tickets"]
    if not isinstance(items, list):
        raise validation_error([*BODY, "tickets"], "Input should be a valid list", "list_type")
    if not items:
        raise validation_error(
            [*BODY, "tickets"], "List should have at least 1 item after validation, not 0", "too_short"
        )
    tickets = []
    for index, item in enumerate(items):
        loc = [*BODY, "tickets", index]
        if not isinstance(item, dict):
            raise validation_error(loc, "Input should be a valid dictionary", "dict_type")
        tickets.append(
            TicketRequest(
                guest_name=_guest_name(item.get("guest_name"), [*loc, "guest_name"]),
                seat_id=_optional_uuid(item.get("seat_id"), [*loc, "seat_id"]),
            )
        )
    return tickets


def parse_price(body: dict[str, Any]) -> Decimal:
    """``price_per_ticket``: a decimal string or number, at least 1, fitting the price column."""
    loc = [*BODY, "price_per_ticket"]
    if "price_per_ticket" not in body:
        raise validation_error(loc, "Field required", "missing")
    value = body["price_per_ticket"]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise validation_error(loc, "Decimal input should be an integer, float or string", "decimal_type")
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise validation_error(loc, "Input should be a valid decimal", "decimal_parsing") from exc
    if not price.is_finite():
        raise validation_error(loc, "Input should be a finite number", "finite_number")
    if price < 1:
        raise validation_error(loc, "Input should be greater than or equal to 1", "greater_than_equal")
    exponent = price.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -PRICE_PLACES:
        raise validation_error(
            loc, f"Decimal input should have no more than {PRICE_PLACES} decimal places", "decimal_max_places"
        )
    if price >= Decimal(10) ** (PRICE_MAX_DIGITS - PRICE_PLACES):
        raise validation_error(
            loc, f"Decimal input should have no more than {PRICE_MAX_DIGITS} digits in total", "decimal_max_digits"
        )
    return price


def checkout_response(result: CheckoutResult) -> dict[str, Any]:
    return {
        "checkout_url": None,
        "tickets": [ticket_data(ticket) for ticket in result.tickets],
        "reservation_id": str(result.reservation_id) if result.reservation_id else None,
        "requires_payment": result.requires_payment,
    }


def _checkout(request: HttpRequest, event_id: uuid.UUID, tier_id: uuid.UUID, pwyc: bool) -> dict[str, Any]:
    body = json_body(request)
    tickets = parse_tickets(body)
    amount = parse_price(body) if pwyc else None
    user = request.api_user
    event = get_visible_event(user, event_id)
    tier = TicketTier.objects.get(pk=tier_id, event=event)
    return checkout_response(checkout(user, event, tier, tickets, amount))


@api_view(["POST"], auth="required")
def checkout_fixed(request: HttpRequest, event_id: uuid.UUID, tier_id: uuid.UUID) -> dict[str, Any]:
    """Deprecated on the platform but what the load test calls (docs/api.md, "Tickets")."""
    return _checkout(request, event_id, tier_id, pwyc=False)


@api_view(["POST"], auth="required")
def checkout_pwyc(request: HttpRequest, event_id: uuid.UUID, tier_id: uuid.UUID) -> dict[str, Any]:
    """The same with one pay-what-you-can price for every ticket (docs/api.md, "Tickets")."""
    return _checkout(request, event_id, tier_id, pwyc=True)


urlpatterns = [
    path("events/<uuid:event_id>/tickets/tiers", ticket_tiers),
    path("events/<uuid:event_id>/tickets/<uuid:tier_id>/checkout", checkout_fixed),
    path("events/<uuid:event_id>/tickets/<uuid:tier_id>/checkout/pwyc", checkout_pwyc),
]
