"""Every route of the contract, under ``/api``. Each area module owns its own patterns."""

from django.urls import re_path

from backend.api import account, auth, base, dashboard, events, health, questionnaires, tickets

urlpatterns = [
    *health.urlpatterns,
    *auth.urlpatterns,
    *account.urlpatterns,
    *events.urlpatterns,
    *tickets.urlpatterns,
    *questionnaires.urlpatterns,
    *dashboard.urlpatterns,
    # Last: any other /api/ path is a JSON 404, also when DEBUG would render an HTML page.
    re_path(r"^", base.not_found),
]
