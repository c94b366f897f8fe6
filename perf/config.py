"""The load-test environment (``LOCUST_*``) as one frozen object.

The variables keep the Locust suite's names and defaults so that existing ``.env`` files keep
working. Values are checked once, here, so that a typo fails at start with the variable's name
instead of deep inside a run; command-line options override fields with ``dataclasses.replace``.
"""

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PerfConfig:
    """Where the load goes, who logs in, and how long to wait; defaults as in the Locust suite."""

    backend_url: str = "http://localhost:8000/api"
    mailpit_url: str = "http://localhost:8025"
    default_password: str = "password123"
    num_preseeded_users: int = 100
    email_poll_timeout: float = 10.0
    email_poll_interval: float = 0.5
    request_timeout: float = 30.0
    ticket_tier_capacity: int = 10000


def _url(name: str, raw: str) -> str:
    value = raw.strip()
    if not value.startswith(("http://", "https://")) or len(value) <= len("https://"):
        raise ValueError(f"{name} must be an http:// or https:// URL, got {raw!r}")
    # Clients join paths that start with "/", so a trailing slash would double it.
    return value.rstrip("/")


def _password(name: str, raw: str) -> str:
    if not raw:
        raise ValueError(f"{name} must not be empty")
    return raw


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


def _positive_float(name: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


# Field name -> (environment variable, parser).
_VARIABLES: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "backend_url": ("LOCUST_BACKEND_URL", _url),
    "mailpit_url": ("LOCUST_MAILPIT_URL", _url),
    "default_password": ("LOCUST_DEFAULT_PASSWORD", _password),
    "num_preseeded_users": ("LOCUST_NUM_PRESEEDED_USERS", _positive_int),
    "email_poll_timeout": ("LOCUST_EMAIL_POLL_TIMEOUT", _positive_float),
    "email_poll_interval": ("LOCUST_EMAIL_POLL_INTERVAL", _positive_float),
    "request_timeout": ("LOCUST_REQUEST_TIMEOUT", _positive_float),
    "ticket_tier_capacity": ("LOCUST_TICKET_TIER_CAPACITY", _positive_int),
}


def load_config(environ: Mapping[str, str] = os.environ) -> PerfConfig:
    """Read every ``LOCUST_*`` variable present in ``environ``; unset ones keep their defaults.

    Raises ValueError naming the variable when a value cannot be used (an empty value counts as
    a mistake, not as unset: ``LOCUST_NUM_PRESEEDED_USERS=`` is more likely a typo than a wish).
    """
    values = {field: parse(name, environ[name]) for field, (name, parse) in _VARIABLES.items() if name in environ}
    return PerfConfig(**values)
