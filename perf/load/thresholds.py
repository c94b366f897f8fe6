"""Pass/fail rules over a run's statistics: ``--threshold p95<500ms`` and friends.

A threshold turns "is this run good enough?" into a verdict a CI job can act on (exit code 3)
and that ``--abort-on-threshold`` can check while the run is still going. Pure Python over a
``StatsRegistry``, no Django: the engine evaluates, the command decides what a breach means.

Grammar: ``[SCOPE:]METRIC OP VALUE`` (spaces allowed around OP; metric and units any case).

* METRIC and VALUE:

  - times, VALUE in ``ms`` or ``s`` (a bare number is milliseconds): ``avg``, ``min``, ``max``,
    ``med``/``median`` (= ``p50``) and any percentile ``pN`` with 0 < N <= 100: ``p50``, ``p66``,
    ``p75``, ``p80``, ``p90``, ``p95``, ``p98``, ``p99``, ``p99.9``, ``p99.99``, ``p100``;
  - ``error_rate``: failed requests as a percentage of all requests. VALUE is a percentage,
    ``1%`` or bare ``1`` (both mean one percent; ``0.01`` means 0.01 %, not 1 %);
  - ``rps``, ``failures_per_s``: per second over the run so far, bare number (``/s`` allowed);
  - ``requests``, ``failures``: counts, bare number.

* OP is ``<``, ``<=``, ``>`` or ``>=``: the rule that must hold for the run to pass.

* SCOPE is an endpoint name as the tables show it (``/events/{id}/my-status [BOTTLENECK]``),
  optionally preceded by its method (``GET /events/ [list]``: a first word in capitals is taken
  as the method) and optionally in double quotes. The expression splits at the last colon
  followed by METRIC OP VALUE, so a scope could hold colons. Without SCOPE the Aggregated figures
  apply. A scope without a method covers every method recorded under that name, merged as if
  they were one endpoint (``/x:requests>10`` counts GETs and POSTs alike); give the method to
  pick one.

Nothing measured is never a pass: a scope that matches no recorded endpoint, or a run with no
requests at all, fails with no actual value and a line saying so, so a typo in an endpoint name
cannot silently turn a gate off.
"""

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from perf.load.stats import StatsEntry, StatsRegistry

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
# Kinds of metric: what VALUE means and how an actual value is printed.
TIME, PERCENT, PER_SECOND, COUNT = "ms", "%", "/s", "count"
_KINDS = {
    "avg": TIME, "min": TIME, "max": TIME,
    "error_rate": PERCENT, "rps": PER_SECOND, "failures_per_s": PER_SECOND, "requests": COUNT, "failures": COUNT,
}
_ALIASES = {"med": "p50", "median": "p50"}
_SUFFIXES = {"rps": " req/s", "failures_per_s": " failures/s", "requests": " requests", "failures": " failures"}

_EXPRESSION = re.compile(
    r"^(?:(?P<scope>.*):)?\s*(?P<metric>[A-Za-z_][\w.]*)\s*(?P<op><=|>=|<|>)\s*(?P<value>.*?)\s*$", re.DOTALL
)
_PERCENTILE = re.compile(r"^p(?P<n>\d+(?:\.\d+)?)$")
_NUMBER = r"(?P<number>\d+(?:\.\d*)?|\.\d+)"
_VALUE_FORMS = {
    TIME: re.compile(rf"^{_NUMBER}\s*(?P<unit>ms|s)?$", re.IGNORECASE),
    PERCENT: re.compile(rf"^{_NUMBER}\s*%?$"),
    PER_SECOND: re.compile(rf"^{_NUMBER}\s*(?:/s)?$", re.IGNORECASE),
    COUNT: re.compile(rf"^{_NUMBER}$"),
}
_VALUE_HINTS = {
    TIME: "a time such as 500ms, 1s or 500 (ms)",
    PERCENT: "a percentage such as 1% or 0.5",
    PER_SECOND: "a number per second such as 50",
    COUNT: "a count such as 100",
}
_METHOD = re.compile(r"^(?P<method>[A-Z]+)\s+(?P<name>\S.*)$")
FORMS = ('use [ENDPOINT:]METRIC OP VALUE, e.g. p95<500ms, p99<1s, avg<200ms, error_rate<1%, rps>50, '
         '"/events/{id}/my-status [BOTTLENECK]:p95<300ms"; metrics avg, min, max, med, p50..p100, error_rate, '
         'rps, failures_per_s, requests, failures; operators <, <=, >, >=')


@dataclass(frozen=True)
class Threshold:
    """One parsed rule; ``limit`` is in the metric's unit (ms, percent, per second or a count)."""

    text: str
    metric: str
    operator: str
    limit: float
    limit_text: str
    endpoint: str | None = None
    method: str | None = None
    percentile: float | None = None

    @property
    def kind(self) -> str:
        return TIME if self.percentile is not None else _KINDS[self.metric]

    @property
    def display(self) -> str:
        """The rule without spaces and with the scope quoted, so it reads unambiguously in a line."""
        rule = f"{self.metric}{self.operator}{self.limit_text}"
        if self.endpoint is None:
            return rule
        scope = f"{self.method} {self.endpoint}" if self.method else self.endpoint
        return f'"{scope}":{rule}'

    def holds(self, actual: float) -> bool:
        return OPERATORS[self.operator](actual, self.limit)

    def format_value(self, value: float) -> str:
        number = _format_number(value)
        if self.kind == TIME:
            return f"{number} ms"
        if self.kind == PERCENT:
            return f"{number}%"
        return number + _SUFFIXES[self.metric]


