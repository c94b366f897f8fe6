"""The caller's account, registration and email verification (docs/api.md, "Accounts and tokens").

Request bodies are checked here, in the shape django-ninja reports schema violations (422 with a
pydantic-style error list); the rules that touch the database live in ``backend.services.accounts``.
"""

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import path

from backend.api.base import ApiError, api_view, json_body, json_response
from backend.api.serializers import user_data
from backend.services import accounts

PASSWORD_MIN, PASSWORD_MAX = 8, 150
NAME_MAX = 150
# Django's username column is 150 characters and registration stores the email there.
EMAIL_MAX = 150


class _Errors(list):
    """Pydantic-style error entries for one request body."""

    def add(self, field: str | None, type_: str, msg: str, **ctx: Any) -> None:
        entry: dict[str, Any] = {"type": type_, "loc": ["body", "payload", *([field] if field else [])], "msg": msg}
        if ctx:
            entry["ctx"] = ctx
        self.append(entry)

    def raise_if_any(self) -> None:
        if self:
            raise ApiError(422, body={"detail": list(self)})


def _string(data: dict[str, Any], field: str, errors: _Errors, required: bool = True) -> str | None:
    if field not in data:
        if required:
            errors.add(field, "missing", "Field required")
        return None if required else ""
    value = data[field]
    if not isinstance(value, str):
        errors.add(field, "string_type", "Input should be a valid string")
        return None
    return value


def _email(data: dict[str, Any], errors: _Errors) -> str | None:
    value = _string(data, "email", errors)
    if value is None:
        return None
    email = value.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        errors.add("email", "value_error", "value is not a valid email address: Enter a valid email address.")
        return None
    if len(email) > EMAIL_MAX:
        errors.add("email", "value_error", "value is not a valid email address: The email address is too long.")
        return None
    return email


def _password(data: dict[str, Any], field: str, errors: _Errors) -> str | None:
    value = _string(data, field, errors)
    if value is None:
        return None
    if len(value) < PASSWORD_MIN:
        errors.add(field, "string_too_short", f"String should have at least {PASSWORD_MIN} characters",
                   min_length=PASSWORD_MIN)
        return None
    if len(value) > PASSWORD_MAX:
        errors.add(field, "string_too_long", f"String should have at most {PASSWORD_MAX} characters",
                   max_length=PASSWORD_MAX)
        return None
    return value


def _name(data: dict[str, Any], field: str, errors: _Errors) -> str:
    value = (_string(data, field, errors, required=False) or "").strip()
    if len(value) > NAME_MAX:
        errors.add(field, "string_too_long", f"String should have at most {NAME_MAX} characters", max_length=NAME_MAX)
    return value


def _accepted_terms(data: dict[str, Any], errors: _Errors) -> None:
    field = "accept_toc_and_privacy"
    if field not in data:
        errors.add(field, "missing", "Field required")
    elif not isinstance(data[field], bool):
        errors.add(field, "bool_type", "Input should be a valid boolean")
    elif data[field] is not True:
        errors.add(field, "value_error", "Value error, You must accept the terms of service and privacy policy")


def registration_from(data: dict[str, Any]) -> accounts.Registration:
    """The validated registration, or a 422 listing every field error (then the password match, as pydantic)."""
    errors = _Errors()
    email = _email(data, errors)
    password1 = _password(data, "password1", errors)
    password2 = _password(data, "password2", errors)
    first_name = _name(data, "first_name", errors)
    last_name = _name(data, "last_name", errors)
    _accepted_terms(data, errors)
    errors.raise_if_any()
    if password1 != password2:
        errors.add(None, "value_error", "Value error, Passwords do not match")
        errors.raise_if_any()
    if data.get("referral_code"):
        # No referral programme here, so every code is unknown (the platform's answer for those).
        raise ApiError(422, "Invalid or inactive referral code.")
    assert email is not None and password1 is not None
    return accounts.Registration(email=email, password=password1, first_name=first_name, last_name=last_name)


@api_view(["GET"], auth="required")
def me(request: HttpRequest) -> dict[str, Any]:
    return user_data(request.api_user)


def verification_headers(token: str | None) -> dict[str, str]:
    """In system-testing mode load tests read the token from a header instead of a mailbox."""
    return {"X-Test-Verification-Token": token} if token and settings.SYSTEM_TESTING else {}


@transaction.non_atomic_requests
@api_view(["POST"])
def register(request: HttpRequest) -> HttpResponse:
    """Create an unverified account; non-atomic so the password hash holds no transaction open."""
    try:
        registered = accounts.register(registration_from(json_body(request)))
    except accounts.DuplicateEmail as duplicate:
        raise ApiError(400, duplicate.detail, headers=verification_headers(duplicate.verification_token)) from duplicate
    response = json_response(user_data(registered.user), status=201)
    for name, value in verification_headers(registered.verification_token).items():
        response[name] = value
    return response


@api_view(["POST"])
def verify(request: HttpRequest) -> dict[str, Any]:
    data = json_body(request)
    errors = _Errors()
    token = _string(data, "token", errors)
    errors.raise_if_any()
    user, pair = accounts.verify_email(token or "")
    return {
        "user": user_data(user),
        "token": {"username": user.username, "access": pair.access, "refresh": pair.refresh},
    }


urlpatterns = [
    path("account/me", me, name="account-me"),
    path("account/register", register, name="account-register"),
    path("account/verify", verify, name="account-verify"),
]
