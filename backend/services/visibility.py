"""Which events a caller may see (docs/api.md, "Events and RSVP").

Anonymous callers see public events that are open or closed. A logged-in user also sees
events of organizations they own, staff or belong to, and events they hold a ticket or an
RSVP for; drafts only as owner or staff. Built from ``Exists`` subqueries so the result
has no duplicate rows and costs one query whatever the data size.
"""

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from backend.models import Event, EventRSVP, OrganizationMember, OrganizationStaff, Ticket, User

LISTED_STATUSES = (Event.Status.OPEN, Event.Status.CLOSED)


def privileged_filter(user: User) -> Q:
    """Events of organizations the user owns or staffs."""
    staff = OrganizationStaff.objects.filter(organization=OuterRef("organization"), user=user)
    return Q(organization__owner=user) | Q(Exists(staff))


def visible_events(user: User | None, include_past: bool = True) -> QuerySet[Event]:
    """Events ``user`` (None = anonymous) may see, with the relations serializers read."""
    public = Q(visibility=Event.Visibility.PUBLIC, status__in=LISTED_STATUSES)
    if user is None:
        condition = public
    else:
        member = OrganizationMember.objects.filter(organization=OuterRef("organization"), user=user)
        ticket = Ticket.objects.filter(event=OuterRef("pk"), user=user)
        rsvp = EventRSVP.objects.filter(event=OuterRef("pk"), user=user)
        related = Q(Exists(member)) | Q(Exists(ticket)) | Q(Exists(rsvp))
        condition = public | privileged_filter(user) | (related & Q(status__in=LISTED_STATUSES))
    events = Event.objects.filter(condition).select_related("organization", "city")
    if not include_past:
        events = events.filter(start__gte=timezone.now())
    return events


def get_visible_event(user: User | None, event_id) -> Event:
    """The event if the caller may see it; raises Event.DoesNotExist (a 404) otherwise."""
    return visible_events(user).get(pk=event_id)
