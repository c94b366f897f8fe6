"""The data-integrity audit after a run: the checks a pack configures, run and reported in one place.

Response times say nothing about a backend that oversold a tier or seated more people than an event
holds; races like that only show in the data. A pack lists its checks in ``PERF_AUDIT_CHECKS``
(``perf.packs``): callables that take the run's facts (``SharedContext.facts``, e.g. the accounts
the scenarios saw verified) and return a ``Check`` or several. With none configured the audit says
so and passes: there is nothing this app could know about another backend's invariants.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from perf.reports.formats import plural

Facts = Mapping[str, set[str]]
AuditCheck = Callable[[Facts], "Check | Iterable[Check]"]


@dataclass(frozen=True)
class Check:
    """One invariant's verdict; ``detail`` names offending ids (a few examples and a count)."""

    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class AuditReport:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def check(self, name: str) -> Check:
        return next(check for check in self.checks if check.name == name)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [check.as_dict() for check in self.checks]}

    def lines(self) -> list[str]:
        """A headline, then one line per failed check (passing checks add nothing worth reading)."""
        total = len(self.checks)
        if not total:
            return [NO_CHECKS]
        failed = self.failed()
        if not failed:
            return [f"Integrity audit: PASS ({plural(total, 'check')})"]
        lines = [f"Integrity audit: FAIL ({len(failed)} of {plural(total, 'check')} failed)"]
        lines += [f"  FAIL {check.name}: {check.detail}" for check in failed]
        return lines


NO_CHECKS = "Integrity audit: no checks configured (PERF_AUDIT_CHECKS)"


def run_checks(checks: Iterable[AuditCheck], facts: Facts) -> AuditReport:
    """Every check on ``facts``, in order; a check may return one ``Check`` or several."""
    found: list[Check] = []
    for check in checks:
        result = check(facts)
        found.extend([result] if isinstance(result, Check) else result)
    return AuditReport(tuple(found))
