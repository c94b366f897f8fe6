"""``Server-Timing`` for any Django backend: how long the app took, how much of it in SQL.

Add ``"perf.middleware.ServerTimingMiddleware"`` first in ``MIDDLEWARE``. Every response then
carries the W3C header ``Server-Timing: app;dur=12.4, db;dur=3.1;desc="5 queries"``, measured
with ``connection.execute_wrapper`` (so it needs no DEBUG and keeps no query log). ``run_perf``
reads it to split each endpoint's client-side time into app, database and the rest (network
and queueing in front of the workers).
"""

import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from django.db import connections
from django.http import HttpRequest, HttpResponse


class QueryTimer:
    """An execute wrapper that counts queries and adds up their time."""

    __slots__ = ("count", "seconds")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute: Callable, sql: str, params: Any, many: bool, context: dict) -> Any:
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - start
            self.count += 1


def server_timing_value(app_ms: float, db_ms: float, queries: int) -> str:
    noun = "query" if queries == 1 else "queries"
    return f'app;dur={app_ms:.1f}, db;dur={db_ms:.1f};desc="{queries} {noun}"'


class ServerTimingMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        timer = QueryTimer()
        start = time.perf_counter()
        with ExitStack() as stack:
            for connection in connections.all():
                stack.enter_context(connection.execute_wrapper(timer))
            response = self.get_response(request)
        app_ms = (time.perf_counter() - start) * 1000.0
        response["Server-Timing"] = server_timing_value(app_ms, timer.seconds * 1000.0, timer.count)
        return response
