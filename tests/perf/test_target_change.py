"""Changing a running run's target users from its live page (issue 20, Locust's "Edit"): a POST with CSRF by a
user with the change permission (as Stop); the run's process, its forked workers too, hears it with the stop flag
and from then on runs the new number of users to its end; the change is a stage of the stored profile. A
view-only user changes nothing, and a target over PERF_WEB_MAX_USERS or on a finished run is refused."""

import json
import time
import uuid

import pytest
from django.contrib.auth.models import Permission

from perf.models import PerfRun, StatsSample
from tests.adminclient import AdminClient
from tests.factories import PASSWORD, make_user
from tests.liveserver import start_run_perf
from tests.perf.builders import poll, stoppable_args, superuser, wait_until_running


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
