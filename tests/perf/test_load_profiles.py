"""Load profiles (issue 20): --stages, --rate-stages and --shape, from the parser to real runs.

Real runs are time-compressed (stages of seconds, think times of milliseconds) against the live test server;
the engine runs in this process for the local runner and the open model, and run_perf runs as a user runs it
for --processes and --distributed celery, whose stored samples hold the users beside the profile's target.
"""

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import gevent
import pytest

from perf.cli.invocation import RunRequest, UsageError, check_request
from perf.cli.profiles import parse_shape, profile_from_json, profile_json
from perf.load.hooks import RunHooks, Tick
from perf.load.open_model import OpenModelRunner, arrival_offsets
from perf.load.processes import WorkerStats
from perf.load.profile import Profile, Stage, StagedProfile, StageSpan, whole_users
from perf.load.runner import LoadRunner, RunPlan, allocate_users
from perf.load.session import HttpSession
from perf.load.shapes import SoakShape, SpikeShape, StepShape
from perf.load.shares import Share
from perf.load.stage_figures import mark_after, merge_marks, share_from_json, share_json, stage_figures
from perf.load.stats import StatsRegistry
from perf.load.thresholds import parse_threshold
from perf.load.user import User, constant, task
from perf.models import PerfRun, StatsSample
from perf.store.persist import load_registry
from platform_pack.scenarios import SCENARIOS
from tests.factories import unique
from tests.liveserver import ROOT
from tests.perf.builders import settings_module
from tests.perf.celery_workers import (  # noqa: F401
    WorkerPool,
    broker_url,
    celery_env,
    worker_logs,
    worker_pool,
)

WEIGHTS = {name: cls.weight for name, cls in SCENARIOS.items()}


# --- the target split over shares ----------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_the_shares_parts_add_up_to_the_target_and_each_is_within_one_user(count):
    order = allocate_users(WEIGHTS, 60)
    shares = [Share.of(order, index, count) for index in range(count)]
    for target in [0, 0.4, 0.5, 1, 2.6, 13, 59.5, 60]:
        parts = [share.users_of(target) for share in shares]
        assert sum(parts) == whole_users(target)
        assert all(abs(part - whole_users(target) / count) < 1 for part in parts)
        # Together the shares run a prefix of the spawn order: the weight split of that many users.
        running = [share.run_index(position) for share, part in zip(shares, parts, strict=True)
                   for position in range(part)]
        assert sorted(running) == list(range(whole_users(target)))


# --- profiles, shapes and the open model's arrivals ------------------------------------------------------------


def test_a_constant_rate_stage_places_its_arrivals_every_one_over_the_rate():
    offsets = list(arrival_offsets(StagedProfile([Stage(0.001, 10), Stage(1.0, 10)], "rate")))
    assert offsets[:3] == pytest.approx([0.1, 0.2, 0.3], abs=0.002)
    assert len(offsets) == 10


def test_a_ramp_places_as_many_arrivals_as_its_integral_thickening_as_it_climbs():
    profile = StagedProfile([Stage(10, 100), Stage(5, 100), Stage(10, 0)], "rate")
    offsets = list(arrival_offsets(profile))
    per_stage = [sum(1 for o in offsets if span.start <= o < span.end) for span in profile.spans()]
    assert per_stage == [pytest.approx(500, abs=1), pytest.approx(500, abs=1), pytest.approx(500, abs=1)]
    first_second = sum(1 for o in offsets if o < 1)
    last_of_ramp = sum(1 for o in offsets if 9 <= o < 10)
    assert (first_second, last_of_ramp) == (pytest.approx(5, abs=1), pytest.approx(95, abs=1))


def test_the_step_shape_adds_users_every_period_up_to_its_top():
    name, params, shape = parse_shape("step:add=10,every=30s,to=25")
    assert (name, params) == ("step", {"add": 10, "every": 30.0, "to": 25})
    assert [shape.target(t) for t in (0, 29.9, 30, 60, 89.9, 90)] == [10, 10, 20, 25, 25, None]
    assert shape.peak == 25 and shape.duration == 90


