"""A capacity search as the reports show it: its result in words, what broke first, each step, the USL fit and
the charts against load, built from the JSON the search stores (``PerfRun.capacity``) as the run's description
reads it (``RunDescription.capacity_result``, a ``CapacityResult``).

The run page, its live view and the ``--html`` file all render ``CapacityView`` (the "Capacity" section), so a
search under way grows on its page step by step, from the very JSON its process rewrites after each step.
The JSON is read leniently, as the stages are: a row edited by hand or written by an older version shows dashes
where it lacks a figure, and its page still opens.

Two things are said plainly rather than left to be inferred. A search the load generator limited (its CPU, or an
open model's pool, could not produce the load asked for) measured the generator, not the server: its result is
invalid and no capacity is shown. And the USL fit is a model's prediction from the measured steps: it is shown
only when the search judged it good enough, labelled as a prediction, never beside the measured figures as one.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.safestring import SafeString, mark_safe
from tabulate import tabulate

from perf.reports import charts
from perf.reports import formats as fmt
from perf.reports.description import CapacityResult, CapacityStep, ThresholdResult, UslResult

STATUS_CLASSES = {"searching": "running", "found": "pass", "ceiling": "pass", "first_step_failed": "fail",
                  "budget": "warn", "stopped": "warn", "generator_limit": "fail"}
STATUS_BADGES = {"searching": "searching", "found": "capacity found", "ceiling": "ceiling reached",
                 "first_step_failed": "first step failed", "budget": "time budget spent", "stopped": "stopped",
                 "generator_limit": "invalid: generator limit"}
LIMITS = {"max_users": "the largest load allowed (--max-users)", "max_rate": "the largest rate allowed (--max-rate)",
          "budget": "the time budget (--budget)"}


# ---------------------------------------------------------------------------------------------- loads


def load_text(value: float | None, unit: str) -> str:
    """``47 users``, ``12.5 iterations/s``: a load with its unit; a count of users (or of requests in flight, an
    open model's USL load) whole."""
    if value is None:
        return fmt.MISSING
    return f"{value:,.0f} {unit}" if unit in ("users", "requests in flight") else f"{value:,.6g} {unit}"


# ---------------------------------------------------------------------------------------------- what the page reads


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    detail: str = ""


@dataclass(frozen=True)
class VerdictCell:
    """One threshold's verdict for one step: what was measured (with its unit) and whether it held."""

    value: str
    ok: bool


@dataclass(frozen=True)
class StepRow:
    number: int  # 1 for the first step
    phase: str  # "raise" or "narrow"
    load: str
    cells: list[str]  # req/s, p50, p95, p99, failures %, CPU (and dropped % for an open model)
    passed: bool | None
    verdicts: list[VerdictCell | None]  # lined up with CapacityView.thresholds
    capacity: bool = False  # the step the capacity is (the knee)
    mark: str = ""  # what the row is to the result: "capacity", "first failing", "passed so far" (searching)
    generator_limited: bool = False


@dataclass(frozen=True)
class BrokeFirst:
    """What failed first at the first failing load: the threshold, the endpoint, and where its time went."""

    threshold: str
    actual: str
    endpoint: str
    parts: list[Figure]  # client, app, db, queries, queueing; empty without a breakdown
    timed: bool  # whether the server sent Server-Timing (the app, db and queue parts)


@dataclass(frozen=True)
class Fit:
    """The USL fit: its figures when shown, else why not (one line)."""

    shown: bool
    why: str
    figures: list[Figure]
    axis: str = ""  # what the fit's load counts: the search's unit, or "requests in flight" (an open model)


@dataclass(frozen=True)
class CapacityView:
    status: str
    badge: str  # the status in two or three words
    badge_class: str  # pass, fail, warn or running
    headline: str  # the result in one sentence
    valid: bool  # False when the generator was the limit: no capacity shown
    searching: bool
    unit: str
    figures: list[Figure]  # the capacity and the first failing load, beside each other
    current: list[Figure]  # while searching: the step under way
    broke_first: BrokeFirst | None
    headers: list[str]
    thresholds: list[str]
    steps: list[StepRow]
    fit: Fit | None
    verdict: str
    settings: list[str]
    charts: list[SafeString]


# ---------------------------------------------------------------------------------------------- building it


def _headline(status: str, search: CapacityResult, unit: str) -> str:
    capacity, failing, settings, limit = search.capacity, search.first_failing, search.settings, search.limit
    found = load_text(capacity.load if capacity else None, unit)
    if status == "generator_limit":
        return ("The load generator was the limit: it could not produce the load asked for, so the steps measured "
                "the generator, not the server. The result is invalid, and no capacity is shown.")
    if status == "first_step_failed":
        first = search.steps[0].load if search.steps else settings.start if settings else None
        return (f"Even the first step failed: the capacity is below {load_text(first, unit)}, the smallest load "
                "tried. Start lower (--start-load, or --rate) to find it.")
    if status == "ceiling":
        ceiling = limit.value if limit else None
        why = LIMITS.get(limit.kind if limit else "", "the ceiling")
        at = f" ({load_text(ceiling, unit)})" if ceiling is not None else ""
        return f"Every step passed up to {why}{at}: the capacity is above {found}."
    if status == "budget":
        return (f"The time budget was spent before the search ended: the capacity is at least {found}"
                + (f", below {load_text(failing.load, unit)}." if failing else "."))
    if status == "stopped":
        return (f"Stopped before the search ended: the capacity is at least {found}." if capacity
                else "Stopped before any step passed: no capacity was found.")
    if status == "searching":
        return "Searching: the load goes up step by step until a step fails its thresholds, then narrows down."
    if status == "found":
        between = f", and {load_text(failing.load, unit)} failed" if failing else ""
        return f"Capacity found: {found} passed every threshold{between}."
    return f"Status {status or 'unknown'}."


def _result_figures(status: str, search: CapacityResult, unit: str) -> list[Figure]:
    """The capacity and the first failing load side by side; the capacity qualified where the search did not find
    its edge (above it, at least), and left out of an invalid search."""
    if status == "generator_limit":
        return []
    capacity, failing = search.capacity, search.first_failing
    figures = []
    if capacity is not None:
        label = {"ceiling": "Capacity: above", "budget": "Capacity: at least", "stopped": "Capacity: at least",
                 "searching": "Passed so far"}.get(status, "Capacity")
        figures.append(Figure(label, load_text(capacity.load, unit), f"{fmt.rate(capacity.requests_per_second)} req/s"))
    elif status != "searching":
        figures.append(Figure("Capacity", "none found", "no step passed"))
    if failing is not None:
        figures.append(Figure("First failing load", load_text(failing.load, unit),
                              f"{fmt.rate(failing.requests_per_second)} req/s"))
    return figures


def _current(search: CapacityResult, unit: str, elapsed: float | None) -> list[Figure]:
    """The step under way: its number, load and phase, and how long it has left (settling first)."""
    current = search.current
    if current is None:
        return []
    index, start, settle_end, end, phase = current.index, current.start, current.settle_end, current.end, current.phase
    figures = [Figure("Step now", f"{index + 1}" if index is not None else fmt.MISSING,
                      "raising the load" if phase == "raise" else "narrowing down" if phase == "narrow" else ""),
               Figure("Load now", load_text(current.load, unit))]
    if end is not None and elapsed is not None:
        left = max(end - elapsed, 0.0)
        settling = settle_end is not None and elapsed < settle_end
        span = f"of {fmt.duration(end - start)}" if start is not None else ""
        figures.append(Figure("Left in step", fmt.duration(left),
                              f"settling, not yet judged; {span}".rstrip("; ") if settling else span))
    return figures


def verdict_cell(verdict: ThresholdResult) -> VerdictCell:
    """A stored verdict as a cell: the measured value with its unit, and whether it held."""
    if verdict.unit == "ms" and verdict.actual is not None:
        value = fmt.ms_unit(verdict.actual)
    elif ": " in verdict.line:
        value = verdict.line.rpartition(": ")[2]
    else:
        value = fmt.MISSING if verdict.actual is None else f"{verdict.actual:,.2f}"
    return VerdictCell(value, verdict.ok)


def _thresholds(search: CapacityResult) -> list[str]:
    """The thresholds in the search's own order, then any a step judged that the settings do not name."""
    names = list(search.settings.thresholds) if search.settings is not None else []
    for step in search.steps:
        names += [verdict.expression for verdict in step.verdicts
                  if verdict.expression and verdict.expression not in names]
    return names


def _open_model(search: CapacityResult) -> bool:
    return search.model == "rate" or any(step.dropped_percent is not None for step in search.steps)


def _headers(unit: str, open_model: bool) -> list[str]:
    return ["#", "Phase", f"Load ({unit})", "Req/s", "p50 (ms)", "p95 (ms)", "p99 (ms)", "Failures", "CPU",
            *(["Dropped"] if open_model else []), "Result"]


def _step_row(step: CapacityStep, position: int, unit: str, thresholds: list[str], open_model: bool,
              capacity_step: int | None, failing_step: int | None, searching: bool) -> StepRow:
    number = step.index if step.index is not None else position
    verdicts = {verdict.expression: verdict_cell(verdict) for verdict in step.verdicts}
    cpu = step.cpu_percent
    cells = [fmt.rate(step.requests_per_second), fmt.ms(step.p50), fmt.ms(step.p95), fmt.ms(step.p99),
             fmt.percent(step.failure_percent), fmt.MISSING if cpu is None else f"{cpu:.0f}%"]
    if open_model:
        cells.append(fmt.percent(step.dropped_percent))
    is_capacity = capacity_step == number
    mark = ("passed so far" if searching else "capacity") if is_capacity else \
        "first failing" if failing_step == number else ""
    return StepRow(number + 1, step.phase, load_text(step.load, unit).removesuffix(f" {unit}"), cells, step.passed,
                   [verdicts.get(name) for name in thresholds], is_capacity, mark, step.generator_limited)


def _broke_first(search: CapacityResult) -> BrokeFirst | None:
    broke = search.broke_first
    if broke is None:
        return None
    breakdown = broke.breakdown
    parts: list[Figure] = []
    timed = False
    if breakdown is not None:
        app, db, queries = breakdown.app_ms, breakdown.db_ms, breakdown.queries
        timed = app is not None
        parts = [Figure("Client", fmt.ms_unit(breakdown.client_ms), "what the user waited")]
        if timed:  # without Server-Timing the server's parts are unknown: one line says so, not three dashes
            parts += [
                Figure("App", fmt.ms_unit(app), "inside the Django app"),
                Figure("DB", fmt.MISSING if db is None else f"{db:,.1f} ms",
                       "" if queries is None else f"{queries:,.1f} queries a request"),
                Figure("Queueing", fmt.ms_unit(breakdown.queue_ms), "waiting for a free worker, and the network")]
    actual = broke.actual
    actual_text = actual if isinstance(actual, str) else fmt.MISSING if actual is None else f"{actual:,.6g}"
    return BrokeFirst(broke.threshold or fmt.MISSING, actual_text, broke.endpoint, parts, timed)


def _on_load_axis(usl: UslResult, unit: str) -> bool:
    """Whether the fit's loads are the search's own (users), so its curve can be drawn against them."""
    return (usl.load_axis or "users") == unit


def _fit(search: CapacityResult, unit: str) -> Fit | None:
    usl = search.usl
    if usl is None:
        return None
    if not usl.shown:
        return Fit(False, usl.why or "the fit is not good enough to show", [])
    sigma, kappa, lam, peak_load, peak, r2 = usl.sigma, usl.kappa, usl.lam, usl.peak_load, usl.peak_throughput, usl.r2
    # An open model's fit is over the requests in flight (Little's law), not the arrival rate it asked for.
    axis = unit if _on_load_axis(usl, unit) else "requests in flight"
    figures = [
        Figure("σ (contention)", fmt.MISSING if sigma is None else f"{sigma:.3g}", "share of the work serialised"),
        Figure("κ (coherency)", fmt.MISSING if kappa is None else f"{kappa:.3g}", "cost of the units waiting on "
               "each other"),
        Figure("Predicted peak load (N*)", load_text(peak_load, axis) if peak_load is not None else "no peak",
               "" if peak_load is not None else "κ ≈ 0: throughput never falls"),
        Figure("Predicted peak throughput", f"{fmt.rate(peak)} req/s" if peak is not None else fmt.MISSING),
        Figure("λ (one unit alone)", f"{fmt.rate(lam)} req/s" if lam is not None else fmt.MISSING),
        Figure("R² of the fit", fmt.MISSING if r2 is None else f"{r2:.3f}", "1 is a perfect fit"),
    ]
    return Fit(True, "", figures, axis)


def _settings(search: CapacityResult, unit: str) -> list[str]:
    """The search as it was asked for, in the options' words."""
    settings = search.settings
    if settings is None:
        return []
    parts = [f"start {load_text(settings.start, unit)}"]
    if settings.increment is not None:
        parts.append(f"+{load_text(settings.increment, unit)} a step")
    elif settings.factor is not None:
        parts.append(f"×{settings.factor:g} a step")
    parts.append(f"settle {fmt.duration(settings.settle)}, hold (judged) {fmt.duration(settings.hold)}")
    if settings.resolution is not None:
        parts.append(f"resolution {settings.resolution * 100:g}%")
    if settings.max_load is not None:
        parts.append(f"ceiling {load_text(settings.max_load, unit)}")
    if settings.budget is not None:
        parts.append(f"budget {fmt.duration(settings.budget)}")
    return parts


# ---------------------------------------------------------------------------------------------- charts


def _limit(steps: Sequence[CapacityStep], metrics: tuple[str, ...], unit: str) -> float | None:
    """The limit of the run-wide threshold on ``metrics`` (p95 in ms, error rate in %), to draw across its chart."""
    for step in steps:
        for verdict in step.verdicts:
            if verdict.metric in metrics and verdict.unit == unit and verdict.endpoint is None:
                return verdict.limit
    return None


def _charts(search: CapacityResult, unit: str, knee: float | None, fit: Fit | None,
            searching: bool) -> list[SafeString]:
    """Throughput, p95 and failures % against load, each step a point, the capacity marked on each (while searching:
    the highest passing load so far, and the load of the step under way); the USL curve on the throughput chart
    when its fit is shown."""
    steps = search.steps

    def points(figure: Callable[[CapacityStep], float | None]) -> list[charts.LoadPoint]:
        found = []
        for position, step in enumerate(steps):
            if step.load is None:
                continue
            note = f"step {(step.index if step.index is not None else position) + 1} ({step.phase})"
            found.append(charts.LoadPoint(step.load, figure(step), step.passed, note))
        return found

    what = "passed so far" if searching else "capacity"
    knee_marks = [charts.Mark(knee, f"{what} {load_text(knee, unit)}", charts.COLORS["knee"])] if knee else []
    now = search.current.load if searching and search.current is not None else None
    if now is not None:
        knee_marks.append(charts.Mark(now, f"now {load_text(now, unit)}", charts.COLORS["stage"]))
    x_label = f"load ({unit})"
    curve = None
    usl = search.usl
    if fit is not None and fit.shown and usl is not None and _on_load_axis(usl, unit):
        loads = [step.load for step in steps if step.load is not None]
        if usl.sigma is not None and usl.kappa is not None and usl.lam is not None and loads:
            curve = charts.usl_curve(usl.sigma, usl.kappa, usl.lam, max(loads), "USL fit (model)")

    def limit_mark(value: float | None, text: str) -> list[charts.Mark]:
        return [charts.Mark(value, text, charts.COLORS["limit"], vertical=False)] if value is not None else []

    p95_limit = _limit(steps, ("p95",), "ms")
    failure_limit = _limit(steps, ("error_rate",), "%")
    drawn = [
        charts.load_chart("Throughput against load", points(lambda step: step.requests_per_second), x_label,
                          "requests per second (req/s)", lambda value: f"{fmt.rate(value)} req/s", curve, knee_marks),
        charts.load_chart("p95 against load", points(lambda step: step.p95), x_label, "p95 response time (ms)",
                          fmt.ms_unit, marks=[*knee_marks, *limit_mark(p95_limit, f"limit {fmt.ms_unit(p95_limit)}")]),
        charts.load_chart("Failures against load", points(lambda step: step.failure_percent), x_label,
                          "failures (% of requests)", fmt.percent, marks=[*knee_marks, *limit_mark(
                              failure_limit, f"limit {fmt.percent(failure_limit)}")]),
    ]
    # perf.reports.charts escapes every text it draws; the SVG is markup to keep as it is.
    return [mark_safe(svg) for svg in drawn]


# ---------------------------------------------------------------------------------------------- the view


def capacity_view(search: CapacityResult | None, elapsed: float | None = None) -> CapacityView | None:
    """The section's content from a capacity search (``RunDescription.capacity_result``); None for a run that is
    not one. ``elapsed`` (seconds since the run's start) says how long the step under way has left."""
    if search is None:
        return None
    status = search.status or "searching"
    unit = search.unit or ("iterations/s" if search.model == "rate" else "users")
    valid = status != "generator_limit"
    capacity, failing = search.capacity, search.first_failing
    capacity_step = capacity.step if capacity is not None and valid else None
    failing_step = failing.step if failing is not None and valid else None
    knee = capacity.load if capacity is not None and valid else None
    thresholds = _thresholds(search)
    open_model = _open_model(search)
    fit = _fit(search, unit)
    rows = [_step_row(step, position, unit, thresholds, open_model, capacity_step, failing_step,
                      status == "searching")
            for position, step in enumerate(search.steps)]
    return CapacityView(
        status=status, badge=STATUS_BADGES.get(status, status), badge_class=STATUS_CLASSES.get(status, "warn"),
        headline=_headline(status, search, unit), valid=valid, searching=status == "searching", unit=unit,
        figures=_result_figures(status, search, unit),
        current=_current(search, unit, elapsed) if status == "searching" else [],
        broke_first=_broke_first(search) if valid else None, headers=_headers(unit, open_model),
        thresholds=thresholds, steps=rows, fit=fit if valid else None, verdict=search.verdict,
        settings=_settings(search, unit),
        charts=_charts(search, unit, knee, fit if valid else None, status == "searching"),
    )


def kind_label(is_capacity: bool) -> str:
    """What the header calls the run: a capacity search says so; a load test needs no word."""
    return "Capacity search" if is_capacity else ""


# ---------------------------------------------------------------------------------------------- the console


def _result_word(row: StepRow) -> str:
    """``PASS capacity``, ``FAIL first failing``, ``FAIL generator limit``: a step's Result cell, in words."""
    word = fmt.MISSING if row.passed is None else "PASS" if row.passed else "FAIL"
    return " ".join([word, *([row.mark] if row.mark else []), *(["generator limit"] if row.generator_limited else [])])


def console_text(data: Any, elapsed: float | None = None) -> str:
    """The search as a terminal shows it (``run_perf`` at its end, or between steps), from its JSON: the result in
    words, the capacity and the first failing load, what broke first, the step table, the USL fit or why there is
    none, and the verdict; "" for a run that is not a capacity search. The same words as the run page's section."""
    view = capacity_view(CapacityResult.read(data), elapsed)
    if view is None:
        return ""
    lines = [view.headline]
    lines += [f"{figure.label}: {figure.value}" + (f" ({figure.detail})" if figure.detail else "")
              for figure in [*view.figures, *view.current]]
    broke = view.broke_first
    if broke is not None:
        where = f" on {broke.endpoint}" if broke.endpoint else ""
        parts = ", ".join(f"{part.label.lower()} {part.value}" for part in broke.parts if part.value != fmt.MISSING)
        lines.append(f"Broke first: {broke.threshold} at {broke.actual}{where}" + (f" ({parts})" if parts else ""))
    if view.steps:
        body = [[row.number, row.phase, row.load, *row.cells, _result_word(row),
                 *(f"{cell.value} {'PASS' if cell.ok else 'FAIL'}" if cell else fmt.MISSING for cell in row.verdicts)]
                for row in view.steps]
        lines += ["", tabulate(body, headers=[*view.headers, *view.thresholds], tablefmt="simple",
                               disable_numparse=True), ""]
    if view.fit is not None and view.fit.shown:
        lines.append("USL fit, a model's prediction (not measured): "
                     + ", ".join(f"{figure.label} {figure.value}" for figure in view.fit.figures))
    elif view.fit is not None:
        lines.append(f"No USL fit shown: {view.fit.why}")
    if view.verdict:
        lines.append(view.verdict)
    return "\n".join(lines)
