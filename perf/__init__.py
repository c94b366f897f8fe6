"""perfkit: load tests of a Django backend, run from inside it.

What scenario and pack writers import, as Locust's users write ``from locust import HttpUser, task, between``::

    from perf import User, task, tag, between, constant, StopUser, SharedContext   # scenarios
    from perf import HttpSession, Response, ResponseContext, describe_error        # clients of your API
    from perf import Shape, SpanShape, StageSpan, ParameterKind                    # load shapes (PERF_SHAPES)
    from perf import Check, AuditReport, Facts                                     # checks (PERF_AUDIT_CHECKS)

These names are the public API, the one way in: the modules behind them (``perf.load.*``, ``perf.analysis.*``)
are the engine's own and may move, so scenarios, packs and the docs never import them
(tests/test_architecture.py). They are loaded when first asked for, not when Django imports this app: importing
gevent and the HTTP engine while the settings load would come before ``run_perf`` monkey-patches the standard
library.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what editors and type checkers see; at run time __getattr__ imports on first use
    from perf.analysis.audit import AuditReport, Check, Facts
    from perf.load.context import SharedContext
    from perf.load.profile import StageSpan
    from perf.load.session import HttpSession, Response, ResponseContext, describe_error
    from perf.load.shapes import ParameterKind, Shape, SpanShape
    from perf.load.user import StopUser, User, between, constant, tag, task

# Public name → the module that defines it.
_PUBLIC = {
    # Scenarios: users, their tasks and think time, what they share.
    "User": "perf.load.user",
    "task": "perf.load.user",
    "tag": "perf.load.user",
    "between": "perf.load.user",
    "constant": "perf.load.user",
    "StopUser": "perf.load.user",
    "SharedContext": "perf.load.context",
    # A user's HTTP session and its answers, for a pack's client of its API (``self.client``'s types), and the
    # failure text of an exception, for what a scenario records itself (``self.client.report``).
    "HttpSession": "perf.load.session",
    "Response": "perf.load.session",
    "ResponseContext": "perf.load.session",
    "describe_error": "perf.load.session",
    # Load shapes of a project's own (``PERF_SHAPES``), as Locust's ``LoadTestShape``.
    "Shape": "perf.load.shapes",
    "SpanShape": "perf.load.shapes",
    "ParameterKind": "perf.load.shapes",
    "StageSpan": "perf.load.profile",
    # The checks after a run (``PERF_AUDIT_CHECKS``): what they take, what they return.
    "Check": "perf.analysis.audit",
    "AuditReport": "perf.analysis.audit",
    "Facts": "perf.analysis.audit",
}

__all__ = [  # _PUBLIC's names
    "AuditReport", "Check", "Facts", "HttpSession", "ParameterKind", "Response", "ResponseContext", "Shape",
    "SharedContext", "SpanShape", "StageSpan", "StopUser", "User", "between", "constant", "describe_error", "tag",
    "task",
]


def __getattr__(name: str) -> Any:
    """``perf.User`` and ``from perf import User``: the name from its module, imported on first use."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'perf' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
