"""Comparing two stored runs: per-endpoint deltas, like-for-like notes and regressions.

One ``Comparison`` feeds three faces: ``run_perf --compare-to``, ``manage.py perf_compare`` and the
admin's compare page, so the console and the page always show the same figures and marks.

Regression rules (``--fail-on-regression PERCENT``; the table marks them at ``DEFAULT_PERCENT`` unless told):

* An endpoint is judged only when both runs made at least ``MIN_REQUESTS`` requests to it: below that a
  p95 is one or two requests and any delta is noise. Endpoints in only one run are listed, never judged.
* p95 or p99 regress when they rose by more than PERCENT % of the base value *and* by at least
  ``MIN_LATENCY_RISE_MS``: 0.8 → 1.2 ms is +50 % but no regression.
* req/s regresses when it fell by more than PERCENT %, and only when the load was like-for-like (same
  users, spawn rate, planned duration, scenarios, user split and wait): a rate under another load is
  expected to differ. Latencies and errors are still judged then, with a note saying the load differed.
* error % regresses when it rose by more than PERCENT % relative; from a base of 0 % (where any rise is
  infinitely large) when the new error rate exceeds PERCENT percentage points.

Two capacity searches (``run_perf --find-capacity``) are compared by their capacity first
(``perf.analysis.capacity_compare``): it regresses when it fell by more than PERCENT %. Their per-endpoint figures
are over every step of each search, at loads that differ from step to step: listed, not judged. A capacity search
against a load test gets one note saying they cannot be compared as capacity searches, then the ordinary comparison.

Runs that followed the same load profile (the same stages: durations and targets, whatever text gave them) are
also compared stage with stage (``PerfRun.stages``): each stage's req/s, p95, p99 and error % are judged by the
rules above as the Aggregated row is, so a regression confined to the ramp to the peak is named in that stage
(and counts for ``--fail-on-regression``) even when the whole run's figures hide it. Runs whose profiles differ
get one note saying why their stages are not compared, and their rates are not like-for-like.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tabulate import SEPARATING_LINE, tabulate

from perf.analysis.capacity_compare import CapacityComparison, capacity_comparison
from perf.analysis.capacity_compare import Row as CapacityRow
from perf.models import EndpointStats, PerfRun
from perf.options import parse_wait
from perf.reports import formats
from perf.reports.description import ProfileResult, stored_profile
from perf.reports.output import Output

DEFAULT_PERCENT = 10.0
MIN_REQUESTS = 20
MIN_LATENCY_RISE_MS = 1.0
MISSING = formats.MISSING  # one dash for a missing figure, whatever prints it
REGRESSION_MARK = "!"
RATES_DIFFER = "rates are not like-for-like"


def resolve_run(ref: str) -> PerfRun:
    """A stored run from ``42``, ``last`` (newest completed run) or ``previous`` (the completed one before it).

    A ``running`` run has no final figures (or was killed), so it cannot be compared.
    """
    text = ref.strip().lower()
    if text in ("last", "previous"):
        position = 0 if text == "last" else 1
        runs = list(PerfRun.objects.filter(status=PerfRun.Status.COMPLETED).order_by("-started_at", "-id")[:2])
        if len(runs) <= position:
            raise ValueError("no completed run to compare with yet" if position == 0
                             else "no completed run before the last one yet")
        return runs[position]
    if not re.fullmatch(r"[0-9]+", text):
        raise ValueError(f"bad run {ref!r}: use a run id, last or previous; see the admin for ids")
    run = PerfRun.objects.filter(pk=int(text)).first()
    if run is None:
        raise ValueError(f"no stored run {int(text)}; see the admin for ids")
    if run.status == PerfRun.Status.RUNNING:
        raise ValueError(f"run {run.pk} is still running (or was killed): it has no final figures to compare")
    return run


@dataclass(frozen=True)
class Metric:
    """One compared figure: how to print it and which way is worse."""

    key: str
    label: str
    unit: str
    fmt: Callable[[float | None], str]
    rise_is_worse: bool = True
    judged: bool = False


METRICS = (
    Metric("rps", "req/s", "req/s", formats.rate, rise_is_worse=False, judged=True),
    Metric("p50", "p50", "ms", formats.ms),
    Metric("p95", "p95", "ms", formats.ms, judged=True),
    Metric("p99", "p99", "ms", formats.ms, judged=True),
    Metric("error_percent", "error %", "", formats.percent, judged=True),
    Metric("queries", "queries/req", "", formats.tenths),
)
REQUESTS = Metric("requests", "# reqs", "", formats.count)
# A stage holds the run's figures for its span, not per endpoint nor the queries: these four are judged per stage.
STAGE_METRICS = tuple(metric for metric in METRICS if metric.key in ("rps", "p95", "p99", "error_percent"))
STAGES_NOT_COMPARED = "stages are not compared"
ENDPOINTS_NOT_JUDGED = ("per-endpoint figures are over every step of each search, at loads that differ: listed, "
                        "not judged")


@dataclass(frozen=True)
class Figures:
    """What one run measured for one endpoint (or for all of them: the Aggregated row)."""

    requests: int
    failures: int
    rps: float
    p50: float | None
    p95: float | None
    p99: float | None
    queries: float | None

    @property
    def error_percent(self) -> float:
        return 100.0 * self.failures / self.requests if self.requests else 0.0

    @classmethod
    def of(cls, row: EndpointStats) -> "Figures":
        return cls(row.num_requests, row.num_failures, row.requests_per_second, row.p50, row.p95, row.p99,
                   row.avg_queries)

    @classmethod
    def of_stage(cls, stage: dict[str, Any]) -> "Figures | None":
        """A stored stage's figures (``perf.load.stage_figures.StageFigures.as_json``); None when it does not hold
        that layout (edited by hand): it is then not compared."""
        def number(key: str) -> float | None:
            value = stage.get(key)
            return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

        requests, failures, rps = number("requests"), number("failures"), number("requests_per_second")
        if requests is None or failures is None or rps is None:
            return None
        return cls(int(requests), int(failures), rps, number("p50"), number("p95"), number("p99"), None)


@dataclass(frozen=True)
class Cell:
    """One figure in both runs."""

    metric: Metric
    base: float | None
    new: float | None

    @property
    def change(self) -> float | None:
        """Relative change in percent; None when it has no finite value."""
        if self.base is None or self.new is None:
            return None
        if self.base == 0:
            return 0.0 if self.new == 0 else None
        return 100.0 * (self.new - self.base) / self.base

    @property
    def delta(self) -> str:
        change = self.change
        if change is not None:
            return f"{change:+.1f}%"
        if self.metric.key == "error_percent" and self.base == 0 and self.new is not None:
            return f"{self.new:+.2f} pt"
        return ""

    @property
    def worse(self) -> bool:
        if self.base is None or self.new is None:
            return False
        return self.new > self.base if self.metric.rise_is_worse else self.new < self.base

    def regressed(self, percent: float, rates_comparable: bool) -> bool:
        """Whether this figure breaks the module's regression rules at ``percent``."""
        metric, base, new = self.metric, self.base, self.new
        if not metric.judged or base is None or new is None or not self.worse:
            return False
        if metric.key == "rps":
            return rates_comparable and base > 0 and 100.0 * (base - new) / base > percent
        if metric.key == "error_percent":
            return new > percent if base == 0 else 100.0 * (new - base) / base > percent
        if new - base < MIN_LATENCY_RISE_MS:
            return False
        return base == 0 or 100.0 * (new - base) / base > percent

    def text(self) -> str:
        delta = self.delta
        figures = f"{self.metric.fmt(self.base)} → {self.metric.fmt(self.new)}"
        return f"{figures} ({delta})" if delta else figures

    def line(self) -> str:
        """``p95 100 → 300 ms (+200.0%)``: the cell for a regression report."""
        metric = self.metric
        unit = f" {metric.unit}" if metric.unit and metric.unit != metric.label else ""
        delta = f" ({self.delta})" if self.delta else ""
        return f"{metric.label} {metric.fmt(self.base)} → {metric.fmt(self.new)}{unit}{delta}"


