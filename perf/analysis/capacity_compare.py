"""Two capacity searches compared: the capacity before → after (load and req/s), the USL's σ and κ when both runs
have a fit, and each search's status. ``perf.analysis.compare`` puts it above the per-endpoint table, so
``perf_compare``, ``run_perf --compare-to`` and the admin's compare page show the same.

What a capacity is depends on how its search ended: ``found`` is the edge itself; ``ceiling``, ``budget`` and
``stopped`` a lower bound (the capacity is at least that); ``first_step_failed`` an upper bound (below the first
step's load); ``generator_limit`` nothing (the generator was measured, not the server). So the capacity regressed
when the new search's edge, or its upper bound, lies more than PERCENT % below the base's capacity or lower bound:
only then is the fall certain. Two searches of different things (users against an arrival rate) have no common
scale: one note says so and nothing is judged.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tabulate import tabulate

from perf.models import PerfRun
from perf.reports import formats
from perf.reports.capacity_view import STATUS_BADGES, load_text

# How each status bounds the true capacity: the measured edge, a floor, a ceiling, or nothing.
EXACT, AT_LEAST, BELOW, NONE = "exact", "at least", "below", "none"
BOUNDS = {"found": EXACT, "ceiling": AT_LEAST, "budget": AT_LEAST, "stopped": AT_LEAST,
          "first_step_failed": BELOW, "generator_limit": NONE, "searching": AT_LEAST}
NOT_AS_CAPACITY = "cannot be compared as capacity searches"


def _number(data: Any, key: str) -> float | None:
    value = data.get(key) if isinstance(data, Mapping) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _object(data: Any, key: str) -> Mapping[str, Any] | None:
    value = data.get(key) if isinstance(data, Mapping) else None
    return value if isinstance(value, Mapping) else None


@dataclass(frozen=True)
class Side:
    """One search's result as the comparison reads it from ``PerfRun.capacity``."""

    run: PerfRun
    status: str
    unit: str
    load: float | None  # the capacity; for a search whose first step failed, that step's load (an upper bound)
    rps: float | None
    sigma: float | None
    kappa: float | None
    fit_shown: bool
    thresholds: tuple[str, ...]

    @property
    def bound(self) -> str:
        return BOUNDS.get(self.status, NONE) if self.load is not None else NONE

    @property
    def status_text(self) -> str:
        return STATUS_BADGES.get(self.status, self.status or "unknown")

    def capacity_text(self) -> str:
        """``47 users``, ``at least 40 users``, ``below 10 users``, ``none (invalid)``."""
        if self.status == "generator_limit":
            return "none (invalid: generator limit)"
        if self.load is None:
            return "none found"
        text = load_text(self.load, self.unit)
        return text if self.bound == EXACT else f"above {text}" if self.status == "ceiling" else f"{self.bound} {text}"

    @classmethod
    def of(cls, run: PerfRun) -> "Side":
        data = run.capacity if isinstance(run.capacity, Mapping) else {}
        status = str(data.get("status") or "")
        unit = str(data.get("unit") or ("iterations/s" if data.get("model") == "rate" else "users"))
        capacity = _object(data, "capacity")
        load, rps = _number(capacity, "load"), _number(capacity, "requests_per_second")
        if status == "first_step_failed":
            steps = data.get("steps")
            first = steps[0] if isinstance(steps, list) and steps else None
            load, rps = _number(first, "load"), None
        if status == "generator_limit":
            load = rps = None
        usl = _object(data, "usl")
        settings = _object(data, "settings")
        listed = settings.get("thresholds") if settings is not None else None
        thresholds = tuple(item for item in listed if isinstance(item, str)) if isinstance(listed, list) else ()
        return cls(run, status, unit, load, rps, _number(usl, "sigma"), _number(usl, "kappa"),
                   usl is not None and usl.get("shown") is True, thresholds)


@dataclass(frozen=True)
class Row:
    """One line of the comparison: base → new with the change; ``regressed`` only on the capacity's line."""

    label: str
    base: str
    new: str
    delta: str = ""
    worse: bool = False
    regressed: bool = False


def _change(base: float | None, new: float | None) -> float | None:
    if base is None or new is None or base == 0:
        return None
    return 100.0 * (new - base) / base


def _delta(change: float | None) -> str:
    return "" if change is None else f"{change:+.1f}%"


