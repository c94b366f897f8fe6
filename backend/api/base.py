"""The small framework every API view uses: JSON in and out, Bearer auth, contract errors.

Views are plain functions decorated with :func:`api_view`. They return a dict, a list,
or an :class:`~django.http.HttpResponse`, and raise :class:`ApiError` for errors of the request itself
(its shape, its token). The services below raise :class:`~backend.services.errors.ServiceError` for a
business refusal; the decorator turns both into the bodies the contract lists (docs/api.md, "Errors").
"""

import functools
import json
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from backend.api.serializers import eligibility_data
from backend.models import User
from backend.services.eligibility import NotEligible
from backend.services.errors import ServiceError
from backend.tokens import TokenError, decode


class ApiError(Exception):
    """A business error: rendered as ``{"detail": ...}`` or, with ``body``, that body as is."""

    def __init__(self, status: int, detail: Any = None, body: Any = None, headers: dict | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.body = body if body is not None else {"detail": detail}
        self.headers = headers or {}


def validation_error(loc: list[str | int], msg: str, type_: str = "value_error") -> ApiError:
    """A 422 in pydantic's shape, as django-ninja answers a schema violation."""
    return ApiError(422, body={"detail": [{"type": type_, "loc": loc, "msg": msg}]})


def json_response(data: Any, status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, safe=False, encoder=DjangoJSONEncoder)


def service_error_body(err: ServiceError) -> Any:
    """A business refusal as the contract writes it: the eligibility object itself for an eligibility
    refusal, ``{"detail": ...}`` for any other."""
    if isinstance(err, NotEligible):
        return eligibility_data(err.eligibility)
    return {"detail": err.detail}


def json_body(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object; an empty body reads as ``{}``; anything else is a 422.

    The parser recurses once per nesting level, so a body nested deeper than Python's recursion limit
    (``[[[[…]]]]`` a hundred thousand times) is a client error too, not a crash. JSON lets a string hold a
    lone surrogate (``"\\ud800"``), which is no text: nothing could store or even print it, so it is one too.
    """
    if not request.body:
        return {}
    try:
        data = json.loads(request.body)
    except ValueError as exc:
        raise validation_error(["body"], "Invalid JSON body", "json_invalid") from exc
    except RecursionError as exc:
        raise validation_error(["body"], "JSON body nested too deeply", "json_invalid") from exc
    if not isinstance(data, dict):
        raise validation_error(["body"], "Input should be a valid object", "model_type")
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise validation_error(["body"], "Invalid JSON body: a lone surrogate escape is not text",
                               "json_invalid") from exc
    return data


def authenticate(request: HttpRequest) -> User | None:
    """The user of a valid Bearer access token, None without a header; 401 for a bad token."""
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "Unauthorized")
    try:
        claims = decode(token.strip())
    except TokenError as exc:
        raise ApiError(
            401, body={"detail": "Given token not valid for any token type", "code": "token_not_valid",
                       "messages": [{"message": str(exc)}]}
        ) from exc
    if claims.get("token_type") != "access" or "user_id" not in claims:
        raise ApiError(401, body={"detail": "Given token not valid for any token type", "code": "token_not_valid"})
    user = User.objects.filter(pk=claims["user_id"], is_active=True).first()
    if user is None:
        raise ApiError(401, body={"detail": "User not found", "code": "user_not_found"})
    return user


def api_view(methods: list[str], auth: str = "none") -> Callable:
    """Declare a JSON endpoint.

    ``auth`` is ``"required"`` (401 without a valid Bearer token), ``"optional"`` (anonymous
    allowed, an invalid token still 401) or ``"none"`` (header ignored). The user, or None,
    is set on ``request.api_user``.
    """
    allowed = {m.upper() for m in methods}

    def decorator(view: Callable) -> Callable:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in allowed:
                return json_response({"detail": "Method not allowed"}, status=405)
            try:
                request.api_user = authenticate(request) if auth != "none" else None
                if auth == "required" and request.api_user is None:
                    raise ApiError(401, "Unauthorized")
                result = view(request, *args, **kwargs)
            except ApiError as err:
                response = json_response(err.body, status=err.status)
                for name, value in err.headers.items():
                    response[name] = value
                return response
            except ServiceError as err:
                return json_response(service_error_body(err), status=err.status)
            except (Http404, ObjectDoesNotExist):
                return json_response({"detail": "Not found."}, status=404)
            if isinstance(result, HttpResponse):
                return result
            return json_response(result)

        return wrapper

    return decorator


def not_found(request: HttpRequest) -> JsonResponse:
    """The last /api/ route: JSON for unknown API paths, answered before CommonMiddleware's APPEND_SLASH
    could redirect them."""
    return json_response({"detail": "Not Found"}, status=404)
