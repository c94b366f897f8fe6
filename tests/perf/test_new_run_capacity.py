"""The New run page's "Find capacity" mode (issue 21): the settings become exactly the capacity contract's options
on the command line the page starts (``--find-capacity``, ``--start-load`` and ``--max-users``, or ``--rate`` and
``--max-rate`` on Users' pool, ``--step-factor`` or ``--step-increment``, ``--settle``, ``--hold``, ``--resolution``,
``--budget``); the page's limits hold for a search's ceiling and budget, over real HTTP, for a user who may only add
runs; a search without thresholds is refused by the page before the command would; and the command line the fields
make is shown as they change (``admin:perf_perfrun_command_line``).

run_perf's own parser and checks (perf.cli.capacity) take the lines the page makes, and say what the page leaves to
them in its words; a search started from the page is stored as a capacity run with the settings it was given.
"""

import uuid

import pytest
from django.contrib.auth.models import Permission

from perf.models import Launch, PerfRun
from perf.web import capacity_fields, launch
from perf.web.run_control import NewRunForm, in_form_words
from tests.adminclient import AdminClient, staff_client
from tests.factories import PASSWORD, make_user
from tests.perf.builders import page_errors, stop_from_admin, superuser, wait_until_running

ADD = "/admin/perf/perfrun/add/"
COMMAND_LINE = "/admin/perf/perfrun/add/command-line/"
HOST = "http://127.0.0.1:8000/api"


def form(host: str, label: str, **changes: str) -> dict[str, str]:
    """The page's fields for a search as its script sends them: Find capacity ticked with the fields' own defaults,
    a threshold, and none of Users, Spawn rate and Duration (the script disables them)."""
    fields = {"find_capacity": "on", "capacity_model": "users", "start_load": "10", "max_load": "1000",
              "step_factor": "2", "step_increment": "", "settle": "10s", "hold": "30s", "resolution": "10%",
              "budget": "30m", "thresholds": "p95<500ms\r\nerror_rate<1%", "host": host, "wait": "0.05,0.2",
              "label": label, "scenarios": "EventBrowser"}
    fields.update(changes)
    return fields


def bound(limits: launch.WebLimits | None = None, **changes: str) -> NewRunForm:
    return NewRunForm({**form(HOST, "-x", **changes), "scenarios": ["EventBrowser"]}, limits=limits)


def field_errors(page: NewRunForm) -> dict[str, list[str]]:
    return {name: list(messages) for name, messages in page.errors.items()}


# ------------------------------------------------------------------------------------------ the command line built


def test_a_search_in_users_becomes_the_contracts_options() -> None:
    search = bound()
    assert search.is_valid(), search.errors
    assert search.arguments() == [
        "--find-capacity", "--start-load=10", "--max-users=1000", "--step-factor=2", "--settle=10s", "--hold=30s",
        "--resolution=10%", "--budget=30m", "--host=http://127.0.0.1:8000/api", "--scenario=EventBrowser",
        "--wait=0.05,0.2", "--label=-x", "--threshold=p95<500ms", "--threshold=error_rate<1%"]


def test_a_search_in_iterations_a_second_starts_at_its_rate_on_the_users_pool() -> None:
    search = bound(capacity_model="rate", users="40", start_load="2.5", max_load="300", step_factor="",
                   step_increment="5", wait="")
    assert search.is_valid(), search.errors
    assert search.arguments()[:9] == [
        "--find-capacity", "--rate=2.5", "--max-rate=300", "--users=40", "--step-increment=5", "--settle=10s",
        "--hold=30s", "--resolution=10%", "--budget=30m"]
    assert not any(arg.startswith(("--start-load", "--max-users", "--step-factor", "--wait", "--spawn-rate",
                                   "--duration")) for arg in search.arguments())


def test_settings_left_empty_take_the_commands_defaults_but_the_ceiling_and_budget_are_always_sent() -> None:
    search = bound(step_factor="", settle="", hold="", resolution="", start_load=" 7 ", max_load="50",
                   budget="20m")
    assert search.is_valid(), search.errors
    assert search.arguments()[:4] == ["--find-capacity", "--start-load=7", "--max-users=50", "--budget=20m"]
    assert search.arguments()[4] == "--host=http://127.0.0.1:8000/api"
    missing = bound(start_load="", max_load="", budget="")
    assert field_errors(missing) == {name: ["This field is required."] for name in ("start_load", "max_load",
                                                                                    "budget")}


