"""Regressions that know the noise (perf.analysis.noise): the band from the median and the scaled MAD, its floor,
too little history, and a plan's stored history of noisy runs in which only a real regression is flagged.

Stored runs are built the way run_perf stores them (tests.perf.builders.stored_run), each plan unique to its test.
"""

from typing import Any

import pytest

from perf.analysis import noise
from perf.load.stats import StatsRegistry
from perf.models import PerfPlan, PerfRun
from tests.factories import unique
from tests.perf.builders import stored_run

EVENTS = "/events/"
RSVP = "/events/{id}/rsvp/{answer} [BOTTLENECK]"
OPTIONS = {"users": 5, "duration": "10s", "scenarios": ["EventBrowser"], "wait": "0.1,0.2"}
# Ten nights of a noisy machine: each endpoint's p95 spreads by about ±5 % (events) and ±4 % (RSVP) around its median.
EVENTS_HISTORY = [100.0, 93.0, 104.0, 97.0, 108.0, 95.0, 101.0, 99.0, 106.0, 92.0]
RSVP_HISTORY = [200.0, 196.0, 204.0, 192.0, 208.0, 198.0, 202.0, 194.0, 206.0, 200.0]


def registry(events_ms: float, rsvp_ms: float, rsvp_failures: int = 0) -> StatsRegistry:
    """Constant latencies, so each p95 is exactly the figure given: /events/ ×40 and the RSVP endpoint ×40."""
    stats = StatsRegistry(start_time=1_700_000_000.0)
    for _ in range(40):
        stats.record("GET", EVENTS, events_ms, 2_000)
    for i in range(40):
        stats.record("POST", RSVP, rsvp_ms, 150, "HTTPError('503 Server Error')" if i < rsvp_failures else None)
    return stats


def plan_with_history(nights: int = 10, **rules: Any) -> PerfPlan:
    plan = PerfPlan.objects.create(name=unique("nightly"), options=OPTIONS, **rules)
    for events_ms, rsvp_ms in list(zip(EVENTS_HISTORY, RSVP_HISTORY, strict=True))[:nights]:
        stored_run(registry(events_ms, rsvp_ms), plan=plan, options={**OPTIONS, "plan": plan.name})
    return plan


def verdicts(report: noise.NoiseReport) -> dict[tuple[str, str], noise.Verdict]:
    return {(verdict.endpoint, verdict.metric): verdict for verdict in report.verdicts}


def judged(plan: PerfPlan, stats: StatsRegistry, **options: Any) -> noise.NoiseReport:
    """A new run of ``plan``, stored as run_perf stores it, judged as run_perf judges it at the end."""
    ran_with = {**OPTIONS, "plan": plan.name, **options}
    run = stored_run(stats, plan=plan, options=ran_with)
    return noise.judge_run(plan, stats, ran_with, run)


# the band, without a database


def test_the_band_is_k_scaled_mads_around_the_median() -> None:
    median, band = noise.band_of(RSVP_HISTORY, "p95", noise.Rules(k=3))
    # |x - 200|: 0 4 4 8 8 2 2 6 6 0, whose median is 4; × 1.4826 × 3.
    assert median == 200.0 and band == pytest.approx(3 * 1.4826 * 4.0)


def test_a_perfectly_quiet_history_keeps_a_minimum_band() -> None:
    rules = noise.Rules(min_band_percent=5.0)
    quiet = [100.0] * 10  # MAD 0: without a floor, 101 ms would be a regression
    assert noise.judge_value("GET /x", "p95", 101.0, quiet, rules).verdict == noise.WITHIN_NOISE
    assert noise.judge_value("GET /x", "p95", 104.9, quiet, rules).verdict == noise.WITHIN_NOISE
    assert noise.judge_value("GET /x", "p95", 105.1, quiet, rules).verdict == noise.REGRESSED
    assert noise.judge_value("GET /x", "p95", 94.0, quiet, rules).verdict == noise.IMPROVED
    # A failure rate of 0 % has no 5 % of itself: half a point is the floor.
    zero = noise.judge_value("GET /x", "failure_rate", 0.4, [0.0] * 10, rules)
    assert zero.verdict == noise.WITHIN_NOISE and zero.band == 0.5


def test_one_disturbed_night_does_not_widen_the_band() -> None:
    """The median and the MAD move by a rank where a mean and a standard deviation would follow the outlier."""
    disturbed = [*RSVP_HISTORY[:-1], 900.0]
    median, band = noise.band_of(disturbed, "p95", noise.Rules(k=3))
    assert median == pytest.approx(201.0) and band < 30.0
    assert noise.judge_value("POST /rsvp", "p95", 260.0, disturbed, noise.Rules(k=3)).verdict == noise.REGRESSED


