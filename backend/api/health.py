"""Liveness probe: no database work, so it answers even when the database is saturated."""

from django.http import HttpRequest
from django.urls import path

from backend.api.base import api_view


@api_view(["GET"])
def healthcheck(request: HttpRequest) -> dict:
    return {"status": "ok"}


urlpatterns = [path("healthcheck", healthcheck, name="healthcheck")]
