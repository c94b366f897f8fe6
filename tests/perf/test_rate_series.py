"""The open model's iterations started a second, stored with every sample beside the rate profile's target (issue 20).

A rate profile asks for iterations a second; a task may send several requests, so req/s is another unit. Each sample
of an open-model run says how many iterations started a second over its window (``Sample.iterations_per_second``,
``StatsSample.iterations_per_second``), the closed model's none (NULL); the JSON summary carries them there and back,
and the run page draws them beside the target on a chart of their own.
"""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from django.test import Client

from perf.cli.summary_import import read_summary, store_summary
from perf.load.stats import Sample, StatsRegistry
from perf.models import PerfRun, StatsSample
from perf.reports.charts import TargetLine, timeline_charts
from tests.capacitytarget import capacity_run_env, capacity_target, run_capacity_perf
from tests.factories import make_user, unique
from tests.perf.builders import stored_run

RATE_PACK = "tests.perf.rate_pack.SCENARIOS"  # one task, two requests: req/s is twice iterations/s
SVG = "{http://www.w3.org/2000/svg}"
CHANGELIST = "/admin/perf/perfrun/"
ITERATIONS_TITLE = "Iterations started per second"
# One straight ramp (5 iterations/s more each second) to 20, then a hold: non-decreasing, so the mean target over a
# sample's window lies between the targets at its two ends.
RATE_STAGES = "2s:10,2s:20,2s:20"
PAIR = 2  # requests per iteration of the rate pack's task


# --- the registry -----------------------------------------------------------------------------------------------------


def test_a_sample_counts_the_iterations_started_over_its_own_window_and_none_without_a_count() -> None:
    closed = StatsRegistry(start_time=100.0)
    assert closed.take_sample(users=3, now=102.0).iterations_per_second is None

    counted = StatsRegistry(start_time=100.0)
    counted.iterations_started = 0
    assert counted.take_sample(users=3, now=102.0).iterations_per_second == 0.0
    counted.iterations_started = 10
    assert counted.take_sample(users=3, now=104.0).iterations_per_second == pytest.approx(5.0)
    counted.iterations_started = 13
    assert counted.take_sample(users=3, now=104.5).iterations_per_second == pytest.approx(6.0)


# --- the charts -------------------------------------------------------------------------------------------------------


def _point(elapsed: float, iterations: float | None, rps: float) -> Sample:
    return Sample(timestamp=1_700_000_000.0 + elapsed, elapsed=elapsed, users=4, requests_per_second=rps,
                  failures_per_second=0.0, p50=5.0, p95=9.0, avg_response_time=5.0, total_requests=0,
                  total_failures=0, p99=12.0, iterations_per_second=iterations)


def _series(svg: str) -> dict[str, bool]:
    """Each line a chart draws, by its label: whether it is dashed (what was asked for)."""
    root = ET.fromstring(svg)
    return {group.get("data-series", ""): any(shape.get("stroke-dasharray") for shape in group)
            for group in root.iter(f"{SVG}g") if group.get("data-series")}


def _title(svg: str) -> str:
    title = ET.fromstring(svg).find(f"{SVG}title")
    assert title is not None
    return title.text or ""


def test_the_iterations_started_are_drawn_beside_the_target_and_the_requests_without_it() -> None:
    samples = [_point(at, at * 1.9, at * 3.8) for at in (2.0, 4.0, 6.0)]
    target = TargetLine("rate", tuple((at, 2.0 * at) for at in (2.0, 4.0, 6.0)))
    throughput, _, _, iterations = timeline_charts(samples, target)
    assert _title(iterations) == ITERATIONS_TITLE
    assert _series(iterations) == {"iterations/s": False, "target iterations/s": True}
    assert "iterations/s: max 11.4" in iterations  # the actual series' own values, in the chart's description
    assert _series(throughput) == {"req/s": False, "failures/s": False}


def test_a_closed_model_run_or_one_stored_before_iterations_were_counted_has_no_iterations_chart() -> None:
    closed = [_point(at, None, 10.0) for at in (2.0, 4.0)]
    assert [_title(svg) for svg in timeline_charts(closed)] == [
        "Requests and failures per second", "Response times, 10 s rolling window", "Users"]
    # A rate profile's run stored before its samples counted iterations: its target alone, on the iterations' chart.
    target = TargetLine("rate", ((2.0, 4.0), (4.0, 8.0)))
    assert _series(timeline_charts(closed, target)[-1]) == {"target iterations/s": True}


