"""Every error under ``/api/`` answers JSON, DEBUG or not; other paths (the admin) keep Django's HTML pages.

API views answer their own errors in JSON (``backend.api.base.api_view``), but some errors are answered by
Django before or around the view: an exception the view did not expect (500), a body over
DATA_UPLOAD_MAX_MEMORY_SIZE or a Host outside ALLOWED_HOSTS (400). With DEBUG those are Django's HTML debug
pages, without it Django's short HTML pages, and the API's clients expect JSON either way. So this middleware
replaces any error response under ``/api/`` that is not JSON with the contract's body (docs/api.md, "Errors").
Django has already logged the error and sent ``got_request_exception`` by then: only the body changes, and the
traceback is in the server's log, as in production.

Put it right after ``perf.middleware.ServerTimingMiddleware``, outside every other middleware, so it sees the
error responses they make too.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from backend.api.base import json_response

API_PREFIX = "/api/"
# The contract's bodies (docs/api.md, "Errors"); any other status gets its reason phrase.
DETAILS = {404: "Not Found", 500: "Internal Server Error."}
# Headers that describe the replaced body; every other one (Allow on a 405, for example) is kept.
BODY_HEADERS = {"content-type", "content-length"}


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


def as_json(response: HttpResponse) -> HttpResponse:
    """The same error, status and headers with a ``{"detail": ...}`` body."""
    detail = DETAILS.get(response.status_code, response.reason_phrase)
    replacement = json_response({"detail": detail}, status=response.status_code)
    for name, value in response.items():
        if name.lower() not in BODY_HEADERS:
            replacement[name] = value
    return replacement


class JsonApiErrorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code >= 400 and is_api(request) and not is_json(response):
            return as_json(response)
        return response
