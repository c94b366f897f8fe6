"""Changing a running run's target users from its live page (issue 20, Locust's "Edit"): a POST with CSRF by a
user with the change permission (as Stop); the run's process, its forked workers too, hears it with the stop flag
and from then on runs the new number of users to its end; the change is a stage of the stored profile. A
view-only user changes nothing, and a target over PERF_WEB_MAX_USERS or on a finished run is refused."""

import html
import json
import time
import uuid

import gevent
import pytest
from django.contrib.auth.models import Permission

from perf.load.open_model import OpenModelRunner
from perf.load.profile import Stage, StagedProfile
from perf.load.runner import RunPlan
from perf.load.session import HttpSession
from perf.load.stats import StatsRegistry
from perf.models import PerfRun, StatsSample
from tests.adminclient import AdminClient
from tests.factories import PASSWORD, make_user
from tests.liveserver import start_run_perf
from tests.perf.builders import HealthChecker, poll, stoppable_args, superuser, wait_until_running


@pytest.fixture
def admin(seeded, live_server_process) -> AdminClient:
    return AdminClient(live_server_process.root).login(*superuser())


def latest_users(run: PerfRun) -> int | None:
    sample = StatsSample.objects.filter(run=run).order_by("-elapsed").first()
    return None if sample is None else sample.users


@pytest.mark.slow
@pytest.mark.parametrize("extra", [(), ("--processes", "2")], ids=["local", "processes"])
def test_a_running_run_follows_a_new_target_from_the_live_page(seeded, live_server_process, orm, admin, extra,
                                                                tmp_path):
    label = f"retarget-{uuid.uuid4().hex[:8]}"
    summary = tmp_path / "run.json"
    process = start_run_perf(seeded, *stoppable_args(live_server_process.url, label, *extra, "--json", str(summary)))
    try:
        run = wait_until_running(label)
        poll(lambda: latest_users(run) == 4 or None, "the run never ran its 4 users", timeout=30)
        page = admin.get(f"/admin/perf/perfrun/{run.pk}/change/")
        assert f"/admin/perf/perfrun/{run.pk}/target/" in page.text  # the form beside Stop
        asked = time.time()
        response = admin.post(f"/admin/perf/perfrun/{run.pk}/target/", data={"target": "2"})
        assert response.status_code == 200 and "2 users asked for" in response.text
        assert "Target changed to 2 users, asked by" in response.text
        poll(lambda: latest_users(run) == 2 or None, "the stored users never followed the new target", timeout=8)
        assert time.time() - asked < 8
        run.refresh_from_db()
        spans = run.profile["spans"]
        assert spans[-1]["target"] == spans[-1]["start_target"] == 2
        assert 0 < spans[-1]["start"] <= asked - run.started_at.timestamp() + 1
        assert spans[0]["target"] == 4 and len(spans) == 2
        admin.post(f"/admin/perf/perfrun/{run.pk}/stop/")
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    run.refresh_from_db()
    assert run.status == PerfRun.Status.ABORTED, stdout[-2000:] + stderr[-2000:]
    assert [stage["target"] for stage in run.stages] == [4, 2]  # the change is a stage of its own, with its figures
    assert run.stages[1]["requests"] > 0 and run.stages[1]["failures"] == 0
    # No user stopped by the change left a failed request behind.
    assert run.total_failures == 0
    # The run's own --json describes the profile as stored, the change included.
    meta = json.loads(summary.read_text())["meta"]
    assert [span["target"] for span in meta["profile"]["spans"]] == [4, 2] == [s["target"] for s in meta["stages"]]


