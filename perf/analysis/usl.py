"""Gunther's Universal Scalability Law: throughput against load, from a capacity search's steps.

``X(N) = λ·N / (1 + σ·(N − 1) + κ·N·(N − 1))``: λ is the throughput of one unit of load alone, σ the share of the
work that is serialised (contention: a lock, one database row, a pool too small), κ the cost of keeping the units
coherent with each other (crosstalk: every worker waiting on every other), which makes throughput fall past a peak.

For a backend the two numbers say different things. A σ above 0 with κ at 0 is a ceiling: throughput levels off at
λ/σ however many users come, and more workers or a bigger pool (whatever is serialised) is the cure. A κ above 0 is
a peak: past ``N* = √((1 − σ)/κ)`` each added user costs every other one more than it brings, so throughput falls
(lock convoys, cache lines or rows fought over, a database thrashing), and adding load makes things worse.

:func:`fit_usl` fits the law to a search's measured (load, throughput) steps by least squares on the throughput
itself. For a given σ and κ the best λ has a closed form, so only σ and κ are searched: a coarse grid in log space,
then a small Nelder–Mead from the best grid point. The law with σ or κ at 0 is fitted too, and the simpler law
is kept unless the full one fits clearly better: a κ the data do not need would invent a peak out of noise.

The law bends gently; a server with K workers does not (throughput rises linearly, then is flat past K). Its curve
through such a knee takes σ for the ceiling and some κ for the sharpness, so it places a peak at or past the knee
whose throughput is close to the ceiling: read that peak as "no more than this", not as a measured fall. Steps
that reach far past the knee give σ the larger part; steps that stop soon after it can leave σ at 0.

A fit is a curve through a few points, not a measurement. :attr:`UslFit.good` says whether it is fit to be shown
next to the measured steps, and :attr:`UslFit.why` says why not; the rules are at :meth:`UslFit.problems`.
"""

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple


def usl_throughput(load: float, sigma: float, kappa: float, lam: float) -> float:
    """The throughput the law predicts at ``load`` (users, or requests in flight) for the fitted σ, κ and λ."""
    return lam * load / (1.0 + sigma * (load - 1.0) + kappa * load * (load - 1.0))


# A fit to fewer distinct loads than this says nothing: the law has three parameters, and three points are fitted
# exactly by almost any σ and κ.
MIN_LOADS = 4
# Below this R² (over the throughput) the law does not describe the steps: the noise, or another shape (a cliff, a
# step that failed for another reason), is most of what was measured.
MIN_R2 = 0.9
# A peak further than this many times the largest load measured is a guess: the measured steps barely show the
# coherency cost that places it.
PEAK_REACH = 2.0
# The law with fewer parameters is kept unless the full one lowers the squared error by more than this many times
# the error left per degree of freedom, for each parameter it adds (an F-test at about 95 %).
F_KEEP = 4.0
# ... and unless the lower error it brings is at most this share of the throughput's variance. Both: a parameter
# the noise alone would buy is dropped, and one that changes R² by more than 0.01 is kept even from few points.
MATERIAL = 0.01
# σ this close to 1 is at its bound: the data asked for more serialisation than there is work.
SIGMA_BOUND = 1.0 - 1e-6

# The search space, in log10: σ from 1e-8 to 1; κ as κ·Nmax², the coherency term at the largest load measured, from
# 1e-10 (nothing) to 1e6 (throughput a millionth of linear there). The grid is coarser and narrower: a start only.
_SIGMA_LOG = (-8.0, 0.0)
_KAPPA_LOG = (-10.0, 6.0)
_SIGMA_GRID = [-4.0 + 0.25 * i for i in range(17)]
_KAPPA_GRID = [-6.0 + 0.5 * i for i in range(21)]