def test_the_spike_shape_jumps_from_its_base_and_comes_back():
    shape = SpikeShape(base=5, peak=50, before=10, ramp=2, hold=10, after=10)
    assert [shape.target(t) for t in (0, 9.9, 11, 12, 21.9, 23, 24, 33.9, 34)] == [5, 5, 27.5, 50, 50, 27.5, 5, 5, None]


def test_the_soak_shape_ramps_holds_for_hours_and_ramps_down():
    _, params, shape = parse_shape("soak:users=100,ramp=5m,hold=4h,down=1m")
    assert params == {"users": 100, "ramp": 300.0, "hold": 14400.0, "down": 60.0}
    assert isinstance(shape, SoakShape)
    assert [shape.target(t) for t in (150, 300, 14699, 14730)] == [50, 100, 100, 50]
    assert shape.duration == 14760


def test_a_profile_travels_to_a_shard_as_its_stored_layout():
    step = StepShape(add=2, every=1, to=4)
    layout = profile_json(step, "shape", "step:add=2,every=1s,to=4", "step", {"add": 2, "every": 1, "to": 4})
    rebuilt = profile_from_json(json.loads(json.dumps(layout)))
    assert [rebuilt.target(t) for t in (0, 1.5, 2)] == [2, 4, None]
    staged = profile_from_json(profile_json(StagedProfile([Stage(2, 10), Stage(1, 0)]), "stages", "2s:10,1s:0"))
    assert [staged.target(t) for t in (1, 2.5, 3)] == [5, 5, None]


def test_a_shape_of_the_project_is_found_through_perf_shapes(settings):
    settings.PERF_SHAPES = {"pulse": "tests.perf.shapes_pack.Pulse"}
    name, params, shape = parse_shape("pulse:high=6,period=1s")
    assert (name, params, shape.peak) == ("pulse", {"high": 6, "period": 1.0}, 6)
    assert [shape.target(t) for t in (0.5, 1.5, 4)] == [0, 6, None]


# --- stage figures ------------------------------------------------------------------------------------------------


def test_each_stage_has_its_own_figures_and_threshold_verdicts():
    stats = StatsRegistry(start_time=0.0)
    spans = StagedProfile([Stage(10, 5), Stage(10, 5)]).spans()
    for _ in range(100):
        stats.record("GET", "/a", 10.0, 100)
    stats.mark_stage(1)
    for _ in range(50):
        stats.record("GET", "/a", 500.0, 100, error="HTTPError('500 Server Error')")
    figures = stage_figures(stats, spans, 20.0, [parse_threshold("p95<100ms"), parse_threshold("error_rate<1%")])
    first, second = (stage.as_json() for stage in figures)
    assert (first["requests"], first["failures"], first["requests_per_second"]) == (100, 0, 10.0)
    assert (second["requests"], second["failures"], second["requests_per_second"]) == (50, 50, 5.0)
    assert first["p95"] == pytest.approx(10, rel=0.01) and second["p50"] == pytest.approx(500, rel=0.01)
    assert [v["ok"] for v in first["thresholds"]] == [True, True]
    assert [v["ok"] for v in second["thresholds"]] == [False, False]


def _record(stats: StatsRegistry, count: int, ms: float = 10.0) -> None:
    for _ in range(count):
        stats.record("GET", "/a", ms, 100)


def test_a_run_s_marks_are_its_shares_marks_added_up_stage_by_stage():
    """Share A marks both boundaries; share B stops before the second (its later requests are its first stage's
    last) and marks its first twice (a change of target heard late: the first mark counts)."""
    spans = StagedProfile([Stage(10, 4), Stage(10, 4), Stage(10, 4)]).spans()
    a, b = StatsRegistry(start_time=0.0), StatsRegistry(start_time=0.0)
    _record(a, 10)
    _record(b, 3)
    a.mark_stage(1, 10.0)
    b.mark_stage(1, 10.1)
    _record(a, 20, 50.0)
    _record(b, 4, 50.0)
    b.mark_stage(1, 10.6)
    _record(b, 2, 50.0)
    a.mark_stage(2, 20.0)
    _record(a, 40, 90.0)
    merged = StatsRegistry(start_time=0.0)
    for share in (a, b):
        merged.merge(share_from_json(json.loads(json.dumps(share_json(share)))))
    merged.stage_marks = merge_marks([share_from_json(share_json(a)), share_from_json(share_json(b))])
    assert [(mark.index, mark.at) for mark in merged.stage_marks] == [(1, 10.0), (2, 20.0)]
    figures = stage_figures(merged, spans, 30.0)
    assert [stage.total.num_requests for stage in figures] == [13, 26, 40]
    assert [stage.total.percentile(0.5) for stage in figures] == [pytest.approx(ms, rel=0.01) for ms in (10, 50, 90)]
    assert [stage.stats.entries[("GET", "/a")].num_requests for stage in figures] == [13, 26, 40]