# --- the run page -----------------------------------------------------------------------------------------------------


def _page(run: PerfRun) -> str:
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    response = client.get(f"{CHANGELIST}{run.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_run_page_renders_a_run_whose_samples_hold_no_iterations(orm) -> None:
    stats = StatsRegistry(start_time=1_700_000_000.0)
    for tick in range(1, 4):
        stats.record("GET", "/events/", 20.0, 100)
        stats.take_sample(users=2, now=1_700_000_000.0 + 2 * tick)
    run = stored_run(stats, duration=6.0)
    assert list(StatsSample.objects.filter(run=run).values_list("iterations_per_second", flat=True)) == [None] * 3
    page = _page(run)
    assert "Requests and failures per second" in page and ITERATIONS_TITLE not in page


# --- a real --rate-stages run -----------------------------------------------------------------------------------------


def _windows(samples: list[StatsSample]) -> list[tuple[StatsSample, float | None, float]]:
    """Each sample with the target at its window's start (the previous sample's; 0 before the profile began, None
    once it had ended) and its window's length in seconds."""
    windows, before, since = [], 0.0, 0.0
    for sample in samples:
        windows.append((sample, before, sample.elapsed - since))
        before, since = sample.target, sample.elapsed
    return windows


@pytest.mark.slow
def test_a_rate_stages_runs_stored_samples_follow_the_target_in_iterations_not_requests(live_env, orm,
                                                                                       tmp_path: Path) -> None:
    label, summary = unique("rate-series"), tmp_path / "run.json"
    with capacity_target(workers=20, seconds=0.002) as target:
        result = run_capacity_perf(target.url, tmp_path, "--rate-stages", RATE_STAGES, "-u", "10", "-r", "100",
                                   "--no-audit", "--label", label, "--json", str(summary),
                                   env=capacity_run_env(tmp_path, base=live_env, pack=RATE_PACK))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = PerfRun.objects.get(label=label)
    assert run.status == PerfRun.Status.COMPLETED and run.total_failures == 0
    started = run.open_model["started_iterations"]
    assert run.open_model["dropped_iterations"] == 0 and 78 <= started <= 80  # 10 + 30 + 40 asked for

    samples = list(StatsSample.objects.filter(run=run).order_by("timestamp"))
    assert all(sample.iterations_per_second is not None for sample in samples), samples
    windows = _windows(samples)
    # Every iteration started is in exactly one window: the rates add up to the run's count.
    assert sum(s.iterations_per_second * span for s, _, span in windows) == pytest.approx(started, abs=0.01)
    followed = [(s, before, span) for s, before, span in windows if s.target is not None and before is not None]
    assert len(followed) >= 3, [(s.elapsed, s.target) for s in samples]
    for sample, before, span in followed:
        slack = 2 / span  # two iterations a window: whole arrivals, a tick that is a few ms late
        assert before - slack <= sample.iterations_per_second <= sample.target + slack, (
            sample.elapsed, before, sample.target, sample.iterations_per_second)
        # The requests are the pair of each iteration, give or take those answered across a window's edge.
        assert abs(sample.requests_per_second - PAIR * sample.iterations_per_second) <= 2 * PAIR / span, (
            sample.elapsed, sample.requests_per_second, sample.iterations_per_second)
    assert max(s.requests_per_second for s, _, _ in followed) > 1.5 * max(s.target for s, _, _ in followed)

    # The JSON summary carries them, and storing it again (perf_import) keeps them.
    written = [item["iterations_per_second"] for item in json.loads(summary.read_text())["samples"]]
    assert written == pytest.approx([sample.iterations_per_second for sample in samples])
    imported = store_summary(read_summary(summary))
    assert list(StatsSample.objects.filter(run=imported).order_by("timestamp").values_list(
        "iterations_per_second", flat=True)) == pytest.approx(written)

    page = _page(run)
    assert ITERATIONS_TITLE in page
    assert 'data-series="iterations/s"' in page and 'data-series="target iterations/s"' in page
