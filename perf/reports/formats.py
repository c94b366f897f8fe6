"""How the run page, the HTML report, its charts and the console's progress line write figures: one place, so
they never disagree.

Milliseconds are whole (a load test's latencies are not known to a tenth of a millisecond, and
columns of integers are easier to scan), tables and charts alike; rates have one decimal, percentages two (0.04 %
of failures is not 0 %), durations read like ``2m 30s``. A missing figure is a dash, never 0.

Two ways to write time, for two different things: ``duration`` says how long something lasted (``8.5s``,
``2m 30s``), ``clock`` names a round point on a chart's time axis (``2m``, ``1m30s``), where six labels must fit
under a chart and a tenth of a second would be noise.
"""

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from perf.reports.description import NoiseVerdict

MISSING = "—"


def ms(value: float | None) -> str:
    """``312``: whole milliseconds; ``<1`` for a measured time that rounds to nothing."""
    if value is None:
        return MISSING
    if 0 < value < 0.5:
        return "<1"
    return f"{round(value):,}"


def ms_unit(value: float | None) -> str:
    """``312 ms``: a key figure standing on its own."""
    text = ms(value)
    return text if text == MISSING else f"{text} ms"


def tenths(value: float | None) -> str:
    """``3.1``: one decimal, for figures that are often below one (DB ms, queries per request)."""
    return MISSING if value is None else f"{value:,.1f}"


def rate(value: float | None) -> str:
    """``7.1``: a per-second rate with one decimal."""
    return MISSING if value is None else f"{value:,.1f}"


def count(value: int | float | None) -> str:
    return MISSING if value is None else f"{round(value):,}"


def percent(value: float | None) -> str:
    """``0.97%``: a percentage with two decimals."""
    return MISSING if value is None else f"{value:.2f}%"


def duration(seconds: float | None) -> str:
    """``8.5s``, ``45s``, ``2m 30s``, ``1h 02m 03s``."""
    if seconds is None:
        return MISSING
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def clock(seconds: float) -> str:
    """A point on a chart's time axis, which falls on a round time: ``45s``, ``2m``, ``1m30s``, ``1h05m``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m" if not secs else f"{minutes}m{secs:02d}s"


def moment(epoch: float | None) -> str:
    """``2026-11-24 17:20:45 UTC``."""
    if epoch is None:
        return MISSING
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def limit(value: float, unit: str) -> str:
    """A threshold's limit with its unit, as ``perf.load.thresholds`` kinds name them."""
    number = f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return {"ms": f"{number} ms", "%": f"{number}%", "/s": f"{number}/s"}.get(unit, number)


def plural(number: int | float | None, word: str, words: str = "") -> str:
    """``1 user``, ``8 users``, ``1,200 users``: a count with its noun agreeing (``words`` for an irregular plural)."""
    if number is None:
        return f"{MISSING} {words or word + 's'}"
    return f"{count(number)} {word if round(number) == 1 else words or word + 's'}"


def noise_line(verdict: "NoiseVerdict") -> str:
    """``GET /x p95 640.0 ms: regressed (history 300.0 ± 30.0 ms over 12 runs)``: a noise verdict and what decided it.
    One decimal, as ``perf.analysis.noise`` prints the verdicts at the end of the run: a band is often narrower
    than a millisecond."""
    unit = " ms" if verdict.metric == "p95" else "%"

    def number(value: float | None) -> str:
        return MISSING if value is None else f"{value:.1f}{unit}"

    text = f"{verdict.endpoint} {verdict.metric} {number(verdict.value)}: {verdict.verdict}"
    if verdict.median is not None:
        band = verdict.band or 0.0
        text += (f" (history {verdict.median:.1f} ± {band:.1f}{unit} over {verdict.history} "
                 f"run{'' if verdict.history == 1 else 's'})")
    return text