def test_a_heartbeat_carries_only_its_recent_marks_and_a_forked_workers_mark_is_added_to_what_it_sent_before():
    stats = StatsRegistry(start_time=0.0)
    stats.mark_stage(0, 100.0)
    stats.mark_stage(1, 130.0)
    assert [mark["index"] for mark in share_json(stats, since=120.0)["stage_marks"]] == [1]
    assert [mark.index for mark in share_from_json(share_json(stats)).stage_marks] == [0, 1]

    worker, parent = WorkerStats(start_time=0.0), StatsRegistry(start_time=0.0)
    _record(worker, 5)
    sent = worker.drain()
    parent.stage_marks += [mark_after(parent, mark) for mark in sent.stage_marks]
    parent.merge(sent)
    _record(worker, 2)
    worker.mark_stage(1, 10.0)  # the worker's registry holds only what it has not sent: 2
    _record(worker, 7)
    sent = worker.drain()
    assert worker.stage_marks == [] and [mark.total.num_requests for mark in sent.stage_marks] == [2]
    parent.stage_marks += [mark_after(parent, mark) for mark in sent.stage_marks]
    parent.merge(sent)
    figures = stage_figures(parent, StagedProfile([Stage(10, 4), Stage(10, 4)]).spans(), 20.0)
    assert [stage.total.num_requests for stage in figures] == [7, 7]


def test_the_coordinator_keeps_every_mark_a_shard_sent_once_each_in_the_order_taken():
    from perf.distributed.coordinator import MarksRead

    shard = StatsRegistry(start_time=0.0)
    shard.mark_stage(0, 100.0)
    second = shard.mark_stage(1, 140.0)
    read = MarksRead()
    assert [mark.index for mark in read.add(0, share_from_json(share_json(shard, since=90.0)).stage_marks)] == [0, 1]
    # 30 s later the heartbeat carries only the second; a later one nothing; the last report all of them again.
    assert [(mark.index, mark.at) for mark in read.add(0, [second])] == [(0, 100.0), (1, 140.0)]
    assert [(mark.index, mark.at) for mark in read.add(0, [])] == [(0, 100.0), (1, 140.0)]
    assert len(read.add(0, share_from_json(share_json(shard)).stage_marks)) == 2
    assert read.add(1, []) == []  # another shard's are its own