@dataclass(frozen=True)
class Verdict:
    """A threshold checked against the figures: ``actual`` is None when nothing was measured."""

    threshold: Threshold
    actual: float | None
    ok: bool

    def line(self) -> str:
        """``p95<500ms: 312 ms``: the rule and what was measured; the caller adds PASS or FAIL."""
        if self.actual is not None:
            return f"{self.threshold.display}: {self.threshold.format_value(self.actual)}"
        if self.threshold.endpoint is None:
            return f"{self.threshold.display}: no requests were recorded"
        return f"{self.threshold.display}: no requests were recorded for this endpoint"

    def as_dict(self) -> dict[str, Any]:
        threshold = self.threshold
        return {
            "expression": threshold.text, "endpoint": threshold.endpoint, "method": threshold.method,
            "metric": threshold.metric, "operator": threshold.operator, "limit": threshold.limit,
            "unit": threshold.kind, "actual": self.actual, "ok": self.ok, "line": self.line(),
        }


def parse_threshold(text: str) -> Threshold:
    """The rule in ``text``; ValueError with one line naming what is wrong and the accepted forms."""
    source = text.strip()
    match = _EXPRESSION.match(source)
    if not match:
        raise ValueError(f"bad --threshold {text!r}: no comparison found; {FORMS}")
    written = match["metric"].lower()
    metric = _ALIASES.get(written, written)
    percentile = _percentile(metric)
    if percentile is None and metric not in _KINDS:
        raise ValueError(f"bad --threshold {text!r}: unknown metric {match['metric']!r}; {FORMS}")
    if percentile is not None:
        metric = f"p{percentile * 100:g}"  # p95.0 and P95 both become p95
    kind = TIME if percentile is not None else _KINDS[metric]
    parsed = _parse_value(match["value"], kind)
    if parsed is None:
        raise ValueError(f"bad --threshold {text!r}: {metric} needs {_VALUE_HINTS[kind]}, "
                         f"not {match['value']!r}; {FORMS}")
    never = _never_fails(kind, match["op"], parsed[0])
    if never:
        raise ValueError(f"bad --threshold {text!r}: it can never fail ({never}); a gate that always passes "
                         "hides the run it judges")
    endpoint, method = _parse_scope(match["scope"], text)
    return Threshold(text=source, metric=metric, operator=match["op"], limit=parsed[0], limit_text=parsed[1],
                     endpoint=endpoint, method=method, percentile=percentile)


def evaluate(thresholds: list[Threshold], stats: StatsRegistry, duration: float) -> list[Verdict]:
    """One verdict per threshold, in order; ``duration`` (seconds so far) turns counts into rates."""
    verdicts = []
    for threshold in thresholds:
        entry = _entry_for(threshold, stats)
        actual = _measure(threshold, entry, duration) if entry is not None and entry.num_requests else None
        verdicts.append(Verdict(threshold, actual, actual is not None and threshold.holds(actual)))
    return verdicts


def _never_fails(kind: str, op: str, limit: float) -> str | None:
    """Why every figure a run could measure meets the rule, or None: no figure is negative, no rate above 100 %."""
    if op == ">=" and limit <= 0:
        return "no figure is below 0"
    if kind == PERCENT and (limit > 100 if op == "<" else op == "<=" and limit >= 100):
        return "a rate is at most 100%"
    return None


def _percentile(metric: str) -> float | None:
    found = _PERCENTILE.match(metric)
    if not found:
        return None
    percent = float(found["n"])
    return round(percent / 100, 10) if 0 < percent <= 100 else None


def _parse_value(text: str, kind: str) -> tuple[float, str] | None:
    """(limit in the metric's unit, the limit as printed with its unit) or None when malformed."""
    found = _VALUE_FORMS[kind].match(text)
    if not found:
        return None
    written, number = found["number"], float(found["number"])
    if kind == TIME:
        unit = (found["unit"] or "ms").lower()
        return (number * 1000 if unit == "s" else number), written + unit
    return number, written + ("%" if kind == PERCENT else "")


def _parse_scope(scope: str | None, text: str) -> tuple[str | None, str | None]:
    """(endpoint name, method or None); no scope means the Aggregated figures."""
    if scope is None:
        return None, None
    name = scope.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].strip()
    if not name:
        raise ValueError(f"bad --threshold {text!r}: empty endpoint before ':'; {FORMS}")
    found = _METHOD.match(name)
    if found:
        return found["name"].strip(), found["method"]
    return name, None


def _entry_for(threshold: Threshold, stats: StatsRegistry) -> StatsEntry | None:
    """The figures the rule is about: Aggregated, one (method, name), or all methods of a name merged."""
    if threshold.endpoint is None:
        return stats.total
    if threshold.method is not None:
        return stats.entries.get((threshold.method, threshold.endpoint))
    matching = [entry for (_, name), entry in stats.entries.items() if name == threshold.endpoint]
    if len(matching) <= 1:
        return matching[0] if matching else None
    merged = StatsEntry("", threshold.endpoint)
    for entry in matching:
        merged.merge(entry)
    return merged


def _measure(threshold: Threshold, entry: StatsEntry, duration: float) -> float | None:
    if threshold.percentile is not None:
        return entry.percentile(threshold.percentile)
    measures: dict[str, Callable[[], float | None]] = {
        "avg": lambda: entry.avg_response_time,
        "min": lambda: entry.min_response_time,
        "max": lambda: entry.max_response_time,
        "error_rate": lambda: entry.num_failures / entry.num_requests * 100,
        "rps": lambda: entry.rps(duration),
        "failures_per_s": lambda: entry.failures_per_second(duration),
        "requests": lambda: float(entry.num_requests),
        "failures": lambda: float(entry.num_failures),
    }
    return measures[threshold.metric]()


def _format_number(value: float) -> str:
    """Whole numbers from 100 up (``312``), two decimals at most below (``0.42``, ``2``)."""
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")
