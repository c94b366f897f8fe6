"""Selling tickets of one tier (docs/api.md, "Tickets"): the only place tickets are made.

The rules that only read (routing, price range, eligibility, who may buy, caps, names) run
first and without locks, as on the platform. Capacity is then decided on locked rows, the tier
and then, for capped events, the event, and the counters are written while those locks are
held. On PostgreSQL the row locks serialize concurrent checkouts of a tier; on SQLite every
request is an IMMEDIATE transaction, so writers are serialized before any of this runs. Either
way a tier or an event can never be oversold.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, F, Q
from django.utils import timezone

from backend.models import Event, Ticket, TicketTier, User
from backend.money import money
from backend.services.eligibility import NotEligible, check_eligibility, is_active_member, is_privileged
from backend.services.errors import ServiceError

HOLDING_STATUSES = (Ticket.Status.PENDING, Ticket.Status.ACTIVE)
MEMBER_TIERS = (TicketTier.PurchasableBy.MEMBERS, TicketTier.PurchasableBy.INVITED_AND_MEMBERS)


@dataclass(frozen=True)
class TicketRequest:
    """One ticket of the request body: the name printed on it and an (unmodeled) seat."""

    guest_name: str | None = None
    seat_id: uuid.UUID | None = None


@dataclass
class CheckoutResult:
    tickets: list[Ticket]
    reservation_id: uuid.UUID | None
    requires_payment: bool


class Buyer:
    """What the purchase rules need to know about a user and an event, asked at most once each.

    Both facts cost a query, and most tiers are public, so they are looked up only on demand.
    """

    def __init__(self, user: User, event: Event) -> None:
        self.user = user
        self.event = event
        self._privileged: bool | None = None
        self._member: bool | None = None

    @property
    def privileged(self) -> bool:
        if self._privileged is None:
            self._privileged = is_privileged(self.user, self.event)
        return self._privileged

    @property
    def member(self) -> bool:
        if self._member is None:
            self._member = is_active_member(self.user, self.event)
        return self._member


def in_sales_window(tier: TicketTier, now: datetime) -> bool:
    """start ≤ now ≤ end, where a missing bound does not restrict."""
    if tier.sales_start_at and now < tier.sales_start_at:
        return False
    return not (tier.sales_end_at and now > tier.sales_end_at)


def may_buy(tier: TicketTier, buyer: Buyer) -> bool:
    """The tier's purchasable-by rule. Invitations are not modeled, so "invited" admits only
    the organization's owner and staff, who are exempt from the rule."""
    if tier.purchasable_by == TicketTier.PurchasableBy.PUBLIC:
        return True
    if buyer.privileged:
        return True
    return tier.purchasable_by in MEMBER_TIERS and buyer.member


def can_purchase(tier: TicketTier, buyer: Buyer | None, now: datetime) -> bool:
    """The tier list's ``can_purchase`` (docs/api.md, "Tickets"); ``buyer`` None is an anonymous caller."""
    if buyer is None:
        return tier.purchasable_by == TicketTier.PurchasableBy.PUBLIC
    return in_sales_window(tier, now) and may_buy(tier, buyer)


def check_price_routing(tier: TicketTier, pwyc_amount: Decimal | None) -> None:
    """Fixed-price and PWYC tiers each have their own endpoint; a PWYC amount must be in range."""
    is_pwyc = tier.price_type == TicketTier.PriceType.PWYC
    if pwyc_amount is None:
        if is_pwyc:
            raise ServiceError(400, "Use /checkout/pwyc endpoint for pay-what-you-can tickets")
        return
    if not is_pwyc:
        raise ServiceError(400, "This endpoint is only for pay-what-you-can tickets")
    if pwyc_amount < tier.pwyc_min:
        raise ServiceError(400, f"PWYC amount must be at least {money(tier.pwyc_min)}")
    if tier.pwyc_max is not None and pwyc_amount > tier.pwyc_max:
        raise ServiceError(400, f"PWYC amount must be at most {money(tier.pwyc_max)}")


def check_no_seat_twice(requests: list[TicketRequest]) -> None:
    seats = [ticket.seat_id for ticket in requests if ticket.seat_id is not None]
    if len(seats) != len(set(seats)):
        raise ServiceError(400, "The same seat cannot be booked twice.")


def check_user_caps(user: User, event: Event, tier: TicketTier, wanted: int) -> None:
    """Event-wide then per-tier caps on the tickets a user holds (pending or active), one query."""
    if event.max_tickets_per_user is None and tier.max_tickets_per_user is None:
        return
    held = Ticket.objects.filter(event=event, user=user, status__in=HOLDING_STATUSES).aggregate(
        on_event=Count("id"), on_tier=Count("id", filter=Q(tier=tier))
    )
    for cap, count, scope in (
        (event.max_tickets_per_user, held["on_event"], "event"),
        (tier.max_tickets_per_user, held["on_tier"], "tier"),
    ):
        if cap is None or count + wanted <= cap:
            continue
        if count >= cap:
            raise ServiceError(400, f"You have reached the maximum number of tickets for this {scope}.")
        raise ServiceError(400, f"You can only purchase {cap - count} more ticket(s) for this {scope}.")


