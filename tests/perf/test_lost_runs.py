"""Runs whose process dies never lie about their state: a ``running`` row whose process went silent for
``PERF_LOST_AFTER`` becomes ``lost`` (``perf.store.liveness``) when the admin reads it or ``perf_mark_lost`` runs,
keeping its figures up to its last progress write; a process that was only held up gets its run back.

The dead processes are real ``run_perf`` processes killed with SIGKILL, as a crash or an OOM killer does.
The lost threshold is compressed to 2 s on a server of this module's own (the session's server keeps the
default, a minute), so that the tests wait seconds, not minutes.
"""

import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from perf.load.stats import StatsRegistry
from perf.models import EndpointStats, PerfRun, ShardReport
from perf.store.persist import save_progress, start_run
from tests.adminclient import AdminClient
from tests.factories import PASSWORD, make_user, unique
from tests.liveserver import LiveServer, free_port, manage, start_run_perf
from tests.perf.builders import stoppable_args, wait_until_running

LOST_AFTER = 2.0
# A superuser made for this module (no seeded account is relied on to open the admin).
ADMIN_EMAIL = unique("lost-admin") + "@example.com"
ADMIN = (ADMIN_EMAIL, PASSWORD)


def lost_line(moment: datetime) -> str:
    """What a lost run must say, word for word (the project's time zone is UTC)."""
    return f"lost: its process stopped answering at {moment:%H:%M:%S} UTC; figures up to then are kept"


@pytest.fixture(scope="module", autouse=True)
def superuser(django_db_setup, django_db_blocker) -> None:
    with django_db_blocker.unblock():
        make_user(username=ADMIN_EMAIL, email=ADMIN_EMAIL, is_staff=True, is_superuser=True)


