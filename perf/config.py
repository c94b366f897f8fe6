"""Where the load goes and how long a request may take (``LOCUST_*``), as one frozen object.

The variables keep the Locust suite's names, so existing ``.env`` files keep working. Values are
checked once, here, so that a typo fails at start with the variable's name instead of deep inside
a run; command-line options override fields with ``dataclasses.replace``. A scenario pack reads its
own variables with the same parsers (``read_environment``).
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Where run_perf sends load without --host or LOCUST_BACKEND_URL: the project's PERF_HOST, else this.
DEFAULT_HOST = "http://localhost:8000"


@dataclass(frozen=True)
class PerfConfig:
    """The target's base URL and the per-request time-out in seconds."""

    backend_url: str = DEFAULT_HOST
    request_timeout: float = 30.0


def parse_url(name: str, raw: str) -> str:
    value = raw.strip()
    if not value.startswith(("http://", "https://")) or len(value) <= len("https://"):
        raise ValueError(f"{name} must be an http:// or https:// URL, got {raw!r}")
    # Clients join paths that start with "/", so a trailing slash would double it.
    return value.rstrip("/")


def parse_text(name: str, raw: str) -> str:
    if not raw:
        raise ValueError(f"{name} must not be empty")
    return raw


def parse_positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


def parse_seconds(name: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


Variables = Mapping[str, tuple[str, Callable[[str, str], Any]]]


def read_environment(variables: Variables, environ: Mapping[str, str]) -> dict[str, Any]:
    """Field name → parsed value for each of ``variables`` (field → (variable, parser)) set in ``environ``.

    Raises ValueError naming the variable when a value cannot be used (an empty value counts as a
    mistake, not as unset: ``LOCUST_NUM_PRESEEDED_USERS=`` is more likely a typo than a wish).
    """
    return {field: parse(name, environ[name]) for field, (name, parse) in variables.items() if name in environ}
