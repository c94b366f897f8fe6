"""The run page follows its run, over real HTTP against the live gunicorn: a run just started says how many
users have started instead of showing zeros, and has its first figures within a second; the window's title
and the breadcrumb carry no status that could go stale, and the live view says how the run ended; the run's
own output is on its page, its tail only, for those who may view the run; "Users" says which users; the
bottleneck mark is explained once; the 403 page looks like the admin; a count agrees with its noun.

Runs are stored as run_perf stores them (perf.store.persist), or started for real with ``run_perf``; log files are
written where a run started from the admin writes its own (``perf.reports.run_log.log_path_for``).
"""

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from perf.analysis.audit import AuditReport, Check
from perf.load.stats import StatsRegistry
from perf.models import PerfRun
from perf.reports.run_log import TAIL_BYTES, log_path_for, read_tail
from perf.store.persist import finish_run, save_progress
from tests.adminclient import AdminClient, staff_client
from tests.factories import PASSWORD, make_user, unique
from tests.liveserver import manage, start_run_perf
from tests.perf.builders import stored_run

CHANGELIST = "/admin/perf/perfrun/"


def text(markup: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup)).replace("&#x27;", "'").strip()


def stored(label: str, users: int = 5, **fields: object) -> PerfRun:
    """A run just started (``running``) with ``users`` users, all on EventBrowser."""
    return stored_run(label=label, users=users, **fields)


def figures(users: int = 5) -> StatsRegistry:
    stats = StatsRegistry(start_time=time.time() - 4)
    for i in range(30):
        stats.record("GET", "/events/{id}/my-status [BOTTLENECK]", 10 + i, 200)
        stats.record("GET", "/events/", 5 + i, 200)
    stats.take_sample(users=users)
    return stats


@pytest.fixture
def admin(orm, live_server_process) -> AdminClient:
    email = f"{unique('pages-admin')}@example.com"
    make_user(username=email, email=email, is_staff=True, is_superuser=True)
    return AdminClient(live_server_process.root).login(email, PASSWORD)


def staff(live_server_process, *codenames: str) -> AdminClient:
    return staff_client(live_server_process.root, *codenames)


