"""The logged-in user's dashboard (docs/api.md, "Dashboard"): four read-only paginated lists.

Each page is three queries whatever the data size (the Bearer user, the count, the page);
the views run outside the request transaction because they only read.
"""

from django.db import transaction
from django.http import HttpRequest
from django.urls import path

from backend.api import serializers
from backend.api.base import api_view, validation_error
from backend.api.pagination import paginate
from backend.models import EventRSVP, Ticket
from backend.services import dashboard

TRUE = {"true", "1", "yes", "on"}
FALSE = {"false", "0", "no", "off"}


def bool_param(request: HttpRequest, name: str, default: bool = False) -> bool:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in TRUE:
        return True
    if raw.lower() in FALSE:
        return False
    raise validation_error(["query", name], "Input should be a valid boolean", "bool_parsing")


def choice_params(request: HttpRequest, name: str, choices: list[str]) -> list[str]:
    values = request.GET.getlist(name)
    for value in values:
        if value not in choices:
            raise validation_error(["query", name], f"Input should be one of {', '.join(choices)}", "enum")
    return values


def search_param(request: HttpRequest) -> str:
    return request.GET.get("search", "").strip()


@transaction.non_atomic_requests
@api_view(["GET"], auth="required")
def events(request: HttpRequest) -> dict:
    queryset = dashboard.dashboard_events(
        request.api_user, include_past=bool_param(request, "include_past"), search=search_param(request)
    )
    return paginate(request, queryset, lambda page: [serializers.event_in_list(e, e.attendee_count) for e in page])


@transaction.non_atomic_requests
@api_view(["GET"], auth="required")
def organizations(request: HttpRequest) -> dict:
    queryset = dashboard.dashboard_organizations(request.api_user, search=search_param(request))
    return paginate(request, queryset, lambda page: [serializers.organization_data(org) for org in page])


@transaction.non_atomic_requests
@api_view(["GET"], auth="required")
def tickets(request: HttpRequest) -> dict:
    queryset = dashboard.dashboard_tickets(
        request.api_user,
        include_past=bool_param(request, "include_past"),
        search=search_param(request),
        statuses=choice_params(request, "status", Ticket.Status.values),
    )
    return paginate(request, queryset, lambda page: [serializers.ticket_data(ticket) for ticket in page])


def rsvp_data(rsvp: EventRSVP) -> dict:
    return {
        "id": str(rsvp.id),
        "status": rsvp.status,
        "note": rsvp.note,
        "created_at": rsvp.created_at,
        "updated_at": rsvp.updated_at,
        "event": serializers.minimal_event(rsvp.event),
    }


@transaction.non_atomic_requests
@api_view(["GET"], auth="required")
def rsvps(request: HttpRequest) -> dict:
    queryset = dashboard.dashboard_rsvps(
        request.api_user,
        include_past=bool_param(request, "include_past"),
        search=search_param(request),
        statuses=choice_params(request, "status", EventRSVP.Status.values),
    )
    return paginate(request, queryset, lambda page: [rsvp_data(rsvp) for rsvp in page])


urlpatterns = [
    path("dashboard/events", events, name="dashboard-events"),
    path("dashboard/organizations", organizations, name="dashboard-organizations"),
    path("dashboard/tickets", tickets, name="dashboard-tickets"),
    path("dashboard/rsvps", rsvps, name="dashboard-rsvps"),
]
