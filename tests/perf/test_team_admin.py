"""What a user holding only "add perf run" can make the server do, tried as attacks over real HTTP.

Starting a run must never grant more than starting a run: not an admin account (Seed first), not load or a
health check sent to another machine (Allow a remote host), not a run of any size or any number of runs at
once (the web limits), not two runs where the page allows one (the launch gate).
"""

import socket
import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from backend.models import User
from perf.cli.invocation import RunRequest, UsageError, check_request
from perf.models import Launch, PerfRun
from perf.web import launch
from tests.adminclient import AdminClient, staff_client
from tests.perf.builders import superuser, wait_until_running
from tests.perf.other_host import own_address


def starter(live_server_process, *codenames: str) -> AdminClient:
    """A staff user who may view and start runs, and do what ``codenames`` allow besides."""
    return staff_client(live_server_process.root, "view_perfrun", "add_perfrun", *codenames)


def form(host: str, label: str, **changes: str) -> dict[str, str]:
    fields = {"users": "2", "spawn_rate": "10", "duration": "3m", "host": host, "wait": "0.05,0.2",
              "label": label, "scenarios": "EventBrowser"}
    fields.update(changes)
    return fields


def accounts() -> list[tuple]:
    """Every account's name, password hash and admin flags: equal lists mean no account changed."""
    return list(User.objects.order_by("pk").values_list("username", "password", "is_staff", "is_superuser",
                                                        "is_active"))


def test_seed_first_needs_its_own_permission_and_a_starter_changes_no_account(seeded, live_server_process, orm):
    """The attack: a user allowed only to start runs ticks "Seed first" to reset the perf admin's password and
    make it a superuser again. The box is not offered, a forged POST is refused, and no account changes."""
    attacker = starter(live_server_process)
    before = accounts()
    page = attacker.get("/admin/perf/perfrun/add/")
    assert page.status_code == 200 and "Start the run" in page.text and "Seed first" not in page.text
    forged = attacker.post("/admin/perf/perfrun/add/", form(live_server_process.url, "seed-attack", bootstrap="on"))
    assert forged.status_code == 403
    assert accounts() == before
    assert not PerfRun.objects.filter(label="seed-attack").exists()

    allowed = starter(live_server_process, "seed_data")
    assert "Seed first" in allowed.get("/admin/perf/perfrun/add/").text
    assert "Seed first" in AdminClient(live_server_process.root).login(*superuser()).get(
        "/admin/perf/perfrun/add/").text


@pytest.mark.once  # by hand: reaches the database only through the live server; what it tests cannot differ by it
def test_a_remote_host_needs_its_own_permission_and_the_allow_list_and_nothing_reaches_it(seeded,
                                                                                        live_server_process, orm):
    """The attack: "Allow a remote host" ticked to send a run (and its health check) to another machine. Here the
    other machine is this one's own non-loopback address, with a listener that records any connection."""
    address = own_address()
    listener = socket.create_server((address, 0))
    listener.settimeout(0.2)
    remote = f"http://{address}:{listener.getsockname()[1]}/api"
    try:
        attacker = starter(live_server_process)
        assert "Allow a remote host" not in attacker.get("/admin/perf/perfrun/add/").text
        forged = attacker.post("/admin/perf/perfrun/add/", form(remote, "remote-attack", allow_remote="on"))
        assert forged.status_code == 403

        trusted = starter(live_server_process, "run_remote")
        assert "Allow a remote host" in trusted.get("/admin/perf/perfrun/add/").text
        refused = trusted.post("/admin/perf/perfrun/add/", form(remote, "remote-unlisted", allow_remote="on"))
        assert refused.status_code == 200
        assert f"{remote} is not in PERF_ALLOWED_HOSTS (empty); add its host name there" in refused.text
        unticked = trusted.post("/admin/perf/perfrun/add/", form(remote, "remote-unticked"))
        assert "is not a loopback address; load goes to this machine only unless the " \
               "&quot;Allow a remote host&quot; box is ticked" in unticked.text
        with pytest.raises(TimeoutError):
            listener.accept()  # not one connection: not the health check, not a request
    finally:
        listener.close()
    assert not PerfRun.objects.filter(label__startswith="remote-").exists()


def test_an_allowed_remote_host_passes_the_check_by_name(settings):
    """PERF_ALLOWED_HOSTS takes Django's ALLOWED_HOSTS patterns; the check itself sends nothing anywhere."""
    request = RunRequest(host="http://10.1.2.3:8000/api", allow_remote=True, save=False, audit=False)
    settings.PERF_ALLOWED_HOSTS = ["10.1.2.3"]
    assert check_request(request).host == "http://10.1.2.3:8000/api"
    settings.PERF_ALLOWED_HOSTS = ["10.1.2.4", ".example.com"]
    with pytest.raises(UsageError, match=r"not in PERF_ALLOWED_HOSTS \(10.1.2.4, .example.com\)"):
        check_request(request)
    with pytest.raises(UsageError, match="unless --allow-remote"):
        check_request(RunRequest(host="http://10.1.2.3:8000/api", save=False, audit=False))