# --- bad input: one line, exit 2 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "message"), [
    ({"stages": "30:50"}, "--stages stage 1 ('30:50'): the duration needs a unit, like 30s, 2m or 1h30m"),
    ({"stages": "30s:-5"}, "--stages stage 1 ('30s:-5'): the target must be a whole number of users, 0 or more"),
    ({"stages": " "}, "--stages needs at least one stage, like --stages 30s:50,2m:50,30s:0"),
    ({"stages": "720h:5,1s:5"}, "--stages lasts 2,592,001 s in all, longer than the longest run, 30 days"),
    ({"stages": "1m:100001"}, "the target 100001 is more than the most allowed, 100,000"),
    ({"stages": "30s:5", "users": 5}, "--stages sets the users over time: drop -u/--users"),
    ({"stages": "30s:5", "spawn_rate": 2.0}, "--stages sets the users over time: drop -r/--spawn-rate"),
    ({"stages": "30s:5", "rate": 2.0}, "--stages sets users over time (the closed model): drop --rate"),
    ({"rate_stages": "30s:5", "rate": 2.0}, "--rate-stages sets the arrival rate over time: drop --rate"),
    ({"rate_stages": "30s:5", "processes": "2"}, "--processes and --rate-stages cannot be combined"),
    ({"stages": "30s:5", "shape": "step:add=1,every=1s,to=2"}, "--stages and --shape cannot be combined"),
    ({"shape": "zigzag"}, "unknown --shape 'zigzag'; the shapes are: soak, spike, step"),
    ({"shape": "step:add=10,every=30"}, "--shape step: every=30: the duration needs a unit, like 30s, 2m or 1h30m"),
    ({"shape": "step:add=10,every=30s"}, "--shape step needs to=…"),
    ({"shape": "step:add=10,every=30s,to=100,hold=1m"}, "--shape step has no parameter 'hold'"),
    ({"shape": "spike:base=50,peak=10"}, "--shape spike: peak (10) must be above base (50)"),
])
def test_bad_profile_options_are_one_line_naming_the_fix(options, message):
    with pytest.raises(UsageError) as raised:
        check_request(RunRequest(save=False, audit=False, **options))
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_the_command_says_a_bad_stage_in_one_line_and_exits_2(live_env):
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), "run_perf", "--stages", "30s:50", "-u", "5",
                             "--no-save", "--no-audit"], cwd=ROOT, env=live_env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        "CommandError: --stages sets the users over time: drop -u/--users"]


def test_a_profile_sizes_the_run_and_sets_its_length():
    setup = check_request(RunRequest(stages="2s:10,3s:40,1s:0", save=False, audit=False))
    assert (setup.plan.users, setup.plan.duration) == (40, 6.0)
    assert setup.profile is not None and [span["target"] for span in setup.profile["spans"]] == [10, 40, 0]
    cut = check_request(RunRequest(stages="2s:10,3s:40,1s:0", duration="4s", save=False, audit=False))
    assert cut.plan.duration == 4.0


# --- real runs ----------------------------------------------------------------------------------------------------


class TaskRecorder(User):
    """Two requests a task, with a pause between: a ramp-down that cut a task short would show as a start
    without an end."""

    wait_time = constant(0.05)
    events: ClassVar[list[tuple[int, str]]] = []

    @task
    def two_checks(self) -> None:
        TaskRecorder.events.append((id(self), "start"))
        self.client.get("/healthcheck")
        gevent.sleep(0.15)
        self.client.get("/healthcheck")
        TaskRecorder.events.append((id(self), "end"))


def _observe(runner, every: float, seen: list[tuple[float, int]]) -> gevent.Greenlet:
    def watch() -> None:
        start = time.time()
        while True:
            gevent.sleep(every)
            seen.append((time.time() - start, runner.user_count))
    return gevent.spawn(watch)


@pytest.mark.once  # by hand: the engine in this process against /healthcheck, which does no database work
@pytest.mark.slow
def test_users_follow_the_stages_and_a_ramp_down_cuts_no_task(live_server_process):
    TaskRecorder.events.clear()
    profile = StagedProfile([Stage(3, 8), Stage(2, 8), Stage(3, 0)])
    stats = StatsRegistry()
    plan = RunPlan(users=8, spawn_rate=1, duration=profile.duration, stop_timeout=2.0, tick_interval=0.5,
                   profile=profile)
    ticks: list[Tick] = []
    runner = LoadRunner([TaskRecorder], plan, stats,
                        make_session=lambda registry: HttpSession(live_server_process.url, registry.record),
                        hooks=RunHooks(on_tick=ticks.append))
    seen: list[tuple[float, int]] = []
    watcher = _observe(runner, 0.25, seen)
    try:
        assert runner.run() == "completed"
    finally:
        watcher.kill()
    for elapsed, users in seen:
        if elapsed < profile.duration - 0.3:
            # within one user of the target a second around this moment (the ramp is 8 users in 3 s)
            lows = [whole_users(profile.target(max(0.0, t)) or 0) for t in (elapsed - 0.5, elapsed + 0.3)]
            assert min(lows) - 1 <= users <= max(lows) + 1, (elapsed, users, seen)
    assert max(users for _, users in seen) == 8
    assert stats.total.num_failures == 0 and stats.total.num_requests > 50
    starts = [user for user, event in TaskRecorder.events if event == "start"]
    ends = [user for user, event in TaskRecorder.events if event == "end"]
    assert sorted(starts) == sorted(ends), "a user stopped in the middle of a task"
    assert [tick.target for tick in ticks[:-1] if tick.target is not None]
    assert [mark.index for mark in stats.stage_marks] == [0, 1, 2]
    figures = stage_figures(stats, profile.spans(), 8.0)
    assert [stage.total.num_requests > 0 for stage in figures] == [True, True, True]
    assert figures[1].requests_per_second > figures[0].requests_per_second


