"""JSON Web Tokens as the platform issues them (docs/api.md, "Authentication").

HS256 signed with SECRET_KEY, audience ``JWT_AUDIENCE``. Access and refresh tokens carry
``token_type``, ``user_id`` (UUID string), ``jti``, ``iat``, ``exp``, ``aud``. Email
verification tokens carry ``type: "email_verification"`` and no ``iat``.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from django.conf import settings

ALGORITHM = "HS256"


class TokenError(Exception):
    """A token that cannot be used; ``expired`` tells the two cases apart for callers."""

    def __init__(self, message: str, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    refresh_jti: str
    refresh_expires_at: datetime


def _now() -> datetime:
    return datetime.now(UTC)


def _encode(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, settings.SECRET_KEY, algorithm=ALGORITHM)


def decode(token: str) -> dict[str, Any]:
    """Verify signature, expiry and audience; raise TokenError with the reason otherwise."""
    try:
        return jwt.decode(token, settings.SECRET_KEY, algorithms=[ALGORITHM], audience=settings.JWT_AUDIENCE)
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("Token has expired.", expired=True) from exc
    except jwt.InvalidTokenError as exc:
        raise TokenError(str(exc) or exc.__class__.__name__) from exc


def make_pair(user_id: uuid.UUID | str) -> TokenPair:
    """Mint a refresh token and an access token that shares its ``iat`` and ``user_id``."""
    now = _now()
    iat = int(now.timestamp())
    refresh_exp = now + timedelta(days=settings.REFRESH_TOKEN_LIFETIME_DAYS)
    access_exp = now + timedelta(hours=settings.ACCESS_TOKEN_LIFETIME_HOURS)
    common = {"user_id": str(user_id), "iat": iat, "aud": settings.JWT_AUDIENCE}
    refresh_jti = uuid.uuid4().hex
    refresh = _encode({**common, "token_type": "refresh", "exp": int(refresh_exp.timestamp()), "jti": refresh_jti})
    access = _encode({**common, "token_type": "access", "exp": int(access_exp.timestamp()), "jti": uuid.uuid4().hex})
    return TokenPair(access=access, refresh=refresh, refresh_jti=refresh_jti, refresh_expires_at=refresh_exp)


def make_verification_token(user_id: uuid.UUID | str, email: str) -> str:
    exp = _now() + timedelta(minutes=settings.VERIFY_TOKEN_LIFETIME_MINUTES)
    return _encode(
        {
            "user_id": str(user_id),
            "email": email,
            "exp": int(exp.timestamp()),
            "jti": str(uuid.uuid4()),
            "aud": settings.JWT_AUDIENCE,
            "type": "email_verification",
        }
    )


def expiry_of(claims: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(claims["exp"], tz=UTC)
