"""BACKEND_ARTIFICIAL_DELAY_MS: its parsing, and the middleware in a real Django request cycle (the live server runs
without it: turning it on there would need a restart, so these requests go through Django's test client)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.exceptions import MiddlewareNotUsed
from django.test import Client, RequestFactory, override_settings

from backend import artificial_delay
from backend.artificial_delay import ArtificialDelayMiddleware, parse_delay_ms

ROOT = Path(__file__).resolve().parents[2]
# Nothing here touches a database: the PostgreSQL pass of `make test` skips it.


@pytest.mark.parametrize(("text", "expected"), [
    ("100-400", (100.0, 400.0)),
    (" 250 - 250 ", (250.0, 250.0)),
    ("0-12.5", (0.0, 12.5)),
    ("", None),
    ("  ", None),
])
def test_parse_delay_ms(text, expected):
    assert parse_delay_ms(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("100", "MIN-MAX in milliseconds"),
    ("100-", "MIN-MAX in milliseconds"),
    ("-100-400", "MIN-MAX in milliseconds"),
    ("100ms-400ms", "MIN-MAX in milliseconds"),
    ("400-100", "MIN must not exceed MAX"),
    ("0-120000", "MAX must be at most 60000 ms"),
])
def test_a_malformed_value_is_refused_with_the_fix(text, message):
    with pytest.raises(ValueError, match=message):
        parse_delay_ms(text)


def test_a_malformed_variable_stops_the_start_with_its_name():
    env = {**os.environ, "BACKEND_ARTIFICIAL_DELAY_MS": "100-4OO", "DJANGO_SETTINGS_MODULE": "settings_perf"}
    done = subprocess.run([sys.executable, str(ROOT / "manage.py"), "check"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)

    assert done.returncode != 0
    assert "ImproperlyConfigured: BACKEND_ARTIFICIAL_DELAY_MS must be MIN-MAX in milliseconds" in done.stderr


@override_settings(BACKEND_ARTIFICIAL_DELAY_MS=(200.0, 220.0))
def test_an_api_request_takes_at_least_the_low_bound():
    # The whole middleware stack and the real view; the health check needs no database.
    started = time.perf_counter()
    response = Client().get("/api/healthcheck")
    elapsed = time.perf_counter() - started

    assert response.status_code == 200
    assert elapsed >= 0.2
    # Inside Server-Timing: the app time the client is told about includes the delay.
    assert float(response["Server-Timing"].split("app;dur=")[1].split(",")[0]) >= 200.0


@override_settings(BACKEND_ARTIFICIAL_DELAY_MS=(100.0, 400.0))
@pytest.mark.parametrize(("path", "delayed"), [
    ("/api/events/", True),
    ("/admin/", False),
    ("/admin/login/", False),
    ("/static/admin/css/base.css", False),
])
def test_only_api_paths_wait(monkeypatch, path, delayed):
    sleeps: list[float] = []
    monkeypatch.setattr(artificial_delay.time, "sleep", sleeps.append)
    middleware = ArtificialDelayMiddleware(lambda request: "answered")

    assert middleware(RequestFactory().get(path)) == "answered"
    assert len(sleeps) == (1 if delayed else 0)
    assert all(0.1 <= seconds <= 0.4 for seconds in sleeps)


@override_settings(BACKEND_ARTIFICIAL_DELAY_MS=None)
def test_unset_leaves_the_middleware_out_of_the_chain():
    with pytest.raises(MiddlewareNotUsed):
        ArtificialDelayMiddleware(lambda request: "answered")
