"""The Universal Scalability Law fit (perf.analysis.usl) on points whose truth is known.

Points come from the law itself with chosen σ, κ and λ (clean, and with a few % of fixed noise), from pure linear
scaling, from a server with K workers (throughput flat past K: a hard knee, and the same server seen by users who
think between requests, solved exactly as a finite-source queue), and from random numbers. The loads are laid out
as a capacity search lays them: doubling steps, then a bisection that narrows down (and sometimes revisits a load).
"""

import json
import math
import random
from collections.abc import Sequence

import pytest

from perf.analysis.usl import MIN_R2, PEAK_REACH, UslFit, fit_usl, usl_throughput

# Raise steps from 5 doubling to 160, then a bisection between 80 and 160.
SEARCH_LOADS: list[float] = [5, 10, 20, 40, 80, 160, 120, 100, 90]
# A few % of noise, fixed so that every run fits the same numbers: a step's throughput measured a little high or
# low, as a 30 s hold measures it.
NOISE = [1.03, 0.98, 1.01, 0.97, 1.02, 0.99, 1.03, 0.97, 1.01, 0.98]


def law_points(
    sigma: float, kappa: float, lam: float, loads: Sequence[float], noise: bool = False,
) -> list[tuple[float, float]]:
    """(load, throughput) from the law, each throughput times NOISE in turn when ``noise``."""
    return [
        (load, usl_throughput(load, sigma, kappa, lam) * (NOISE[i % len(NOISE)] if noise else 1.0))
        for i, load in enumerate(loads)
    ]


def workers_points(workers: int, per_worker: float, loads: Sequence[float]) -> list[tuple[float, float]]:
    """A server with ``workers`` workers, each serving ``per_worker`` requests/s, under users who never think:
    throughput grows linearly until every worker is busy, then stays flat at the ceiling."""
    return [(load, per_worker * min(load, workers)) for load in loads]


def finite_source_throughput(users: int, workers: int, service: float, think: float) -> float:
    """The exact throughput of ``users`` who each think ``think`` s (exponentially) between requests to a server
    of ``workers`` workers taking ``service`` s (exponentially) a request: the machine-repairman queue, solved as
    its birth-death chain over the requests at the server."""
    weights = [1.0]
    for at_server in range(1, users + 1):
        arriving = (users - at_server + 1) / think
        served = min(at_server, workers) / service
        weights.append(weights[-1] * arriving / served)
    return sum(w * min(j, workers) / service for j, w in enumerate(weights)) / sum(weights)


LAWS = [
    pytest.param(0.05, 2e-4, 50.0, id="peak-inside"),
    pytest.param(0.2, 1e-3, 5.0, id="heavy-contention"),
    pytest.param(0.01, 2e-5, 100.0, id="peak-past-the-last-step"),
]


@pytest.mark.parametrize(("sigma", "kappa", "lam"), LAWS)
def test_clean_points_give_back_the_law(sigma: float, kappa: float, lam: float) -> None:
    fit = fit_usl(law_points(sigma, kappa, lam, SEARCH_LOADS))
    assert fit is not None
    assert fit.sigma == pytest.approx(sigma, rel=1e-3)
    assert fit.kappa == pytest.approx(kappa, rel=1e-3)
    assert fit.lam == pytest.approx(lam, rel=1e-3)
    assert fit.r2 > 0.99
    assert fit.points == len(SEARCH_LOADS)
    peak = math.sqrt((1 - sigma) / kappa)
    assert fit.peak_load == pytest.approx(peak, rel=1e-3)
    assert fit.peak_throughput == pytest.approx(usl_throughput(peak, sigma, kappa, lam), rel=1e-3)
    assert fit.max_throughput == fit.peak_throughput
    # The peak is the curve's top: a little less or more load gives less throughput.
    assert fit.peak_load is not None and fit.peak_throughput is not None
    assert fit.throughput(fit.peak_load * 0.9) < fit.peak_throughput > fit.throughput(fit.peak_load * 1.1)
    assert fit.good, fit.why
    assert fit.why == ""


@pytest.mark.parametrize(("sigma", "kappa", "lam"), LAWS)
def test_noisy_points_come_close_to_the_law(sigma: float, kappa: float, lam: float) -> None:
    fit = fit_usl(law_points(sigma, kappa, lam, SEARCH_LOADS, noise=True))
    assert fit is not None
    assert fit.sigma == pytest.approx(sigma, abs=0.01 + 0.1 * sigma)
    assert fit.kappa == pytest.approx(kappa, rel=0.25)
    assert fit.lam == pytest.approx(lam, rel=0.08)
    assert fit.r2 > 0.95  # the heavy-contention law varies little: the noise is a fair share of it
    assert fit.peak_load is not None
    assert fit.peak_load == pytest.approx(math.sqrt((1 - sigma) / kappa), rel=0.15)
    assert fit.peak_throughput == pytest.approx(usl_throughput(fit.peak_load, sigma, kappa, lam), rel=0.05)
    assert fit.good, fit.why


