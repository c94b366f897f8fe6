"""The New run page's Shape and Rate stages, over real HTTP as a browser without JavaScript sends them: a shape with
parameters becomes ``--shape=NAME:…`` on the command line the page starts and the run follows it; bad parameters
give run_perf's own message (perf.cli.profiles.parse_shape) in the page's words; the page's limits hold for a
shape's peak and length; two load profiles at once are refused with one message. A project's own shape
(PERF_SHAPES) is checked on the form itself, in this process, where the setting can be changed.
"""

import html
import uuid

import pytest

from perf.cli.profiles import parse_shape, shape_parameters
from perf.load.shapes import BUILTIN_SHAPES
from perf.models import PerfRun
from perf.options import MAX_RATE, parse_stages
from perf.web import launch
from perf.web.run_control import NewRunForm
from tests.adminclient import AdminClient
from tests.perf.builders import page_errors, poll, superuser

ADD = "/admin/perf/perfrun/add/"


def form(host: str, label: str, **changes: str) -> dict[str, str]:
    """The page's fields for a shaped run: Users, Spawn rate and Duration emptied, as the page's script does."""
    fields = {"users": "", "spawn_rate": "", "duration": "", "stages": "", "rate_stages": "", "shape": "step",
              "shape_parameters": "add=1, every=2s ,to=2", "host": host, "wait": "0.05,0.2", "label": label,
              "scenarios": "EventBrowser"}
    fields.update(changes)
    return fields


@pytest.fixture
def admin(orm, live_server_process) -> AdminClient:
    return AdminClient(live_server_process.root).login(*superuser())


def finished(pk: int, timeout: float = 60) -> PerfRun:
    return poll(lambda: PerfRun.objects.filter(pk=pk).exclude(status=PerfRun.Status.RUNNING).first(),
                f"run {pk} did not end", timeout)


def test_the_page_offers_each_shape_with_its_parameters_and_defaults_from_the_class(admin) -> None:
    page = html.unescape(admin.get(ADD).text)
    for name, cls in BUILTIN_SHAPES.items():
        assert f'<option value="{name}">{name}</option>' in page
        item = page.split(f'<li data-shape="{name}" data-sets="users spawn_rate duration">')[1].split("</li>")[0]
        for parameter in shape_parameters(cls):
            shown = f"{parameter.name}={parameter.kind.upper()}"
            assert (shown if parameter.required else f"{shown} ({parameter.default_text})") in item, item
    assert "spike: base=USERS (10), peak=USERS (100), before=DURATION (1m), ramp=DURATION (10s)" in page
    assert "soak: users=USERS, ramp=DURATION (5m), hold=DURATION (4h), down=DURATION (1m)" in page


def test_a_shape_with_parameters_becomes_the_command_lines_shape_and_the_run_follows_it(
        admin, live_server_process, request) -> None:
    request.getfixturevalue("seeded")
    request.getfixturevalue("quiet")
    label = f"shaped-{uuid.uuid4().hex[:8]}"
    started = admin.post(ADD, form(live_server_process.url, label))
    run = PerfRun.objects.filter(label=label).first()
    assert run is not None, page_errors(started.text)
    assert started.url.endswith(f"/admin/perf/perfrun/{run.pk}/change/")
    # The launched command line: --shape with the spaces dropped, and none of -u, -r, -t (the shape sets them).
    assert (run.options["shape"], run.options["users"], run.options["spawn_rate"], run.options["duration"]) == (
        "step:add=1,every=2s,to=2", None, None, None)
    assert run.profile["source"] == "shape" and run.profile["shape"] == "step"
    assert run.profile["params"] == {"add": 1, "every": 2, "to": 2}
    assert [span["end"] for span in run.profile["spans"]] == [2, 4]
    run = finished(run.pk)
    assert run.status == PerfRun.Status.COMPLETED, (run.status, run.error)
    assert run.users == 2 and run.total_requests > 0 and 3 < run.duration < 10, (run.users, run.duration)


@pytest.mark.parametrize("parameters", ["add=1,every=2,to=2", "add=1.5,every=2s,to=2", "add=1,every=2s",
                                        "add=1,every=2s,to=2,by=3", "add", "add=0,every=2s,to=2",
                                        "add=1,every=2s,to=200000"])
