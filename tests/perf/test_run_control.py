"""Stopping a run from the admin: a POST with CSRF by a user with the change permission; the run's
process hears it within 2 s (local, ``--processes``), stores the run ``aborted`` with who stopped it,
and keeps everything measured. View-only staff and anonymous users cannot stop anything."""

import uuid

import pytest
from django.contrib.auth.models import Permission

from perf.models import PerfRun
from tests.adminclient import AdminClient
from tests.factories import PASSWORD, make_user
from tests.liveserver import start_run_perf
from tests.perf.builders import stop_and_check, stop_from_admin, stoppable_args, superuser, wait_until_running


@pytest.fixture
def admin(seeded, live_server_process) -> AdminClient:
    return AdminClient(live_server_process.root).login(*superuser())


@pytest.mark.slow
@pytest.mark.parametrize("extra", [(), ("--processes", "2")], ids=["local", "processes"])
def test_stop_from_the_admin_ends_the_run_within_two_seconds_and_keeps_its_data(
    seeded, live_server_process, orm, admin, extra
):
    label = f"stop-{uuid.uuid4().hex[:8]}"
    process = start_run_perf(seeded, *stoppable_args(live_server_process.url, label, *extra))
    try:
        run = stop_and_check(admin, process, label)
    finally:
        process.kill()
        process.wait()
    assert run.actual_duration < 120


def test_only_users_who_may_change_runs_can_stop_them(seeded, live_server_process, orm):
    run = PerfRun.objects.create(label=f"guarded-{uuid.uuid4().hex[:8]}", host="http://127.0.0.1:1/api",
                                 status=PerfRun.Status.RUNNING)
    viewer = make_user(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_perfrun", content_type__app_label="perf"))
    watcher = AdminClient(live_server_process.root).login(viewer.email, PASSWORD)
    anonymous = AdminClient(live_server_process.root)

    assert watcher.get(f"/admin/perf/perfrun/{run.pk}/change/").status_code == 200  # may watch
    assert watcher.post(f"/admin/perf/perfrun/{run.pk}/stop/").status_code == 403
    anonymous.get("/admin/login/")  # a CSRF cookie, so that the refusal below is the admin's, not CSRF's
    refused = anonymous.post(f"/admin/perf/perfrun/{run.pk}/stop/", allow_redirects=False)
    assert refused.status_code == 302 and "/admin/login/" in refused.headers["Location"]
    page = anonymous.get(f"/admin/perf/perfrun/{run.pk}/change/", allow_redirects=False)
    assert page.status_code == 302 and "/admin/login/" in page.headers["Location"]
    admin = AdminClient(live_server_process.root).login(*superuser())
    assert admin.get(f"/admin/perf/perfrun/{run.pk}/stop/").status_code == 405  # a GET never stops a run
    run.refresh_from_db()
    assert run.stop_requested_at is None and run.stop_requested_by == ""
    try:
        assert admin.post(f"/admin/perf/perfrun/{run.pk}/stop/").status_code == 200
        run.refresh_from_db()
        assert run.stop_requested_by == admin.username and run.stop_requested_at is not None
    finally:
        PerfRun.objects.filter(pk=run.pk).update(status=PerfRun.Status.ABORTED)


def _new_run_form(url: str, label: str, **changes: str) -> dict[str, str]:
    form = {"users": "3", "spawn_rate": "10", "duration": "3m", "host": url, "wait": "0.05,0.2",
            "label": label, "scenarios": "EventBrowser", "thresholds": "p95<5s"}
    form.update(changes)
    return form


@pytest.mark.slow
def test_the_new_run_page_starts_the_run_the_command_would_and_opens_its_live_page(
    seeded, live_server_process, quiet, admin
):
    page = admin.get("/admin/perf/perfrun/add/")
    assert page.status_code == 200 and "EventBrowser (weight 30)" in page.text and "Start the run" in page.text

    refused = admin.post("/admin/perf/perfrun/add/", _new_run_form(live_server_process.url, "x", spawn_rate="0"))
    assert "Spawn rate must be a finite number greater than 0, got 0." in refused.text  # the command's check, in words
    remote = admin.post("/admin/perf/perfrun/add/", _new_run_form("http://10.1.2.3:8000/api", "x"))
    assert "not a loopback address; load goes to this machine only unless the &quot;Allow a remote host&quot; box " \
           "is ticked" in remote.text
    injected = admin.post("/admin/perf/perfrun/add/", _new_run_form(
        f"{live_server_process.url}/healthcheck?x=\r\nX-Evil: 1", "injected"))
    assert "it holds a control character or a space" in injected.text and "x=\\r\\nX-Evil" in injected.text
    assert not PerfRun.objects.filter(label="injected").exists()

    label = f"from-admin-{uuid.uuid4().hex[:8]}"
    # Started anyway (nothing is running: quiet), so that the next one, without the box ticked, must be refused.
    started = admin.post("/admin/perf/perfrun/add/", _new_run_form(live_server_process.url, label, run_anyway="on"))
    run = PerfRun.objects.get(label=label)
    assert started.url.endswith(f"/admin/perf/perfrun/{run.pk}/change/")
    assert run.status == PerfRun.Status.RUNNING and run.users == 3 and run.scenarios == ["EventBrowser"]
    assert run.options["thresholds"] == ["p95<5s"]
    try:
        second = admin.post("/admin/perf/perfrun/add/", _new_run_form(live_server_process.url, label + "-2"))
        assert f"Run {run.pk} is still running" in second.text
        assert not PerfRun.objects.filter(label=label + "-2").exists()
        wait_until_running(label)
    finally:
        stop_from_admin(admin, run)
    run.refresh_from_db()
    assert run.status == PerfRun.Status.ABORTED and run.total_requests > 0


def test_only_users_who_may_add_runs_see_the_new_run_page(seeded, live_server_process, orm):
    viewer = make_user(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_perfrun", content_type__app_label="perf"))
    watcher = AdminClient(live_server_process.root).login(viewer.email, PASSWORD)
    assert watcher.get("/admin/perf/perfrun/add/").status_code == 403
    assert watcher.post("/admin/perf/perfrun/add/", {"users": "1"}).status_code == 403
    anonymous = AdminClient(live_server_process.root).get("/admin/perf/perfrun/add/", allow_redirects=False)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous.headers["Location"]
