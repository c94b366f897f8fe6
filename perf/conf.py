"""perfkit's settings: every ``PERF_*`` name, its default and what it must hold, in one table (``SETTINGS``).

Modules read them as ``perf_settings.PERF_LOST_AFTER``, never with ``getattr(settings, …)``: so a default is
written once, here (as Django keeps its own in ``global_settings``), and a wrong value fails the same way
wherever it is read. Each read goes to ``django.conf.settings`` at that moment, so ``override_settings`` and
pytest-django's ``settings`` fixture apply. A setting the project leaves out, or sets to ``None``, has its
default; any other value goes through the setting's parser, which returns what readers use (a duration's
seconds, a ``Path``) or raises ``ImproperlyConfigured`` naming the setting and what it takes.

Numbers may also be strings holding one, as read from the environment: a project can pass an environment
variable through unparsed (this repository's ``settings_perf.py`` does), and a typo is then a one-line error
of ``manage.py check`` (``perf/checks.py``) instead of a traceback while the settings load.

docs/adopting.md, "Settings", lists them all; a test keeps that table and this one in step.
"""

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from perf.config import (
    DEFAULT_HOST,
    PerfConfig,
    Variables,
    parse_positive_int,
    parse_seconds,
    parse_url,
    read_environment,
)
from perf.options import parse_duration

LAUNCH_VIA = ("process", "celery")


def _dotted_path(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a dotted path in a string, like 'myproject.loadtests', got {value!r}")
    return value.strip()


def _optional_dotted_path(name: str, value: Any) -> str | None:
    return None if value is None else _dotted_path(name, value)


def _strings(name: str, value: Any) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) and item for item in value):
        raise ValueError(f"{name} must be a list of non-empty strings, got {value!r}")
    return list(value)


def _shape_paths(name: str, value: Any) -> dict[str, str]:
    """``{"ramp-hold": "myproject.shapes.RampHold"}``: names as ``--shape`` takes them, each a dotted path."""
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a dict of shape name to dotted path, got {value!r}")
    shapes = {}
    for shape, path in value.items():
        if not isinstance(shape, str) or not shape or not all(c.isalnum() or c in "-_" for c in shape):
            raise ValueError(f"{name}: the shape name {shape!r} must be letters, digits, '-' or '_', like 'ramp-hold'")
        shapes[shape] = _dotted_path(f"{name}[{shape!r}]", path)
    return shapes