@pytest.mark.once  # by hand: the engine in this process against /healthcheck, which does no database work
@pytest.mark.slow
def test_rate_stages_arrivals_are_within_five_percent_of_the_target_in_every_stage(live_server_process):
    class Check(User):
        @task
        def healthcheck(self) -> None:
            self.client.get("/healthcheck")

    profile = StagedProfile([Stage(3, 60), Stage(3, 60), Stage(3, 0)], "rate")
    stats = StatsRegistry()
    dispatched: list[float] = []
    runner = OpenModelRunner([Check], RunPlan(users=20, spawn_rate=200, duration=profile.duration, profile=profile,
                                              tick_interval=1.0), stats,
                             make_session=lambda registry: HttpSession(live_server_process.url, registry.record))
    dispatch = runner._dispatch

    def recording(intended: float) -> None:
        dispatched.append(time.perf_counter() - (runner._schedule_start or 0.0))
        dispatch(intended)

    runner._dispatch = recording  # type: ignore[method-assign]
    assert runner.run() == "completed"
    assert runner.dropped_iterations == 0
    for span, expected in zip(profile.spans(), (90, 180, 90), strict=True):
        arrived = sum(1 for at in dispatched if span.start <= at < span.end)
        assert abs(arrived - expected) <= 0.05 * expected, (span, arrived)
    figures = stage_figures(stats, profile.spans(), profile.duration)
    assert [abs(stage.total.num_requests - expected) <= 0.05 * expected
            for stage, expected in zip(figures, (90, 180, 90), strict=True)] == [True, True, True]


def _users_every_second(run: PerfRun) -> tuple[float, list[tuple[float, float]]]:
    """The run's clock (when its profile began: a sample's time less its elapsed seconds) and its stats history, a
    point a second: (seconds since then, users running)."""
    samples = load_registry(run).samples
    assert samples, "no sample stored"
    origin = samples[0].timestamp - samples[0].elapsed
    return origin, [(point.timestamp - origin, point.users) for sample in samples for point in sample.history]


def _targets_over(profile: Profile, start: float, end: float) -> list[int]:
    """The users the profile asked for from ``start`` to ``end`` (every 50 ms), rounded as every runner rounds."""
    steps = max(1, round((end - start) / 0.05))
    return [whole_users(profile.target(max(0.0, start + (end - start) * i / steps)) or 0) for i in range(steps + 1)]


def _stored_users_follow_the_target(run: PerfRun, shares: int, lag: float) -> None:
    """Every second's users within one user per share of what the profile asked for over the last ``lag`` seconds
    (how late the users reach the history: the profile's step, and the shares' reports)."""
    profile = profile_from_json(run.profile)
    assert profile.duration is not None
    _, points = _users_every_second(run)
    during = [(elapsed, users) for elapsed, users in points if elapsed < profile.duration]
    assert len(during) >= profile.duration - 2, points
    for elapsed, users in during:
        asked = _targets_over(profile, elapsed - lag, elapsed)
        assert min(asked) - shares <= users <= max(asked) + shares, (elapsed, users, asked, points)
    assert max(users for _, users in during) == profile.peak


def _profile_args(url: str, label: str, *extra: str, stages: str = "3s:6,3s:6,2s:0") -> list[str]:
    return ["--stages", stages, "--wait", "0.02,0.05", "--scenario", "EventBrowser", "--no-audit",
            "--host", url, "--label", label, *extra]


