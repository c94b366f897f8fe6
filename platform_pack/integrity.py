"""The platform's data-integrity checks: did the load leave the backend's invariants intact?

Response times say nothing about a backend that oversold a tier or seated more people than an event
holds; races like that only show in the data. ``PERF_AUDIT_CHECKS`` names ``platform_invariants``, which
asks the database, through the ORM, whether the invariants the API promises still hold on the perf
organization's events, and returns a verdict per invariant (``perf.Check``) to print and store
on the run.

Every check is one query or a few aggregate ones (counts plus at most ``EXAMPLES`` offending rows):
tables may hold 100k tickets, and the audit must not load them into Python.
"""

from collections.abc import Callable, Iterable
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery

from backend.models import Event, EventRSVP, Ticket, TicketTier, User
from perf import AuditReport, Check, Facts
from platform_pack.context import VERIFIED_EMAILS
from platform_pack.seeded import ORG_SLUG

EXAMPLES = 5
# Keeps each ``email IN (...)`` below SQLite's smallest bound on query parameters (999).
_EMAIL_CHUNK = 400

# Events to audit: a queryset of events, or event instances / ids; None means all of them.
EventScope = QuerySet | Iterable[Any] | None


def platform_invariants(facts: Facts) -> tuple[Check, ...]:
    """The audit after a ``run_perf`` run: the perf organization's events, which are all the
    scenarios write to, and the accounts the run saw verified. Older inconsistencies elsewhere in
    the database are not this run's doing and would only hide what it did."""
    scope = Event.objects.filter(organization__slug=ORG_SLUG)
    return audit(facts.get(VERIFIED_EMAILS, ()), events=scope).checks


def audit(verified_emails: Iterable[str] = (), events: EventScope = None) -> AuditReport:
    """Check the backend's invariants.

    ``verified_emails`` are the accounts the registration flow saw verified (HTTP 200). ``events``
    narrows the event-bound checks to some events (tests use it: the shared test database holds other
    tests' deliberately broken rows); ``platform_invariants`` passes the perf organization's.
    """
    # Resolved once: a generator of ids would be spent by the first check.
    scope = None if events is None else _event_ids(events)

    def scoped(queryset: QuerySet, field: str) -> QuerySet:
        return queryset if scope is None else queryset.filter(**{f"{field}__in": scope})

    return AuditReport(checks=(
        check_tier_sales(scoped(TicketTier.objects.all(), "event"), Ticket.Status.CANCELLED),
        check_rsvp_capacity(scoped(Event.objects.all(), "pk"), EventRSVP.Status.YES),
        check_duplicate_rsvps(scoped(EventRSVP.objects.all(), "event")),
        check_ticket_tiers(scoped(Ticket.objects.all(), "event"), TicketTier.objects.all()),
        check_verified_emails(verified_emails),
    ))


def check_tier_sales(tiers: QuerySet, cancelled: str) -> Check:
    """A tier's sales counter equals its live (non-cancelled) tickets and never exceeds its size."""
    live = Count("tickets", filter=~Q(tickets__status=cancelled))
    counted = tiers.order_by().annotate(live=live)
    bad = counted.filter(~Q(quantity_sold=F("live")) | Q(total_quantity__isnull=False,
                                                          quantity_sold__gt=F("total_quantity")))
    rows = bad.order_by("pk").values_list("pk", "quantity_sold", "live", "total_quantity")

    def describe(row: tuple) -> str:
        pk, sold, live_count, total = row
        size = "unlimited" if total is None else f"of {total}"
        return f"{pk} sold {sold} {size}, {live_count} live tickets"

    return _verdict("tier_sales", tiers.count(), "tiers", bad.count(), rows[:EXAMPLES], describe,
                    "sales counter off or over the tier's size")


def check_rsvp_capacity(events: QuerySet, yes: str) -> Check:
    """A capped event (max_attendees > 0) never has more YES RSVPs than seats."""
    capped = events.filter(max_attendees__gt=0)
    counted = capped.order_by().annotate(yes_count=Count("rsvps", filter=Q(rsvps__status=yes)))
    bad = counted.filter(yes_count__gt=F("max_attendees"))
    rows = bad.order_by("pk").values_list("pk", "yes_count", "max_attendees")
    return _verdict("rsvp_capacity", capped.count(), "capped events", bad.count(), rows[:EXAMPLES],
                    lambda row: f"{row[0]} has {row[1]} YES for {row[2]} seats", "more YES RSVPs than seats")


