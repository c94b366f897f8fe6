"""The platform pack's settings from the environment, with the Locust suite's names and defaults."""

import os
from collections.abc import Mapping
from dataclasses import dataclass

from perf.config import Variables, parse_positive_int, parse_seconds, parse_text, parse_url, read_environment


@dataclass(frozen=True)
class PlatformConfig:
    """Who logs in, how many pre-seeded accounts there are, where emails arrive and how long to wait."""

    mailpit_url: str = "http://localhost:8025"
    default_password: str = "password123"
    num_preseeded_users: int = 100
    email_poll_timeout: float = 10.0
    email_poll_interval: float = 0.5
    ticket_tier_capacity: int = 10000


_VARIABLES: Variables = {
    "mailpit_url": ("LOCUST_MAILPIT_URL", parse_url),
    "default_password": ("LOCUST_DEFAULT_PASSWORD", parse_text),
    "num_preseeded_users": ("LOCUST_NUM_PRESEEDED_USERS", parse_positive_int),
    "email_poll_timeout": ("LOCUST_EMAIL_POLL_TIMEOUT", parse_seconds),
    "email_poll_interval": ("LOCUST_EMAIL_POLL_INTERVAL", parse_seconds),
    "ticket_tier_capacity": ("LOCUST_TICKET_TIER_CAPACITY", parse_positive_int),
}


def load_platform_config(environ: Mapping[str, str] = os.environ) -> PlatformConfig:
    """Every ``LOCUST_*`` variable of the pack present in ``environ``; ValueError names a bad one."""
    return PlatformConfig(**read_environment(_VARIABLES, environ))