@dataclass(frozen=True)
class UslFit:
    """The law fitted to a search's steps: σ, κ, λ, the fit's R² over the throughput, and what it was fitted to.

    ``points`` is the number of distinct loads fitted (a bisection that revisits a load adds no new one);
    ``min_load`` and ``max_load`` the range they span, which the rules about the peak need (None: unknown, those
    rules are not applied).
    """

    sigma: float
    kappa: float
    lam: float
    r2: float
    points: int
    min_load: float | None = None
    max_load: float | None = None

    @property
    def peak_load(self) -> float | None:
        """``N* = √((1 − σ)/κ)``, where throughput stops growing; None when there is no peak.

        κ = 0: throughput never turns down (the fit sets κ to exactly 0 when the data do not need it); σ = 1:
        throughput never grows, so the law's "peak" would be at no load at all.
        """
        if self.kappa <= 0.0 or self.sigma >= SIGMA_BOUND:
            return None
        return math.sqrt((1.0 - self.sigma) / self.kappa)

    @property
    def peak_throughput(self) -> float | None:
        """The throughput at the peak (:attr:`peak_load`), or None without one."""
        peak = self.peak_load
        return None if peak is None else self.throughput(peak)

    @property
    def max_throughput(self) -> float | None:
        """The most throughput the law allows at any load: the peak's, or without a peak the ceiling λ/σ that
        contention alone leaves as load grows; None when throughput grows without bound (σ = κ = 0)."""
        if self.peak_throughput is not None:
            return self.peak_throughput
        if self.kappa <= 0.0 and self.sigma > 0.0:
            return self.lam / self.sigma
        return None

    def throughput(self, load: float) -> float:
        """The throughput the fitted law predicts at ``load``."""
        return usl_throughput(load, self.sigma, self.kappa, self.lam)

    def problems(self) -> list[str]:
        """Why the fit is not good enough to show, in plain words; empty when it is.

        - fewer than :data:`MIN_LOADS` distinct loads: three parameters fit three points whatever they are;
        - R² below :data:`MIN_R2`: the law does not describe the steps;
        - σ at 1: throughput did not grow with load at all, which is no scaling curve to fit;
        - a peak below the smallest load measured: every step is past it, so where it lies (and λ, the throughput of
          one unit of load) is read off a curve the data never showed;
        - a peak beyond :data:`PEAK_REACH` times the largest load measured: too far for the steps to place it.
        """
        found = []
        if self.points < MIN_LOADS:
            found.append(f"only {self.points} distinct loads measured: the law has three parameters, "
                         f"so it needs at least {MIN_LOADS}")
        if self.r2 < MIN_R2:
            found.append(f"R² {self.r2:.2f} is below {MIN_R2}: the law does not describe these steps")
        if self.sigma >= SIGMA_BOUND:
            found.append("σ reached 1: throughput did not grow with load, so there is no scaling to describe")
        peak = self.peak_load
        if peak is not None and self.min_load is not None and peak < self.min_load:
            found.append(f"the peak (load {peak:.3g}) lies below the smallest load measured ({self.min_load:.3g}): "
                         "every step is past it, so the rise before it is a guess")
        if peak is not None and self.max_load is not None and peak > PEAK_REACH * self.max_load:
            found.append(f"the peak (load {peak:.3g}) lies beyond {PEAK_REACH:g}× the largest load "
                         f"measured ({self.max_load:.3g}): too far for the steps to place it")
        return found

    @property
    def good(self) -> bool:
        """Whether the fit may be shown beside the measured steps (as a fit, never as a measurement)."""
        return not self.problems()

    @property
    def why(self) -> str:
        """Why the fit is not shown ("" when it is): every problem found, joined by "; "."""
        return "; ".join(self.problems())

    def as_json(self, load_axis: str) -> dict[str, Any]:
        """The capacity JSON's ``"usl"`` object; ``load_axis`` names what the loads were ("users", …).

        Numbers keep six significant digits: enough for κ, which is often a few millionths.
        """
        return {
            "sigma": _round(self.sigma),
            "kappa": _round(self.kappa),
            "lambda": _round(self.lam),
            "r2": _round(self.r2),
            "peak_load": _round(self.peak_load),
            "peak_throughput": _round(self.peak_throughput),
            "shown": self.good,
            "why": self.why,
            "load_axis": load_axis,
        }


def _round(value: float | None) -> float | None:
    """Six significant digits, or None as it is."""
    return None if value is None else float(f"{value:.6g}")


def fit_usl(points: Sequence[tuple[float, float]]) -> UslFit | None:
    """Fit the law to measured ``(load, throughput)`` points by least squares on the throughput.

    Every point counts, several at the same load included (a bisection revisits loads). Points with a load not
    above 0, or a throughput below 0 or not finite, are left out. None when fewer than three distinct loads remain
    or no throughput is above 0: there is nothing to fit. σ is kept within [0, 1] and κ at 0 or above.
    """
    data = [
        (float(load), float(rate)) for load, rate in points
        if math.isfinite(load) and math.isfinite(rate) and load > 0 and rate >= 0
    ]
    loads = {load for load, _ in data}
    if len(loads) < 3 or not any(rate > 0 for _, rate in data):
        return None
    n_max = max(loads)

    def error(sigma: float, kappa: float) -> tuple[float, float]:
        """The squared error and λ of the best fit for this σ and κ (λ in closed form)."""
        shape = []
        for load, _ in data:
            denominator = 1.0 + sigma * (load - 1.0) + kappa * load * (load - 1.0)
            if denominator <= 0.0:  # only for loads below 1 and a large κ: no such law
                return math.inf, 0.0
            shape.append(load / denominator)
        lam = sum(f * rate for f, (_, rate) in zip(shape, data, strict=True)) / sum(f * f for f in shape)
        return sum((rate - lam * f) ** 2 for f, (_, rate) in zip(shape, data, strict=True)), lam

    def search(sigma_free: bool, kappa_free: bool) -> _Law:
        """The best law with σ, κ, both or neither free (the others at 0): a grid, then Nelder–Mead from its best."""
        def law(x: Sequence[float]) -> tuple[float, float]:
            sigma = min(1.0, 10.0 ** x[0]) if sigma_free else 0.0
            kappa = 10.0 ** x[-1] / (n_max * n_max) if kappa_free else 0.0
            return sigma, kappa

        axes = [axis for axis, free in ((_SIGMA_GRID, sigma_free), (_KAPPA_GRID, kappa_free)) if free]
        bounds = [bound for bound, free in ((_SIGMA_LOG, sigma_free), (_KAPPA_LOG, kappa_free)) if free]
        start = min(itertools.product(*axes), key=lambda x: error(*law(x))[0])
        best = _nelder_mead(lambda x: error(*law(x))[0], list(start), bounds) if axes else list(start)
        return _Law(len(axes) + 1, error(*law(best))[0], *law(best))

    laws = [search(True, True), search(True, False), search(False, True), search(False, False)]
    mean = sum(rate for _, rate in data) / len(data)
    total = sum((rate - mean) ** 2 for _, rate in data)
    chosen = _simplest(laws, len(data), total)
    sse, lam = error(chosen.sigma, chosen.kappa)
    # Every throughput the same (no variance): only an exact fit explains it.
    exact = sse <= 1e-12 * sum(rate * rate for _, rate in data)
    r2 = 1.0 - sse / total if total > 0.0 else float(exact)
    return UslFit(sigma=chosen.sigma, kappa=chosen.kappa, lam=lam, r2=r2, points=len(loads), min_load=min(loads),
                  max_load=n_max)


