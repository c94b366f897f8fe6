"""SVG charts of a run, rendered on the server from plain data.

The admin run page and the ``--html`` report both show these, and both must work offline: no
JavaScript, no CDN, no stylesheet. Every chart is one self-contained ``<svg>`` string with its
colours and fonts as attributes, so it renders the same inside the admin (even when the admin's
CSS is not served) and in a report file opened from disk. Inputs are plain objects (engine
``Sample`` dataclasses or ``StatsSample`` rows alike) and histogram dicts; nothing here touches
the database.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from math import ceil, floor, log10
from typing import Protocol

from perf.load.histogram import Histogram, bucket_value

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif"
CSS_CLASS = "perf-chart"
# Fixed sizes: charts scale down with max-width, never up, so text stays legible.
LINE_SIZE = (720, 260)
DISTRIBUTION_SIZE = (360, 170)
COLORS = {
    "users": "#2563eb", "rps": "#16a34a", "failures": "#dc2626", "p50": "#7c3aed", "p95": "#ea580c",
    "bars": "#60a5fa", "grid": "#e5e7eb", "axis": "#6b7280", "text": "#111827", "muted": "#6b7280",
}
# Distribution bars: ten per decade (each ~26 % wide) keeps ~50 bars over 1 ms–100 s.
BINS_PER_DECADE = 10
# Steps the time axis may use, in seconds, so ticks fall on round times (15 s, 1 min, 5 min, ...).
TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)
TITLE_CHARS = 52


class SamplePoint(Protocol):
    """What a chart needs of one time-series point (perf.load.stats.Sample or perf.models.StatsSample)."""

    elapsed: float
    users: int
    requests_per_second: float
    failures_per_second: float
    p50: float | None
    p95: float | None


@dataclass(frozen=True)
class Series:
    """One line: ``None`` values leave a gap (a window without requests has no percentile)."""

    label: str
    color: str
    points: tuple[tuple[float, float | None], ...]


# ---------------------------------------------------------------------------------------------- formatting


def format_number(value: float) -> str:
    """Axis figures: ``0.5``, ``20``, ``1.5k``; rounded so float noise (0.6000000001) never shows."""
    if abs(value) >= 1000:
        return f"{round(value / 1000, 3):g}k"
    return f"{round(value, 6):g}"


def format_elapsed(seconds: float) -> str:
    """Time-axis labels: ``45s``, ``2m``, ``1m30s``, ``1h05m``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m" if not secs else f"{minutes}m{secs:02d}s"


def format_ms(ms: float) -> str:
    """Latency labels with their unit: ``0.5 ms``, ``120 ms``, ``1.2 s``."""
    if ms >= 1000:
        return f"{round(ms / 1000, 2):g} s"
    if ms >= 100:
        return f"{ms:.0f} ms"
    return f"{round(ms, 1):g} ms"


def _num(value: float) -> str:
    return f"{value:.1f}"


