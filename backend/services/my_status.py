"""What one user holds for one event and what they can do next: my-status (docs/api.md, "Events and RSVP").

The answer has two shapes. A user who has already acted (an RSVP, or live tickets on a ticket
event) gets the *status* shape: tickets, RSVP and how many more tickets each tier allows (a
:class:`Holdings`). Anyone else gets the *eligibility* object, which says what stands between them
and attending (an :class:`~backend.services.eligibility.Eligibility`). The API layer writes either.

Every step is a fixed number of queries: the caller's tickets come in one list query (tiers
joined), per-tier holdings are counted in Python from that list, and the tier list, the
privilege/membership checks and the event's ticket count are one query each. So the cost does
not grow with the number of tickets a user has bought, which on the free-ticket load scenario
grows with every checkout.
"""

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from django.utils import timezone

from backend.models import Event, EventRSVP, Ticket, TicketTier, User
from backend.services.checkout import Buyer, can_purchase
from backend.services.eligibility import Eligibility, check_eligibility

HOLDING = (Ticket.Status.PENDING, Ticket.Status.ACTIVE)


@dataclass(frozen=True)
class TierRemaining:
    """One row of ``remaining_tickets``: how many more the caller may buy from a tier."""

    tier_id: Any
    remaining: int | None
    sold_out: bool
    can_purchase: bool


@dataclass(frozen=True)
class Holdings:
    """The status shape: what a user who has acted holds for an event and what more they may buy.

    ``tickets`` come newest first, each with whether its tier is purchasable for the user now; their
    ``event`` and ``user`` are set, so writing them out queries nothing more.
    """

    tickets: list[tuple[Ticket, bool]]
    rsvp: EventRSVP | None
    can_purchase_more: bool
    remaining: list[TierRemaining]
    event_remaining: int | None


def event_remaining(event: Event, held: int) -> int | None:
    """Tickets the event's per-user cap still allows; None when the event has no cap."""
    if event.max_tickets_per_user is None:
        return None
    return max(0, event.max_tickets_per_user - held)


def remaining_tickets(
    event: Event, tiers: list[TicketTier], buyer: Buyer, held_per_tier: Counter, held: int
) -> list[TierRemaining]:
    """Per tier: the smallest of the tier cap, the event cap and the event's free seats (unset ones ignored)."""
    capacity_left = None
    if event.max_attendees:
        taken = Ticket.objects.filter(event=event).exclude(status=Ticket.Status.CANCELLED).count()
        capacity_left = event.max_attendees - taken
    now = timezone.now()
    rows = []
    for tier in tiers:
        if not can_purchase(tier, buyer, now):
            rows.append(TierRemaining(tier.id, None, False, False))
            continue
        limits = [capacity_left]
        if tier.max_tickets_per_user is not None:
            limits.append(tier.max_tickets_per_user - held_per_tier[tier.id])
        if event.max_tickets_per_user is not None:
            limits.append(event.max_tickets_per_user - held)
        known = [limit for limit in limits if limit is not None]
        remaining = max(0, min(known)) if known else None
        sold_out = tier.total_quantity is not None and tier.quantity_sold >= tier.total_quantity
        rows.append(TierRemaining(tier.id, remaining, sold_out, True))
    return rows


def my_status(user: User, event: Event) -> Holdings | Eligibility:
    """What ``GET /events/{id}/my-status`` answers for ``user`` on a visible ``event`` (docs/api.md)."""
    tickets = list(
        Ticket.objects.filter(event=event, user=user).select_related("tier").order_by("-created_at", "-id")
    )
    held_per_tier = Counter(ticket.tier_id for ticket in tickets if ticket.status in HOLDING)
    held = sum(held_per_tier.values())
    left = event_remaining(event, held)

    has_live_ticket = any(ticket.status != Ticket.Status.CANCELLED for ticket in tickets)
    if not has_live_ticket or not event.requires_ticket:
        rsvp = EventRSVP.objects.filter(event=event, user=user).first()
        if rsvp is not None:
            return Holdings([], rsvp, True, [], left)
        eligibility = check_eligibility(user, event)
        if not eligibility.allowed or not tickets:
            return replace(eligibility, event_remaining=left)
        # Only cancelled tickets, and eligible: show what they may buy again.

    buyer = Buyer(user, event)
    tiers = list(TicketTier.objects.filter(event=event))
    rows = remaining_tickets(event, tiers, buyer, held_per_tier, held)
    purchasable = {row.tier_id: row.can_purchase for row in rows}
    can_purchase_more = any(
        row.can_purchase and not row.sold_out and (row.remaining is None or row.remaining > 0) for row in rows
    )
    for ticket in tickets:
        # Every ticket shares the event and the buyer already in hand: set them, don't join them.
        ticket.event = event
        ticket.user = user
    held_tickets = [(ticket, purchasable.get(ticket.tier_id, False)) for ticket in tickets]
    return Holdings(held_tickets, None, can_purchase_more, rows, left)
