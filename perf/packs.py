"""What a backend plugs into perfkit, named in its Django settings: a scenario pack.

- ``PERF_SCENARIOS`` (required to run load): a dotted path to a module holding ``SCENARIOS``, or to
  the list (or name → class dict) itself, of ``perf.load.user.User`` subclasses.
- ``PERF_CONTEXT``: a dotted path to a class (or any callable without arguments) making the run's
  shared context; default ``perf.load.context.SharedContext``.
- ``PERF_AUDIT_CHECKS``: dotted paths to the audit's checks (``perf.analysis.audit``); default none.
- ``PERF_SEED_HOOK``: a dotted path to a callable that makes the data the scenarios need and
  returns lines to print; ``run_perf --bootstrap`` and the admin's New run page call it. Optional.

The generic app imports a pack only through these names, never by module, so that any backend can
bring its own (docs/adopting.md) and this repository's platform pack is just the first.
"""

import importlib
import types
from collections.abc import Callable, Sequence
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from perf.analysis.audit import AuditCheck
from perf.conf import perf_settings
from perf.load.context import RunContext, SharedContext
from perf.load.user import User


def _load(setting: str, path: str) -> Any:
    """The module ``path`` names, or the object inside a module (``package.module.NAME``)."""
    try:
        try:
            return importlib.import_module(path)
        except ModuleNotFoundError as exc:
            if exc.name != path:  # the module exists, and something it imports does not
                raise
        return import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"{setting} = {path!r} cannot be imported: {exc}") from None


def _load_callable(setting: str, path: str) -> Callable[..., Any]:
    found = _load(setting, path)
    if not callable(found):
        raise ImproperlyConfigured(f"{setting} = {path!r} names {type(found).__name__} {found!r}, not a class or "
                                   "function")
    return found


def scenarios() -> dict[str, type[User]]:
    """The configured scenarios by class name, in the order the pack lists them."""
    path = perf_settings.PERF_SCENARIOS
    if not path:
        raise ImproperlyConfigured("no scenarios configured: set PERF_SCENARIOS to your scenarios module "
                                   "(docs/adopting.md)")
    found = _load("PERF_SCENARIOS", path)
    if isinstance(found, types.ModuleType):
        found = getattr(found, "SCENARIOS", None)
        if found is None:
            raise ImproperlyConfigured(f"PERF_SCENARIOS = {path!r}: that module has no SCENARIOS list")
    if isinstance(found, dict):
        classes = list(found.values())
    elif isinstance(found, list | tuple):
        classes = list(found)
    else:
        classes = [found]
    bad = [repr(cls) for cls in classes if not (isinstance(cls, type) and issubclass(cls, User))]
    if bad or not classes:
        raise ImproperlyConfigured(f"PERF_SCENARIOS = {path!r} must list perf.load.user.User subclasses"
                                   + (f", not {', '.join(bad)}" if bad else ", and lists none"))
    return {cls.__name__: cls for cls in classes}


def find_scenario(name: str, among: dict[str, type[User]] | None = None) -> type[User] | None:
    """Case-insensitive lookup among ``among`` (default: the configured scenarios): ``rsvpuser`` finds
    ``RSVPUser``."""
    lowered = name.lower()
    return next((cls for key, cls in (among or scenarios()).items() if key.lower() == lowered), None)


def context_factory() -> Callable[[], RunContext]:
    """What makes a run's shared context (``PERF_CONTEXT``, else ``SharedContext``), imported but not called. Typed
    as what the engine relies on (``RunContext``), not as ``SharedContext``: any context offering it will do."""
    path = perf_settings.PERF_CONTEXT
    return _load_callable("PERF_CONTEXT", path) if path else SharedContext


def make_context() -> RunContext:
    """A fresh shared context for one process of a run."""
    return context_factory()()


def audit_checks() -> list[AuditCheck]:
    return [_load_callable("PERF_AUDIT_CHECKS", path) for path in perf_settings.PERF_AUDIT_CHECKS]


def seed_hook() -> Callable[[], Sequence[str]] | None:
    path = perf_settings.PERF_SEED_HOOK
    return _load_callable("PERF_SEED_HOOK", path) if path else None