def test_the_page_shows_the_contracts_defaults_within_its_own_limits() -> None:
    page = NewRunForm()
    assert {name: page[name].value() for name in capacity_fields.SETTINGS} == {
        "capacity_model": "users", "start_load": 10, "max_load": 1000, "step_factor": "2", "step_increment": None,
        "settle": "10s", "hold": "30s", "resolution": "10%", "budget": "30m"}
    # A site whose page may start less than the defaults offers its limits instead, which the page then accepts.
    small = launch.WebLimits(users=100, duration=600)
    page = NewRunForm(limits=small)
    assert (page["max_load"].value(), page["budget"].value()) == (100, "10m")
    assert "At most 100 from this page." in page.fields["max_load"].help_text
    offered = bound(small, max_load="100", budget="10m")
    assert offered.is_valid(), offered.errors


def test_a_search_is_not_sent_unless_find_capacity_is_ticked() -> None:
    """A browser without the script sends the settings' defaults with every run: they are the search's, and
    without the box they change nothing."""
    plain = bound(find_capacity="", users="3", spawn_rate="10", duration="1m", max_load="1000000")
    assert plain.is_valid(), plain.errors
    assert plain.arguments()[:4] == ["--users=3", "--spawn-rate=10", "--duration=1m",
                                     "--host=http://127.0.0.1:8000/api"]
    assert not any("capacity" in arg or "--max" in arg or "--budget" in arg for arg in plain.arguments())


# ------------------------------------------------------------------------------------------ the page's checks


@pytest.mark.parametrize(("changes", "expected"), [
    ({"max_load": "1000000"}, {"max_load": [
        "Ceiling asks for 1,000,000 users; at most 1,000 from this page (PERF_WEB_MAX_USERS); larger searches start "
        "from the command line."]}),
    ({"start_load": "2000", "max_load": "5000"}, {
        "start_load": ["Start load asks for 2,000 users; at most 1,000 from this page (PERF_WEB_MAX_USERS); larger "
                       "searches start from the command line."],
        "max_load": ["Ceiling asks for 5,000 users; at most 1,000 from this page (PERF_WEB_MAX_USERS); larger "
                     "searches start from the command line."]}),
    ({"capacity_model": "rate", "users": "10", "wait": "", "max_load": "50000"}, {"max_load": [
        "Ceiling asks for 50,000 iterations a second; at most 1,000 from this page (PERF_WEB_MAX_USERS, which bounds "
        "a search's ceiling in iterations a second too); larger searches start from the command line."]}),
    ({"budget": "720h"}, {"budget": [
        "Budget is 720h 00m 00s; at most 1h 00m 00s from this page (PERF_WEB_MAX_DURATION); longer searches start "
        "from the command line."]}),
])
def test_a_search_keeps_to_the_pages_limits(changes: dict[str, str], expected: dict[str, list[str]]) -> None:
    assert field_errors(bound(**changes)) == expected


def test_a_search_needs_a_threshold_and_leaves_the_fields_it_sets_empty() -> None:
    assert field_errors(bound(thresholds=" \r\n ")) == {"thresholds": [
        "Find capacity needs at least one threshold: each step passes while they all hold, e.g. p95<500ms."]}
    message = ("With Find capacity, the search sets the users and the run's length: leave Users, Spawn rate and "
               "Duration empty.")
    for given in ({"users": "10"}, {"spawn_rate": "2"}, {"duration": "1m"}):
        assert field_errors(bound(**given)) == {"find_capacity": [message]}, given
    assert field_errors(bound(capacity_model="rate", wait="")) == {"users": [
        "With Find capacity in iterations a second, Users is the pool the iterations run on: give it."]}
    assert field_errors(bound(capacity_model="rate", wait="", users="5", duration="1m")) == {"find_capacity": [
        "With Find capacity in iterations a second, the search sets the arrival rate and the run's length: leave "
        "Spawn rate and Duration empty."]}
    assert field_errors(bound(capacity_model="rate", users="5", wait="0.1,0.2")) == {"wait": [
        "Think time does not apply to a search in iterations a second: iterations arrive on the schedule, without "
        "think time."]}
    assert field_errors(bound(stages="30s:2")) == {"__all__": [
        "Stages and Find capacity cannot be combined: give one load profile."]}


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"start_load": "2.5"}, "start_load", "Start load must be a whole number of users, 1 or more, not '2.5'."),
    ({"max_load": "lots"}, "max_load", "Ceiling must be a whole number of users, 1 or more, not 'lots'."),
    ({"capacity_model": "rate", "users": "5", "wait": "", "start_load": "0"}, "start_load",
     "Start load must be a number of iterations a second, above 0, not '0'."),
    ({"step_factor": "1"}, "step_factor", "Step factor must be a number above 1, like 2, not '1'."),
    ({"step_increment": "5"}, "step_increment",
     "Step factor and Step increment cannot be combined: leave one of them empty."),
    ({"step_factor": "", "step_increment": "inf"}, "step_increment",
     "Step increment must be a whole number of users, 1 or more, not 'inf'."),
    ({"settle": "10 s"}, "settle", "Settle must be a positive time like 90, 90s, 5m or 1h30m, at most 30 days."),
    ({"hold": "-1"}, "hold", "Hold must be a positive time like 90, 90s, 5m or 1h30m, at most 30 days."),
    ({"resolution": "fine"}, "resolution", "Resolution is a percent, like 10%, not 'fine'."),
])
def test_a_setting_that_cannot_be_read_is_named_beside_its_field(changes: dict[str, str], field: str,
                                                                 message: str) -> None:
    assert field_errors(bound(**changes)) == {field: [message]}