def test_the_form_holds_runs_to_the_web_limits_and_speaks_its_own_language(seeded, live_server_process, orm):
    admin = AdminClient(live_server_process.root).login(*superuser())
    url = live_server_process.url
    cases = [
        ({"users": "1001"}, "Users are at most 1,000 from this page (PERF_WEB_MAX_USERS)"),
        ({"duration": "2h"}, "Duration is at most 1h 00m 00s from this page (PERF_WEB_MAX_DURATION)"),
        ({"duration": "30d"}, "Duration must be a positive time like 90, 90s, 5m or 1h30m."),
        ({"spawn_rate": "1e-300"}, "Spawn rate 1e-300 a second is one every 1e+300 s, longer than the longest run"),
        ({"spawn_rate": "1e308"}, "Spawn rate must be at most 100,000 a second, got 1e+308."),
        ({"wait": "0,1e300"}, "Think time must be two numbers of seconds, the smaller first"),
        ({"wait": "-1"}, "Think time must be two numbers of seconds, the smaller first"),
        ({"thresholds": "p95<lots"}, "Bad threshold &#x27;p95&lt;lots&#x27;: p95 needs a time such as 500ms"),
    ]
    for changes, message in cases:
        page = admin.post("/admin/perf/perfrun/add/", form(url, "limits", **changes))
        assert page.status_code == 200 and message in page.text, (changes, page.text[-3000:])
        assert "--" not in page.text.split('id="new-run"')[1].split("</form>")[0].replace("<!--", "").replace(
            "-->", ""), changes  # no option name of the command: the page's own words
    assert not PerfRun.objects.filter(label="limits").exists()


def test_the_page_offers_its_own_server_as_the_host_and_says_so(live_server_process, orm):
    page = AdminClient(live_server_process.root).login(*superuser()).get("/admin/perf/perfrun/add/")
    assert f'value="{live_server_process.url}"' in page.text
    assert "Offered: this page&#x27;s own server, with PERF_HOST&#x27;s path." in page.text


def test_start_anyway_stops_at_the_most_runs_at_once(quiet):
    """Start anyway starts a second run, never a third: PERF_WEB_MAX_RUNS (2) counts running runs and launches
    not yet stored."""
    limits = launch.WebLimits(runs=2)
    alive = PerfRun.objects.create(label=f"alive-{uuid.uuid4().hex[:8]}", host="http://127.0.0.1:1/api",
                                   heartbeat_at=timezone.now())
    try:
        with pytest.raises(launch.Busy, match=f"Run {alive.pk} is still running"):
            launch.reserve("someone", anyway=False, limits=limits)
        second = launch.reserve("someone", anyway=True, limits=limits)
        assert Launch.objects.get(launch_id=second).requested_by == "someone"
        with pytest.raises(launch.LaunchError, match=r"2 runs are running already, the most this page may start at "
                                                     r"once \(PERF_WEB_MAX_RUNS = 2\)"):
            launch.reserve("someone", anyway=True, limits=limits)
        Launch.objects.filter(launch_id=second).update(requested_at=timezone.now() - timedelta(minutes=5))
        launch.reserve("someone", anyway=True, limits=limits)  # a launch that never stored a run stops counting
    finally:
        PerfRun.objects.filter(pk=alive.pk).update(status=PerfRun.Status.ABORTED)
        Launch.objects.all().delete()


@pytest.mark.slow
def test_two_starts_sent_at_the_same_moment_start_one_run(seeded, live_server_process, quiet):
    """The race: both POSTs checked "is anything running?" before either process had stored its run. One starts
    now; the other is told a run is starting. A label that starts with "-" is a label, not an option."""
    clients = [AdminClient(live_server_process.root).login(*superuser()) for _ in range(2)]
    labels = [f"-race-{uuid.uuid4().hex[:8]}" for _ in clients]
    answers: list = [None, None]
    barrier = threading.Barrier(2)

    def post(index: int) -> None:
        clients[index].get("/admin/perf/perfrun/add/")
        barrier.wait()
        answers[index] = clients[index].post("/admin/perf/perfrun/add/", form(live_server_process.url, labels[index]))

    threads = [threading.Thread(target=post, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    started = list(PerfRun.objects.filter(label__in=labels))
    try:
        assert len(started) == 1, [answer.text[-2000:] for answer in answers]
        [run] = started
        loser = answers[labels.index(run.label) ^ 1]
        assert loser.status_code == 200 and "still running: two runs on one machine measure each other" in loser.text
        wait_until_running(run.label)
    finally:
        for run in started:
            clients[0].post(f"/admin/perf/perfrun/{run.pk}/stop/")
    deadline = time.monotonic() + 30
    while PerfRun.objects.filter(label__in=labels, status=PerfRun.Status.RUNNING).exists():
        assert time.monotonic() < deadline, "the started run did not stop within 30 s"
        time.sleep(0.2)
