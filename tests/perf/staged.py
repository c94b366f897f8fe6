"""A run that followed a load profile, stored as run_perf stores it: its profile's layout (``PerfRun.profile``), its
registry marked at each stage boundary as the runner marks it, each stage's figures and verdicts from
``perf.load.stage_figures`` (``PerfRun.stages``) and the run's own verdicts. The run page's stages section and the
comparison stage with stage read these; one builder, so both read what run_perf writes.
"""

from collections.abc import Sequence
from typing import Any

from perf.cli.profiles import profile_json
from perf.load.profile import StagedProfile
from perf.load.stage_figures import stage_figures, stages_json
from perf.load.stats import StatsRegistry
from perf.load.thresholds import evaluate, parse_threshold
from perf.models import PerfRun
from perf.options import parse_stages
from tests.perf.builders import stored_run

STAGES = "10s:4,20s:4,10s:0"  # 0 → 4 users over 10 s, hold 20 s, back to 0 over 10 s
START = 1_700_000_000.0
ENDPOINT = "/events/"
FAILED = "HTTPError('503 Server Error')"


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
        "users": round(profile.peak), "planned_duration": profile.duration, "profile": profile_json(
            profile, "stages", stages),
        "stages": stages_json(stage_figures(stats, spans, duration, rules)),
        "thresholds": [verdict.as_dict() for verdict in evaluate(rules, stats, duration)],
    }
    return stored_run(stats, duration=duration, **{**values, **fields})