@dataclass
class EndpointComparison:
    """An endpoint (or the Aggregated row) in both runs; one side is None when only one run has it."""

    method: str
    name: str
    aggregated: bool
    base: Figures | None
    new: Figures | None
    metrics: tuple[Metric, ...] = METRICS  # a stage's row compares STAGE_METRICS

    @property
    def label(self) -> str:
        return f"{self.method} {self.name}".strip()

    @property
    def in_both(self) -> bool:
        return self.base is not None and self.new is not None

    @property
    def judged(self) -> bool:
        return (self.base is not None and self.new is not None
                and min(self.base.requests, self.new.requests) >= MIN_REQUESTS)

    def cell(self, metric: Metric) -> Cell:
        def value(side: Figures | None) -> float | None:
            return None if side is None else getattr(side, metric.key)

        return Cell(metric, value(self.base), value(self.new))

    def cells(self) -> list[Cell]:
        return [self.cell(metric) for metric in self.metrics]

    def regressed_cells(self, percent: float, rates_comparable: bool) -> list[Cell]:
        if not self.judged:
            return []
        return [cell for cell in self.cells() if cell.regressed(percent, rates_comparable)]


@dataclass(frozen=True)
class CellView:
    """A cell as the admin page shows it."""

    label: str
    base: str
    new: str
    delta: str
    worse: bool
    regressed: bool


