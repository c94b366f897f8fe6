"""A running run with a load profile, on its live page over real HTTP: the stage under way, what the profile asks
for now and the time left in the stage, computed from the stored spans and the run's elapsed time; the users chart
shows the target beside the actual users, and every time chart marks where a stage began. A run without a profile,
or with one that does not hold what the models describe, shows none of it and still shows.

Runs are stored as run_perf stores them (perf.store.persist). The samples' targets are written to
``StatsSample.target`` here, as the engine writes them with each sample (issue 20's engine side).
"""

import dataclasses
import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from perf.load.profile import StagedProfile
from perf.load.stats import StatsRegistry
from perf.models import PerfRun, StatsSample
from perf.options import parse_stages
from perf.reports.description import stored_profile
from perf.reports.profile_view import ProfileView
from perf.store.persist import finish_run, save_progress, start_run
from tests.adminclient import AdminClient
from tests.factories import PASSWORD, make_user, unique

CHANGELIST = "/admin/perf/perfrun/"
STAGES = "10s:4,20s:4,10s:0"  # 0 → 4 users over 10 s, hold 20 s, back to 0 over 10 s


def text(markup: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup)).replace("&#x27;", "'").strip()


def profile_json(stages: str) -> dict:
    """``PerfRun.profile`` as the models' comment lays it out."""
    profile = StagedProfile(parse_stages(stages))
    return {"kind": "users", "source": "stages", "text": stages, "shape": None, "params": {},
            "spans": [dataclasses.asdict(span) for span in profile.spans()]}


def staged_run(label: str, elapsed: float, profile: object, stages: str = STAGES) -> PerfRun:
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


@pytest.fixture
def admin(orm, live_server_process) -> AdminClient:
    email = f"{unique('profile-admin')}@example.com"
    make_user(username=email, email=email, is_staff=True, is_superuser=True)
    return AdminClient(live_server_process.root).login(email, PASSWORD)


def live(admin: AdminClient, run: PerfRun) -> dict:
    response = admin.get(f"{CHANGELIST}{run.pk}/live/")
    assert response.status_code == 200, response.text[-2000:]
    return response.json()["sections"]


def test_the_live_page_shows_the_stage_under_way_its_target_and_the_time_left(admin: AdminClient) -> None:
    holding = staged_run(unique("staged-hold"), 15.0, profile_json(STAGES))
    shown = text(live(admin, holding)["figures"])
    assert "Stage 2 of 3 holding 4 users" in shown, shown
    assert "Target now 4 users" in shown and "Left in stage 15s of 20s" in shown, shown
    # The page as first loaded says the same as its live updates.
    assert "Stage 2 of 3 holding 4 users" in text(admin.get(f"{CHANGELIST}{holding.pk}/change/").text)

    ramping = staged_run(unique("staged-ramp"), 6.0, profile_json(STAGES))
    shown = text(live(admin, ramping)["figures"])
    assert "Stage 1 of 3 ramping 0 → 4 users" in shown, shown
    assert "Target now 2 users" in shown and "Left in stage 4.0s of 10s" in shown, shown

    # Once the run has ended there is no stage under way: the page says nothing of one.
    finish_run(holding, StatsRegistry(), "completed", duration=40.0)
    assert "Stage" not in text(live(admin, holding)["figures"])


def test_the_charts_show_the_target_beside_the_users_and_mark_where_stages_began(admin: AdminClient) -> None:
    run = staged_run(unique("staged-charts"), 16.0, profile_json(STAGES))
    charts = live(admin, run)["charts"]
    svgs = re.findall(r"<svg.*?</svg>", charts, re.DOTALL)
    users = next(svg for svg in svgs if "<title>Users</title>" in svg)
    target = re.search(r'data-series="target users"[^>]*>(.*?)</g>', users, re.DOTALL)
    assert target is not None and 'stroke-dasharray="6 4"' in target.group(1)
    # Every time chart (three for the run, two for the chosen endpoint) marks stage 2's start at 10 s; stage 3
    # starts at 30 s, past what the charts show so far.
    assert len(svgs) >= 5
    time_charts = [svg for svg in svgs if "perf-chart-line" in svg]
    assert len(time_charts) == 5
    for svg in time_charts:
        assert '<g class="stage-mark" data-stage="2"><title>stage 2 starts at 10s</title>' in svg, svg[:300]
        assert 'data-stage="3"' not in svg and "stage starts" in svg


def test_a_run_without_a_usable_profile_shows_no_stage_and_still_shows(admin: AdminClient) -> None:
    plain = staged_run(unique("unstaged"), 15.0, None)
    broken = staged_run(unique("broken-profile"), 15.0, {"kind": "users", "spans": [{"index": 0, "start": "soon"}]})
    for run in (plain, broken):
        sections = live(admin, run)
        assert "Stage" not in text(sections["figures"]) and "Elapsed" in text(sections["figures"])
        assert "stage-mark" not in sections["charts"] and "target users" not in sections["charts"]
        assert admin.get(f"{CHANGELIST}{run.pk}/change/").status_code == 200


def test_the_stage_at_each_moment_follows_the_stored_spans() -> None:
    view = ProfileView.of(stored_profile(profile_json(STAGES)), [])
    assert view is not None and view.boundaries == (10.0, 30.0)
    assert [(now.span.index, now.target, now.left) for now in map(view.now, (0.0, 5.0, 10.0, 35.0))] == [
        (0, 0.0, 10.0), (0, 2.0, 5.0), (1, 4.0, 20.0), (2, 2.0, 5.0)]
    assert view.now(40.0) is None and view.now(-1.0) is None
    # A stored profile that does not hold the models' layout is read as none (RunDescription.from_run).
    for broken in (None, [], {"kind": "users", "spans": "10s:4"}, {"kind": "speed", "spans": []},
                   {"kind": "users", "spans": [{"index": 0, "start": 0, "end": 5, "start_target": 0, "target": True}]}):
        assert ProfileView.of(stored_profile(broken), []) is None, broken


def test_a_rate_target_goes_beside_the_iterations_and_marks_only_where_the_chart_has_reached() -> None:
    from types import SimpleNamespace

    from perf.reports.charts import TargetLine, timeline_charts

    samples = [SimpleNamespace(elapsed=float(at), users=3, requests_per_second=2.0 * at, failures_per_second=0.0,
                               p50=5.0, p95=9.0, p99=12.0) for at in range(2, 22, 2)]
    target = TargetLine("rate", tuple((sample.elapsed, 2.0 * sample.elapsed) for sample in samples))
    throughput, latency, users, iterations = timeline_charts(samples, target, (10.0, 20.0, 30.0))
    assert 'data-series="target iterations/s"' in iterations and "target" not in throughput + users
    for svg in (throughput, latency, users, iterations):
        assert re.findall(r'data-stage="(\d+)"', svg) == ["2", "3"]  # stage 4 begins past the last sample