# Shares: ramps long enough that a runner ignoring them is caught (6 users over 6 s, one a second, read every
# second), and stages whose user-seconds differ (18, 12, 24), so no stage's count is its neighbour's by chance.
SHARED_STAGES = "6s:6,2s:6,6s:2"
# How close to a stage boundary a request may end and be counted on either side of it: the runner marks its
# registry when its timer wakes, the request log times a request from when it was sent.
BOUNDARY_SLACK = 0.05


@dataclass(frozen=True)
class SharedRun:
    """A staged run_perf run split into two shares, done: its label and its request log."""

    label: str
    request_log: Path


def _run_split(env: dict[str, str], url: str, folder: Path, name: str, *split: str) -> SharedRun:
    label, request_log = unique(name), folder / "requests.log"
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), "run_perf", *split,
                             *_profile_args(url, label, "--request-log", str(request_log), stages=SHARED_STAGES)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return SharedRun(label, request_log)


def _ended_at(line: str, origin: float) -> float:
    """When a request of the request log ended, on the run's clock (sent_at plus its time)."""
    fields = line.split("\t")
    return float(fields[1]) + float(fields[6]) / 1000.0 - origin


def _logged_per_stage(ends: Sequence[float], spans: Sequence[StageSpan]) -> tuple[list[int], list[int]]:
    """Each stage's requests by when they ended (the last stage's include the end's grace), and how many of those
    and of its neighbours' ended within BOUNDARY_SLACK of its boundaries."""
    counts, near = [0] * len(spans), [0] * len(spans)
    for end in ends:
        counts[max(span.index for span in spans if span.index == 0 or span.start <= end)] += 1
        for span in spans[1:]:
            if abs(end - span.start) < BOUNDARY_SLACK:
                near[span.index - 1] += 1
                near[span.index] += 1
    return counts, near


def _each_stage_counts_the_requests_that_ended_in_it(shared: SharedRun) -> None:
    """The stored stages' counts are the request log's split by when each request ended, to the requests that ended
    at a boundary: a mark taken on reports that arrive late (up to a second from a worker, three from a shard)
    moves hundreds."""
    run = PerfRun.objects.get(label=shared.label)
    assert run.status == PerfRun.Status.COMPLETED and run.total_failures == 0
    origin, _ = _users_every_second(run)
    lines = shared.request_log.read_text().splitlines()
    assert len(lines) == run.total_requests
    spans = profile_from_json(run.profile).spans()
    logged, near = _logged_per_stage([_ended_at(line, origin) for line in lines], spans)
    stored = [stage["requests"] for stage in run.stages]
    assert [stage["index"] for stage in run.stages] == [0, 1, 2] and sum(stored) == len(lines)
    assert all(abs(mine - theirs) <= slack for mine, theirs, slack in zip(stored, logged, near, strict=True)), (
        stored, logged, near)
    assert sorted(logged) == [logged[1], logged[0], logged[2]], logged  # 12 < 18 < 24 user-seconds


@pytest.mark.slow
def test_run_perf_stages_store_the_profile_the_targets_and_each_stage(seeded, live_server_process, orm, tmp_path):
    label = unique("stages")
    summary = tmp_path / "run.json"
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), "run_perf",
                             *_profile_args(live_server_process.url, label, "--json", str(summary),
                                            "--threshold", "p95<10s")],
                            cwd=ROOT, env=seeded, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Following --stages 3s:6,3s:6,2s:0 (3 stages), up to 6 users" in result.stdout
    assert "Per stage of the load profile" in result.stdout
    run = PerfRun.objects.get(label=label)
    assert run.profile["kind"] == "users" and [s["target"] for s in run.profile["spans"]] == [6, 6, 0]
    assert [stage["index"] for stage in run.stages] == [0, 1, 2]
    assert all(stage["requests"] > 0 and stage["thresholds"][0]["ok"] for stage in run.stages)
    _stored_users_follow_the_target(run, shares=1, lag=0.5)
    meta = json.loads(summary.read_text())["meta"]
    assert meta["profile"]["text"] == "3s:6,3s:6,2s:0" and len(meta["stages"]) == 3