@dataclass(frozen=True)
class RowView:
    """A row as the admin page shows it: the same figures as ``Comparison.table()``."""

    method: str
    name: str
    aggregated: bool
    only_in: str  # "" when in both runs, else "base" or "new"
    judged: bool
    regressed: bool
    requests: CellView
    cells: list[CellView]


@dataclass
class Comparison:
    """``base`` → ``new``: rows per endpoint, notes on what is not like-for-like, regressions at ``percent``."""

    base: PerfRun
    new: PerfRun
    rows: list[EndpointComparison]
    notes: list[str] = field(default_factory=list)
    percent: float = DEFAULT_PERCENT
    rates_comparable: bool = True
    stages: list[EndpointComparison] = field(default_factory=list)  # stage with stage, when the profiles match
    capacity: CapacityComparison | None = None  # both runs are capacity searches: judged by their capacity

    @property
    def stage_metric_labels(self) -> list[str]:
        return [metric.label for metric in STAGE_METRICS]

    def regressions(self, percent: float) -> list[str]:
        """One line per regressed row (endpoints, then stages), naming each figure that regressed by more than
        ``percent`` %."""
        if self.capacity is not None:
            return self.capacity.regressions(percent)
        lines = []
        for row in [*self.rows, *self.stages]:
            cells = row.regressed_cells(percent, self.rates_comparable)
            if cells:
                lines.append(f"{row.label}: " + "; ".join(cell.line() for cell in cells))
        return lines

    def verdict(self, percent: float, gated: bool) -> dict[str, Any]:
        """What the reports' header shows of a comparison (``--compare-to``): its regressions at ``percent``."""
        return {"baseline": self.base.pk, "baseline_label": self.base.label, "percent": percent, "gate": gated,
                "regressions": self.regressions(percent), "notes": self.notes}

    def write(self, out: Output, gate: float | None = None) -> list[str]:
        """The table and its notes, then (with ``gate``) each regression and the verdict; returns the regressions.

        Both ``run_perf --compare-to`` and ``perf_compare`` print a comparison through this. Two capacity searches'
        capacities come first.
        """
        if self.capacity is not None:
            out.write(self.capacity.table(self.percent if gate is None else gate) + "\n\n")
        out.write(self.table() + "\n")
        for note in self.notes:
            out.write(f"Note: {note}\n")
        if gate is None:
            return []
        regressions = self.regressions(gate)
        for line in regressions:
            out.write(f"REGRESSION {line}\n")
        if not regressions:
            out.write(f"No regression above {gate:g}%.\n")
        return regressions

    def table(self) -> str:
        """The per-endpoint table, "base → new (±Δ%)" per figure, regressions marked with ``!``; then, for runs with
        the same load profile, the per-stage one."""
        headers = ["", "Type", "Name", REQUESTS.label, *(metric.label for metric in METRICS)]
        body: list[Any] = []
        for row in self.rows:
            if row.aggregated and body:
                body.append(SEPARATING_LINE)
            body.append([self._mark(row), row.method, row.name, row.cell(REQUESTS).text(), *self._texts(row)])
        table = tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True)
        if self.stages:
            headers = ["", "Stage", REQUESTS.label, *self.stage_metric_labels]
            body = [[self._mark(row), row.name, row.cell(REQUESTS).text(), *self._texts(row)] for row in self.stages]
            table += "\n\nPer stage of the load profile\n" + tabulate(body, headers=headers, tablefmt="simple",
                                                                     disable_numparse=True)
        legend = (f"{REGRESSION_MARK} regression: p95/p99 or error % up, or req/s down, by more than "
                  f"{self.percent:g}% (rows with fewer than {MIN_REQUESTS} requests in a run are not judged)"
                  if self.capacity is None else f"Per endpoint: {ENDPOINTS_NOT_JUDGED}")
        return f"{table}\n{legend}"

    def _regressed(self, row: EndpointComparison) -> list[Cell]:
        """The row's regressed cells; none for capacity searches, whose endpoints are not judged."""
        return [] if self.capacity is not None else row.regressed_cells(self.percent, self.rates_comparable)

    def _mark(self, row: EndpointComparison) -> str:
        return REGRESSION_MARK if self._regressed(row) else ""

    def _texts(self, row: EndpointComparison) -> list[str]:
        regressed = self._regressed(row)
        return [cell.text() + (f" {REGRESSION_MARK}" if cell in regressed else "") for cell in row.cells()]

    def as_rows(self) -> list[RowView]:
        return self._views(self.rows)

    def capacity_rows(self) -> list[CapacityRow]:
        """Two capacity searches' lines as the admin page shows them (none for other runs), marked at ``percent``."""
        return [] if self.capacity is None else self.capacity.rows(self.percent)

    def as_stage_rows(self) -> list[RowView]:
        """The per-stage rows as the admin page shows them (none when the profiles differ or neither run had one)."""
        return self._views(self.stages)

    def _views(self, rows: list[EndpointComparison]) -> list[RowView]:
        views = []
        for row in rows:
            regressed = self._regressed(row)
            cells = [_view(cell, cell in regressed) for cell in row.cells()]
            only_in = "" if row.in_both else "base" if row.base is not None else "new"
            views.append(RowView(row.method, row.name, row.aggregated, only_in, row.judged, bool(regressed),
                                 _view(row.cell(REQUESTS), False), cells))
        return views


