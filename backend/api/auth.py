"""Login and token refresh (docs/api.md, "Accounts and tokens", "Authentication").

Login is the most CPU-heavy request of the API (one PBKDF2 hash); it is declared non-atomic so
the hash runs outside any transaction and only the outstanding-token insert takes the write lock.
"""

from typing import Any

from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest
from django.urls import path

from backend.api.base import ApiError, api_view, json_body, validation_error
from backend.services.accounts import active_user, issue_pair, spend_token
from backend.tokens import TokenError, decode, expiry_of

NO_ACTIVE_ACCOUNT = {"detail": "No active account found with the given credentials", "code": "authentication_failed"}
TOKEN_INVALID = {"detail": "Token is invalid or expired", "code": "token_not_valid"}
TOKEN_BLACKLISTED = {"detail": "Token is blacklisted", "code": "token_not_valid"}
NO_ACTIVE_TOKEN_USER = {"detail": "No active account found for the given token.", "code": "no_active_account"}


def _required_strings(data: dict[str, Any], *names: str) -> list[str]:
    """The values of ``names``; 422 for a non-string, 400 naming every missing or empty one (as ninja-jwt)."""
    for name in names:
        if data.get(name) is not None and not isinstance(data[name], str):
            raise validation_error(["body", "user_token", name], "Input should be a valid string", "string_type")
    missing = {name: [f"{name} is required"] for name in names if not data.get(name)}
    if missing:
        raise ApiError(400, body=missing)
    return [data[name] for name in names]


@transaction.non_atomic_requests
@api_view(["POST"])
def obtain_pair(request: HttpRequest) -> dict[str, str]:
    """Exchange username and password for an access/refresh pair.

    Unknown users cost a hash too (Django's ModelBackend), so timing does not reveal accounts.
    """
    username, password = _required_strings(json_body(request), "username", "password")
    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        raise ApiError(401, body=NO_ACTIVE_ACCOUNT)
    with transaction.atomic():
        pair = issue_pair(user)
    return {"username": user.username, "access": pair.access, "refresh": pair.refresh}


@api_view(["POST"])
def refresh(request: HttpRequest) -> dict[str, str]:
    """Rotate a refresh token: the presented one is blacklisted, a new pair is returned.

    The blacklist insert is the guard: of two concurrent refreshes with one token, only the
    request whose insert commits first gets a pair; the other gets 401.
    """
    data = json_body(request)
    if data.get("refresh") is not None and not isinstance(data["refresh"], str):
        raise validation_error(["body", "refresh_token", "refresh"], "Input should be a valid string", "string_type")
    if not data.get("refresh"):
        raise ApiError(400, body={"refresh": ["token is required"]})
    try:
        claims = decode(data["refresh"])
    except TokenError as exc:
        raise ApiError(401, body=TOKEN_INVALID) from exc
    if claims.get("token_type") != "refresh" or not isinstance(claims.get("jti"), str):
        raise ApiError(401, body=TOKEN_INVALID)
    user = active_user(claims.get("user_id"))
    if user is None:
        raise ApiError(401, body=NO_ACTIVE_TOKEN_USER)
    if not spend_token(claims["jti"], expiry_of(claims)):
        raise ApiError(401, body=TOKEN_BLACKLISTED)
    pair = issue_pair(user)
    return {"access": pair.access, "refresh": pair.refresh}


urlpatterns = [
    path("auth/token/pair", obtain_pair, name="auth-token-pair"),
    path("auth/refresh", refresh, name="auth-refresh"),
    path("auth/token/refresh", refresh, name="auth-token-refresh"),
]