@pytest.fixture
def launched() -> Iterator[tuple[str, Path]]:
    """A launch id and the log file a run started from the admin with it writes (removed afterwards)."""
    launch_id = uuid.uuid4().hex
    path = log_path_for(launch_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    yield launch_id, path
    path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------- a run starts


def test_a_run_without_figures_says_how_many_users_have_started_not_zeros(admin: AdminClient) -> None:
    run = stored(unique("starting"), users=50)
    figures_section = admin.get(f"{CHANGELIST}{run.pk}/live/").json()["sections"]["figures"]
    shown = text(figures_section)
    assert re.search(r"Starting: \d+ of 50 users", shown), shown
    assert "Requests 0" not in shown and "None yet" in shown
    # A sample with users but no answers yet: the count is the measured one.
    stats = StatsRegistry(start_time=time.time() - 1)
    stats.take_sample(users=8)
    save_progress(run, stats, 1.0)
    assert "Starting: 8 of 50 users" in text(admin.get(f"{CHANGELIST}{run.pk}/live/").json()["sections"]["figures"])


def test_users_planned_and_users_now_are_told_apart(admin: AdminClient) -> None:
    run = stored(unique("users"), users=5)
    save_progress(run, figures(users=3), 4.0)
    shown = text(admin.get(f"{CHANGELIST}{run.pk}/live/").json()["sections"]["figures"])
    assert "Users now 3 of 5 planned" in shown and "Users (planned) 5" in shown
    assert "Starting" not in shown


@pytest.mark.slow
def test_run_perf_stores_its_first_figures_well_before_its_first_tick(seeded, live_server_process, orm) -> None:
    label = unique("first-figures")
    process = start_run_perf(seeded, "--users", "4", "--spawn-rate", "20", "--duration", "4s", "--wait", "0.05,0.2",
                             "--scenario", "EventBrowser", "--host", live_server_process.url, "--label", label,
                             "--no-audit")
    try:
        deadline, row_seen, figures_seen = time.monotonic() + 60, None, None
        while time.monotonic() < deadline and figures_seen is None and process.poll() is None:
            run = PerfRun.objects.filter(label=label).values("total_requests", "heartbeat_at").first()
            now = time.monotonic()
            if run is not None and row_seen is None:
                row_seen = now
            if run is not None and run["total_requests"]:
                figures_seen = now
            time.sleep(0.05)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert row_seen is not None and figures_seen is not None, stderr[-2000:]
    # The first tick is 2 s in: the figures come with the first answers, before it.
    assert figures_seen - row_seen < 1.5, figures_seen - row_seen
    assert process.returncode == 0, stderr[-2000:]
    assert "Running 4 users (EventBrowser 4)" in stdout
    # No sample was added for it: the time series keeps its 2 s cadence (ticks at 2 s and 4 s).
    assert PerfRun.objects.get(label=label).samples.count() == 2


# ---------------------------------------------------------------------------------------------- a run ends


def test_title_and_breadcrumb_carry_no_status_and_the_live_view_says_how_the_run_ended(admin: AdminClient) -> None:
    label = unique("ends")
    run = stored(label)
    save_progress(run, figures(), 4.0)
    page = admin.get(f"{CHANGELIST}{run.pk}/change/").text
    title = re.search(r"<title>(.*?)</title>", page, re.DOTALL).group(1)
    crumbs = re.search(r'<div class="breadcrumbs">(.*?)</div>', page, re.DOTALL).group(1)
    assert f"Run {run.pk}: {label}" in title and "running" not in title
    assert f"Run {run.pk}: {label}" in crumbs and "running" not in crumbs
    assert "message" not in admin.get(f"{CHANGELIST}{run.pk}/live/").json()

    finish_run(run, figures(), "aborted", duration=4.0, stop_reason="stopped from the admin by someone")
    ended = admin.get(f"{CHANGELIST}{run.pk}/live/").json()
    assert ended["status"] == "aborted"
    assert ended["message"] == f"Run {run.pk} has ended, aborted: stopped from the admin by someone."


# ---------------------------------------------------------------------------------------------- the output


@pytest.mark.once  # by hand: reaches the database only through the live server; what it tests cannot differ by it
def test_the_page_shows_the_tail_of_the_runs_own_output_and_the_live_view_sends_it_again(
    admin: AdminClient, launched: tuple[str, Path]
) -> None:
    launch_id, path = launched
    lines = [f"[{i:5d}s/600s] users    8 | progress line number {i:06d}" for i in range(4_000)]  # ~220 KB
    path.write_text("Running 8 users (EventBrowser 8) at 8/s for 600s\n" + "\n".join(lines) + "\n")
    run = stored(unique("logged"), launch_id=launch_id)
    page = admin.get(f"{CHANGELIST}{run.pk}/change/").text
    output = re.search(r'<section id="output"[^>]*>(.*?)</section>', page, re.DOTALL).group(1)
    shown = re.search(r'<pre class="perf-log"[^>]*>(.*?)</pre>', output, re.DOTALL).group(1)
    assert shown.endswith(lines[-1]) and "Running 8 users" not in shown  # the end, not the whole file
    assert len(shown.encode()) <= TAIL_BYTES
    assert shown.split("\n")[0] in lines  # it starts at a whole line
    assert f"The last {TAIL_BYTES // 1024} KiB of the output." in output

    with path.open("a") as log:
        log.write("Stopped early: stopped from the admin by someone\n")
    assert "Stopped early: stopped from the admin by someone" in admin.get(f"{CHANGELIST}{run.pk}/live/").json()["log"]


def test_a_tail_without_a_line_end_is_still_shown_and_a_terminal_line_shows_what_it_last_said(tmp_path: Path) -> None:
    endless = tmp_path / "endless.log"
    endless.write_bytes(b"x" * (TAIL_BYTES * 2))
    assert read_tail(endless) == ("x" * TAIL_BYTES, True)
    rewritten = tmp_path / "tty.log"
    rewritten.write_bytes(b"Running 1 user\n\r[ 2s/9s] users 1\r\x1b[2K[ 4s/9s] users 1\ndone\n")
    assert read_tail(rewritten) == ("Running 1 user\n[ 4s/9s] users 1\ndone", False)


@pytest.mark.once  # by hand: reaches the database only through the live server; what it tests cannot differ by it
def test_output_is_escaped_and_a_run_from_a_terminal_says_where_its_output_went(
    admin: AdminClient, launched: tuple[str, Path]
) -> None:
    launch_id, path = launched
    path.write_text("<script>alert(1)</script>\n")
    run = stored(unique("escaped"), launch_id=launch_id)
    log = admin.get(f"{CHANGELIST}{run.pk}/live/").json()["log"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in log and "<script>" not in log

    from_terminal = stored(unique("terminal"))
    assert "started from a terminal (run_perf): its output went there" in \
        admin.get(f"{CHANGELIST}{from_terminal.pk}/live/").json()["log"]


@pytest.mark.once  # by hand: reaches the database only through the live server; what it tests cannot differ by it
def test_a_launch_id_that_is_not_one_is_never_used_as_a_path(admin: AdminClient, launched: tuple[str, Path]) -> None:
    _, path = launched
    path.write_text("a secret\n")
    # A launch id that would climb out of the log folder to this very file.
    sneaky = stored(unique("sneaky"), launch_id=f"x/../{path.stem.removeprefix('run-')}")
    log = admin.get(f"{CHANGELIST}{sneaky.pk}/live/").json()["log"]
    assert "a secret" not in log and "not written where this page can read it" in log


def test_only_users_who_may_view_the_run_see_its_output(
    admin: AdminClient, live_server_process, launched: tuple[str, Path]
) -> None:
    launch_id, path = launched
    path.write_text("the run's own output\n")
    run = stored(unique("private"), launch_id=launch_id)
    viewer = staff(live_server_process, "view_perfrun")
    assert "the run&#x27;s own output" in viewer.get(f"{CHANGELIST}{run.pk}/live/").json()["log"]
    stranger = staff(live_server_process)
    for url in (f"{CHANGELIST}{run.pk}/live/", f"{CHANGELIST}{run.pk}/change/"):
        refused = stranger.get(url)
        assert refused.status_code == 403 and "own output" not in refused.text


# ---------------------------------------------------------------------------------------------- words


@pytest.mark.once  # by hand: reaches the database only through the live server; what it tests cannot differ by it
def test_the_403_page_has_the_admins_look(live_server_process, orm) -> None:
    viewer = staff(live_server_process, "view_perfrun")
    refused = viewer.get(f"{CHANGELIST}add/")
    assert refused.status_code == 403
    page = refused.text
    assert 'id="header"' in page and 'class="breadcrumbs"' in page and "/static/admin/css/base.css" in page
    assert "Not allowed (403)" in page and "does not have the permission this page needs" in page
    assert 'action="/admin/logout/"' in page  # the user can still log out from it


@pytest.mark.once  # by hand: reaches the database only through the live server; what it tests cannot differ by it
def test_a_count_agrees_with_its_noun(admin: AdminClient, live_env: dict[str, str]) -> None:
    one = stored(unique("alone"), users=1)
    header = text(admin.get(f"{CHANGELIST}{one.pk}/live/").json()["sections"]["header"])
    assert "· 1 user ·" in header and "1 users" not in header
    many = stored(unique("crowd"), users=1200)
    assert "· 1,200 users ·" in text(admin.get(f"{CHANGELIST}{many.pk}/live/").json()["sections"]["header"])
    # The lines the run's output shows on its page, and perf_compare's.
    assert AuditReport((Check("one RSVP per user", True, ""),)).lines() == ["Integrity audit: PASS (1 check)"]
    assert AuditReport((Check("one RSVP per user", False, "2 rows"),)).lines()[0] == \
        "Integrity audit: FAIL (1 of 1 check failed)"
    finish_run(one, figures(), "completed", duration=4.0)
    finish_run(many, figures(), "completed", duration=4.0)
    compared = manage("perf_compare", str(one.pk), str(many.pk), env=live_env, check=False).stdout
    assert "completed, 1 user, " in compared and "completed, 1,200 users, " in compared


@pytest.mark.once  # by hand: reaches the database only through the live server; what it tests cannot differ by it
def test_the_bottleneck_mark_is_in_the_name_once_and_explained(admin: AdminClient) -> None:
    run = stored(unique("bottleneck"))
    finish_run(run, figures(), "completed", duration=4.0)
    endpoints = admin.get(f"{CHANGELIST}{run.pk}/live/").json()["sections"]["endpoints"]
    assert endpoints.count("[BOTTLENECK]") == 2  # the name, and the legend that says what it means
    assert "perf-bottleneck" not in endpoints  # no badge repeating it, nor marking the merely slow
    assert "its scenario marks it as an endpoint where contention is expected" in endpoints
