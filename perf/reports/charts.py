"""SVG charts of a run, rendered on the server from plain data.

The admin run page and the ``--html`` report both show these, and both must work offline: no
JavaScript, no CDN, no stylesheet. Every chart is one self-contained ``<svg>`` string with its
colours and fonts as attributes, so it renders the same inside the admin (even when the admin's
CSS is not served) and in a report file opened from disk. Inputs are plain objects (engine
``Sample`` dataclasses or ``StatsSample`` rows alike) and histogram dicts; nothing here touches
the database.

Every axis names its unit and every chart has a legend; names are wrapped onto more lines, never
cut short, since two endpoints often differ only at the end of a long name. A figure a chart states (a legend's
p50, a point's tooltip) is written by ``perf.reports.formats``, as the tables beside it write it (``4 ms`` on the
chart where the table says ``4``); an axis tick is a place on the axis, a plain number (``format_number``) under an
axis title that names the unit, or a point on the run's clock (``formats.clock``).
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from math import ceil, floor, log10
from typing import Protocol

from perf.analysis.usl import usl_throughput
from perf.load.histogram import Histogram, bucket_value
from perf.reports.formats import clock, ms_unit

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif"
CSS_CLASS = "perf-chart"
# Natural sizes, close to the size a chart gets in a three-column grid at 1,400 px: charts scale
# with their column (width:100%) but only a little, so the 11 px text stays legible.
LINE_SIZE = (460, 250)
DISTRIBUTION_SIZE = (360, 190)
COLORS = {
    "users": "#2563eb", "rps": "#16a34a", "failures": "#dc2626", "p50": "#7c3aed", "p95": "#ea580c",
    "p99": "#be123c", "bars": "#60a5fa", "grid": "#e5e7eb", "axis": "#6b7280", "text": "#111827",
    "muted": "#6b7280", "target": "#0f172a", "stage": "#94a3b8", "passed": "#15803d", "failed": "#dc2626",
    "model": "#7c3aed", "knee": "#0f172a", "limit": "#b45309", "iterations": "#0d9488",
}
# Rough glyph widths (px) of the chart font, to lay out legends and wrap names without measuring.
CHAR_WIDTH = {11: 6.2, 12: 7.0}
LINE_HEIGHT = 15
# Distribution bars: ten per decade (each ~26 % wide) keeps ~50 bars over 1 ms–100 s.
BINS_PER_DECADE = 10
# Steps the time axis may use, in seconds, so ticks fall on round times (15 s, 1 min, 5 min, ...).
TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)
# Where a long name may break: after a separator, so "/events/{id}/" stays readable on two lines.
BREAK_AFTER = "/ -_?&=.,:]"


class SamplePoint(Protocol):
    """What a chart needs of one time-series point (perf.load.stats.Sample or perf.models.StatsSample)."""

    elapsed: float
    users: int
    requests_per_second: float
    failures_per_second: float
    p50: float | None
    p95: float | None
    p99: float | None
    iterations_per_second: float | None  # the open model's; None for the closed model


@dataclass(frozen=True)
class Series:
    """One line: ``None`` values leave a gap (a window without requests has no percentile). A ``dashed`` line is
    what was asked for (a load profile's target) beside what was measured."""

    label: str
    color: str
    points: tuple[tuple[float, float | None], ...]
    dashed: bool = False


@dataclass(frozen=True)
class TargetLine:
    """A load profile's target at each sample (``StatsSample.target``): users, or iterations a second (``rate``)."""

    kind: str
    points: tuple[tuple[float, float], ...]


# ---------------------------------------------------------------------------------------------- formatting


def format_number(value: float) -> str:
    """Axis figures: ``0.5``, ``20``, ``1.5k``; rounded so float noise (0.6000000001) never shows."""
    if abs(value) >= 1000:
        return f"{round(value / 1000, 3):g}k"
    return f"{round(value, 6):g}"


def _bin_edge(ms: float) -> str:
    """A distribution bar's edge on the log axis, two significant figures (a bar is ~26 % wide): a place on the
    axis, written as its ticks are; the unit is the tooltip's."""
    return format_number(float(f"{ms:.2g}"))


def _num(value: float) -> str:
    return f"{value:.1f}"


def wrap_text(text: str, limit: int) -> list[str]:
    """``text`` in lines of at most ``limit`` characters, broken after a separator where one is near.

    Nothing is dropped: joining the lines gives ``text`` back. SVG text does not wrap by itself.
    """
    lines: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = max((rest.rfind(mark, 0, limit) for mark in BREAK_AFTER), default=-1) + 1
        if cut < limit // 3:  # no separator in the last two thirds: break inside the word
            cut = limit
        lines.append(rest[:cut])
        rest = rest[cut:]
    return [*lines, rest] if rest or not lines else lines


# ---------------------------------------------------------------------------------------------- scales


def nice_step(raw: float) -> float:
    """The 1-2-5 step nearest ``raw``, the steps people read axes in."""
    if raw <= 0:
        return 1.0
    exponent = floor(log10(raw))
    fraction = raw / 10**exponent
    nice = 1 if fraction < 1.5 else 2 if fraction < 3 else 5 if fraction < 7 else 10
    return nice * 10**exponent


def value_ticks(top: float, count: int = 4) -> list[float]:
    """Ticks from 0 to a round ceiling at or above ``top`` (1 when nothing was measured)."""
    step = nice_step((top if top > 0 else 1.0) / count)
    ceiling = max(1, ceil(top / step - 1e-9)) * step
    return [i * step for i in range(round(ceiling / step) + 1)]


def time_ticks(end: float, count: int = 6) -> list[float]:
    """Ticks on round seconds from 0 to at most ``end``."""
    step = next((s for s in TIME_STEPS if s >= end / count), TIME_STEPS[-1])
    return [i * step for i in range(int(end // step) + 1)]


# ---------------------------------------------------------------------------------------------- svg


def _svg(size: tuple[int, int], title: str, kind: str, body: Iterable[str], desc: str = "") -> str:
    width, height = size
    description = f"<desc>{escape(desc)}</desc>" if desc else ""
    return (
        f'<svg xmlns="{SVG_NS}" class="{CSS_CLASS} {CSS_CLASS}-{kind}" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{FONT}" font-size="11" fill="{COLORS["text"]}" '
        f'style="max-width:100%;height:auto;display:block;background:#ffffff">'
        f"<title>{escape(title)}</title>{description}"
        f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" rx="4" fill="#ffffff" '
        f'stroke="{COLORS["grid"]}"/>' + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", **attrs: str) -> str:
    extra = "".join(f' {name.replace("_", "-")}="{escape(value)}"' for name, value in attrs.items())
    return f'<text x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}"{extra}>{escape(text)}</text>'


def _line(x1: float, y1: float, x2: float, y2: float, color: str, **attrs: str) -> str:
    extra = "".join(f' {name.replace("_", "-")}="{escape(value)}"' for name, value in attrs.items())
    return f'<line x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}" stroke="{color}"{extra}/>'


@dataclass(frozen=True)
class LegendItem:
    """A swatch and its label: a line (``dashed`` for markers) or a filled box (bars)."""

    label: str
    color: str
    shape: str = "line"  # "line", "dashed", "box", or a point's marker: "dot" (passed) or "cross" (failed)

def _y_grid(ticks: Sequence[float], sy: Callable[[float], float], left: float, right: float) -> list[str]:
    """A grid line and a label at each of the y axis's ticks: every chart's left side."""
    body = []
    for tick in ticks:
        body.append(_line(left, sy(tick), right, sy(tick), COLORS["grid"]))
        body.append(_text(left - 6, sy(tick) + 4, format_number(tick), "end", fill=COLORS["muted"]))
    return body


def _x_ticks(ticks: Sequence[float], sx: Callable[[float], float], bottom: float, width: float,
             label_of: Callable[[float], str]) -> list[str]:
    """A tick and its label under the x axis at each of ``ticks`` (seconds, or a load)."""
    body = []
    for tick in ticks:
        label = label_of(tick)
        # A label centred on the last tick would stick out of the chart: end it at the tick instead.
        anchor = "end" if sx(tick) + len(label) * CHAR_WIDTH[11] / 2 > width - 2 else "middle"
        body.append(_line(sx(tick), bottom, sx(tick), bottom + 4, COLORS["axis"]))
        body.append(_text(sx(tick), bottom + 16, label, anchor, fill=COLORS["muted"]))
    return body



def _legend(items: Sequence[LegendItem], x: float, y: float) -> list[str]:
    """Swatch and label per item, left to right from ``x`` on the text baseline ``y``."""
    parts: list[str] = []
    for item in items:
        if item.shape == "box":
            parts.append(f'<rect x="{_num(x)}" y="{_num(y - 9)}" width="12" height="10" fill="{item.color}"/>')
        elif item.shape in ("dot", "cross"):
            parts.append(_marker(x + 8, y - 4, item.color, item.shape == "dot"))
        else:
            dash = {"stroke_dasharray": "4 3", "stroke_width": "1.5"} if item.shape == "dashed" else {
                "stroke_width": "3"}
            parts.append(_line(x, y - 4, x + 16, y - 4, item.color, **dash))
        parts.append(_text(x + 20, y, item.label, **{"class": "legend"}))
        x += len(item.label) * CHAR_WIDTH[11] + 34
    return parts


def _segments(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in sorted(points, key=lambda point: point[0]):
        if y is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, y))
    return [run for run in runs if run]


def line_chart(title: str, series: Sequence[Series], y_label: str, description: str = "",
               marks: Sequence[float] = ()) -> str:
    """Lines over elapsed time: title, legend, a grid with ticks on round values and both axes labelled.

    ``y_label`` carries the unit (``requests per second``, ``response time (ms)``); the time axis
    ticks carry theirs (``30s``, ``2m``). ``description`` prefixes the accessible title, e.g. with
    the endpoint the chart is about. ``marks``: where a load profile's stages begin (seconds), each a dotted
    vertical line numbered with the stage it starts, drawn when the chart's time has reached it.
    """
    width, height = LINE_SIZE
    left, right, top, bottom = 52, width - 14, 56, height - 40
    values = [y for item in series for _, y in item.points if y is not None]
    end = max((x for item in series for x, _ in item.points), default=0.0)
    y_ticks = value_ticks(max(values, default=0.0))
    x_ticks = time_ticks(max(end, 1.0))
    x_span, y_span = max(end, 1.0), y_ticks[-1]

    def sx(x: float) -> float:
        return left + (right - left) * x / x_span

    def sy(y: float) -> float:
        return bottom - (bottom - top) * y / y_span

    shown_marks = [(number, at) for number, at in enumerate(marks, start=2) if 0 < at <= end]
    legend = [LegendItem(item.label, item.color, "dashed" if item.dashed else "line") for item in series]
    if shown_marks:
        legend.append(LegendItem("stage starts", COLORS["stage"], "dashed"))
    body = [_text(12, 20, title, font_size="13", font_weight="600"), *_legend(legend, 12, 40)]
    body += _y_grid(y_ticks, sy, left, right)
    body += _x_ticks(x_ticks, sx, bottom, width, clock)
    for number, at in shown_marks:
        body.append(f'<g class="stage-mark" data-stage="{number}"><title>stage {number} starts at '
                    f'{escape(clock(at))}</title>'
                    + _line(sx(at), top - 2, sx(at), bottom, COLORS["stage"], stroke_dasharray="2 3",
                            stroke_width="1.5")
                    + _text(sx(at) + 3, top + 8, str(number), fill=COLORS["muted"], font_size="10") + "</g>")
    body.append(_line(left, bottom, right, bottom, COLORS["axis"]))
    body.append(_line(left, top, left, bottom, COLORS["axis"]))
    body.append(_text((left + right) / 2, height - 6, "elapsed time since start", "middle", fill=COLORS["muted"]))
    middle = (top + bottom) / 2
    body.append(_text(14, middle, y_label, "middle", fill=COLORS["muted"], transform=f"rotate(-90 14 {middle})"))
    for item in series:
        shapes = []
        for run in _segments(item.points):
            if len(run) == 1:
                shapes.append(f'<circle cx="{_num(sx(run[0][0]))}" cy="{_num(sy(run[0][1]))}" r="2.5"/>')
            else:
                path = " ".join(f"{'M' if i == 0 else 'L'}{_num(sx(x))},{_num(sy(y))}" for i, (x, y) in enumerate(run))
                dash = ' stroke-dasharray="6 4"' if item.dashed else ""
                shapes.append(f'<path d="{path}" fill="none" stroke-width="2" stroke-linejoin="round"{dash}/>')
        body.append(f'<g class="series" data-series="{escape(item.label)}" stroke="{item.color}" '
                    f'fill="{item.color}">{"".join(shapes)}</g>')
    if not values:
        body.append(_text((left + right) / 2, middle, "No data yet", "middle", fill=COLORS["muted"], font_size="13"))
    desc = "; ".join(
        f"{item.label}: max {format_number(max(ys))}" if (ys := [y for _, y in item.points if y is not None])
        else f"{item.label}: no data"
        for item in series
    )
    return _svg(LINE_SIZE, f"{description}: {title}" if description else title, "line", body, desc)


# ---------------------------------------------------------------------------------------------- run charts


def _series(label: str, color: str, samples: Sequence[SamplePoint], attr: str) -> Series:
    return Series(label, color, tuple((s.elapsed, getattr(s, attr, None)) for s in samples))


def _target_series(target: TargetLine | None, kind: str) -> list[Series]:
    """The profile's target as a dashed line, on the chart of what it counts (users, or the rate)."""
    if target is None or target.kind != kind:
        return []
    label = "target users" if kind == "users" else "target iterations/s"
    return [Series(label, COLORS["target"], tuple(target.points), dashed=True)]


def users_chart(samples: Sequence[SamplePoint], target: TargetLine | None = None, marks: Sequence[float] = ()) -> str:
    return line_chart("Users", [_series("users", COLORS["users"], samples, "users"), *_target_series(target, "users")],
                      "running users", marks=marks)


def throughput_chart(samples: Sequence[SamplePoint], marks: Sequence[float] = ()) -> str:
    """Requests, not iterations: a rate profile's target goes on the iterations chart, in its own unit."""
    return line_chart(
        "Requests and failures per second",
        [_series("req/s", COLORS["rps"], samples, "requests_per_second"),
         _series("failures/s", COLORS["failures"], samples, "failures_per_second")],
        "per second (req/s)", marks=marks,
    )


def iterations_chart(samples: Sequence[SamplePoint], target: TargetLine | None = None,
                     marks: Sequence[float] = ()) -> str | None:
    """The open model's iterations started a second beside the rate its profile asked for, like with like (an
    iteration is one task, which may send several requests); None when neither was recorded (the closed model,
    a run stored before samples counted iterations and without a rate profile)."""
    actual = _series("iterations/s", COLORS["iterations"], samples, "iterations_per_second")
    drawn = [actual] if any(y is not None for _, y in actual.points) else []
    drawn += _target_series(target, "rate")
    if not drawn:
        return None
    return line_chart("Iterations started per second", drawn, "iterations per second", marks=marks)


def latency_chart(samples: Sequence[SamplePoint], marks: Sequence[float] = ()) -> str:
    """p50, p95 and p99 of each sample, taken over a rolling window (10 s) so slow outliers do not flicker."""
    return line_chart(
        "Response times, 10 s rolling window",
        [_series(label, COLORS[label], samples, label) for label in ("p50", "p95", "p99")],
        "response time (ms)", marks=marks,
    )


def timeline_charts(samples: Iterable[SamplePoint], target: TargetLine | None = None,
                    marks: Sequence[float] = ()) -> list[str]:
    """req/s with failures/s, p50/p95/p99 and users over the run's samples, in Locust's order, then the open
    model's iterations a second. With a load profile: its ``target`` beside the users (or the iterations) and its
    stage starts (``marks``) on every chart."""
    ordered = sorted(samples, key=lambda s: s.elapsed)
    drawn = [throughput_chart(ordered, marks), latency_chart(ordered, marks), users_chart(ordered, target, marks)]
    iterations = iterations_chart(ordered, target, marks)
    return drawn if iterations is None else [*drawn, iterations]


def _endpoint_point(sample: SamplePoint, key: str) -> tuple[float | None, float | None]:
    """(req/s, p95) of one endpoint at one sample; samples store it as a JSON pair, the engine as a tuple."""
    figures = (getattr(sample, "endpoints", None) or {}).get(key)
    if not figures:
        return None, None
    rps, p95 = (list(figures) + [None, None])[:2]
    return rps, p95


def endpoint_charts(key: str, samples: Iterable[SamplePoint], marks: Sequence[float] = ()) -> list[str]:
    """One endpoint's req/s and p95 over time, ``key`` as samples name it (``"GET /events/"``).

    Two charts, not one with two y axes: a rate and a latency share no scale. The endpoint's
    name goes in the accessible title; the page shows it above the charts, where it can wrap.
    """
    ordered = sorted(samples, key=lambda s: s.elapsed)
    points = [(s.elapsed, *_endpoint_point(s, key)) for s in ordered]
    # Before the endpoint's first request it has no entry: zero requests, no latency.
    rps = Series("req/s", COLORS["rps"], tuple((x, 0.0 if r is None else r) for x, r, _ in points))
    p95 = Series("p95", COLORS["p95"], tuple((x, p) for x, _, p in points))
    name = key.strip()
    return [
        line_chart("Requests per second", [rps], "requests per second (req/s)", description=name, marks=marks),
        line_chart("p95 response time, 10 s rolling window", [p95], "response time (ms)", description=name,
                   marks=marks),
    ]


# ---------------------------------------------------------------------------------------------- distribution


def _decade_ticks(low: int, high: int) -> list[float]:
    """Powers of ten; with 1-2-5 steps between them when the axis spans at most two decades."""
    steps = (1, 2, 5) if high - low <= 2 else (1,)
    ticks = [step * 10.0**power for power in range(low, high) for step in steps]
    return [*ticks, 10.0**high]


def distribution_chart(name: str, histogram: Mapping[str, int]) -> str:
    """One endpoint's response times as bars on a log-ms axis, p50 and p95 marked.

    ``histogram`` is bucket key → count as stored (keys may be JSON strings); buckets are folded
    into ten bars per decade, tall enough to compare shapes, not to read single counts. The name
    is wrapped over as many lines as it needs, and the chart grows to hold them.
    """
    base_width, base_height = DISTRIBUTION_SIZE
    name_lines = wrap_text(name, int((base_width - 20) / CHAR_WIDTH[12]))
    shift = LINE_HEIGHT * (len(name_lines) - 1)
    width, height = base_width, base_height + shift
    left, right, top, bottom = 44, width - 24, 66 + shift, height - 32
    counts = {int(key): int(count) for key, count in histogram.items() if int(count) > 0}
    title = f"Response-time distribution: {name}"
    body = [_text(10, 18 + LINE_HEIGHT * i, line, font_size="12", font_weight="600")
            for i, line in enumerate(name_lines)]
    body.append(_line(left, bottom, right, bottom, COLORS["axis"]))
    if not counts:
        body.append(_text((left + right) / 2, (top + bottom) / 2, "No requests", "middle", fill=COLORS["muted"]))
        return _svg((width, height), title, "distribution", body, "no requests")

    bins: dict[int, int] = {}
    for key, count in counts.items():
        index = floor(log10(bucket_value(key)) * BINS_PER_DECADE)
        bins[index] = bins.get(index, 0) + count
    total = sum(bins.values())
    low = floor(min(bins) / BINS_PER_DECADE)
    high = max(low + 1, ceil((max(bins) + 1) / BINS_PER_DECADE))
    tallest = max(bins.values())

    def sx(log_ms: float) -> float:
        return left + (right - left) * (log_ms - low) / (high - low)

    def sy(count: float) -> float:
        return bottom - (bottom - top) * count / tallest

    for tick in _decade_ticks(low, high):
        x = sx(log10(tick))
        body.append(_line(x, top, x, bottom, COLORS["grid"]))
        body.append(_text(x, bottom + 13, format_number(tick), "middle", fill=COLORS["muted"], font_size="10"))
    bar_width = (right - left) / ((high - low) * BINS_PER_DECADE)
    bars = [
        f'<rect x="{_num(sx(index / BINS_PER_DECADE))}" y="{_num(sy(count))}" width="{_num(max(bar_width - 1, 1))}" '
        f'height="{_num(bottom - sy(count))}"><title>{escape(_bin_label(index, count, total))}</title></rect>'
        for index, count in sorted(bins.items())
    ]
    body.append(f'<g class="bars" fill="{COLORS["bars"]}">{"".join(bars)}</g>')
    body.append(_text(left - 4, top + 8, f"{tallest / total:.0%}", "end", fill=COLORS["muted"], font_size="10"))
    body.append(_text(left - 4, bottom, "0%", "end", fill=COLORS["muted"], font_size="10"))
    middle = (top + bottom) / 2
    body.append(_text(12, middle, "% of requests", "middle", fill=COLORS["muted"], font_size="10",
                      transform=f"rotate(-90 12 {middle})"))

    whole = Histogram(counts)
    markers = [(label, whole.percentile(fraction) or bucket_value(min(counts))) for label, fraction in
               (("p50", 0.5), ("p95", 0.95))]
    for label, value in markers:
        x = sx(log10(value))
        body.append(_line(x, top - 4, x, bottom, COLORS[label], stroke_width="1.5", stroke_dasharray="4 3"))
    summary = [f"n={total:,}", *(f"{label} {ms_unit(value)}" for label, value in markers)]
    legend_y = 38 + shift
    body.append(_text(10, legend_y, summary[0], fill=COLORS["muted"]))
    legend = [LegendItem(text, COLORS[label], "dashed") for (label, _), text in zip(markers, summary[1:], strict=True)]
    body.extend(_legend([LegendItem("requests", COLORS["bars"], "box"), *legend], 10, legend_y + 16))
    body.append(_text(width - 10, height - 4, "response time (ms, log scale)", "end", fill=COLORS["muted"],
                      font_size="10"))
    return _svg((width, height), title, "distribution", body, ", ".join(summary))


def _bin_label(index: int, count: int, total: int) -> str:
    low, high = 10 ** (index / BINS_PER_DECADE), 10 ** ((index + 1) / BINS_PER_DECADE)
    return f"{_bin_edge(low)}–{_bin_edge(high)} ms: {count:,} ({count / total:.1%})"


# ---------------------------------------------------------------------------------------------- against load

# Points drawn along a model's curve: smooth at the chart's size.
CURVE_POINTS = 80


@dataclass(frozen=True)
class LoadPoint:
    """One step of a capacity search on a chart against load: its load, the figure drawn (None: nothing measured)
    and whether the step passed its thresholds (None: not judged yet)."""

    load: float
    value: float | None
    passed: bool | None
    note: str = ""  # what its tooltip says of it: "step 3 (raise)"


@dataclass(frozen=True)
class Mark:
    """A line across the chart at ``at``: ``vertical`` for a load (the capacity found), else a value (a limit)."""

    at: float
    label: str
    color: str
    vertical: bool = True


def _legend_rows(items: Sequence[LegendItem], width: float) -> list[list[LegendItem]]:
    """The legend's items in rows that fit ``width``, as ``_legend`` lays them out: a chart with many marks grows
    a line rather than cutting a label off at its edge."""
    rows: list[list[LegendItem]] = [[]]
    used = 0.0
    for item in items:
        size = len(item.label) * CHAR_WIDTH[11] + 34
        if rows[-1] and used + size > width:
            rows.append([])
            used = 0.0
        rows[-1].append(item)
        used += size
    return rows


def _marker(x: float, y: float, color: str, passed: bool | None) -> str:
    """A passing step is a filled dot; a failing one a cross in a ring, told apart without its colour."""
    if passed is False:
        return (f'<g class="point-failed" stroke="{color}" stroke-width="2" fill="none">'
                f'<circle cx="{_num(x)}" cy="{_num(y)}" r="5"/>'
                f'<path d="M{_num(x - 3)},{_num(y - 3)} L{_num(x + 3)},{_num(y + 3)} M{_num(x - 3)},{_num(y + 3)} '
                f'L{_num(x + 3)},{_num(y - 3)}"/></g>')
    return f'<circle class="point-passed" cx="{_num(x)}" cy="{_num(y)}" r="4" fill="{color}" stroke="#ffffff"/>'


def load_chart(title: str, points: Sequence[LoadPoint], x_label: str, y_label: str,
               format_value: Callable[[float], str], curve: Series | None = None, marks: Sequence[Mark] = (),
               description: str = "") -> str:
    """A figure against load, one point a step: the measured points joined in load order (a search that narrows
    comes back between two loads it measured), each marked passed or failed; ``curve`` a model's prediction, drawn
    dashed and named so in the legend; ``marks`` the capacity found (a vertical line) and a threshold's limit (a
    horizontal one). Both axes start at 0, so a flattening curve is seen for what it is."""
    legend = [LegendItem("passed", COLORS["passed"], "dot"), LegendItem("failed", COLORS["failed"], "cross")]
    if curve is not None:
        legend.append(LegendItem(curve.label, curve.color, "dashed"))
    legend += [LegendItem(mark.label, mark.color, "dashed") for mark in marks]
    legend_rows = _legend_rows(legend, LINE_SIZE[0] - 24)
    shift = LINE_HEIGHT * (len(legend_rows) - 1)
    width, height = LINE_SIZE[0], LINE_SIZE[1] + shift
    left, right, top, bottom = 52, width - 14, 56 + shift, height - 40
    measured = [point for point in points if point.value is not None]
    curve_values = [y for _, y in curve.points if y is not None] if curve is not None else []
    values = [point.value for point in measured if point.value is not None] + curve_values + [
        mark.at for mark in marks if not mark.vertical]
    loads = [point.load for point in points] + [mark.at for mark in marks if mark.vertical]
    y_ticks = value_ticks(max(values, default=0.0))
    x_ticks = value_ticks(max(loads, default=0.0), 5)
    x_span, y_span = x_ticks[-1], y_ticks[-1]

    def sx(x: float) -> float:
        return left + (right - left) * x / x_span

    def sy(y: float) -> float:
        return bottom - (bottom - top) * min(y, y_span) / y_span

    body = [_text(12, 20, title, font_size="13", font_weight="600")]
    for row, items in enumerate(legend_rows):
        body += _legend(items, 12, 40 + LINE_HEIGHT * row)
    body += _y_grid(y_ticks, sy, left, right)
    body += _x_ticks(x_ticks, sx, bottom, width, format_number)
    for mark in marks:
        if mark.vertical:
            line = _line(sx(mark.at), top - 2, sx(mark.at), bottom, mark.color, stroke_dasharray="5 3",
                         stroke_width="1.5")
        else:
            line = _line(left, sy(mark.at), right, sy(mark.at), mark.color, stroke_dasharray="5 3", stroke_width="1.5")
        body.append(f'<g class="mark" data-mark="{escape(mark.label)}"><title>{escape(mark.label)}</title>{line}</g>')
    body.append(_line(left, bottom, right, bottom, COLORS["axis"]))
    body.append(_line(left, top, left, bottom, COLORS["axis"]))
    body.append(_text((left + right) / 2, height - 6, x_label, "middle", fill=COLORS["muted"]))
    middle = (top + bottom) / 2
    body.append(_text(14, middle, y_label, "middle", fill=COLORS["muted"], transform=f"rotate(-90 14 {middle})"))
    if curve is not None:
        for run in _segments(curve.points):
            path = " ".join(f"{'M' if i == 0 else 'L'}{_num(sx(x))},{_num(sy(y))}" for i, (x, y) in enumerate(run))
            body.append(f'<g class="series model" data-series="{escape(curve.label)}"><title>{escape(curve.label)}: a '
                        f'model\'s prediction, not a measurement</title><path d="{path}" fill="none" '
                        f'stroke="{curve.color}" stroke-width="2" stroke-dasharray="6 4"/></g>')
    ordered = sorted(measured, key=lambda point: point.load)
    shapes = []
    if len(ordered) > 1:
        path = " ".join(f"{'M' if i == 0 else 'L'}{_num(sx(p.load))},{_num(sy(p.value or 0.0))}"
                        for i, p in enumerate(ordered))
        shapes.append(f'<path d="{path}" fill="none" stroke="{COLORS["axis"]}" stroke-width="1.5"/>')
    for point in measured:
        value = point.value or 0.0
        verdict = {True: "passed", False: "failed", None: "not judged"}[point.passed]
        color = COLORS["failed"] if point.passed is False else COLORS["passed"]
        tip = f"{point.note}: " if point.note else ""
        tip += f"{format_number(point.load)} → {format_value(value)}, {verdict}"
        shapes.append(f'<g class="step" data-passed="{str(point.passed).lower()}"><title>{escape(tip)}</title>'
                      f'{_marker(sx(point.load), sy(value), color, point.passed)}</g>')
    body.append(f'<g class="series measured" data-series="measured">{"".join(shapes)}</g>')
    if not measured:
        body.append(_text((left + right) / 2, middle, "No step measured yet", "middle", fill=COLORS["muted"],
                          font_size="13"))
    passed = sum(point.passed is True for point in measured)
    desc = (f"{len(measured)} steps measured, {passed} passed"
            + (f"; {curve.label}: a model's prediction" if curve is not None else ""))
    return _svg((width, height), f"{description}: {title}" if description else title, "load", body, desc)


def usl_curve(sigma: float, kappa: float, lam: float, up_to: float, label: str = "USL fit") -> Series:
    """The throughput Gunther's law predicts from 0 to ``up_to`` for the fitted σ, κ and λ, as a dashed line."""
    loads = [up_to * i / CURVE_POINTS for i in range(CURVE_POINTS + 1)]
    return Series(label, COLORS["model"], tuple((load, usl_throughput(load, sigma, kappa, lam)) for load in loads),
                  dashed=True)


# ---------------------------------------------------------------------------------------------- trends over runs

# A trend spans the page's width (1,400 px less the margins): one chart a row, so that 50 runs (or the 200 at most)
# keep their points apart.
TREND_SIZE = (1200, 270)
# Room for one run's axis label (a revision's first 7 characters): fewer labels than runs when they would touch.
TREND_LABEL_WIDTH = 62


@dataclass(frozen=True)
class RunPoint:
    """One run on a trend's x axis: its page, its axis label (the git revision, the date) and its tooltip."""

    url: str
    label: tuple[str, ...]
    title: str


@dataclass(frozen=True)
class RunSeries:
    """One figure over runs, a value per run (None: the run has none); ``flags`` per run: "regressed", "improved"
    or "" (the noise verdicts, perf.analysis.noise); ``baseline``: the plan's baseline run's value, drawn across."""

    label: str
    color: str
    values: tuple[float | None, ...]
    flags: tuple[str, ...] = ()
    baseline: float | None = None


def trend_labels(count: int, room: float) -> set[int]:
    """The runs whose label is written: every k-th counting back from the newest, so that labels never touch and
    the newest run is always named."""
    step = max(1, ceil(count * TREND_LABEL_WIDTH / max(room, 1.0)))
    return {index for index in range(count) if (count - 1 - index) % step == 0}


def _trend_point(x: float, y: float, color: str, flag: str, url: str, tip: str) -> str:
    """A run's point, a link to its page: a regression is a red ring with a cross, an improvement a green dot,
    told apart without their colours; a wider transparent circle makes a small point easy to hit."""
    if flag == "regressed":
        shape = _marker(x, y, COLORS["failed"], False)
    elif flag == "improved":
        shape = _marker(x, y, COLORS["passed"], True)
    else:
        shape = f'<circle cx="{_num(x)}" cy="{_num(y)}" r="2.5" fill="{color}"/>'
    flagged = f' data-flag="{flag}"' if flag else ""
    return (f'<a href="{escape(url)}" class="run-point"{flagged}><title>{escape(tip)}</title>'
            f'<circle cx="{_num(x)}" cy="{_num(y)}" r="7" fill="transparent"/>{shape}</a>')


def trend_chart(title: str, runs: Sequence[RunPoint], series: Sequence[RunSeries], y_label: str,
                format_value: Callable[[float], str], description: str = "", baseline_label: str = "") -> str:
    """Figures over a plan's runs, oldest to newest: one x position a run (a category, not a time: runs are nights
    apart, or minutes), labelled with its revision and date; each point a link to the run's page; regressions and
    improvements marked; the baseline run's values as dashed lines across, in their series' colours."""
    flags = {flag for item in series for flag in item.flags if flag}
    legend = [LegendItem(item.label, item.color) for item in series]
    if any(item.baseline is not None for item in series):
        legend.append(LegendItem(baseline_label or "baseline", COLORS["target"], "dashed"))
    if "regressed" in flags:
        legend.append(LegendItem("regressed beyond the noise", COLORS["failed"], "cross"))
    if "improved" in flags:
        legend.append(LegendItem("improved beyond the noise", COLORS["passed"], "dot"))
    width = TREND_SIZE[0]
    legend_rows = _legend_rows(legend, width - 24)
    shift = LINE_HEIGHT * (len(legend_rows) - 1)
    height = TREND_SIZE[1] + shift
    left, right, top, bottom = 56, width - 16, 56 + shift, height - 58
    values = [value for item in series for value in item.values if value is not None]
    values += [item.baseline for item in series if item.baseline is not None]
    y_ticks = value_ticks(max(values, default=0.0))
    y_span = y_ticks[-1]
    count = len(runs)
    slot = (right - left) / max(count, 1)

    def sx(index: float) -> float:
        return left + slot * (index + 0.5)

    def sy(y: float) -> float:
        return bottom - (bottom - top) * y / y_span

    body = [_text(12, 20, title, font_size="13", font_weight="600")]
    for row, items in enumerate(legend_rows):
        body += _legend(items, 12, 40 + LINE_HEIGHT * row)
    body += _y_grid(y_ticks, sy, left, right)
    for index in sorted(trend_labels(count, right - left)):
        body.append(_line(sx(index), bottom, sx(index), bottom + 4, COLORS["axis"]))
        for line, text in enumerate(runs[index].label):
            body.append(_text(sx(index), bottom + 16 + 13 * line, text, "middle", fill=COLORS["muted"],
                              font_size="10"))
    body.append(_line(left, bottom, right, bottom, COLORS["axis"]))
    body.append(_line(left, top, left, bottom, COLORS["axis"]))
    body.append(_text((left + right) / 2, height - 6, "runs, oldest to newest: git revision and date", "middle",
                      fill=COLORS["muted"]))
    middle = (top + bottom) / 2
    body.append(_text(14, middle, y_label, "middle", fill=COLORS["muted"], transform=f"rotate(-90 14 {middle})"))
    for item in series:
        if item.baseline is not None:
            body.append(f'<g class="baseline" data-series="{escape(item.label)}"><title>{escape(baseline_label)} '
                        f'{escape(item.label)}: {escape(format_value(item.baseline))}</title>'
                        + _line(left, sy(item.baseline), right, sy(item.baseline), item.color,
                                stroke_dasharray="6 4", stroke_width="1.5", opacity="0.8") + "</g>")
    for item in series:
        shapes = []
        for run in _segments([(float(index), value) for index, value in enumerate(item.values)]):
            if len(run) > 1:
                path = " ".join(f"{'M' if i == 0 else 'L'}{_num(sx(x))},{_num(sy(y))}" for i, (x, y) in enumerate(run))
                shapes.append(f'<path d="{path}" fill="none" stroke="{item.color}" stroke-width="1.5" '
                              f'stroke-linejoin="round"/>')
        for index, value in enumerate(item.values):
            if value is None or index >= count:
                continue
            flag = item.flags[index] if index < len(item.flags) else ""
            tip = f"{runs[index].title}: {item.label} {format_value(value)}" + (f", {flag}" if flag else "")
            shapes.append(_trend_point(sx(index), sy(value), item.color, flag, runs[index].url, tip))
        body.append(f'<g class="series" data-series="{escape(item.label)}">{"".join(shapes)}</g>')
    if not values:
        body.append(_text((left + right) / 2, middle, "No run measured this yet", "middle", fill=COLORS["muted"],
                          font_size="13"))
    marked = sum(flag == "regressed" for item in series for flag in item.flags)
    desc = f"{count} runs" + (f", {marked} points regressed beyond the noise" if marked else "")
    return _svg((width, height), f"{description}: {title}" if description else title, "trend", body, desc)