def _shorten(text: str, limit: int = TITLE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


def _legend(series: Sequence[Series], right: float, y: float) -> list[str]:
    """Swatch and label per series, laid out leftwards from ``right`` (text width estimated)."""
    parts: list[str] = []
    x = right
    for item in reversed(series):
        x -= len(item.label) * 6.2 + 26
        parts.append(_line(x, y - 4, x + 16, y - 4, item.color, stroke_width="3"))
        parts.append(_text(x + 20, y, item.label))
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


def line_chart(title: str, series: Sequence[Series], y_label: str) -> str:
    """Lines over elapsed time with a grid, ticks on round values, axis labels and a legend."""
    width, height = LINE_SIZE
    left, right, top, bottom = 60, width - 16, 40, height - 42
    values = [y for item in series for _, y in item.points if y is not None]
    end = max((x for item in series for x, _ in item.points), default=0.0)
    y_ticks = value_ticks(max(values, default=0.0))
    x_ticks = time_ticks(max(end, 1.0))
    x_span, y_span = max(end, 1.0), y_ticks[-1]

    def sx(x: float) -> float:
        return left + (right - left) * x / x_span

    def sy(y: float) -> float:
        return bottom - (bottom - top) * y / y_span

    body = [_text(12, 22, title, font_size="13", font_weight="600"), *_legend(series, right, 22)]
    for tick in y_ticks:
        body.append(_line(left, sy(tick), right, sy(tick), COLORS["grid"]))
        body.append(_text(left - 6, sy(tick) + 4, format_number(tick), "end", fill=COLORS["muted"]))
    for tick in x_ticks:
        body.append(_line(sx(tick), bottom, sx(tick), bottom + 4, COLORS["axis"]))
        body.append(_text(sx(tick), bottom + 16, format_elapsed(tick), "middle", fill=COLORS["muted"]))
    body.append(_line(left, bottom, right, bottom, COLORS["axis"]))
    body.append(_line(left, top, left, bottom, COLORS["axis"]))
    body.append(_text((left + right) / 2, height - 8, "elapsed time", "middle", fill=COLORS["muted"]))
    middle = (top + bottom) / 2
    body.append(_text(16, middle, y_label, "middle", fill=COLORS["muted"], transform=f"rotate(-90 16 {middle})"))
    for item in series:
        shapes = []
        for run in _segments(item.points):
            if len(run) == 1:
                shapes.append(f'<circle cx="{_num(sx(run[0][0]))}" cy="{_num(sy(run[0][1]))}" r="2.5"/>')
            else:
                path = " ".join(f"{'M' if i == 0 else 'L'}{_num(sx(x))},{_num(sy(y))}" for i, (x, y) in enumerate(run))
                shapes.append(f'<path d="{path}" fill="none" stroke-width="2" stroke-linejoin="round"/>')
        body.append(f'<g class="series" data-series="{escape(item.label)}" stroke="{item.color}" '
                    f'fill="{item.color}">{"".join(shapes)}</g>')
    if not values:
        body.append(_text((left + right) / 2, middle, "No data yet", "middle", fill=COLORS["muted"], font_size="13"))
    desc = "; ".join(
        f"{item.label}: max {format_number(max(ys))}" if (ys := [y for _, y in item.points if y is not None])
        else f"{item.label}: no data"
        for item in series
    )
    return _svg(LINE_SIZE, title, "line", body, desc)


# ---------------------------------------------------------------------------------------------- run charts


def _series(label: str, color: str, samples: Sequence[SamplePoint], attr: str) -> Series:
    return Series(label, color, tuple((s.elapsed, getattr(s, attr)) for s in samples))


def users_chart(samples: Sequence[SamplePoint]) -> str:
    return line_chart("Users", [_series("users", COLORS["users"], samples, "users")], "users")


def throughput_chart(samples: Sequence[SamplePoint]) -> str:
    return line_chart(
        "Requests and failures per second",
        [_series("req/s", COLORS["rps"], samples, "requests_per_second"),
         _series("failures/s", COLORS["failures"], samples, "failures_per_second")],
        "per second",
    )


def latency_chart(samples: Sequence[SamplePoint]) -> str:
    return line_chart(
        "Response times (p50 and p95)",
        [_series("p50", COLORS["p50"], samples, "p50"), _series("p95", COLORS["p95"], samples, "p95")],
        "ms",
    )


def timeline_charts(samples: Iterable[SamplePoint]) -> list[str]:
    """Users, req/s with failures/s, and p50 with p95, over the run's samples."""
    ordered = sorted(samples, key=lambda s: s.elapsed)
    return [users_chart(ordered), throughput_chart(ordered), latency_chart(ordered)]


# ---------------------------------------------------------------------------------------------- distribution


def _decade_ticks(low: int, high: int) -> list[float]:
    """Powers of ten; with 1-2-5 steps between them when the axis spans at most two decades."""
    steps = (1, 2, 5) if high - low <= 2 else (1,)
    ticks = [step * 10.0**power for power in range(low, high) for step in steps]
    return [*ticks, 10.0**high]


def distribution_chart(name: str, histogram: Mapping[str | int, int]) -> str:
    """One endpoint's response times as bars on a log-ms axis, p50 and p95 marked.

    ``histogram`` is bucket key → count as stored (keys may be JSON strings); buckets are folded
    into ten bars per decade, tall enough to compare shapes, not to read single counts.
    """
    width, height = DISTRIBUTION_SIZE
    left, right, top, bottom = 34, width - 22, 48, height - 30
    counts = {int(key): int(count) for key, count in histogram.items() if int(count) > 0}
    title = f"Response-time distribution: {name}"
    body = [_text(10, 18, _shorten(name), font_size="12", font_weight="600")]
    body.append(_line(left, bottom, right, bottom, COLORS["axis"]))
    if not counts:
        body.append(_text((left + right) / 2, (top + bottom) / 2, "No requests", "middle", fill=COLORS["muted"]))
        return _svg(DISTRIBUTION_SIZE, title, "distribution", body, "no requests")

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
        body.append(_text(x, bottom + 13, format_ms(tick), "middle", fill=COLORS["muted"], font_size="10"))
    bar_width = (right - left) / ((high - low) * BINS_PER_DECADE)
    bars = [
        f'<rect x="{_num(sx(index / BINS_PER_DECADE))}" y="{_num(sy(count))}" width="{_num(max(bar_width - 1, 1))}" '
        f'height="{_num(bottom - sy(count))}"><title>{escape(_bin_label(index, count, total))}</title></rect>'
        for index, count in sorted(bins.items())
    ]
    body.append(f'<g class="bars" fill="{COLORS["bars"]}">{"".join(bars)}</g>')
    body.append(_text(left - 4, top + 8, f"{tallest / total:.0%}", "end", fill=COLORS["muted"], font_size="10"))
    body.append(_text(left - 4, bottom, "0", "end", fill=COLORS["muted"], font_size="10"))

    whole = Histogram(counts)
    markers = [(label, whole.percentile(fraction) or bucket_value(min(counts))) for label, fraction in
               (("p50", 0.5), ("p95", 0.95))]
    summary = [f"n={total:,}", *(f"{label} {format_ms(value)}" for label, value in markers)]
    body.append(_text(10, 34, summary[0], fill=COLORS["muted"]))
    offset = 10 + len(summary[0]) * 6.2 + 12
    for (label, value), text in zip(markers, summary[1:], strict=True):
        x = sx(log10(value))
        body.append(_line(x, top - 4, x, bottom, COLORS[label], stroke_width="1.5", stroke_dasharray="4 3"))
        body.append(_text(offset, 34, text, fill=COLORS[label], font_weight="600"))
        offset += len(text) * 7 + 12
    body.append(_text(width - 10, height - 4, "response time (log scale)", "end", fill=COLORS["muted"],
                      font_size="10"))
    return _svg(DISTRIBUTION_SIZE, title, "distribution", body, ", ".join(summary))


def _bin_label(index: int, count: int, total: int) -> str:
    low, high = 10 ** (index / BINS_PER_DECADE), 10 ** ((index + 1) / BINS_PER_DECADE)
    return f"{format_ms(low)}–{format_ms(high)}: {count:,} ({count / total:.1%})"


def distribution_charts(endpoints: Iterable[tuple[str, Mapping[str | int, int]]]) -> list[str]:
    """One distribution chart per (label, histogram) pair, in the order given."""
    return [distribution_chart(label, histogram) for label, histogram in endpoints]