class _Law(NamedTuple):
    """One candidate law: how many parameters it has (λ and those of σ, κ left free), its squared error, σ, κ."""

    params: int
    sse: float
    sigma: float
    kappa: float


def _simplest(laws: list[_Law], observations: int, total: float) -> _Law:
    """The law with the fewest parameters that fits about as well as the full one.

    A law with fewer parameters is kept when the full one's lower error is both within :data:`F_KEEP` times the
    error left per degree of freedom for each parameter it adds (with none left, three points, it must fit as
    exactly) and within :data:`MATERIAL` of the variance (``total``). Among equals in parameters, the lower error
    wins.
    """
    full = min((law for law in laws if law.params == 3), key=lambda law: law.sse)
    freedom = observations - full.params
    per_freedom = full.sse / freedom if freedom > 0 else 0.0
    floor = 1e-10 * max(total, full.sse)  # rounding: an exact fit either way
    for law in sorted(laws, key=lambda law: (law.params, law.sse)):
        gain = law.sse - full.sse
        if gain <= floor or (gain <= F_KEEP * (full.params - law.params) * per_freedom and gain <= MATERIAL * total):
            return law
    return full


def _nelder_mead(
    cost: Callable[[list[float]], float], start: list[float], bounds: list[tuple[float, float]],
    step: float = 0.5, tolerance: float = 1e-10, iterations: int = 400,
) -> list[float]:
    """The minimum of ``cost`` near ``start`` by Nelder–Mead, each coordinate kept within its bounds.

    Small on purpose: one or two coordinates in log space, a start from a grid, a smooth cost. It stops when the
    simplex's costs agree to ``tolerance`` (relative) and its points to a millionth of a decade.
    """

    def clamp(x: list[float]) -> list[float]:
        return [min(hi, max(lo, v)) for v, (lo, hi) in zip(x, bounds, strict=True)]

    def point(x: list[float]) -> tuple[float, list[float]]:
        x = clamp(x)
        return cost(x), x

    size = len(start)
    simplex = [point(start)]
    for i in range(size):
        moved = list(start)
        moved[i] += step if moved[i] + step <= bounds[i][1] else -step
        simplex.append(point(moved))
    for _ in range(iterations):
        simplex.sort(key=lambda p: p[0])
        best, worst = simplex[0], simplex[-1]
        spread = max(abs(a - b) for p in simplex[1:] for a, b in zip(p[1], best[1], strict=True))
        if abs(worst[0] - best[0]) <= tolerance * max(abs(best[0]), 1e-300) and spread < 1e-6:
            break
        centre = [sum(p[1][i] for p in simplex[:-1]) / size for i in range(size)]

        def towards(t: float, centre: list[float] = centre, worst: list[float] = worst[1]) -> tuple[float, list[float]]:
            return point([c + t * (w - c) for c, w in zip(centre, worst, strict=True)])

        reflected = towards(-1.0)
        if reflected[0] < best[0]:
            expanded = towards(-2.0)
            simplex[-1] = expanded if expanded[0] < reflected[0] else reflected
        elif reflected[0] < simplex[-2][0]:
            simplex[-1] = reflected
        else:
            contracted = towards(-0.5) if reflected[0] < worst[0] else towards(0.5)
            if contracted[0] < min(worst[0], reflected[0]):
                simplex[-1] = contracted
            else:  # shrink towards the best point
                simplex = [best] + [point([b + 0.5 * (v - b) for b, v in zip(best[1], p[1], strict=True)])
                                    for p in simplex[1:]]
    return min(simplex, key=lambda p: p[0])[1]