@dataclass(frozen=True)
class CapacityComparison:
    """Two capacity searches, ``base`` → ``new``."""

    base: Side
    new: Side

    @property
    def comparable(self) -> bool:
        """Whether the two capacities are on one scale (both users, or both an arrival rate)."""
        return self.base.unit == self.new.unit

    def regressed(self, percent: float) -> bool:
        """Whether the capacity certainly fell by more than ``percent`` % (see the module's docstring)."""
        base, new = self.base, self.new
        if not self.comparable or base.load is None or new.load is None:
            return False
        if base.bound not in (EXACT, AT_LEAST) or new.bound not in (EXACT, BELOW):
            return False
        return new.load < base.load * (1 - percent / 100)

    def regressions(self, percent: float) -> list[str]:
        if not self.regressed(percent):
            return []
        change = _change(self.base.load, self.new.load)
        delta = f" ({_delta(change)})" if change is not None else ""
        return [f"capacity {self.base.capacity_text()} → {self.new.capacity_text()}{delta}"]

    def rows(self, percent: float) -> list[Row]:
        base, new = self.base, self.new
        rows = [Row("status", base.status_text, new.status_text)]
        change = _change(base.load, new.load) if self.comparable else None
        rows.append(Row("capacity", base.capacity_text(), new.capacity_text(), _delta(change),
                        change is not None and change < 0, self.regressed(percent)))
        rps_change = _change(base.rps, new.rps)
        rows.append(Row("req/s at capacity", formats.rate(base.rps), formats.rate(new.rps), _delta(rps_change),
                        rps_change is not None and rps_change < 0))
        if base.sigma is not None and new.sigma is not None and base.kappa is not None and new.kappa is not None:
            # More contention or more crosstalk is worse: the curve flattens, or falls, sooner.
            for label, a, b in (("USL σ (contention)", base.sigma, new.sigma), ("USL κ (coherency)", base.kappa,
                                                                                new.kappa)):
                moved = _change(a, b)
                rows.append(Row(label, f"{a:.3g}", f"{b:.3g}", _delta(moved), moved is not None and moved > 0))
        return rows

    def notes(self) -> list[str]:
        """What makes the two capacities answer different questions, one line each."""
        base, new = self.base, self.new
        notes = []
        if not self.comparable:
            notes.append(f"run {base.run.pk} searched {base.unit} and run {new.run.pk} {new.unit}: the capacities "
                         "are on different scales, not judged")
        if base.thresholds != new.thresholds:
            notes.append(f"thresholds differ: {', '.join(base.thresholds) or 'none'} vs "
                         f"{', '.join(new.thresholds) or 'none'}: the capacities answer different questions")
        for side in (base, new):
            if side.status == "generator_limit":
                notes.append(f"run {side.run.pk}'s search was limited by the load generator: its result is invalid, "
                             "its capacity not compared")
            if side.sigma is not None and not side.fit_shown:
                notes.append(f"run {side.run.pk}'s USL fit was not good enough to show: its σ and κ are indicative")
        return notes

    def table(self, percent: float) -> str:
        """The block ``perf_compare`` prints above the per-endpoint table; the regressed line marked ``!``."""
        body = [["!" if row.regressed else "", row.label, row.base, "→", row.new + (f" ({row.delta})" if row.delta
                                                                                     else "")]
                for row in self.rows(percent)]
        headers = ["", "Capacity search", f"run {self.base.run.pk}", "", f"run {self.new.run.pk}"]
        legend = (f"! regression: the capacity fell by more than {percent:g}% (a found capacity, or a first step "
                  "that failed, below the base's)")
        return tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True) + "\n" + legend


def is_capacity(run: PerfRun) -> bool:
    return run.kind == PerfRun.Kind.CAPACITY


def capacity_comparison(base: PerfRun, new: PerfRun) -> tuple[CapacityComparison | None, str]:
    """The comparison of two capacity searches, or the one line saying why these runs are not compared so ("" when
    neither run is a capacity search: nothing to say)."""
    if is_capacity(base) and is_capacity(new):
        return CapacityComparison(Side.of(base), Side.of(new)), ""
    if is_capacity(base) or is_capacity(new):
        search, other = (base, new) if is_capacity(base) else (new, base)
        return None, (f"run {search.pk} is a capacity search and run {other.pk} a load test: they {NOT_AS_CAPACITY}; "
                      "the ordinary comparison follows")
    return None, ""