def _view(cell: Cell, regressed: bool) -> CellView:
    fmt = cell.metric.fmt
    return CellView(cell.metric.label, fmt(cell.base), fmt(cell.new), cell.delta, cell.worse, regressed)


def compare_runs(base: PerfRun, new: PerfRun, percent: float | None = None) -> Comparison:
    """Compare two stored runs; ``percent`` sets where the table marks regressions (default 10 %)."""
    figures: dict[int, dict[tuple[str, str, bool], Figures]] = {base.pk: {}, new.pk: {}}
    for row in EndpointStats.objects.filter(run_id__in=[base.pk, new.pk]):
        figures[row.run_id][(row.method, row.name, row.is_aggregated)] = Figures.of(row)
    before, after = figures[base.pk], figures[new.pk]
    keys = sorted(set(before) | set(after), key=lambda key: (key[2], key[1], key[0]))
    rows = [EndpointComparison(method, name, aggregated, before.get((method, name, aggregated)),
                               after.get((method, name, aggregated)))
            for method, name, aggregated in keys]
    stages = stage_rows(base, new) if stages_difference(base, new) == "" else []
    notes, rates_comparable = load_notes(base, new)
    capacity, why_not = capacity_comparison(base, new)
    if capacity is not None:
        # The searches' loads are their steps': only where they ran and the thresholds say what is like-for-like.
        notes = [*capacity.notes(), *(note for note in notes if note.startswith(("host differs", "database differs"))),
                 ENDPOINTS_NOT_JUDGED]
        stages, rates_comparable = [], False
    elif why_not:
        notes.insert(0, why_not)
    notes += _status_notes(base, new) + _one_sided_notes(base, new, rows) + _one_sided_notes(base, new, stages)
    return Comparison(base, new, rows, notes, DEFAULT_PERCENT if percent is None else percent, rates_comparable,
                      stages, capacity)