@pytest.fixture(scope="module")
def lost_server(seeded: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The admin on the live database, with PERF_LOST_AFTER compressed to LOST_AFTER seconds."""
    folder = tmp_path_factory.mktemp("lost")
    server = LiveServer(env={**seeded, "PERF_LOST_AFTER": str(LOST_AFTER)}, port=free_port(),
                        log_path=folder / "gunicorn.log")
    server.start(workers=1, threads=4)
    yield server
    server.stop()


@pytest.fixture
def admin(lost_server: LiveServer) -> AdminClient:
    return AdminClient(lost_server.root).login(*ADMIN)


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def listed(admin: AdminClient, status: str, run: PerfRun) -> bool:
    """Whether the run list filtered on ``status`` shows the run (a link to its page)."""
    page = admin.get(f"/admin/perf/perfrun/?status__exact={status}&q={run.label}")
    assert page.status_code == 200
    return f"/admin/perf/perfrun/{run.pk}/change/" in page.text


@pytest.mark.slow
def test_a_run_killed_mid_run_becomes_lost_on_read_with_its_figures_and_stop_says_so(
    seeded, live_server_process, lost_server, orm, admin
):
    label = unique("killed")
    process = start_run_perf(seeded, *stoppable_args(live_server_process.url, label))
    try:
        wait_until_running(label)
    finally:
        kill(process)
    run = PerfRun.objects.get(label=label)
    assert run.status == PerfRun.Status.RUNNING  # the claim the dead process left, which nothing else ends
    kept = (run.total_requests, run.actual_duration, EndpointStats.objects.filter(run=run).count())
    assert kept[0] > 0
    time.sleep(LOST_AFTER + 0.5)

    assert not listed(admin, "running", run)  # the list's "running" filter no longer shows it
    assert listed(admin, "lost", run)
    run.refresh_from_db()
    assert run.status == PerfRun.Status.LOST
    assert (run.total_requests, run.actual_duration, EndpointStats.objects.filter(run=run).count()) == kept
    assert run.finished_at == run.heartbeat_at
    assert run.error == lost_line(run.heartbeat_at)

    page = admin.get(f"/admin/perf/perfrun/{run.pk}/change/").text
    assert run.error in page and "perf-status perf-status-lost" in page and 'class="perf-stop-button"' not in page
    live = admin.get(f"/admin/perf/perfrun/{run.pk}/live/").json()
    assert live["status"] == "lost" and run.error in live["sections"]["header"]
    stopped = admin.post(f"/admin/perf/perfrun/{run.pk}/stop/")
    assert f"Run {run.pk} is {run.error}." in stopped.text and "ends within 2 s" not in stopped.text
    assert "already stopping" not in admin.post(f"/admin/perf/perfrun/{run.pk}/stop/").text


@pytest.mark.slow
def test_a_run_killed_before_its_first_progress_write_is_marked_lost_by_the_command(
    seeded, live_server_process, orm
):
    label = unique("killed-early")
    process = start_run_perf(seeded, *stoppable_args(live_server_process.url, label))
    try:
        deadline = time.monotonic() + 60
        while not PerfRun.objects.filter(label=label).exists():
            assert time.monotonic() < deadline and process.poll() is None, "run_perf stored no run"
            time.sleep(0.02)
    finally:
        kill(process)  # its first progress write comes 2 s after the row: this is before it
    run = PerfRun.objects.get(label=label)
    assert run.status == PerfRun.Status.RUNNING and run.heartbeat_at is None
    time.sleep(1.2)

    refused = manage("perf_mark_lost", "--after", "0", env=seeded, check=False)
    assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0
    assert "--after must be a positive number of seconds, got 0" in refused.stderr
    marked = manage("perf_mark_lost", "--after", "1", env=seeded)
    run.refresh_from_db()
    assert run.status == PerfRun.Status.LOST and run.finished_at == run.started_at
    assert run.actual_duration == 0.0 and run.total_requests == 0
    assert f"Run {run.pk} {lost_line(run.started_at)}" in marked.stdout.splitlines()
    again = manage("perf_mark_lost", "--after", "1", env=seeded)
    assert f"Run {run.pk} " not in again.stdout


def test_a_running_run_that_never_wrote_progress_says_so_before_it_is_lost(seeded, live_server_process, orm):
    """The page's stale note counts from the start when no progress was ever written (the default threshold
    of the session's server, a minute, is not reached yet)."""
    run = start_run(label=unique("silent"), host=live_server_process.url,
                    started_at=timezone.now() - timedelta(seconds=40))
    admin = AdminClient(live_server_process.root).login(*ADMIN)
    page = admin.get(f"/admin/perf/perfrun/{run.pk}/change/").text
    assert "No progress written for 4" in page and "the run&#x27;s process may have died" in page
    run.refresh_from_db()
    assert run.status == PerfRun.Status.RUNNING
    PerfRun.objects.filter(pk=run.pk).update(status=PerfRun.Status.ABORTED)


@pytest.mark.slow
def test_run_perf_marks_dead_runs_lost_as_it_starts_and_a_lost_run_that_writes_again_comes_back(
    seeded, live_server_process, lost_server, orm, admin
):
    # A run whose process died two minutes ago, before its first progress write: the next run_perf to start
    # marks it lost (with its own threshold, the default minute), whoever reads the runs or not.
    dead = start_run(label=unique("dead-before"), host=live_server_process.url,
                     started_at=timezone.now() - timedelta(minutes=2))
    label = unique("paused")
    process = start_run_perf(seeded, *stoppable_args(live_server_process.url, label))
    try:
        run = wait_until_running(label)
        dead.refresh_from_db()
        assert dead.status == PerfRun.Status.LOST and dead.error == lost_line(dead.started_at)
        process.send_signal(signal.SIGSTOP)  # held up, not dead: a long lock or a swapped-out machine
        try:
            time.sleep(LOST_AFTER + 1)
            assert listed(admin, "lost", run)
            run.refresh_from_db()
            assert run.status == PerfRun.Status.LOST
            lost_requests = run.total_requests
        finally:
            process.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 20
        while PerfRun.objects.get(pk=run.pk).status != PerfRun.Status.RUNNING:
            assert time.monotonic() < deadline, "the run did not come back with its next progress write"
            time.sleep(0.1)
        run.refresh_from_db()
        assert run.error == "" and run.finished_at is None
        # Stop through the session's server, whose threshold (a minute) sees the run as the live one it is.
        session_admin = AdminClient(live_server_process.root).login(*ADMIN)
        assert "ends within 2 s" in session_admin.post(f"/admin/perf/perfrun/{run.pk}/stop/").text
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            kill(process)
    run.refresh_from_db()
    assert run.status == PerfRun.Status.ABORTED, stdout[-2000:] + stderr[-2000:]
    assert run.stop_reason == f"stopped from the admin by {ADMIN[0]}" and run.error == ""
    assert run.total_requests > lost_requests


def _running_with_progress(label: str) -> PerfRun:
    stats = StatsRegistry()
    for i in range(20):
        stats.record("GET", "/events/", 10.0 + i, 100)
    run = start_run(label=label, host="http://127.0.0.1:1/api", users=2, planned_duration=60.0)
    save_progress(run, stats, 4.0)
    run.refresh_from_db()
    return run


def test_staff_who_may_change_runs_mark_them_lost_or_failed_by_hand_and_viewers_get_403(
    seeded, live_server_process, orm
):
    by_button, by_action = _running_with_progress(unique("hand")), _running_with_progress(unique("hand-action"))
    viewer = make_user(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_perfrun", content_type__app_label="perf"))
    watcher = AdminClient(live_server_process.root).login(viewer.email, PASSWORD)
    admin = AdminClient(live_server_process.root).login(*ADMIN)
    try:
        assert "Mark lost" not in watcher.get(f"/admin/perf/perfrun/{by_button.pk}/change/").text
        assert watcher.post(f"/admin/perf/perfrun/{by_button.pk}/mark/", {"status": "lost"}).status_code == 403
        watcher.post("/admin/perf/perfrun/", {"action": "mark_lost_selected", "_selected_action": str(by_action.pk)})
        assert admin.get(f"/admin/perf/perfrun/{by_button.pk}/mark/").status_code == 405
        assert admin.post(f"/admin/perf/perfrun/{by_button.pk}/mark/", {"status": "completed"}).status_code == 400
        for run in (by_button, by_action):
            run.refresh_from_db()
            assert run.status == PerfRun.Status.RUNNING and run.stop_requested_at is None

        page = admin.get(f"/admin/perf/perfrun/{by_button.pk}/change/").text
        assert "Mark lost" in page and "Mark failed" in page
        marked = admin.post(f"/admin/perf/perfrun/{by_button.pk}/mark/", {"status": "failed"})
        assert marked.status_code == 200 and f"Marked failed: run {by_button.pk}" in marked.text
        by_button.refresh_from_db()
        assert by_button.status == PerfRun.Status.FAILED and by_button.total_requests == 20
        assert by_button.error.startswith(f"marked failed by {ADMIN[0]} at ")
        assert by_button.finished_at == by_button.heartbeat_at and by_button.stop_requested_by == ADMIN[0]
        again = admin.post(f"/admin/perf/perfrun/{by_button.pk}/mark/", {"status": "lost"})
        assert f"Not running, left as they are: run {by_button.pk}" in again.text

        admin.post("/admin/perf/perfrun/", {"action": "mark_lost_selected", "_selected_action": str(by_action.pk)})
        by_action.refresh_from_db()
        assert by_action.status == PerfRun.Status.LOST and by_action.total_requests == 20
        assert by_action.error.startswith(f"marked lost by {ADMIN[0]} at ")
        stopped = admin.post(f"/admin/perf/perfrun/{by_action.pk}/stop/")
        assert f"Run {by_action.pk} is lost (marked lost by" in stopped.text
    finally:
        PerfRun.objects.filter(pk__in=[by_button.pk, by_action.pk], status=PerfRun.Status.RUNNING).update(
            status=PerfRun.Status.ABORTED)



@pytest.mark.parametrize("ended", ["lost", "stop requested"])
def test_a_shard_task_taken_after_its_run_ended_sends_nothing(orm, ended: str) -> None:
    """A shard task a worker takes late (the broker held it while the coordinator died, or Stop was pressed)
    must not start load for a run that is over."""
    from perf.tasks import run_shard

    run = start_run(label=unique("late-shard"), host="http://127.0.0.1:1/api", users=1, planned_duration=30.0)
    shard = ShardReport.objects.create(run=run, index=0, users=1)
    if ended == "lost":
        PerfRun.objects.filter(pk=run.pk).update(status=PerfRun.Status.LOST)
    else:
        PerfRun.objects.filter(pk=run.pk).update(stop_requested_at=timezone.now(), stop_requested_by="ops")
    now = time.time()
    outcome = run_shard(run_id=run.pk, index=0, shards=1, host=run.host, scenarios=["EventBrowser"], users=1,
                        spawn_rate=1.0, start_at=now, end_at=now + 30, wait=None, seed=None, stop_timeout=0.0,
                        config=None)
    shard.refresh_from_db()
    assert outcome == "skipped" and shard.status == ShardReport.Status.PENDING and shard.hostname == ""
    PerfRun.objects.filter(pk=run.pk).update(status=PerfRun.Status.ABORTED)


def test_alive_runs_are_the_running_ones_with_a_recent_sign_of_life(orm) -> None:
    """What "is another run going on?" asks (the New run page): a dead run is marked lost and not counted."""
    from perf.store.liveness import alive_runs

    fresh = start_run(label=unique("fresh"), host="http://127.0.0.1:1/api")
    dead = start_run(label=unique("dead"), host="http://127.0.0.1:1/api", started_at=timezone.now() - timedelta(
        minutes=5))
    try:
        alive = set(alive_runs().filter(pk__in=[fresh.pk, dead.pk]).values_list("pk", flat=True))
        assert alive == {fresh.pk}
        dead.refresh_from_db()
        assert dead.status == PerfRun.Status.LOST
    finally:
        PerfRun.objects.filter(pk=fresh.pk).update(status=PerfRun.Status.ABORTED)
