"""What a user's dashboard lists (docs/api.md, "Dashboard"), as querysets.

Relations are tested with ``Exists`` subqueries rather than joins, so a user who is both a
member and a ticket holder of an event still gets one row; counts come from correlated
subqueries, so a page costs the same few queries however many tickets or RSVPs exist.
"""

from datetime import datetime

from django.db.models import Case, Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from backend.models import Event, EventRSVP, Organization, OrganizationMember, OrganizationStaff, Ticket, User
from backend.services.visibility import privileged_filter, visible_events


def start_of_today() -> datetime:
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


def with_attendee_count(events: QuerySet[Event]) -> QuerySet[Event]:
    """Annotate ``attendee_count``: non-cancelled tickets on ticket events, YES RSVPs otherwise."""
    tickets = (
        Ticket.objects.filter(event=OuterRef("pk"))
        .exclude(status=Ticket.Status.CANCELLED)
        .order_by()
        .values("event")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rsvps = (
        EventRSVP.objects.filter(event=OuterRef("pk"), status=EventRSVP.Status.YES)
        .order_by()
        .values("event")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return events.annotate(
        attendee_count=Case(
            When(requires_ticket=True, then=Coalesce(Subquery(tickets), Value(0))),
            default=Coalesce(Subquery(rsvps), Value(0)),
            output_field=IntegerField(),
        )
    )


def dashboard_events(user: User, include_past: bool = False, search: str = "") -> QuerySet[Event]:
    """Visible events the user relates to: owner, staff, member, RSVP yes/maybe, or any ticket."""
    member = OrganizationMember.objects.filter(organization=OuterRef("organization"), user=user)
    rsvp = EventRSVP.objects.filter(
        event=OuterRef("pk"), user=user, status__in=[EventRSVP.Status.YES, EventRSVP.Status.MAYBE]
    )
    ticket = Ticket.objects.filter(event=OuterRef("pk"), user=user)
    related = privileged_filter(user) | Q(Exists(member)) | Q(Exists(rsvp)) | Q(Exists(ticket))
    events = visible_events(user).filter(related)
    if not include_past:
        events = events.filter(start__gte=start_of_today())
    if search:
        events = events.filter(Q(name__icontains=search) | Q(organization__name__icontains=search))
    return with_attendee_count(events).order_by("start", "id")


def dashboard_organizations(user: User, search: str = "") -> QuerySet[Organization]:
    """Organizations the user owns, staffs or belongs to (a membership row of any status)."""
    staff = OrganizationStaff.objects.filter(organization=OuterRef("pk"), user=user)
    member = OrganizationMember.objects.filter(organization=OuterRef("pk"), user=user)
    orgs = Organization.objects.filter(Q(owner=user) | Q(Exists(staff)) | Q(Exists(member)))
    if search:
        orgs = orgs.filter(Q(name__icontains=search) | Q(description__icontains=search))
    return orgs.select_related("city").order_by("name", "id")


def dashboard_tickets(
    user: User, include_past: bool = False, search: str = "", statuses: list[str] | None = None
) -> QuerySet[Ticket]:
    """The user's tickets, newest first; only for events not yet ended unless ``include_past``."""
    tickets = Ticket.objects.filter(user=user)
    if not include_past:
        tickets = tickets.filter(event__end__gt=timezone.now())
    if statuses:
        tickets = tickets.filter(status__in=statuses)
    if search:
        tickets = tickets.filter(Q(event__name__icontains=search) | Q(tier__name__icontains=search))
    return tickets.select_related("tier", "event__city", "user").order_by("-created_at", "-id")


def dashboard_rsvps(
    user: User, include_past: bool = False, search: str = "", statuses: list[str] | None = None
) -> QuerySet[EventRSVP]:
    """The user's RSVPs of any answer, newest first; only for events not yet ended unless ``include_past``."""
    rsvps = EventRSVP.objects.filter(user=user)
    if not include_past:
        rsvps = rsvps.filter(event__end__gt=timezone.now())
    if statuses:
        rsvps = rsvps.filter(status__in=statuses)
    if search:
        rsvps = rsvps.filter(event__name__icontains=search)
    return rsvps.select_related("event__city").order_by("-created_at", "-id")