@pytest.fixture(scope="module")
def processes_run(seeded, live_server_process, tmp_path_factory) -> SharedRun:
    return _run_split(seeded, live_server_process.url, tmp_path_factory.mktemp("processes"), "stages-processes",
                      "--processes", "2")


@pytest.mark.slow
def test_two_processes_each_follow_their_part_of_the_stages(processes_run, orm):
    run = PerfRun.objects.get(label=processes_run.label)
    assert run.status == PerfRun.Status.COMPLETED and run.total_failures == 0
    # A worker's users reach the parent with its next report, a second apart.
    _stored_users_follow_the_target(run, shares=2, lag=1.5)


@pytest.mark.slow
def test_two_processes_count_each_request_in_the_stage_it_ended_in(processes_run, orm):
    _each_stage_counts_the_requests_that_ended_in_it(processes_run)


@pytest.mark.slow
def test_a_shape_of_the_project_drives_a_run(seeded, live_server_process, orm, tmp_path):
    label = unique("shape")
    env = {**seeded, **settings_module(tmp_path, PERF_SHAPES={"pulse": "tests.perf.shapes_pack.Pulse"})}
    env["PYTHONPATH"] = f"{tmp_path}:{ROOT}"
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), "run_perf", "--shape",
                             "pulse:high=4,period=2s,length=6s", "--wait", "0.02,0.05", "--scenario", "EventBrowser",
                             "--no-audit", "--host", live_server_process.url, "--label", label],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = PerfRun.objects.get(label=label)
    assert run.profile["shape"] == "pulse" and run.profile["spans"] == []
    targets = {sample.target for sample in StatsSample.objects.filter(run=run, target__isnull=False)}
    assert targets <= {0.0, 4.0} and 4.0 in targets


@pytest.fixture(scope="module")
def celery_run(celery_env, worker_pool: WorkerPool, live_server_process, tmp_path_factory) -> SharedRun:  # noqa: F811
    ready = worker_pool.ensure(2)
    try:
        return _run_split(celery_env, live_server_process.url, tmp_path_factory.mktemp("celery"), "stages-celery",
                          "--distributed", "celery", "--shards", "2")
    except AssertionError as failed:
        raise AssertionError(f"{failed}\n{worker_logs(ready)}") from None


@pytest.mark.slow
def test_celery_shards_each_follow_their_part_of_the_stages(celery_run, orm):
    run = PerfRun.objects.get(label=celery_run.label)
    assert run.status == PerfRun.Status.COMPLETED and run.total_failures == 0
    # A shard's users reach the coordinator with its heartbeat (every second) and its next read (half a second).
    _stored_users_follow_the_target(run, shares=2, lag=2.0)


@pytest.mark.slow
def test_celery_shards_count_each_request_in_the_stage_it_ended_in(celery_run, orm):
    _each_stage_counts_the_requests_that_ended_in_it(celery_run)


def test_the_settings_check_names_a_shape_that_is_no_shape(settings):
    from perf.checks import check_settings

    settings.PERF_SHAPES = {"bad": "tests.perf.shapes_pack.ParameterKind"}
    [error] = check_settings()
    assert error.id == "perf.E017" and "is not a subclass of perf.load.shapes.Shape" in error.msg




def test_the_description_carries_the_profile_and_the_stages_through_json():
    from perf.reports.description import DescriptionError, ProfileResult, RunDescription

    layout = profile_json(StagedProfile([Stage(2, 10), Stage(1, 0)]), "stages", "2s:10,1s:0")
    described = RunDescription(profile=ProfileResult.from_json(layout), stages=({"index": 0, "requests": 5},))
    back = RunDescription.from_json(json.loads(json.dumps(described.as_json())))
    assert back == described and back.profile is not None and back.profile.as_json() == layout
    with pytest.raises(DescriptionError, match=r"meta.profile.spans\[0\].end is missing"):
        RunDescription.from_json({"profile": {"spans": [{"index": 0, "start": 0, "start_target": 0, "target": 1}]}})
