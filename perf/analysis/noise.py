"""Regressions that know the noise: a run of a saved plan judged, endpoint by endpoint, against the spread of the
plan's own last comparable runs (docs/continuous.md).

One run compared with one other (``--compare-to``, ``perf.analysis.compare``) cannot tell a slower commit from a
noisy machine: on shared CI runners two runs of the same code often differ by more than 10 %. The plan's history
can. For each endpoint and metric (p95, failure rate), the last N comparable runs give a median and a spread, the
median absolute deviation (MAD) scaled by 1.4826 so that it estimates a standard deviation for normal noise. The
band is ``median ± k × scaled MAD``, and at least ``min_band_percent`` of the median (and ``MIN_BAND`` in the
metric's unit), so that a history that happened to be perfectly quiet does not flag 1 % of jitter. A value above
the band regressed, one below it improved, one inside is within noise. Fewer than ``min_history`` runs that
measured the endpoint: "not enough history", no guess.

Median and MAD rather than mean and standard deviation: one run disturbed by a neighbour on the CI machine (a
p95 three times the others) moves a mean and a standard deviation a lot, and would widen the band until the next
real regression hides inside it; the median and the MAD move by one rank. Their breakdown point is 50 %: the band
stays put until half the history is disturbed.

Comparable runs: of the same plan, completed, load tests, started before the judged run, with the same options
that shape the load (``COMPARABLE_OPTIONS``: users, profile, rate, scenarios, think time, host, processes…). A
plan edited to run more users starts a new history; the runs before are kept, and stop counting.
"""

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tabulate import tabulate

from perf.analysis.compare import MIN_REQUESTS
from perf.load.stats import StatsRegistry
from perf.models import EndpointStats, PerfPlan, PerfRun
from perf.reports import formats

MAD_SCALE = 1.4826  # MAD × this estimates the standard deviation of normally distributed noise
METRICS = ("p95", "failure_rate")
UNITS = {"p95": "ms", "failure_rate": "%"}
# The narrowest band in each metric's own unit, whatever the history: 1 ms of p95, half a point of failure rate.
MIN_BAND = {"p95": 1.0, "failure_rate": 0.5}
AGGREGATED = "Aggregated"
# How many of a plan's newest completed runs are read to find N comparable ones (a plan whose options changed
# often has fewer comparable runs among them, and then says "not enough history").
SCAN_FACTOR = 5
# The options that make two runs of a plan comparable (RunRequest field names, as PerfRun.options stores them).
COMPARABLE_OPTIONS = ("users", "spawn_rate", "duration", "stages", "rate_stages", "shape", "rate", "scenarios",
                      "wait", "host", "processes", "distributed", "shards", "stop_timeout")

REGRESSED, IMPROVED, WITHIN_NOISE, NOT_ENOUGH = "regressed", "improved", "within noise", "not enough history"


@dataclass(frozen=True)
class Rules:
    """How a plan judges its runs (the PerfPlan fields of the same names)."""

    k: float = 3.0
    history_size: int = 20
    min_history: int = 5
    min_band_percent: float = 5.0
    metrics: tuple[str, ...] = METRICS

    @classmethod
    def of(cls, plan: PerfPlan) -> "Rules":
        metrics = tuple(name for name in (plan.metrics or METRICS) if name in METRICS) or METRICS
        return cls(k=plan.noise_k, history_size=plan.history_size, min_history=plan.min_history,
                   min_band_percent=plan.min_band_percent, metrics=metrics)

    def as_json(self) -> dict[str, Any]:
        return {"k": self.k, "history_size": self.history_size, "min_history": self.min_history,
                "min_band_percent": self.min_band_percent, "metrics": list(self.metrics)}


# An endpoint's figures in one run: metric → value (None when it has none, e.g. no request).
Figures = dict[str, float | None]


@dataclass(frozen=True)
class Verdict:
    """One endpoint and metric judged: the numbers that decided it."""

    endpoint: str
    metric: str
    verdict: str
    value: float | None
    median: float | None = None
    band: float | None = None  # half the band's width: the value may be median ± band
    history: int = 0  # how many comparable runs measured it

    @property
    def low(self) -> float | None:
        return None if self.median is None or self.band is None else self.median - self.band

    @property
    def high(self) -> float | None:
        return None if self.median is None or self.band is None else self.median + self.band

    def as_json(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "metric": self.metric, "verdict": self.verdict, "value": self.value,
                "median": self.median, "band": self.band, "low": self.low, "high": self.high,
                "history": self.history}

    def row(self) -> list[str]:
        unit = UNITS[self.metric]
        band = "—" if self.median is None else f"{_number(self.median)} ± {_number(self.band)} {unit}"
        return [self.endpoint, self.metric, f"{_number(self.value)} {unit}", band, str(self.history), self.verdict]


@dataclass
class NoiseReport:
    """A run's verdicts against its plan's history, as printed and as stored (``PerfRun.regressions``)."""

    plan: str
    rules: Rules
    runs: list[int] = field(default_factory=list)  # the comparable runs judged against, newest first
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def regressed(self) -> list[Verdict]:
        return [verdict for verdict in self.verdicts if verdict.verdict == REGRESSED]

    def as_json(self) -> dict[str, Any]:
        return {"plan": self.plan, "rules": self.rules.as_json(), "runs": self.runs,
                "regressed": len(self.regressed), "verdicts": [verdict.as_json() for verdict in self.verdicts]}

    def lines(self) -> list[str]:
        rules = self.rules
        head = (f"Against plan {self.plan}'s last {len(self.runs)} comparable "
                f"run{'' if len(self.runs) == 1 else 's'} (median ± {rules.k:g} × scaled MAD, at least "
                f"{rules.min_band_percent:g}% of the median; {rules.min_history} runs needed):")
        table = tabulate([verdict.row() for verdict in self.verdicts],
                         headers=["endpoint", "metric", "value", "history (median ± band)", "runs", "verdict"],
                         disable_numparse=True)
        counts = {name: sum(1 for v in self.verdicts if v.verdict == name)
                  for name in (REGRESSED, IMPROVED, WITHIN_NOISE, NOT_ENOUGH)}
        summary = ", ".join(f"{count} {name}" for name, count in counts.items() if count) or "nothing to judge"
        return [head, table, f"Noise verdict: {summary}."]