def test_only_users_who_may_change_runs_can_change_a_target(seeded, live_server_process, orm):
    run = PerfRun.objects.create(label=f"guarded-{uuid.uuid4().hex[:8]}", host="http://127.0.0.1:1/api",
                                 status=PerfRun.Status.RUNNING, users=4)
    viewer = make_user(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_perfrun", content_type__app_label="perf"))
    watcher = AdminClient(live_server_process.root).login(viewer.email, PASSWORD)
    try:
        page = watcher.get(f"/admin/perf/perfrun/{run.pk}/change/")
        assert page.status_code == 200 and "/target/" not in page.text  # no form for a watcher
        assert watcher.post(f"/admin/perf/perfrun/{run.pk}/target/", data={"target": "2"}).status_code == 403
        run.refresh_from_db()
        assert run.target_change is None and run.profile is None  # nothing stored, the run unchanged

        admin = AdminClient(live_server_process.root).login(*superuser())
        assert admin.get(f"/admin/perf/perfrun/{run.pk}/target/").status_code == 405  # a GET changes nothing
        for bad, said in (("1000001", "Target users must be from 0 to"), ("-1", "Target users must be from 0 to"),
                          ("many", "Target users must be a whole number")):
            refused = admin.post(f"/admin/perf/perfrun/{run.pk}/target/", data={"target": bad})
            assert refused.status_code == 200 and said in refused.text
            run.refresh_from_db()
            assert run.target_change is None
        assert admin.post(f"/admin/perf/perfrun/{run.pk}/target/", data={"target": "3"}).status_code == 200
        run.refresh_from_db()
        assert run.target_change["target"] == 3 and run.target_change["by"] == admin.username
    finally:
        PerfRun.objects.filter(pk=run.pk).update(status=PerfRun.Status.ABORTED)
    refused = admin.post(f"/admin/perf/perfrun/{run.pk}/target/", data={"target": "1"})
    assert "is not running (aborted)" in refused.text
    run.refresh_from_db()
    assert run.target_change["target"] == 3


def test_a_capacity_search_s_target_cannot_be_changed_by_hand(seeded, live_server_process, orm, admin):
    """The search sets its own load step by step: no form on its page, and a POST is refused with nothing stored."""
    run = PerfRun.objects.create(label=f"capacity-{uuid.uuid4().hex[:8]}", host="http://127.0.0.1:1/api",
                                 status=PerfRun.Status.RUNNING, users=1000, kind=PerfRun.Kind.CAPACITY)
    try:
        assert "/target/" not in admin.get(f"/admin/perf/perfrun/{run.pk}/change/").text
        refused = admin.post(f"/admin/perf/perfrun/{run.pk}/target/", data={"target": "3"})
        assert refused.status_code == 200 and "is a capacity search: it sets its own load" in refused.text
        run.refresh_from_db()
        assert run.target_change is None
    finally:
        PerfRun.objects.filter(pk=run.pk).update(status=PerfRun.Status.ABORTED)


def latest_sample(run: PerfRun) -> StatsSample | None:
    return StatsSample.objects.filter(run=run).order_by("-elapsed").first()


def measured_rate(run: PerfRun, seconds: float) -> float:
    """Requests a second as stored over the next ``seconds``: the stored totals' growth between two samples."""
    first = poll(lambda: latest_sample(run), "no sample stored")
    time.sleep(seconds)
    last = latest_sample(run)
    assert last is not None and last.elapsed > first.elapsed
    return (last.total_requests - first.total_requests) / (last.elapsed - first.elapsed)


@pytest.mark.slow
def test_an_open_model_run_follows_a_new_rate_from_the_live_page(seeded, live_server_process, orm, admin, tmp_path):
    label = f"rerate-{uuid.uuid4().hex[:8]}"
    process = start_run_perf(seeded, "--rate", "10", "--users", "4", "--spawn-rate", "20", "--duration", "3m",
                             "--scenario", "EventBrowser", "--no-audit", "--host", live_server_process.url,
                             "--label", label, "--json", str(tmp_path / "run.json"))
    try:
        run = wait_until_running(label)
        poll(lambda: (latest_sample(run) or StatsSample(elapsed=0)).elapsed >= 2 or None, "the run never ran 2 s")
        before = measured_rate(run, 4)
        assert before == pytest.approx(10, rel=0.15)
        page = admin.get(f"/admin/perf/perfrun/{run.pk}/change/")
        assert f"/admin/perf/perfrun/{run.pk}/target/" in page.text and "iterations a second" in page.text
        asked = time.time()
        response = admin.post(f"/admin/perf/perfrun/{run.pk}/target/", data={"target": "5"})
        assert response.status_code == 200 and "5 iterations a second asked for" in response.text
        assert "Target changed to 5 iterations a second, asked by" in response.text
        # The stored rate follows within a few seconds (a second's sample at 5/s holds 4 to 6 requests)...
        poll(lambda: (sample := latest_sample(run)) is not None and sample.timestamp.timestamp() > asked + 1
             and sample.requests_per_second <= 7 or None, "the stored rate never followed the new one", timeout=8)
        assert time.time() - asked < 8
        # ... and holds it, within 10 %, over the seconds after.
        assert measured_rate(run, 6) == pytest.approx(5, rel=0.1)
        run.refresh_from_db()
        assert run.profile["kind"] == "rate"
        spans = run.profile["spans"]
        assert [(span["start_target"], span["target"]) for span in spans] == [(10, 10), (5, 5)]
        assert 0 < spans[-1]["start"] <= asked - run.started_at.timestamp() + 1
        admin.post(f"/admin/perf/perfrun/{run.pk}/stop/")
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    run.refresh_from_db()
    assert run.status == PerfRun.Status.ABORTED, stdout[-2000:] + stderr[-2000:]
    assert [stage["target"] for stage in run.stages] == [10, 5]
    assert run.stages[1]["requests"] > 0 and run.stages[1]["failures"] == 0
    assert run.total_failures == 0
    assert run.open_model["dropped_iterations"] == 0, run.open_model


def test_an_open_model_run_s_new_rate_is_checked(seeded, live_server_process, orm, admin):
    run = PerfRun.objects.create(label=f"rated-{uuid.uuid4().hex[:8]}", host="http://127.0.0.1:1/api",
                                 status=PerfRun.Status.RUNNING, users=4, options={"rate": 10.0})
    try:
        page = admin.get(f"/admin/perf/perfrun/{run.pk}/change/")
        assert "Target rate, iterations a second" in page.text and 'step="any"' in page.text
        for bad, said in (("100001", "Target rate must be at most 100,000 a second, got 100001"),
                          ("0", "Target rate must be a finite number greater than 0, got 0"),
                          ("nan", "Target rate must be a finite number greater than 0, got nan"),
                          ("many", "Target rate must be a number of iterations a second, above 0 and at most "
                                   "100,000, not 'many'.")):
            refused = admin.post(f"/admin/perf/perfrun/{run.pk}/target/", data={"target": bad})
            assert refused.status_code == 200 and said in html.unescape(refused.text)
            assert "Traceback" not in refused.text
            run.refresh_from_db()
            assert run.target_change is None
        accepted = admin.post(f"/admin/perf/perfrun/{run.pk}/target/", data={"target": "2.5"})
        assert "2.5 iterations a second asked for" in accepted.text
        run.refresh_from_db()
        assert run.target_change["target"] == 2.5 and run.target_change["by"] == admin.username
    finally:
        PerfRun.objects.filter(pk=run.pk).update(status=PerfRun.Status.ABORTED)


@pytest.mark.once  # by hand: the engine in this process against /healthcheck, which does no database work
def test_a_rate_profile_follows_a_new_rate_from_the_moment_asked(live_server_process):
    """--rate-stages (the local open model): 40/s planned for 4 s, changed to 10/s one second in. The schedule to
    come follows the held rate (about 40 + 3 × 10 arrivals, not 160), the change is a rate stage of its own, and
    every arrival still finds a user (a pool of 10: room to spare on a busy machine)."""
    plan = RunPlan(users=10, spawn_rate=100, duration=4.001, tick_interval=0.5,
                   profile=StagedProfile([Stage(0.001, 40), Stage(4.0, 40)], "rate"))
    stats = StatsRegistry()
    runner = OpenModelRunner([HealthChecker], plan, stats,
                             lambda registry: HttpSession(live_server_process.url, registry.record))
    changed: list = []

    def change_one_second_in() -> None:
        while runner.profile_origin is None:
            gevent.sleep(0.01)
        gevent.sleep(max(0.0, runner.profile_origin + 1.0 - time.time()))
        changed.append(runner.change_target(10, time.time()))

    gevent.spawn(change_one_second_in)
    assert runner.run() == "completed"
    assert changed, "the change was never made"
    spans = changed[0].spans()
    assert changed[0].kind == "rate" and [(span.start_target, span.target) for span in spans][-1] == (10, 10)
    assert spans[-1].start == pytest.approx(1.0, abs=0.1) and spans[-1].end == pytest.approx(4.001)
    assert runner.scheduled_iterations == pytest.approx(40 + 30, abs=4)
    assert runner.dropped_iterations == 0 and stats.total.num_failures == 0


@pytest.mark.once  # by hand: the engine in this process against /healthcheck, which does no database work
def test_a_new_rate_asked_while_the_pool_starts_holds_from_the_schedule_s_start(live_server_process):
    """A plain --rate 40 run whose pool takes about a second to start, changed to 10/s at once: the whole schedule
    runs at 10/s (about 20 arrivals in 2 s, not 80), as one rate stage."""
    plan = RunPlan(users=4, spawn_rate=4, duration=2.0, tick_interval=0.5)
    runner = OpenModelRunner([HealthChecker], plan, StatsRegistry(),
                             lambda registry: HttpSession(live_server_process.url, registry.record), rate=40)
    changed: list = []
    gevent.spawn_later(0.2, lambda: changed.append(runner.change_target(10, time.time())))
    assert runner.run() == "completed"
    assert [(span.start, span.start_target, span.target) for span in changed[0].spans()] == [(0.0, 10, 10)]
    assert runner.scheduled_iterations == pytest.approx(20, abs=2) and runner.dropped_iterations == 0