def test_the_fit_is_deterministic() -> None:
    points = law_points(0.05, 2e-4, 50.0, SEARCH_LOADS, noise=True)
    assert fit_usl(points) == fit_usl(list(reversed(points)))


@pytest.mark.parametrize("noise", [False, True], ids=["clean", "noisy"])
def test_linear_scaling_has_no_peak(noise: bool) -> None:
    fit = fit_usl(law_points(0.0, 0.0, 12.0, SEARCH_LOADS, noise=noise))
    assert fit is not None
    # The noise must not buy a κ (a peak made of noise) nor a σ (a ceiling made of noise).
    assert fit.kappa == 0.0
    assert fit.sigma == 0.0
    assert fit.lam == pytest.approx(12.0, rel=0.03)
    assert fit.r2 > 0.99
    assert fit.peak_load is None
    assert fit.peak_throughput is None
    assert fit.max_throughput is None
    assert fit.good, fit.why
    usl = fit.as_json("users")
    assert usl["peak_load"] is None and usl["peak_throughput"] is None and usl["shown"] is True


def test_contention_alone_is_a_ceiling() -> None:
    fit = fit_usl(law_points(0.1, 0.0, 20.0, SEARCH_LOADS, noise=True))
    assert fit is not None
    assert fit.kappa == 0.0
    assert fit.sigma == pytest.approx(0.1, abs=0.015)
    assert fit.peak_load is None
    assert fit.max_throughput == pytest.approx(20.0 / 0.1, rel=0.1)  # λ/σ
    assert fit.good, fit.why


@pytest.mark.parametrize("loads", [
    pytest.param(SEARCH_LOADS, id="to-4K"),
    pytest.param([10, 20, 40, 80, 160, 320, 240, 200], id="to-8K"),
])
def test_a_server_with_k_workers_shows_contention_and_its_ceiling(loads: Sequence[float]) -> None:
    workers, per_worker = 40, 10.0
    ceiling = workers * per_worker
    fit = fit_usl(workers_points(workers, per_worker, loads))
    assert fit is not None
    assert fit.good, fit.why
    # σ is clearly there: at the knee its term adds more to the law's denominator than κ's does.
    assert fit.sigma > 0.005
    assert fit.sigma * (workers - 1) > fit.kappa * workers * (workers - 1)
    assert fit.max_throughput == pytest.approx(ceiling, rel=0.15)


def test_users_who_think_see_the_workers_ceiling() -> None:
    """The K-worker server as perfkit's users see it (they think between requests): throughput rises until the
    workers are busy, about users = K·(think + service)/service, then stays at K/service. The law draws that knee
    with κ, so it places a peak past the knee; its throughput is the ceiling's."""
    workers, service, think = 4, 0.05, 1.0
    ceiling = workers / service
    knee = workers * (think + service) / service
    loads = [10, 20, 40, 80, 160, 320, 240, 200]
    fit = fit_usl([(users, finite_source_throughput(users, workers, service, think)) for users in loads])
    assert fit is not None
    assert fit.good, fit.why
    assert fit.r2 > 0.95
    assert fit.max_throughput == pytest.approx(ceiling, rel=0.15)
    assert fit.peak_load is not None and knee < fit.peak_load < PEAK_REACH * max(loads)
    # λ, one user alone, is about one request per think-and-service time.
    assert fit.lam == pytest.approx(1 / (think + service), rel=0.15)


def test_a_target_saturated_from_the_first_step_is_not_shown() -> None:
    fit = fit_usl(workers_points(8, 100.0, [10, 20, 40, 80, 60, 50]))
    assert fit is not None
    assert fit.sigma == pytest.approx(1.0)
    assert fit.peak_load is None
    assert not fit.good
    assert "σ reached 1" in fit.why


def test_too_few_loads() -> None:
    assert fit_usl([(10, 100.0), (20, 190.0)]) is None
    assert fit_usl([(10, 100.0), (20, 190.0), (20, 185.0), (10, 101.0)]) is None  # revisits add no load
    assert fit_usl([]) is None
    assert fit_usl([(10, 0.0), (20, 0.0), (40, 0.0), (80, 0.0)]) is None  # nothing was served
    fit = fit_usl([(10, 100.0), (20, 190.0), (40, 330.0), (40, 325.0)])
    assert fit is not None
    assert fit.points == 3
    assert not fit.good
    assert "only 3 distinct loads" in fit.why