def check_duplicate_rsvps(rsvps: QuerySet) -> Check:
    """One RSVP row per (user, event). The unique constraint guarantees it here; a backend without it
    (or with an upsert that races) is what this catches."""
    pairs = rsvps.order_by().values("event_id", "user_id").annotate(rows=Count("pk")).filter(rows__gt=1)
    rows = pairs.order_by("event_id", "user_id").values_list("event_id", "user_id", "rows")
    return _verdict("duplicate_rsvps", rsvps.count(), "RSVPs", pairs.count(), rows[:EXAMPLES],
                    lambda row: f"user {row[1]} on event {row[0]}: {row[2]} rows", "(user, event) pairs with 2+ rows")


def check_ticket_tiers(tickets: QuerySet, tiers: QuerySet) -> Check:
    """Every ticket's tier exists and belongs to the ticket's own event."""
    own_tier = tiers.filter(pk=OuterRef("tier_id"), event_id=OuterRef("event_id"))
    # Typed as the event's primary key, or SQLite hands UUIDs back as bare hex.
    event_pk = tiers.model._meta.get_field("event").target_field
    tier_event = Subquery(tiers.filter(pk=OuterRef("tier_id")).order_by().values("event_id")[:1], output_field=event_pk)
    bad = tickets.order_by().filter(~Exists(own_tier))
    rows = bad.annotate(tier_event=tier_event).order_by("pk").values_list("pk", "event_id", "tier_id", "tier_event")

    def describe(row: tuple) -> str:
        pk, event_id, tier_id, tier_event_id = row
        where = "missing" if tier_event_id is None else f"of event {tier_event_id}"
        return f"ticket {pk} of event {event_id} has tier {tier_id} ({where})"

    return _verdict("ticket_tiers", tickets.count(), "tickets", bad.count(), rows[:EXAMPLES], describe,
                    "tickets whose tier is missing or belongs to another event")


def check_verified_emails(emails: Iterable[str]) -> Check:
    """Every account the API answered 200 to on verification is stored as verified.

    Matching ignores case: the backend stores addresses lowercased, the flow may not have sent them so.
    """
    wanted = sorted({email.lower() for email in emails})
    verified_of: dict[str, bool] = {}
    for start in range(0, len(wanted), _EMAIL_CHUNK):
        chunk = wanted[start:start + _EMAIL_CHUNK]
        # Only the addresses asked about come back: as many rows as the run registered, no more.
        found = User.objects.filter(email__in=chunk).values_list("email", "email_verified")
        verified_of.update((email.lower(), verified) for email, verified in found)
    missing = [email for email in wanted if email not in verified_of]
    unverified = [email for email in wanted if verified_of.get(email) is False]
    if not missing and not unverified:
        return Check("verified_emails", True, f"{len(wanted)} accounts verified")
    parts = []
    if unverified:
        parts.append(f"{len(unverified)} not verified: {_examples(unverified, len(unverified))}")
    if missing:
        parts.append(f"{len(missing)} missing: {_examples(missing, len(missing))}")
    return Check("verified_emails", False, "; ".join(parts) + f" (of {len(wanted)} the API said it verified)")


def _event_ids(events: QuerySet | Iterable[Any]) -> QuerySet | list[Any]:
    if isinstance(events, QuerySet):
        return events.values("pk")
    return [getattr(event, "pk", event) for event in events]


def _verdict(name: str, checked: int, noun: str, bad_count: int, rows: Iterable[tuple],
             describe: Callable[[tuple], str], problem: str) -> Check:
    if not bad_count:
        return Check(name, True, f"{checked} {noun} checked")
    return Check(name, False, f"{bad_count} {problem}: {_examples([describe(row) for row in rows], bad_count)}")


def _examples(items: list[str], total: int) -> str:
    shown = items[:EXAMPLES]
    more = total - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