def test_too_little_history_is_said_and_not_guessed() -> None:
    verdict = noise.judge_value("GET /x", "p95", 500.0, [100.0] * 4, noise.Rules(min_history=5))
    assert verdict.verdict == noise.NOT_ENOUGH and verdict.median is None and verdict.history == 4


# a plan's stored history


def test_only_the_real_regression_is_flagged(orm) -> None:
    plan = plan_with_history()
    # Noise only: each endpoint moved as much as the history does, RSVP 6 % above the median (and 10.4 % above
    # the 192 ms of one night: a --fail-on-regression 10% against that one run would have cried wolf).
    calm = verdicts(judged(plan, registry(events_ms=107.0, rsvp_ms=212.0)))
    assert {verdict.verdict for verdict in calm.values()} == {noise.WITHIN_NOISE}
    # A real 30 % regression on one endpoint; the other one stays within its noise.
    report = judged(plan, registry(events_ms=98.0, rsvp_ms=260.0))
    found = verdicts(report)
    rsvp = found[(f"POST {RSVP}", "p95")]
    assert rsvp.verdict == noise.REGRESSED and rsvp.value == 260.0 and rsvp.median == 200.0
    assert rsvp.history == 11 and rsvp.high == pytest.approx(200.0 + 3 * 1.4826 * 4.0)
    assert found[(f"GET {EVENTS}", "p95")].verdict == noise.WITHIN_NOISE
    assert found[(f"POST {RSVP}", "failure_rate")].verdict == noise.WITHIN_NOISE
    # The Aggregated p95 is the RSVP endpoint's here (half the requests, the slower half): it rose with it.
    assert [verdict.endpoint for verdict in report.regressed] == [f"POST {RSVP}", "Aggregated"]
    # The calm run was stored before this one, of the same plan and options: it is history now (|212 - 200| is 12).
    assert len(report.runs) == 11
    stored = report.as_json()
    assert stored["regressed"] == 2 and stored["plan"] == plan.name
    assert any(v["verdict"] == "regressed" and v["median"] == 200.0 for v in stored["verdicts"])
    assert "regressed" in "\n".join(report.lines())


def test_a_failure_rate_regression_is_flagged(orm) -> None:
    plan = plan_with_history()
    found = verdicts(judged(plan, registry(events_ms=100.0, rsvp_ms=200.0, rsvp_failures=4)))  # 10 % of 40
    failures = found[(f"POST {RSVP}", "failure_rate")]
    assert failures.verdict == noise.REGRESSED and failures.value == 10.0 and failures.median == 0.0
    assert found[(f"POST {RSVP}", "p95")].verdict == noise.WITHIN_NOISE


def test_not_enough_history_below_the_plans_minimum(orm) -> None:
    plan = plan_with_history(nights=4, min_history=5)
    report = judged(plan, registry(events_ms=500.0, rsvp_ms=900.0))
    assert {verdict.verdict for verdict in report.verdicts} == {noise.NOT_ENOUGH}
    assert not report.regressed and "4 comparable runs" in report.lines()[0]


def test_only_comparable_runs_are_history(orm) -> None:
    """Runs with other load options, of other plans, failed or aborted, or started later are not counted."""
    plan = plan_with_history(nights=5)
    stored_run(registry(100.0, 200.0), plan=plan, options={**OPTIONS, "users": 50, "plan": plan.name})
    stored_run(registry(100.0, 200.0), plan=plan, status=PerfRun.Status.ABORTED, options={**OPTIONS})
    stored_run(registry(100.0, 200.0), options={**OPTIONS})  # no plan
    assert len(noise.comparable_runs(plan, OPTIONS, 20)) == 5
    assert len(noise.comparable_runs(plan, {**OPTIONS, "users": 50}, 20)) == 1
    assert len(noise.comparable_runs(plan, OPTIONS, 3)) == 3
    # The order of the scenarios and a different seed do not make runs incomparable.
    assert len(noise.comparable_runs(plan, {**OPTIONS, "seed": 7}, 20)) == 5
    first = PerfRun.objects.filter(plan=plan).order_by("started_at").first()
    assert noise.comparable_runs(plan, OPTIONS, 20, run=first) == []


def test_the_plans_metrics_and_k_are_its_rules(orm) -> None:
    plan = plan_with_history(noise_k=10.0, metrics=["p95"])
    found = verdicts(judged(plan, registry(events_ms=98.0, rsvp_ms=240.0, rsvp_failures=20)))
    assert found[(f"POST {RSVP}", "p95")].verdict == noise.WITHIN_NOISE  # 10 × 5.9 ms: 240 is inside
    assert not any(metric == "failure_rate" for _, metric in found)
