"""RSVP to an RSVP-only event (docs/api.md, "Events and RSVP").

Capacity must hold under any concurrency: a *new* YES on a capped event locks the event row
and counts YES RSVPs while holding it, so concurrent claimants queue on that lock and each sees
the seats the previous ones took. The lock lives until the request's transaction commits
(ATOMIC_REQUESTS). No/maybe never claim a seat and uncapped events take no lock at all, so the
hot, uncapped path stays lock-free.

Runs inside the request's transaction; refusals raise :class:`ServiceError` before anything is written.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from backend.models import Event, EventRSVP, User
from backend.services.eligibility import NotEligible, check_eligibility, refusal
from backend.services.errors import ServiceError

ANSWERS = tuple(EventRSVP.Status.values)
MAX_NOTE_LENGTH = 500


def rsvp(user: User, event: Event, answer: str, note: str = "") -> EventRSVP:
    """Record ``answer`` (yes/no/maybe) for ``user``; raise ServiceError (400) when refused."""
    if event.requires_ticket:
        raise NotEligible(
            refusal(event, "You must get a ticket for this event.", "requires_ticket", "purchase_ticket")
        )
    existing = EventRSVP.objects.filter(event=event, user=user).first()
    if note and not event.accept_rsvp_notes and note != (existing.note if existing else ""):
        raise ServiceError(400, "This event does not accept RSVP notes.")
    # A YES holder may always change their mind (or repeat themselves), whatever the gates say now.
    if existing is None or existing.status != EventRSVP.Status.YES:
        claims_seat = answer == EventRSVP.Status.YES
        eligibility = check_eligibility(user, event, claims_seat=claims_seat)
        if not eligibility.allowed:
            raise NotEligible(eligibility)
        if claims_seat and event.max_attendees > 0:
            claim_seat(user, event)
    return upsert(user, event, answer, note)


def claim_seat(user: User, event: Event) -> None:
    """The authoritative capacity check for a new YES: count taken seats under the event-row lock."""
    locked = Event.objects.select_for_update().get(pk=event.pk)
    taken = EventRSVP.objects.filter(event_id=event.pk, status=EventRSVP.Status.YES).exclude(user=user).count()
    if locked.max_attendees and taken >= locked.max_attendees:
        next_step = "join_waitlist" if locked.waitlist_open else None
        raise NotEligible(refusal(event, "This event is full.", "event_is_full", next_step))


def upsert(user: User, event: Event, answer: str, note: str) -> EventRSVP:
    """Insert or update the unique (event, user) row.

    Two first RSVPs of one account can race to insert; the loser's insert fails on the unique
    constraint inside its savepoint, and it then updates the row the winner wrote instead of
    answering an error.
    """
    try:
        with transaction.atomic():
            row, _ = EventRSVP.objects.update_or_create(
                event=event, user=user, defaults={"status": answer, "note": note}
            )
            return row
    except IntegrityError:
        with transaction.atomic():
            EventRSVP.objects.filter(event=event, user=user).update(
                status=answer, note=note, updated_at=timezone.now()
            )
            return EventRSVP.objects.get(event=event, user=user)