def _number(value: float | None) -> str:
    return formats.MISSING if value is None else f"{value:,.1f}"


def band_of(values: list[float], metric: str, rules: Rules) -> tuple[float, float]:
    """The history's median and the band's half width: k × scaled MAD, at least the rules' and the metric's floor."""
    median = statistics.median(values)
    mad = statistics.median(abs(value - median) for value in values)
    band = max(rules.k * MAD_SCALE * mad, rules.min_band_percent / 100 * abs(median), MIN_BAND[metric])
    return median, band


def judge_value(endpoint: str, metric: str, value: float | None, history: list[float], rules: Rules) -> Verdict:
    """One metric of one endpoint against its history (higher is worse for every metric judged)."""
    if value is None or len(history) < rules.min_history:
        return Verdict(endpoint, metric, NOT_ENOUGH, value, history=len(history))
    median, band = band_of(history, metric, rules)
    verdict = REGRESSED if value > median + band else IMPROVED if value < median - band else WITHIN_NOISE
    return Verdict(endpoint, metric, verdict, value, median, band, len(history))


def judge(current: Mapping[str, Figures], history: Iterable[Mapping[str, Figures]], rules: Rules) -> list[Verdict]:
    """Every endpoint of ``current`` (Aggregated last) and each metric of the rules, against the runs of
    ``history`` that measured it."""
    past = list(history)
    verdicts = []
    for endpoint in sorted(current, key=lambda name: (name == AGGREGATED, name)):
        for metric in rules.metrics:
            values = [float(value) for run in past if (value := run.get(endpoint, {}).get(metric)) is not None]
            verdicts.append(judge_value(endpoint, metric, current[endpoint].get(metric), values, rules))
    return verdicts


def _figures(requests: int, failures: int, p95: float | None) -> Figures | None:
    """An endpoint's judged figures; None below MIN_REQUESTS, where a p95 is one or two requests."""
    if requests < MIN_REQUESTS:
        return None
    return {"p95": p95, "failure_rate": 100.0 * failures / requests}


def figures_of_registry(stats: StatsRegistry) -> dict[str, Figures]:
    """What a run measured, from its registry (a run not stored, or stored: the same figures)."""
    found: dict[str, Figures] = {}
    for (method, name), entry in stats.entries.items():
        figures = _figures(entry.num_requests, entry.num_failures, entry.percentile(0.95))
        if figures is not None:
            found[f"{method} {name}".strip()] = figures
    total = _figures(stats.total.num_requests, stats.total.num_failures, stats.total.percentile(0.95))
    if total is not None:
        found[AGGREGATED] = total
    return found


def figures_of_runs(pks: list[int]) -> dict[int, dict[str, Figures]]:
    """Stored runs' figures, in one query."""
    found: dict[int, dict[str, Figures]] = {pk: {} for pk in pks}
    rows = EndpointStats.objects.filter(run_id__in=pks).values_list(
        "run_id", "method", "name", "is_aggregated", "num_requests", "num_failures", "p95")
    for run_id, method, name, aggregated, requests, failures, p95 in rows:
        figures = _figures(requests, failures, p95)
        if figures is not None:
            found[run_id][AGGREGATED if aggregated else f"{method} {name}".strip()] = figures
    return found


def comparable_key(options: Mapping[str, Any] | None) -> tuple[Any, ...]:
    """What must be equal for two runs of a plan to be compared: the options that shape the load."""
    options = options or {}

    def normal(name: str) -> Any:
        value = options.get(name)
        if isinstance(value, list | tuple):
            return tuple(sorted(map(str, value)))
        return value

    return tuple(normal(name) for name in COMPARABLE_OPTIONS)


def comparable_runs(plan: PerfPlan, options: Mapping[str, Any], history_size: int,
                    run: PerfRun | None = None) -> list[int]:
    """The last ``history_size`` comparable runs of ``plan`` (newest first): completed load tests with the same
    load options, started before ``run`` when one is given, and never ``run`` itself."""
    runs = PerfRun.objects.filter(plan=plan, status=PerfRun.Status.COMPLETED, kind=PerfRun.Kind.LOAD)
    if run is not None:
        runs = runs.exclude(pk=run.pk).filter(started_at__lte=run.started_at)
    key = comparable_key(options)
    candidates = runs.order_by("-started_at", "-id").values_list("pk", "options")[: history_size * SCAN_FACTOR]
    return [pk for pk, stored in candidates if comparable_key(stored) == key][:history_size]


def judge_run(plan: PerfPlan, stats: StatsRegistry, options: Mapping[str, Any],
              run: PerfRun | None = None) -> NoiseReport:
    """A run of ``plan`` (its figures, the options it ran with, its stored row if any) against the plan's history."""
    rules = Rules.of(plan)
    pks = comparable_runs(plan, options, rules.history_size, run)
    history = figures_of_runs(pks)
    verdicts = judge(figures_of_registry(stats), (history[pk] for pk in pks), rules)
    return NoiseReport(plan=plan.name, rules=rules, runs=pks, verdicts=verdicts)