def test_run_perfs_own_parser_and_checks_take_the_lines_the_page_makes(orm) -> None:
    users = bound(step_factor="", step_increment="5", max_load="200")
    assert users.is_valid(), users.errors
    request = launch.check_arguments(users.arguments())
    assert (request.find_capacity, request.start_load, request.max_users, request.step_increment, request.budget) == (
        True, 10, 200, 5, "30m")
    rate = bound(capacity_model="rate", users="40", start_load="2.5", max_load="300", wait="")
    assert rate.is_valid(), rate.errors
    request = launch.check_arguments(rate.arguments())
    assert (request.rate, request.max_rate, request.users, request.step_factor, request.start_load) == (
        2.5, 300, 40, 2, None)


@pytest.mark.parametrize(("changes", "message"), [
    ({"start_load": "20", "max_load": "10"}, "the first step (20) is above the Ceiling 10: lower it or raise Ceiling"),
    ({"budget": "20s"}, "Budget 20 s is shorter than one step (Settle 10 s + Hold 30 s): give the search more time"),
    ({"resolution": "0%"}, "Resolution must be between 0 and 100%, got 0%"),
])
def test_what_the_page_leaves_to_run_perf_is_refused_in_the_pages_words(admin, live_server_process, changes,
                                                                        message) -> None:
    page = admin.post(ADD, form(live_server_process.url, "left-to-run-perf", **changes))
    assert page_errors(page.text) == [message], page_errors(page.text)
    assert not PerfRun.objects.filter(label="left-to-run-perf").exists()


def test_run_perfs_words_for_a_search_are_the_pages() -> None:
    assert in_form_words("unrecognized arguments: --find-capacity --start-load=10 --max-users=1000 "
                         "--step-factor=2 --settle=10s --hold=30s --resolution=10% --budget=30m") == (
        "unrecognized arguments: Find capacity Start load=10 Ceiling=1000 Step factor=2 Settle=10s Hold=30s "
        "Resolution=10% Budget=30m")
    assert in_form_words("--max-rate 50 is below --rate 100; --step-increment and --step-factor") == (
        "Ceiling 50 is below Start load 100; Step increment and Step factor")


# ------------------------------------------------------------------------------------------ over HTTP


@pytest.fixture
def admin(orm, live_server_process) -> AdminClient:
    return AdminClient(live_server_process.root).login(*superuser())


def test_a_user_who_may_only_add_runs_cannot_start_a_search_beyond_the_pages_limits(orm, live_server_process) -> None:
    adder = staff_client(live_server_process.root, "add_perfrun")
    label = f"too-big-{uuid.uuid4().hex[:8]}"
    for changes, message in (
        ({"max_load": "1000000"}, "Ceiling asks for 1,000,000 users; at most 1,000 from this page "
                                  "(PERF_WEB_MAX_USERS); larger searches start from the command line."),
        ({"budget": "720h"}, "Budget is 720h 00m 00s; at most 1h 00m 00s from this page (PERF_WEB_MAX_DURATION); "
                             "longer searches start from the command line."),
        ({"capacity_model": "rate", "users": "10", "wait": "", "max_load": "1000000"},
         "Ceiling asks for 1,000,000 iterations a second; at most 1,000 from this page (PERF_WEB_MAX_USERS, which "
         "bounds a search's ceiling in iterations a second too); larger searches start from the command line."),
    ):
        page = adder.post(ADD, form(live_server_process.url, label, run_anyway="on", **changes))
        assert page.status_code == 200 and page_errors(page.text) == [message], (changes, page_errors(page.text))
    # Nothing started: no run stored, no start reserved.
    assert not PerfRun.objects.filter(label=label).exists()
    assert not Launch.objects.filter(requested_by=adder.username).exists()


