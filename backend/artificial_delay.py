"""Fault injection: each ``/api/`` request waits a random time before it is handled: the real backend, made slow.

Why: a load tool's bugs hide behind a fast target. Time-outs that add up across requests, connections that go
stale while an answer is awaited, requests cut off at the end of a run: none of it shows when every answer takes
5 ms. ``benchmarks/soak.py`` runs its 30 minutes against this backend made slow on purpose, and a fault probe can
do the same with one environment variable instead of a stand-in server that speaks none of the real API.

``BACKEND_ARTIFICIAL_DELAY_MS="100-400"`` (settings_perf.py) makes each request under ``/api/`` sleep a uniform
random 100 to 400 ms, then go on as usual; ``"250-250"`` is a fixed 250 ms. Unset or empty, the middleware
removes itself from the chain when the server starts (``MiddlewareNotUsed``) and costs nothing. The admin and
static files are never delayed. The sleep happens before the view's transaction (``ATOMIC_REQUESTS`` wraps the
view, not the middleware), so a slow request holds no database lock while it waits, and it is inside
``perf.middleware.ServerTimingMiddleware``, so the app time that header reports includes it: the client sees a
slow app, as it would in production.
"""

import random
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

API_PREFIX = "/api/"
# gunicorn kills a worker after 120 s without a word (gunicorn.conf.py): a delay stays far below that.
MAX_DELAY_MS = 60_000.0
_RANGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*$")


def parse_delay_ms(text: str) -> tuple[float, float] | None:
    """``"MIN-MAX"`` in milliseconds as ``(MIN, MAX)``; ``None`` (off) for an empty value. ValueError names the fix."""
    if not text.strip():
        return None
    match = _RANGE.match(text)
    if not match:
        raise ValueError(f"BACKEND_ARTIFICIAL_DELAY_MS must be MIN-MAX in milliseconds, e.g. 100-400 "
                         f"(250-250 for a fixed delay, empty for none), got {text!r}")
    low, high = float(match[1]), float(match[2])
    if low > high:
        raise ValueError(f"BACKEND_ARTIFICIAL_DELAY_MS: MIN must not exceed MAX, got {text!r}")
    if high > MAX_DELAY_MS:
        raise ValueError(f"BACKEND_ARTIFICIAL_DELAY_MS: MAX must be at most {MAX_DELAY_MS:.0f} ms "
                         f"(gunicorn's worker time-out is 120 s), got {text!r}")
    return low, high


class ArtificialDelayMiddleware:
    def __init__(self, get_response: Callable[["HttpRequest"], "HttpResponse"]) -> None:
        bounds = getattr(settings, "BACKEND_ARTIFICIAL_DELAY_MS", None)
        if bounds is None:
            raise MiddlewareNotUsed("BACKEND_ARTIFICIAL_DELAY_MS is not set")
        self.get_response = get_response
        self.low, self.high = bounds[0] / 1000.0, bounds[1] / 1000.0

    def __call__(self, request: "HttpRequest") -> "HttpResponse":
        if request.path_info.startswith(API_PREFIX):
            time.sleep(random.uniform(self.low, self.high))
        return self.get_response(request)
