"""The New run page's Stages field, over real HTTP as a browser without JavaScript sends it: accepted stages become
``--stages=TEXT`` on the command line the page starts, bad ones give the command line's own message in the page's
words (perf.options.parse_stages, "Stages" for "--stages"), the page's limits hold for the stages' peak and total,
and Users, Spawn rate or Duration sent with stages are refused with one message; the run accepted stages start is
checked, and stopped.
"""

import uuid

import pytest

from perf.models import PerfRun
from perf.options import parse_stages
from perf.web.run_control import NewRunForm
from tests.adminclient import AdminClient
from tests.perf.builders import page_errors, stop_from_admin, superuser, wait_until_running

ADD = "/admin/perf/perfrun/add/"


def form(host: str, label: str, **changes: str) -> dict[str, str]:
    """The page's fields for a staged run: Users, Spawn rate and Duration emptied, as the page's script does."""
    fields = {"users": "", "spawn_rate": "", "duration": "", "stages": "30s:2, 1m:2 ,30s:0", "host": host,
              "wait": "0.05,0.2", "label": label, "scenarios": "EventBrowser"}
    fields.update(changes)
    return fields


@pytest.fixture
def admin(orm, live_server_process) -> AdminClient:
    return AdminClient(live_server_process.root).login(*superuser())


def test_accepted_stages_become_the_command_lines_stages(seeded, quiet, admin, live_server_process) -> None:
    label = f"staged-{uuid.uuid4().hex[:8]}"
    started = admin.post(ADD, form(live_server_process.url, label))
    run = PerfRun.objects.filter(label=label).first()
    assert run is not None, page_errors(started.text)
    try:
        assert started.url.endswith(f"/admin/perf/perfrun/{run.pk}/change/")
        assert run.profile["kind"] == "users" and [span["end"] for span in run.profile["spans"]] == [30, 90, 120]
        wait_until_running(label)
    finally:
        stop_from_admin(admin, run)


def test_the_form_builds_stages_in_place_of_users_spawn_rate_and_duration(orm) -> None:
    def bound(**changes: str) -> NewRunForm:
        return NewRunForm({**form("http://127.0.0.1:8000/api", "-x", **changes), "scenarios": ["EventBrowser"]})

    staged = bound(stages=" 30s:2, 1m:2 ,30s:0 ")
    assert staged.is_valid(), staged.errors
    assert staged.arguments() == ["--stages=30s:2,1m:2,30s:0", "--host=http://127.0.0.1:8000/api",
                                  "--scenario=EventBrowser", "--wait=0.05,0.2", "--label=-x"]
    plain = bound(stages="", users="3", spawn_rate="10", duration="3m")
    assert plain.is_valid(), plain.errors
    assert plain.arguments()[:4] == ["--users=3", "--spawn-rate=10", "--duration=3m", "--host=http://127.0.0.1:8000/api"]


@pytest.mark.parametrize("stages", ["30:4", "1m:-3", "1m:2.5", "1m:0,30s:0", "1m", "30s:2,,1m:2", ",", "2x:3"])
def test_bad_stages_give_the_command_lines_message_in_the_pages_words(admin, live_server_process, stages) -> None:
    with pytest.raises(ValueError) as refused:
        parse_stages(stages)
    expected = str(refused.value).replace("--stages", "Stages") + "."
    page = admin.post(ADD, form(live_server_process.url, "bad-stages", stages=stages))
    # The parser's message alone: Users, Spawn rate and Duration are not asked for when stages are.
    assert page.status_code == 200 and page_errors(page.text) == [expected], (expected, page_errors(page.text))
    assert "--" not in page.text.split('id="new-run"')[1].split("</form>")[0].replace("<!--", "").replace("-->", "")
    assert not PerfRun.objects.filter(label="bad-stages").exists()


def test_stages_keep_to_the_pages_limits(admin, live_server_process) -> None:
    cases = [
        ("30s:10,1m:1001,30s:0", "Stages ask for 1,001 users; at most 1,000 from this page (PERF_WEB_MAX_USERS); "
                                 "larger runs start from the command line."),
        ("50m:5,20m:5", "Stages last 1h 10m 00s in all; at most 1h 00m 00s from this page (PERF_WEB_MAX_DURATION); "
                        "longer runs start from the command line."),
    ]
    for stages, message in cases:
        page = admin.post(ADD, form(live_server_process.url, "staged-limits", stages=stages))
        assert page_errors(page.text) == [message], page_errors(page.text)
    assert not PerfRun.objects.filter(label="staged-limits").exists()


def test_users_spawn_rate_or_duration_with_stages_are_refused_with_one_message(admin, live_server_process) -> None:
    message = ("With Stages, the stages set the users and the run's length: leave Users, Spawn rate and Duration "
               "empty.")
    for given in ({"users": "2", "spawn_rate": "10", "duration": "3m"}, {"users": "2"}, {"duration": "3m"},
                  {"spawn_rate": "1"}):
        page = admin.post(ADD, form(live_server_process.url, "staged-both", **given))
        assert page_errors(page.text) == [message], (given, page_errors(page.text))
    # Without stages each of the three is needed, as before.
    page = admin.post(ADD, form(live_server_process.url, "staged-both", stages="", duration="3m"))
    assert page_errors(page.text) == ["This field is required."] * 2, page_errors(page.text)
    assert not PerfRun.objects.filter(label="staged-both").exists()