def check_names(event: Event, requests: list[TicketRequest]) -> None:
    if event.require_ticket_names and any(not ticket.guest_name for ticket in requests):
        raise ServiceError(400, "This event requires a name on every ticket.")


def lock_tier_capacity(tier: TicketTier, wanted: int) -> TicketTier:
    """Lock the tier row and check its remaining stock; returns the locked, fresh row."""
    locked = TicketTier.objects.select_for_update().get(pk=tier.pk)
    if locked.total_quantity is None:
        return locked
    available = locked.total_quantity - locked.quantity_sold
    if available <= 0:
        raise ServiceError(429, "This ticket tier is sold out.")
    if wanted > available:
        raise ServiceError(400, f"Only {available} ticket(s) remaining for this tier.")
    return locked


def lock_event_capacity(event: Event, wanted: int) -> None:
    """For capped events, lock the event row and count the seats taken under that lock.

    Counting alone would not serialize anything (an aggregate cannot be FOR UPDATE); the lock
    on the event row is what makes two checkouts of different tiers wait for each other.
    """
    if not event.max_attendees:
        return
    capacity = Event.objects.select_for_update().values_list("max_attendees", flat=True).get(pk=event.pk)
    if not capacity:
        return
    taken = Ticket.objects.filter(event=event).exclude(status=Ticket.Status.CANCELLED).count()
    available = capacity - taken
    if available <= 0:
        raise ServiceError(429, "This event is sold out.")
    if wanted > available:
        raise ServiceError(400, f"Only {available} spot(s) remaining for this event.")


def write_tickets(
    user: User, event: Event, tier: TicketTier, requests: list[TicketRequest], pwyc_amount: Decimal | None
) -> CheckoutResult:
    """Insert the tickets in the state their payment method implies, then count them as sold."""
    method = tier.payment_method
    price = pwyc_amount if pwyc_amount is not None else tier.price
    if method == TicketTier.PaymentMethod.ONLINE and price == 0:
        # A zero-total online purchase needs no payment: the platform treats it as free.
        method = TicketTier.PaymentMethod.FREE
    status = {
        TicketTier.PaymentMethod.FREE: Ticket.Status.ACTIVE,
        TicketTier.PaymentMethod.AT_THE_DOOR: Ticket.Status.ACTIVE,
        TicketTier.PaymentMethod.OFFLINE: Ticket.Status.PENDING,
        TicketTier.PaymentMethod.ONLINE: Ticket.Status.PENDING,
    }[method]
    price_paid = None if method == TicketTier.PaymentMethod.FREE else price
    tickets = Ticket.objects.bulk_create(
        Ticket(
            event=event,
            tier=tier,
            user=user,
            status=status,
            guest_name=request.guest_name or "",
            price_paid=price_paid,
        )
        for request in requests
    )
    TicketTier.objects.filter(pk=tier.pk).update(quantity_sold=F("quantity_sold") + len(tickets))
    tier.quantity_sold += len(tickets)
    if method == TicketTier.PaymentMethod.ONLINE:
        # Payment would be started by a separate endpoint; the buyer sees the reservation only.
        return CheckoutResult(tickets=[], reservation_id=uuid.uuid4(), requires_payment=True)
    return CheckoutResult(tickets=tickets, reservation_id=None, requires_payment=False)


def checkout(
    user: User,
    event: Event,
    tier: TicketTier,
    requests: list[TicketRequest],
    pwyc_amount: Decimal | None = None,
) -> CheckoutResult:
    """Sell ``len(requests)`` tickets of ``tier`` to ``user``, in the order docs/api.md, "Tickets" lists.

    ``event`` must be visible to the user and ``tier`` one of its tiers (the caller's 404s).
    ``pwyc_amount`` is None on the fixed-price endpoint. Must run inside a transaction, which
    holds the row locks until it commits. Raises :class:`ServiceError` with the contract's status.
    """
    check_price_routing(tier, pwyc_amount)
    eligibility = check_eligibility(user, event)
    if not eligibility.allowed:
        raise NotEligible(eligibility)
    check_no_seat_twice(requests)
    if not may_buy(tier, Buyer(user, event)):
        raise ServiceError(403, "You are not allowed to purchase this ticket tier.")
    if not in_sales_window(tier, timezone.now()):
        raise ServiceError(403, "You're outside of the sale window.")
    wanted = len(requests)
    check_user_caps(user, event, tier, wanted)
    check_names(event, requests)
    locked_tier = lock_tier_capacity(tier, wanted)
    lock_event_capacity(event, wanted)
    return write_tickets(user, event, locked_tier, requests, pwyc_amount)
