"""A running run with a load profile, on its live page over real HTTP: the stage under way, what the profile asks
for now and the time left in the stage, computed from the stored spans and the run's elapsed time; the users chart
shows the target beside the actual users, and every time chart marks where a stage began. A run without a profile,
or with one that does not hold what the models describe, shows none of it and still shows.

Runs are stored as run_perf stores them (perf.store.persist). The samples' targets are written to
``StatsSample.target`` here, as the engine writes them with each sample (issue 20's engine side).
"""

import re

import pytest

from perf.load.stats import StatsRegistry
from perf.models import PerfRun
from perf.reports.description import stored_profile
from perf.reports.profile_view import ProfileView
from perf.store.persist import finish_run
from tests.adminclient import AdminClient
from tests.factories import PASSWORD, make_user, unique
from tests.perf.staged import STAGES, running_staged_run, stages_profile

CHANGELIST = "/admin/perf/perfrun/"


def text(markup: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup)).replace("&#x27;", "'").strip()


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
    holding = running_staged_run(unique("staged-hold"), 15.0, stages_profile(STAGES))
    shown = text(live(admin, holding)["figures"])
    assert "Stage 2 of 3 holding 4 users" in shown, shown
    assert "Target now 4 users" in shown and "Left in stage 15s of 20s" in shown, shown
    # The page as first loaded says the same as its live updates.
    assert "Stage 2 of 3 holding 4 users" in text(admin.get(f"{CHANGELIST}{holding.pk}/change/").text)

    ramping = running_staged_run(unique("staged-ramp"), 6.0, stages_profile(STAGES))
    shown = text(live(admin, ramping)["figures"])
    assert "Stage 1 of 3 ramping 0 → 4 users" in shown, shown
    assert "Target now 2 users" in shown and "Left in stage 4.0s of 10s" in shown, shown

    # Once the run has ended there is no stage under way: the page says nothing of one.
    finish_run(holding, StatsRegistry(), "completed", duration=40.0)
    assert "Stage" not in text(live(admin, holding)["figures"])


def test_the_charts_show_the_target_beside_the_users_and_mark_where_stages_began(admin: AdminClient) -> None:
    run = running_staged_run(unique("staged-charts"), 16.0, stages_profile(STAGES))
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
    plain = running_staged_run(unique("unstaged"), 15.0, None)
    broken = running_staged_run(unique("broken-profile"), 15.0,
                                {"kind": "users", "spans": [{"index": 0, "start": "soon"}]})
    for run in (plain, broken):
        sections = live(admin, run)
        assert "Stage" not in text(sections["figures"]) and "Elapsed" in text(sections["figures"])
        assert "stage-mark" not in sections["charts"] and "target users" not in sections["charts"]
        assert admin.get(f"{CHANGELIST}{run.pk}/change/").status_code == 200


def test_the_stage_at_each_moment_follows_the_stored_spans() -> None:
    view = ProfileView.of(stored_profile(stages_profile(STAGES)), [])
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
