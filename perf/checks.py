"""``manage.py check`` for perfkit's settings: a wrong one is named before any run, not when one starts.

Each ``PERF_*`` setting is read through ``perf.conf.perf_settings``, whose parser is the same one every reader
uses, and the scenario pack's dotted paths are imported through ``perf.packs``, which ``run_perf`` and the
admin use too: one check of each thing, run here for ``manage.py check`` (and at the start of every perf
command, ``perf.management.base.PerfCommand.check``) and again wherever the value is used.

Each setting has its own id (``perf.E001``…, listed in ``perf.conf.SETTINGS`` and docs/adopting.md), and its
hint says what the setting takes. A missing ``PERF_SCENARIOS`` is no error here: the admin works without one,
and ``run_perf`` says what to set.
"""

from collections.abc import Callable, Sequence
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from perf import packs
from perf.cli.profiles import shape_classes
from perf.conf import BY_NAME, SETTINGS, perf_settings

# The pack's settings, and what imports each (only when the setting itself is well formed).
PACK_LOADERS: dict[str, Callable[[], object]] = {
    "PERF_SCENARIOS": lambda: packs.scenarios() if perf_settings.PERF_SCENARIOS else None,
    "PERF_CONTEXT": packs.context_factory,
    "PERF_AUDIT_CHECKS": packs.audit_checks,
    "PERF_SEED_HOOK": packs.seed_hook,
    "PERF_SHAPES": shape_classes,
}


def _error(name: str, exc: Exception) -> checks.Error:
    setting = BY_NAME[name]
    return checks.Error(str(exc), hint=setting.hint(), id=setting.check_id)


@checks.register("perf")
def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """One error per ``PERF_*`` setting that cannot be used, with the setting's id and what it takes."""
    errors: list[checks.CheckMessage] = []
    for setting in SETTINGS:
        try:
            getattr(perf_settings, setting.name)
            load = PACK_LOADERS.get(setting.name)
            if load is not None:
                load()
        except ImproperlyConfigured as exc:
            errors.append(_error(setting.name, exc))
    return errors
