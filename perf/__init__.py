"""perfkit: load tests of a Django backend, run from inside it.

What scenario writers import, as Locust's users write ``from locust import HttpUser, task, between``::

    from perf import User, task, tag, between, constant, StopUser, SharedContext, Check

These names are the public API; the modules behind them (``perf.load.user``, ``perf.load.context``,
``perf.analysis.audit``) are the engine's own and may move. They are loaded when first asked for, not when Django
imports this app: importing gevent and the HTTP engine while the settings load would come before
``run_perf`` monkey-patches the standard library.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what editors and type checkers see; at run time __getattr__ imports on first use
    from perf.analysis.audit import Check
    from perf.load.context import SharedContext
    from perf.load.user import StopUser, User, between, constant, tag, task

# Public name → the module that defines it.
_PUBLIC = {
    "User": "perf.load.user",
    "task": "perf.load.user",
    "tag": "perf.load.user",
    "between": "perf.load.user",
    "constant": "perf.load.user",
    "StopUser": "perf.load.user",
    "SharedContext": "perf.load.context",
    "Check": "perf.analysis.audit",
}

__all__ = ["Check", "SharedContext", "StopUser", "User", "between", "constant", "tag", "task"]  # _PUBLIC's names


def __getattr__(name: str) -> Any:
    """``perf.User`` and ``from perf import User``: the name from its module, imported on first use."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'perf' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
