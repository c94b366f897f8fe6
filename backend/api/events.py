"""Event discovery, detail, my-status and RSVP (docs/api.md, "Events and RSVP").

Reading views are ``non_atomic_requests``: under ATOMIC_REQUESTS every request would otherwise
open a transaction, and on SQLite (IMMEDIATE mode) that takes the single write lock, so pure
reads would queue behind every writer. The RSVP view writes and stays atomic.
"""

from typing import Any
from uuid import UUID

from django.db import transaction
from django.db.models import Case, Count, IntegerField, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import path

from backend.api.base import api_view, json_body, validation_error
from backend.api.pagination import paginate
from backend.api.serializers import event_detail, event_in_list, my_status_data, rsvp_status_data
from backend.models import Event, EventRSVP, Ticket
from backend.services.my_status import my_status
from backend.services.rsvp import ANSWERS, MAX_NOTE_LENGTH, rsvp
from backend.services.visibility import get_visible_event, visible_events

TRUE_WORDS = {"true", "1", "yes", "on", "t", "y"}
FALSE_WORDS = {"false", "0", "no", "off", "f", "n"}


def _count_of(rows: QuerySet) -> Subquery:
    """A correlated COUNT(*) over ``rows`` (filtered on ``OuterRef("pk")``), 0 when there are none."""
    counted = rows.order_by().values("event").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def with_attendee_count(events: QuerySet[Event]) -> QuerySet[Event]:
    """Annotate ``attendees``: non-cancelled tickets on ticket events, YES RSVPs otherwise.

    Correlated subqueries rather than joins, so the two counts cannot multiply each other
    and a whole page is counted in the same single query that loads it.
    """
    tickets = Ticket.objects.filter(event=OuterRef("pk")).exclude(status=Ticket.Status.CANCELLED)
    yes = EventRSVP.objects.filter(event=OuterRef("pk"), status=EventRSVP.Status.YES)
    return events.annotate(
        attendees=Case(
            When(requires_ticket=True, then=_count_of(tickets)),
            default=_count_of(yes),
            output_field=IntegerField(),
        )
    )


def _flag(request: HttpRequest, name: str) -> bool | None:
    """A boolean query parameter as pydantic reads one; None when absent."""
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return None
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    message = "Input should be a valid boolean, unable to interpret input"
    raise validation_error(["query", name], message, "bool_parsing")


def _serialize_page(events: list[Event]) -> list[dict[str, Any]]:
    return [event_in_list(event, event.attendees) for event in events]


@transaction.non_atomic_requests
@api_view(["GET"], auth="optional")
def event_list(request: HttpRequest) -> dict[str, Any]:
    """Upcoming events the caller may see, soonest first (no caller location here, so no distance order)."""
    events = visible_events(request.api_user, include_past=bool(_flag(request, "include_past")))
    search = request.GET.get("search", "").strip()
    if search:
        events = events.filter(name__icontains=search)
    org_slug = request.GET.get("organization_slug", "").strip()
    if org_slug:
        events = events.filter(organization__slug=org_slug)
    requires_ticket = _flag(request, "requires_ticket")
    if requires_ticket is not None:
        events = events.filter(requires_ticket=requires_ticket)
    return paginate(request, with_attendee_count(events).order_by("start", "id"), _serialize_page)


@transaction.non_atomic_requests
@api_view(["GET"], auth="optional")
def event_by_id(request: HttpRequest, event_id: UUID) -> dict[str, Any]:
    event = with_attendee_count(visible_events(request.api_user)).get(pk=event_id)
    return event_detail(event, event.attendees)


@transaction.non_atomic_requests
@api_view(["GET"], auth="optional")
def event_by_slug(request: HttpRequest, org_slug: str, event_slug: str) -> dict[str, Any]:
    events = with_attendee_count(visible_events(request.api_user))
    event = events.get(organization__slug=org_slug, slug=event_slug)
    return event_detail(event, event.attendees)


@transaction.non_atomic_requests
@api_view(["GET"], auth="required")
def event_my_status(request: HttpRequest, event_id: UUID) -> dict[str, Any]:
    event = get_visible_event(request.api_user, event_id)
    return my_status_data(my_status(request.api_user, event))


def _note(request: HttpRequest) -> str:
    """The optional ``{"note": ...}`` body; no body or a null note reads as "" (which clears the note)."""
    note = json_body(request).get("note")
    if note is None:
        return ""
    if not isinstance(note, str):
        raise validation_error(["body", "payload", "note"], "Input should be a valid string", "string_type")
    if len(note) > MAX_NOTE_LENGTH:
        raise validation_error(
            ["body", "payload", "note"], f"String should have at most {MAX_NOTE_LENGTH} characters", "string_too_long"
        )
    return note


@api_view(["POST"], auth="required")
def event_rsvp(request: HttpRequest, event_id: UUID, answer: str) -> dict[str, Any]:
    if answer not in ANSWERS:
        raise validation_error(["path", "answer"], "Input should be 'yes', 'no' or 'maybe'", "enum")
    note = _note(request)
    event = get_visible_event(request.api_user, event_id)
    return rsvp_status_data(rsvp(request.api_user, event, answer, note))


urlpatterns = [
    path("events/", event_list, name="event_list"),
    path("events/<uuid:event_id>", event_by_id, name="event_detail"),
    path("events/<slug:org_slug>/event/<slug:event_slug>", event_by_slug, name="event_detail_by_slug"),
    path("events/<uuid:event_id>/my-status", event_my_status, name="event_my_status"),
    path("events/<uuid:event_id>/rsvp/<str:answer>", event_rsvp, name="event_rsvp"),
]