def _url(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be an http:// or https:// URL in a string, got {value!r}")
    return parse_url(name, value)


def _url_path(name: str, value: Any) -> str:
    if not isinstance(value, str) or (value and not value.startswith("/")):
        raise ValueError(f"{name} must be a path starting with '/', like '/healthcheck', or '', got {value!r}")
    return value


def _number(name: str, value: Any) -> float:
    """A finite number from a number or a string holding one (``True`` is no number here)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    return number


def _positive_seconds(name: str, value: Any) -> float:
    seconds = _number(name, value)
    if seconds <= 0:
        raise ValueError(f"{name} must be a number of seconds above 0, got {value!r}")
    return seconds


def _seconds_or_zero(name: str, value: Any) -> float:
    seconds = _number(name, value)
    if seconds < 0:
        raise ValueError(f"{name} must be a number of seconds, 0 or more, got {value!r}")
    return seconds


def _positive_whole(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return parse_positive_int(name, str(value))


def _duration(name: str, value: Any) -> float:
    """Seconds, from a number of them or a duration as run_perf's --duration takes it (``90s``, ``1h``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{name} must be a duration like '1h' or '90m', got {value!r}")
    try:
        return parse_duration(str(value))
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _file_path(name: str, value: Any) -> Path:
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise ValueError(f"{name} must be a file system path, got {value!r}")
    return Path(value)


def _launch_via(name: str, value: Any) -> str:
    if value not in LAUNCH_VIA:
        raise ValueError(f"{name} must be 'process' or 'celery', got {value!r}")
    return value


def _beside_manage_py(*parts: str) -> Callable[[str], Path]:
    """A default under the project's ``BASE_DIR`` (the folder of manage.py, in every project Django starts)."""

    def default(name: str) -> Path:
        base = getattr(settings, "BASE_DIR", None)
        if base is None:
            raise ValueError(f"{name} has no default without a BASE_DIR setting: set {name} or BASE_DIR")
        return Path(base).joinpath(*parts)

    return default


@dataclass(frozen=True)
class Setting:
    """One ``PERF_*`` setting: its default (or a function making it), its parser and its check's id."""

    name: str
    default: Any  # or a function of the setting's name making it
    parse: Callable[[str, Any], Any]
    check_id: str
    takes: str  # what a good value looks like, for the check's hint

    def default_value(self) -> Any:
        return self.default(self.name) if callable(self.default) else self.default

    def hint(self) -> str:
        return f"Set {self.name} to {self.takes}, or remove it for the default (docs/adopting.md, \"Settings\")."


SETTINGS: tuple[Setting, ...] = (
    Setting("PERF_SCENARIOS", None, _optional_dotted_path, "perf.E001",
            "the dotted path of a module holding SCENARIOS, or of the list itself"),
    Setting("PERF_CONTEXT", None, _optional_dotted_path, "perf.E002",
            "the dotted path of a SharedContext subclass (or any callable without arguments)"),
    Setting("PERF_AUDIT_CHECKS", (), _strings, "perf.E003", "a list of dotted paths of audit check functions"),
    Setting("PERF_SEED_HOOK", None, _optional_dotted_path, "perf.E004",
            "the dotted path of a function that seeds the data and returns lines to print"),
    Setting("PERF_HOST", DEFAULT_HOST, _url, "perf.E005", "an http:// or https:// URL, like 'http://localhost:8000'"),
    Setting("PERF_HEALTHCHECK_PATH", "", _url_path, "perf.E006", "a path starting with '/', or ''"),
    Setting("PERF_SAVE_PATIENCE", 120.0, _seconds_or_zero, "perf.E007", "a number of seconds, 0 or more"),
    Setting("PERF_SHARD_TIMEOUT", 10.0, _positive_seconds, "perf.E008", "a number of seconds above 0"),
    # Runs write progress every 2 s (a shard coordinator too). Why a full minute, then: on SQLite a write that
    # meets the lock waits up to SQLITE_BUSY_TIMEOUT (30 s) before it fails, and the process simply tries again
    # on its next tick, so a live run behind a long lock (a seed, a migration, the backend under heavy load) can
    # be silent for 30 s and more. 60 s is two such waits: a dead run is named within a minute, and a live one
    # is almost never mistaken for dead (and if it is, its next write brings it back).
    Setting("PERF_LOST_AFTER", 60.0, _positive_seconds, "perf.E009", "a number of seconds above 0"),
    Setting("PERF_ALLOWED_HOSTS", (), _strings, "perf.E010",
            "a list of host names, like ['staging.example.com', '.example.com']"),
    Setting("PERF_WEB_MAX_USERS", 1000, _positive_whole, "perf.E011", "a whole number, 1 or more"),
    Setting("PERF_WEB_MAX_DURATION", "1h", _duration, "perf.E012", "a duration like '1h', '90m' or '600s'"),
    Setting("PERF_WEB_MAX_RUNS", 2, _positive_whole, "perf.E013", "a whole number, 1 or more"),
    Setting("PERF_ADMIN_PASSWORD_FILE", _beside_manage_py(".admin_password"), _file_path, "perf.E014",
            "a file path"),
    Setting("PERF_LAUNCH_VIA", "process", _launch_via, "perf.E015", "'process' or 'celery'"),
    Setting("PERF_LAUNCH_LOG_DIR", _beside_manage_py("var", "runs"), _file_path, "perf.E016", "a folder path"),
    Setting("PERF_SHAPES", {}, _shape_paths, "perf.E017",
            "a dict of shape name to the dotted path of a perf.load.shapes.Shape subclass"),
)
BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}


class SettingError(ImproperlyConfigured, ValueError):
    """A ``PERF_*`` setting that cannot be used; the message is one line naming it. A ValueError too, so that
    code checking a run's input (``except ValueError``) reports it as it reports a wrong option."""


class PerfSettings:
    """``perf_settings.PERF_X``: the project's value of PERF_X, parsed, or its default; read at each access."""

    def __getattr__(self, name: str) -> Any:
        setting = BY_NAME.get(name)
        if setting is None:
            raise AttributeError(f"{name} is not a perfkit setting (perf/conf.py lists them)")
        try:
            raw = getattr(settings, name, None)
            return setting.parse(name, setting.default_value() if raw is None else raw)
        except ValueError as exc:
            raise SettingError(str(exc)) from None

    def __dir__(self) -> list[str]:
        return list(BY_NAME)


perf_settings = PerfSettings()


_LOCUST_VARIABLES: Variables = {
    "backend_url": ("LOCUST_BACKEND_URL", parse_url),
    "request_timeout": ("LOCUST_REQUEST_TIMEOUT", parse_seconds),
}


def load_config(environ: Mapping[str, str] = os.environ) -> PerfConfig:
    """The target and the request time-out from the ``LOCUST_*`` variables present in ``environ`` (the Locust
    suite's names, ``perf.config``); without LOCUST_BACKEND_URL the host is the PERF_HOST setting."""
    values = read_environment(_LOCUST_VARIABLES, environ)
    values.setdefault("backend_url", perf_settings.PERF_HOST)
    return PerfConfig(**values)
