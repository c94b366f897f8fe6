"""Liveness probe: no database work, so it answers even when the database is saturated."""

from django.db import transaction
from django.http import HttpRequest
from django.urls import path

from backend.api.base import api_view


# Not even a transaction: on SQLite BEGIN IMMEDIATE would queue the probe behind every writer.
@transaction.non_atomic_requests
@api_view(["GET"])
def healthcheck(request: HttpRequest) -> dict:
    return {"status": "ok"}


urlpatterns = [path("healthcheck", healthcheck, name="healthcheck")]