def test_bad_parameters_give_run_perfs_message_in_the_pages_words(admin, live_server_process, parameters) -> None:
    with pytest.raises(ValueError) as refused:
        parse_shape(f"step:{parameters}")
    expected = str(refused.value).replace("--shape", "Shape") + "."
    page = admin.post(ADD, form(live_server_process.url, "bad-shape", shape_parameters=parameters))
    assert page.status_code == 200 and page_errors(page.text) == [expected], (expected, page_errors(page.text))
    assert "--" not in page.text.split('id="new-run"')[1].split("</form>")[0].replace("<!--", "").replace("-->", "")
    assert not PerfRun.objects.filter(label="bad-shape").exists()


def test_a_shape_keeps_to_the_pages_limits(admin, live_server_process) -> None:
    cases = [
        ("step", "add=500,every=10s,to=1500", "Shape step asks for 1,500 users; at most 1,000 from this page "
                                              "(PERF_WEB_MAX_USERS); larger runs start from the command line."),
        ("soak", "users=10", "Shape soak lasts 4h 06m 00s in all; at most 1h 00m 00s from this page "
                             "(PERF_WEB_MAX_DURATION); longer runs start from the command line."),
        ("spike", "peak=1001,hold=10s", "Shape spike asks for 1,001 users; at most 1,000 from this page "
                                        "(PERF_WEB_MAX_USERS); larger runs start from the command line."),
    ]
    for shape, parameters, message in cases:
        page = admin.post(ADD, form(live_server_process.url, "shape-limits", shape=shape, shape_parameters=parameters))
        assert page_errors(page.text) == [message], page_errors(page.text)
    # Within them: soak's hold and ramps shortened to fit the hour.
    fits = NewRunForm({**form(live_server_process.url, "x", shape="soak", shape_parameters="users=10,ramp=1m,hold=50m"),
                       "scenarios": ["EventBrowser"]})
    assert fits.is_valid(), fits.errors
    assert not PerfRun.objects.filter(label="shape-limits").exists()


def test_two_load_profiles_at_once_are_refused_with_one_message(admin, live_server_process) -> None:
    for given, message in (
        ({"stages": "30s:2,30s:0"}, "Stages and Shape cannot be combined: give one load profile."),
        ({"rate_stages": "30s:2"}, "Rate stages and Shape cannot be combined: give one load profile."),
        ({"stages": "30"}, "Stages and Shape cannot be combined: give one load profile."),  # bad stages: still one
        ({"stages": "30s:2", "shape_parameters": "add=x"}, "Stages and Shape cannot be combined: give one load "
                                                           "profile."),
        ({"stages": "30s:2", "shape": "", "rate_stages": "1m:3"}, "Stages and Rate stages cannot be combined: give "
                                                                  "one load profile."),
    ):
        page = admin.post(ADD, form(live_server_process.url, "two-profiles", **given))
        assert page_errors(page.text) == [message], (given, page_errors(page.text))
    assert not PerfRun.objects.filter(label="two-profiles").exists()


def test_the_fields_a_shape_sets_are_refused_beside_it_and_parameters_need_a_shape(admin, live_server_process) -> None:
    message = ("With Shape step, the shape sets the users and the run's length: leave Users, Spawn rate and Duration "
               "empty.")
    for given in ({"users": "2", "spawn_rate": "10", "duration": "3m"}, {"users": "2"}, {"spawn_rate": "1"},
                  {"duration": "3m"}):
        page = admin.post(ADD, form(live_server_process.url, "shape-both", **given))
        assert page_errors(page.text) == [message], (given, page_errors(page.text))
    page = admin.post(ADD, form(live_server_process.url, "shape-both", shape="", users="2", spawn_rate="1",
                                duration="1m"))
    needs_a_shape = "Shape parameters need a Shape: pick one, or leave them empty."
    assert page_errors(page.text) == [needs_a_shape], page_errors(page.text)
    assert not PerfRun.objects.filter(label="shape-both").exists()