# ---------------------------------------------------------------------------------------------- stage with stage


def _profile_option(profile: ProfileResult) -> str:
    """``--stages 10s:4,20s:4`` or ``--shape pulse``: the profile as it was asked for."""
    option = "--shape" if profile.source == "shape" else "--rate-stages" if profile.kind == "rate" else "--stages"
    return f"{option} {profile.text}".strip()


def _same(a: float, b: float) -> bool:
    return abs(a - b) < 1e-6


def stages_difference(base: PerfRun, new: PerfRun) -> str | None:
    """Why the two runs' stages cannot be compared stage with stage; "" when they can (the same kind and the same
    spans: each stage's duration and targets); None when neither run followed a load profile (nothing to say)."""
    a, b = stored_profile(base.profile), stored_profile(new.profile)
    if a is None and b is None:
        return None
    if a is None or b is None:
        (run, profile), other = ((new, b), base) if a is None else ((base, a), new)
        assert profile is not None
        return f"run {run.pk} followed a load profile ({_profile_option(profile)}) and run {other.pk} did not"
    if a.kind != b.kind:
        what = {"users": "users", "rate": "the arrival rate"}
        return (f"run {base.pk}'s profile sets {what.get(a.kind, a.kind)} and run {new.pk}'s "
                f"{what.get(b.kind, b.kind)}")
    for run, profile in ((base, a), (new, b)):
        if not profile.spans:
            return f"run {run.pk}'s profile ({_profile_option(profile)}) lays out no stages in advance"
    if len(a.spans) != len(b.spans):
        return (f"run {base.pk}'s profile has {formats.plural(len(a.spans), 'stage')} and run {new.pk}'s "
                f"{len(b.spans)}")
    for x, y in zip(a.spans, b.spans, strict=True):
        number = int(x["index"]) + 1
        if not _same(x["end"] - x["start"], y["end"] - y["start"]):
            return (f"stage {number} lasts {formats.duration(x['end'] - x['start'])} in run {base.pk} and "
                    f"{formats.duration(y['end'] - y['start'])} in run {new.pk}")
        if not (_same(x["start_target"], y["start_target"]) and _same(x["target"], y["target"])):
            return (f"stage {number} goes {x['start_target']:g} → {x['target']:g} in run {base.pk} and "
                    f"{y['start_target']:g} → {y['target']:g} in run {new.pk}")
    return ""


def _alike_shapes(base: PerfRun, new: PerfRun) -> bool:
    """The same shape with the same parameters: the same load, though laid out in no stages."""
    a, b = stored_profile(base.profile), stored_profile(new.profile)
    return (a is not None and b is not None and a.kind == b.kind and a.source == b.source == "shape"
            and a.shape == b.shape and a.params == b.params)


def _stored_stages(run: PerfRun) -> dict[int, tuple[str, Figures]]:
    """A run's stored stages by index: the name tables give it and its figures."""
    found = {}
    for position, stage in enumerate(run.stages if isinstance(run.stages, list) else []):
        figures = Figures.of_stage(stage) if isinstance(stage, dict) else None
        if figures is None:
            continue
        index = stage.get("index")
        index = index if isinstance(index, int) and not isinstance(index, bool) else position
        name = stage.get("name")
        found[index] = (name if isinstance(name, str) and name else f"stage {index + 1}", figures)
    return found


