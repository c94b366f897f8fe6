"""Account rules: issuing token pairs, registration and email verification (docs/api.md, "Accounts and tokens").

Two things matter under load. Password hashing (PBKDF2, hundreds of milliseconds) runs outside
any transaction, because on SQLite every transaction holds the single write lock from its first
statement. And single-use tokens are spent by inserting their ``jti`` into the unique
``BlacklistedToken`` column: the database decides which of two concurrent requests wins.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from backend.emails import send_verification_email_on_commit
from backend.models import BlacklistedToken, OutstandingToken, User
from backend.services.errors import ServiceError
from backend.tokens import TokenError, TokenPair, decode, expiry_of, make_pair, make_verification_token

DUPLICATE_EMAIL = "A user with this email already exists."
VERIFICATION_TYPE = "email_verification"


@dataclass(frozen=True)
class Registration:
    """A registration request that passed the shape checks (email already lowercased, names trimmed)."""

    email: str
    password: str
    first_name: str = ""
    last_name: str = ""


@dataclass(frozen=True)
class Registered:
    user: User
    verification_token: str


def issue_pair(user: User) -> TokenPair:
    """Mint an access/refresh pair and record the refresh token as outstanding, as the blacklist app does."""
    pair = make_pair(user.id)
    OutstandingToken.objects.create(jti=pair.refresh_jti, user=user, expires_at=pair.refresh_expires_at)
    return pair


def spend_token(jti: str, expires_at: datetime) -> bool:
    """Blacklist ``jti``; False when it already was (a reuse, or the loser of a concurrent race).

    The insert runs in a savepoint so a duplicate leaves the caller's transaction usable. On
    PostgreSQL a concurrent insert of the same value waits for the first transaction and then
    fails; on SQLite writers are serialized, so the second one sees the row.
    """
    try:
        with transaction.atomic():
            BlacklistedToken.objects.create(jti=jti, expires_at=expires_at)
    except IntegrityError:
        return False
    return True


def is_spent(jti: str) -> bool:
    return BlacklistedToken.objects.filter(jti=jti).exists()


def active_user(user_id: Any) -> User | None:
    """The active user with this id; None also for an id that is not a UUID."""
    try:
        return User.objects.filter(pk=uuid.UUID(str(user_id)), is_active=True).first()
    except ValueError:
        return None


class DuplicateEmail(ServiceError):
    """The address is taken (400). ``verification_token`` is the fresh link mailed to an unverified owner of
    it, None otherwise: the API hands it back as it does a new registration's."""

    def __init__(self, verification_token: str | None) -> None:
        super().__init__(400, DUPLICATE_EMAIL)
        self.verification_token = verification_token


def _reject_duplicate(existing: User | None) -> NoReturn:
    """The duplicate-email answer; an unverified owner of the address gets a fresh link."""
    token = None
    if existing is not None and not existing.email_verified:
        token = make_verification_token(existing.id, existing.email)
        send_verification_email_on_commit(existing.email, token)
    raise DuplicateEmail(token)


def _existing_user(email: str) -> User | None:
    return User.objects.filter(email__iexact=email).first() or User.objects.filter(username=email).first()


def register(form: Registration) -> Registered:
    """Create an active, unverified user and mail a verification link after commit.

    Must run outside a transaction (the view is non-atomic): the password is validated and hashed
    first, and only the insert and the email scheduling share a short transaction. Two concurrent
    registrations of one address both pass the lookup; the unique email column lets one insert
    win and turns the other into the duplicate answer.
    """
    user = User(
        username=form.email,
        email=form.email,
        first_name=form.first_name,
        last_name=form.last_name,
        is_active=True,
        email_verified=False,
    )
    try:
        validate_password(form.password, user=user)
    except ValidationError as exc:
        raise ServiceError(400, exc.messages[0]) from exc
    if existing := _existing_user(form.email):
        _reject_duplicate(existing)
    user.set_password(form.password)
    try:
        with transaction.atomic():
            user.save(force_insert=True)
            token = make_verification_token(user.id, user.email)
            send_verification_email_on_commit(user.email, token)
    except IntegrityError:
        _reject_duplicate(_existing_user(form.email))
    return Registered(user=user, verification_token=token)


def verify_email(token: str) -> tuple[User, TokenPair]:
    """Spend a verification token: verify and (re)activate its user and log them in.

    Runs inside the request's transaction. Errors follow the platform: 400 for a token that does
    not decode or is not a verification token, 401 for one already used, 400 when its user is gone.
    """
    try:
        claims = decode(token)
    except TokenError as exc:
        if exc.expired:
            raise ServiceError(400, "Token has expired.") from exc
        raise ServiceError(400, f"Invalid token: {exc}") from exc
    reason = _verification_claims_problem(claims)
    if reason:
        raise ServiceError(400, f"Invalid token: {reason}")
    if is_spent(claims["jti"]):
        raise ServiceError(401, "Token is blacklisted.")
    try:
        user = User.objects.select_for_update().filter(pk=uuid.UUID(claims["user_id"])).first()
    except ValueError:
        raise ServiceError(400, "Invalid token: user_id is not a UUID") from None
    if user is None:
        raise ServiceError(400, "A user with this email no longer exists.")
    if not spend_token(claims["jti"], expiry_of(claims)):
        raise ServiceError(401, "Token is blacklisted.")
    user.email_verified = True
    user.is_active = True
    user.last_login = timezone.now()
    user.save(update_fields=["email_verified", "is_active", "last_login"])
    return user, issue_pair(user)


def _verification_claims_problem(claims: dict[str, Any]) -> str:
    """Why these decoded claims are not a verification token, or "" when they are."""
    if claims.get("type") != VERIFICATION_TYPE:
        return "wrong token type"
    for name in ("user_id", "jti", "email"):
        if not isinstance(claims.get(name), str):
            return f"missing claim {name}"
    return ""