def test_a_projects_own_shape_is_offered_with_its_parameters_and_bounded_by_users_and_duration(orm, settings) -> None:
    """``tests.perf.shapes_pack.Pulse`` says its peak (``high``) but lays out no stages, so its length is not
    known ahead: the page asks for Duration, which bounds the run, and refuses Users and Spawn rate."""
    settings.PERF_SHAPES = {"pulse": "tests.perf.shapes_pack.Pulse"}
    fields = form("http://127.0.0.1:8000/api", "pulse", shape="pulse", shape_parameters="high=2,period=1s")

    def bound(**changes: str) -> NewRunForm:
        return NewRunForm({**fields, **changes, "scenarios": ["EventBrowser"]})

    pulse = bound().shapes["pulse"]
    assert pulse.sets == ("users", "spawn_rate")
    assert pulse.help == "pulse: high=USERS, low=USERS (0), period=DURATION (1s), length=DURATION (4s)."
    assert bound().errors == {"duration": ["Shape pulse does not say ahead how long it lasts: give Duration, the "
                                           "run's length."]}
    assert bound(duration="2h").errors == {"duration": ["Duration is at most 1h 00m 00s from this page "
                                                        "(PERF_WEB_MAX_DURATION); longer runs start from the command "
                                                        "line."]}
    assert bound(duration="6s", shape_parameters="high=1001").errors == {"shape_parameters": [
        "Shape pulse asks for 1,001 users; at most 1,000 from this page (PERF_WEB_MAX_USERS); larger runs start from "
        "the command line."]}
    assert bound(duration="6s", users="3").errors == {"shape": [
        "With Shape pulse, the shape sets the users: leave Users and Spawn rate empty."]}
    good = bound(duration="6s")
    assert good.is_valid(), good.errors
    args = good.arguments()
    assert args[:2] == ["--shape=pulse:high=2,period=1s", "--duration=6s"]
    request = launch.check_arguments(args)  # run_perf's own parser and checks take the line the page made
    assert (request.shape, request.duration, request.users) == ("pulse:high=2,period=1s", "6s", None)


def test_a_broken_perf_shapes_leaves_the_built_ins_offered(orm, settings) -> None:
    settings.PERF_SHAPES = {"gone": "tests.perf.shapes_pack.Gone"}
    page = NewRunForm()
    assert list(page.shapes) == list(BUILTIN_SHAPES)
    assert "Only the built-ins now: PERF_SHAPES['gone'] = 'tests.perf.shapes_pack.Gone' cannot be imported" in \
        page.fields["shape"].help_text


def test_rate_stages_start_an_open_model_run_on_the_users_pool(admin, live_server_process, request) -> None:
    request.getfixturevalue("seeded")
    request.getfixturevalue("quiet")
    label = f"rate-staged-{uuid.uuid4().hex[:8]}"
    started = admin.post(ADD, form(live_server_process.url, label, shape="", shape_parameters="", wait="",
                                   rate_stages="2s:6, 2s:0", users="3"))
    run = PerfRun.objects.filter(label=label).first()
    assert run is not None, page_errors(started.text)
    assert (run.options["rate_stages"], run.options["users"], run.options["spawn_rate"]) == ("2s:6,2s:0", 3, None)
    assert run.profile["kind"] == "rate" and [span["end"] for span in run.profile["spans"]] == [2, 4]
    run = finished(run.pk)
    assert run.status == PerfRun.Status.COMPLETED and run.total_requests > 0, (run.status, run.error)


@pytest.mark.parametrize("rate_stages", ["30:4", "1m:-3", "1m:0,30s:0", "1m", f"1m:{MAX_RATE * 2:g}"])
def test_bad_rate_stages_give_the_command_lines_message_in_the_pages_words(admin, live_server_process,
                                                                          rate_stages) -> None:
    with pytest.raises(ValueError) as refused:
        parse_stages(rate_stages, "--rate-stages", whole=False, most=MAX_RATE)
    expected = str(refused.value).replace("--rate-stages", "Rate stages") + "."
    page = admin.post(ADD, form(live_server_process.url, "bad-rate", shape="", shape_parameters="", users="3",
                                rate_stages=rate_stages))
    assert page_errors(page.text) == [expected], (expected, page_errors(page.text))


def test_rate_stages_need_their_pool_and_set_the_rest(admin, live_server_process) -> None:
    def refused(**changes: str) -> list[str]:
        fields = {"shape": "", "shape_parameters": "", "rate_stages": "30s:2", **changes}
        return page_errors(admin.post(ADD, form(live_server_process.url, "rate-fields", **fields)).text)

    assert refused() == ["With Rate stages, Users is the pool the iterations run on: give it."]
    assert refused(users="3", duration="1m") == refused(users="3", spawn_rate="2") == [
        "With Rate stages, the stages set the arrival rate and the run's length: leave Spawn rate and Duration empty."]
    assert refused(users="3", rate_stages="50m:2,20m:0") == [
        "Rate stages last 1h 10m 00s in all; at most 1h 00m 00s from this page (PERF_WEB_MAX_DURATION); longer runs "
        "start from the command line."]
    # Think time: run_perf's own refusal, in the page's words.
    assert refused(users="3", wait="0.1,0.2") == [
        "Think time does not apply with Rate stages: iterations arrive on the schedule, without think time"]
    assert not PerfRun.objects.filter(label="rate-fields").exists()