def stage_rows(base: PerfRun, new: PerfRun) -> list[EndpointComparison]:
    """Stage with stage, in the profile's order; a stage only one run reached (the other ended before it) is a
    one-sided row, listed and not judged."""
    before, after = _stored_stages(base), _stored_stages(new)
    rows = []
    for index in sorted(set(before) | set(after)):
        name = (before.get(index) or after[index])[0]
        rows.append(EndpointComparison("", name, False, before.get(index, ("", None))[1],
                                       after.get(index, ("", None))[1], STAGE_METRICS))
    return rows


def wait_text(run: PerfRun) -> str:
    """The run's ``--wait`` normalised (``0.10,0.2`` and ``0.1,0.2`` are the same load); ``default`` when not given."""
    text = (run.options or {}).get("wait")
    if not text:
        return "default"
    try:
        low, high = parse_wait(str(text))
    except ValueError:
        return str(text)
    return f"{low:g},{high:g}"


def duration_text(value: float | None) -> str:
    """A planned duration as the admin prints durations; runs without one are open-ended."""
    return "open-ended" if value is None else formats.duration(value)


def split_text(run: PerfRun) -> str:
    """``EventBrowser 6, RSVPUser 4``: sorted, so the same split always reads the same."""
    return ", ".join(f"{name} {count}" for name, count in sorted((run.user_split or {}).items())) or "none"


def load_notes(base: PerfRun, new: PerfRun) -> tuple[list[str], bool]:
    """One note per load option that differs, and whether rates are still like-for-like."""
    same_mix = sorted(base.scenarios or []) == sorted(new.scenarios or [])
    checks: list[tuple[str, Any, Any, str]] = [
        ("users differ", base.users, new.users, RATES_DIFFER),
        ("spawn rate differs", f"{base.spawn_rate:g}/s", f"{new.spawn_rate:g}/s", RATES_DIFFER),
        ("planned duration differs", duration_text(base.planned_duration), duration_text(new.planned_duration),
         RATES_DIFFER),
        ("scenarios differ", ", ".join(sorted(base.scenarios or [])) or "none",
         ", ".join(sorted(new.scenarios or [])) or "none", "the request mix and rates are not like-for-like"),
        ("wait differs", wait_text(base), wait_text(new), RATES_DIFFER),
    ]
    if same_mix and base.users == new.users:
        checks.append(("user split differs", split_text(base), split_text(new), RATES_DIFFER))
    stages = stages_difference(base, new)
    rates_comparable = all(a == b for _, a, b, _ in checks) and (not stages or _alike_shapes(base, new))
    checks += [
        ("seed differs", "none" if base.seed is None else base.seed, "none" if new.seed is None else new.seed,
         "users made different random choices"),
        ("host differs", base.host, new.host, "another server: latencies are not like-for-like"),
    ]
    if base.database_vendor and new.database_vendor:
        checks.append(("database differs", base.database_vendor, new.database_vendor,
                       "latencies are not like-for-like"))
    notes = [f"{what}: {a} vs {b}: {why}" for what, a, b, why in checks if a != b]
    if stages:
        notes.append(f"{STAGES_NOT_COMPARED}: {stages}")
    if not rates_comparable:
        notes.append("req/s is not judged for regressions because the load differed")
    return notes, rates_comparable


def _status_notes(base: PerfRun, new: PerfRun) -> list[str]:
    return [f"run {run.pk} is {run.status}: its figures cover only part of the planned load"
            for run in ({base.pk: base, new.pk: new}).values() if run.status != PerfRun.Status.COMPLETED]


def _one_sided_notes(base: PerfRun, new: PerfRun, rows: list[EndpointComparison]) -> list[str]:
    notes = []
    for run, side in ((base, "base"), (new, "new")):
        only = [row.label for row in rows if not row.in_both and getattr(row, side) is not None]
        if only:
            notes.append(f"only in run {run.pk}, not compared: {', '.join(only)}")
    return notes