def test_loads_not_above_zero_and_broken_numbers_are_left_out() -> None:
    points = law_points(0.05, 2e-4, 50.0, SEARCH_LOADS, noise=True)
    dirty = [(0, 10.0), (-5, 3.0), (30, math.nan), (35, -1.0), (math.inf, 5.0), *points]
    assert fit_usl(dirty) == fit_usl(points)


def test_random_points_are_not_shown() -> None:
    rng = random.Random(20261201)
    points = [(rng.uniform(1, 200), rng.uniform(1, 500)) for _ in range(15)]
    fit = fit_usl(points)
    assert fit is not None
    assert fit.r2 < MIN_R2
    assert not fit.good
    assert "R²" in fit.why and "does not describe" in fit.why
    assert fit.as_json("users")["shown"] is False


def test_every_point_at_a_revisited_load_counts() -> None:
    """Two steps at one load count as two points: as much as twice their mean, and more than either alone."""
    base = law_points(0.05, 2e-4, 50.0, SEARCH_LOADS, noise=True)
    high, low = (100, 560.0), (100, 480.0)
    both = fit_usl([*base, high, low])
    mean_twice = fit_usl([*base, (100, 520.0), (100, 520.0)])
    high_only = fit_usl([*base, high])
    assert both is not None and mean_twice is not None and high_only is not None
    assert both.points == len(SEARCH_LOADS)  # 100 was measured already
    assert both.sigma == pytest.approx(mean_twice.sigma, rel=1e-4)
    assert both.kappa == pytest.approx(mean_twice.kappa, rel=1e-4)
    assert both.lam == pytest.approx(mean_twice.lam, rel=1e-4)
    assert both.throughput(100) < high_only.throughput(100)


def test_a_peak_far_beyond_the_steps_is_not_shown() -> None:
    # Clean points from a law whose peak (about 1,000) lies six times past the last step.
    fit = fit_usl(law_points(0.02, 1e-6, 10.0, SEARCH_LOADS))
    assert fit is not None
    assert fit.peak_load == pytest.approx(math.sqrt(0.98 / 1e-6), rel=1e-3)
    assert fit.r2 > 0.99
    assert not fit.good
    assert "beyond 2× the largest load measured (160)" in fit.why


def test_a_peak_before_the_first_step_is_not_shown() -> None:
    fit = UslFit(sigma=0.1, kappa=0.01, lam=10.0, r2=0.99, points=6, min_load=20.0, max_load=320.0)
    assert fit.peak_load == pytest.approx(math.sqrt(0.9 / 0.01))
    assert not fit.good
    assert "below the smallest load measured (20)" in fit.why
    # Without the loads' range the rules about the peak cannot be applied.
    assert UslFit(sigma=0.1, kappa=0.01, lam=10.0, r2=0.99, points=6).good


def test_every_problem_is_named() -> None:
    fit = UslFit(sigma=1.0, kappa=0.0, lam=10.0, r2=0.5, points=3, min_load=10.0, max_load=40.0)
    assert fit.why.split("; ") == fit.problems()
    assert len(fit.problems()) == 3


def test_as_json_is_the_contracts_usl_object() -> None:
    fit = fit_usl(law_points(0.05, 2e-4, 50.0, SEARCH_LOADS))
    assert fit is not None
    usl = fit.as_json("users")
    assert list(usl) == ["sigma", "kappa", "lambda", "r2", "peak_load", "peak_throughput", "shown", "why",
                         "load_axis"]
    assert usl["sigma"] == pytest.approx(0.05, rel=1e-5)
    assert usl["kappa"] == pytest.approx(2e-4, rel=1e-5)
    assert usl["lambda"] == pytest.approx(50.0, rel=1e-5)
    assert usl["r2"] == pytest.approx(1.0)
    assert usl["peak_load"] == pytest.approx(fit.peak_load, rel=1e-5)
    assert usl["peak_throughput"] == pytest.approx(fit.peak_throughput, rel=1e-5)
    assert usl["shown"] is True and usl["why"] == ""
    assert usl["load_axis"] == "users"
    assert json.loads(json.dumps(usl)) == usl
    not_shown = fit_usl([(10, 100.0), (20, 190.0), (40, 330.0)])
    assert not_shown is not None
    usl = not_shown.as_json("iterations/s")
    assert usl["shown"] is False and usl["why"] == not_shown.why != ""
    assert usl["load_axis"] == "iterations/s"


def test_throughput_is_the_law() -> None:
    fit = UslFit(sigma=0.05, kappa=2e-4, lam=50.0, r2=1.0, points=9)
    assert fit.throughput(37.0) == usl_throughput(37.0, 0.05, 2e-4, 50.0)
    assert fit.throughput(1.0) == pytest.approx(50.0)
