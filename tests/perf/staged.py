"""A run that followed a load profile, stored as run_perf stores it: its profile's layout (``PerfRun.profile``), its
registry marked at each stage boundary as the runner marks it, each stage's figures and verdicts from
``perf.load.stage_figures`` (``PerfRun.stages``) and the run's own verdicts. The run page's stages section and the
comparison stage with stage read these; one builder, so both read what run_perf writes. And a staged run still
running, as its live page reads it.
"""

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.utils import timezone

from perf.cli.profiles import profile_json
from perf.load.profile import StagedProfile
from perf.load.stage_figures import stage_figures, stages_json
from perf.load.stats import StatsRegistry
from perf.load.thresholds import evaluate, parse_threshold
from perf.models import PerfRun, StatsSample
from perf.options import parse_stages
from perf.store.persist import save_progress, start_run
from tests.perf.builders import stored_run

STAGES = "10s:4,20s:4,10s:0"  # 0 → 4 users over 10 s, hold 20 s, back to 0 over 10 s
START = 1_700_000_000.0
ENDPOINT = "/events/"
FAILED = "HTTPError('503 Server Error')"


def stages_profile(stages: str = STAGES) -> dict[str, Any]:
    """``PerfRun.profile`` of a run that follows ``stages``, laid out by run_perf's own ``profile_json``."""
    return profile_json(StagedProfile(parse_stages(stages)), "stages", stages)


def staged_registry(latencies: Sequence[float], stages: str = STAGES, per_stage: int = 30,
                    failures: Sequence[int] = ()) -> tuple[StatsRegistry, StagedProfile]:
    """Stage ``i`` records ``per_stage`` requests taking ``latencies[i]`` ms each (so its percentiles are that
    value), the first ``failures[i]`` of them failed; the registry is marked where each stage after the first
    begins. Only the stages given latencies are reached: fewer is a run that ended early."""
    profile = StagedProfile(parse_stages(stages))
    stats = StatsRegistry(start_time=START)
    for span, ms in zip(profile.spans(), latencies, strict=False):
        if span.index:
            stats.mark_stage(span.index, START + span.start)
        failed = failures[span.index] if span.index < len(failures) else 0
        for i in range(per_stage):
            stats.record("GET", ENDPOINT, ms, 500, FAILED if i < failed else None)
    return stats, profile


def stored_staged_run(latencies: Sequence[float], stages: str = STAGES, thresholds: Sequence[str] = ("p95<100ms",),
                      per_stage: int = 30, failures: Sequence[int] = (), **fields: Any) -> PerfRun:
    """A completed run that followed ``stages`` (see ``staged_registry``), with ``thresholds`` checked over the run
    and over each stage, as run_perf checks and stores them."""
    stats, profile = staged_registry(latencies, stages, per_stage, failures)
    spans = profile.spans()
    duration = spans[min(len(latencies), len(spans)) - 1].end
    rules = [parse_threshold(text) for text in thresholds]
    values: dict[str, Any] = {
        "users": round(profile.peak), "planned_duration": profile.duration, "profile": stages_profile(stages),
        "stages": stages_json(stage_figures(stats, spans, duration, rules)),
        "thresholds": [verdict.as_dict() for verdict in evaluate(rules, stats, duration)],
    }
    return stored_run(stats, duration=duration, **{**values, **fields})


def running_staged_run(label: str, elapsed: float, profile: object, stages: str = STAGES) -> PerfRun:
    """A run ``elapsed`` seconds in, that has followed ``stages`` so far: a sample every 2 s with its users and its
    target, requests in proportion to the users. Its start and last progress write are set so that the page's
    elapsed time is exactly ``elapsed``."""
    staged = StagedProfile(parse_stages(stages))
    start = time.time() - elapsed
    stats = StatsRegistry(start_time=start)
    for tick in range(1, int(elapsed // 2) + 1):
        users = round(staged.target(max(2.0 * tick - 3.0, 0.0)) or 0)  # starting users takes the runner a moment
        for i in range(2 * users + 1):
            stats.record("GET", "/events/", 5 + i % 20 + users, 200)
            stats.record("GET", "/events/{id}/my-status [BOTTLENECK]", 20 + i % 40 + 2 * users, 200)
        stats.take_sample(users=users, now=start + 2.0 * tick)
    peak = round(staged.peak)
    run = start_run(label=label, host="http://127.0.0.1:8000/api", users=peak, spawn_rate=1.0,
                    planned_duration=staged.duration, scenarios=["EventBrowser"], user_split={"EventBrowser": peak},
                    profile=profile)
    save_progress(run, stats, elapsed)
    for sample in StatsSample.objects.filter(run=run):
        StatsSample.objects.filter(pk=sample.pk).update(target=staged.target(sample.elapsed))
    began = timezone.now() - timedelta(seconds=elapsed)
    PerfRun.objects.filter(pk=run.pk).update(started_at=began, heartbeat_at=began + timedelta(seconds=elapsed))
    return run