def test_a_search_without_thresholds_is_refused_by_the_page_first(admin, live_server_process) -> None:
    page = admin.post(ADD, form(live_server_process.url, "no-thresholds", thresholds=""))
    # The page's own message alone, before run_perf's parser or checks are asked.
    assert page_errors(page.text) == [
        "Find capacity needs at least one threshold: each step passes while they all hold, e.g. p95<500ms."
    ], page_errors(page.text)
    assert not PerfRun.objects.filter(label="no-thresholds").exists()


def test_the_command_line_the_fields_make_is_shown_before_the_submit(admin, live_server_process) -> None:
    answer = admin.post(COMMAND_LINE, form(live_server_process.url, "my run", thresholds="p95<500ms")).json()
    assert answer["problems"] == [] and answer["command"] == (
        "python manage.py run_perf --find-capacity --start-load=10 --max-users=1000 --step-factor=2 --settle=10s "
        f"--hold=30s --resolution=10% --budget=30m --host={live_server_process.url} --scenario=EventBrowser "
        "--wait=0.05,0.2 '--label=my run' '--threshold=p95<500ms'")
    assert answer["words"][-2:] == ["'--label=my run'", "'--threshold=p95<500ms'"]  # each as a shell reads it
    answer = admin.post(COMMAND_LINE, form(live_server_process.url, "shown", thresholds="", max_load="5000")).json()
    assert answer == {"command": "", "words": [], "problems": [
        "Ceiling asks for 5,000 users; at most 1,000 from this page (PERF_WEB_MAX_USERS); larger searches start from "
        "the command line.",
        "Thresholds: Find capacity needs at least one threshold: each step passes while they all hold, e.g. "
        "p95<500ms."]}
    assert not PerfRun.objects.filter(label__in=("shown", "my run")).exists()  # shown, never started
    assert admin.get(COMMAND_LINE).status_code == 405


def test_only_users_who_may_add_runs_see_the_command_line(orm, live_server_process) -> None:
    viewer = make_user(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_perfrun", content_type__app_label="perf"))
    watcher = AdminClient(live_server_process.root).login(viewer.email, PASSWORD)
    assert watcher.post(COMMAND_LINE, form(live_server_process.url, "x")).status_code == 403
    adder = staff_client(live_server_process.root, "add_perfrun")
    assert adder.post(COMMAND_LINE, form(live_server_process.url, "x")).json()["command"].startswith(
        "python manage.py run_perf --find-capacity ")
    # A guarded field asked for without its permission: refused, as the submit refuses it.
    assert adder.post(COMMAND_LINE, form(live_server_process.url, "x", allow_remote="on")).status_code == 403


# ------------------------------------------------------------------------------------------ end to end


def test_a_search_started_from_the_page_is_stored_as_a_capacity_run(seeded, quiet, admin, live_server_process
                                                                    ) -> None:
    label = f"capacity-{uuid.uuid4().hex[:8]}"
    started = admin.post(ADD, form(live_server_process.url, label, start_load="1", max_load="2", settle="1s",
                                   hold="2s", budget="30s", thresholds="p95<5s", run_anyway="on"))
    run = PerfRun.objects.filter(label=label).first()
    assert run is not None, page_errors(started.text)
    try:
        assert started.url.endswith(f"/admin/perf/perfrun/{run.pk}/change/")
        assert run.kind == "capacity", run.kind
        wait_until_running(label)
    finally:
        stop_from_admin(admin, run)
    run.refresh_from_db()
    # The search as the page asked for it, every setting the contract's, stopped from the admin.
    assert run.kind == "capacity" and run.status == PerfRun.Status.ABORTED, (run.kind, run.status, run.error)
    assert run.capacity["settings"] == {"start": 1.0, "factor": 2.0, "increment": None, "settle": 1.0, "hold": 2.0,
                                        "resolution": 0.1, "max_load": 2.0, "budget": 30.0, "thresholds": ["p95<5s"]}
    assert (run.capacity["model"], run.capacity["status"]) == ("users", "stopped")
