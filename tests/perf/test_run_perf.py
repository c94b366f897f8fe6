"""``run_perf`` end to end: a real command process, a real server process, a real database.

The command runs as a child process (as a user runs it, gevent-patched by manage.py) against
the live server; the run it stores lands in the same database, which the test reads.
"""

import json
import re
import shlex
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.management import load_command_class
from django.core.management.base import CommandError

from perf.cli.invocation import RunRequest, UsageError, check_request
from perf.cli.run import check_reachable
from perf.models import EndpointStats, PerfRun, StatsSample
from platform_pack.clients import api as names
from platform_pack.scenarios import SCENARIOS
from tests.liveserver import ROOT, LiveServer, free_port, run_perf, start_run_perf
from tests.perf.other_host import own_address

# Every endpoint name the eight scenarios use when all goes well.
EXPECTED_NAMES = {
    ("POST", names.LOGIN), ("GET", names.ME), ("POST", names.REGISTER), ("POST", names.VERIFY),
    ("GET", names.EVENT_LIST), ("GET", names.EVENT_DETAIL), ("GET", names.EVENT_BY_SLUG),
    ("GET", names.MY_STATUS), ("POST", names.RSVP), ("GET", names.TIERS), ("POST", names.CHECKOUT),
    ("POST", names.CHECKOUT_PWYC), ("GET", names.QUESTIONNAIRE), ("POST", names.QUESTIONNAIRE_SUBMIT),
    ("GET", names.DASHBOARD_EVENTS), ("GET", names.DASHBOARD_ORGANIZATIONS), ("GET", names.DASHBOARD_TICKETS),
    ("GET", names.DASHBOARD_RSVPS),
}


@pytest.mark.slow
def test_thirty_users_of_eight_tasks_each_reach_every_endpoint_without_failure(
    seeded, live_server_process, orm, tmp_path: Path
):
    label = f"e2e-{uuid.uuid4().hex[:8]}"
    result = run_perf(
        # Counted per user, not timed: on a loaded machine a login takes seconds, and the one QuestionnaireUser of
        # thirty reached its submit once in 12 s, or not at all. 8 tasks each: 15-20 s here, and 5 submits (seed 7).
        seeded, "--users", "30", "--spawn-rate", "15", "--iterations", "8", "--iterations-per-user",
        "--duration", "90s", "--wait", "0.1,0.5",
        "--host", live_server_process.url, "--label", label, "--seed", "7",
        "--csv", str(tmp_path / "out" / "run"), "--json", str(tmp_path / "run.json"),
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / "run.json").read_text())
    counts = {(e["method"], e["name"]): e["num_requests"] for e in summary["entries"] if not e["aggregated"]}
    assert set(counts) >= EXPECTED_NAMES, sorted(EXPECTED_NAMES - set(counts))
    assert all(counts[key] > 0 for key in EXPECTED_NAMES)
    assert summary["failures"] == []
    run = PerfRun.objects.get(label=label)
    assert run.status == PerfRun.Status.COMPLETED
    assert set(run.user_split) == set(SCENARIOS) and sum(run.user_split.values()) == 30
    assert run.total_failures == 0 and run.total_requests == sum(counts.values())
    stored = EndpointStats.objects.filter(run=run, is_aggregated=False).count()
    assert stored == len(counts)
    assert StatsSample.objects.filter(run=run).count() >= 5
    assert run.audit["ok"] is True and "Integrity audit: PASS" in result.stdout
    assert "Server-side breakdown" in result.stdout
    # One kept-alive connection per user, none lost to the server's idle time-out (gunicorn.conf.py).
    total = EndpointStats.objects.get(run=run, is_aggregated=True)
    assert (total.new_connections, total.reopened_connections) == (30, 0), result.stdout[-3000:]
    assert "Connections (opened by the generator" in result.stdout
    assert f"/admin/perf/perfrun/{run.pk}/change/" in result.stdout
    assert (tmp_path / "out" / "run_stats.csv").exists()


@pytest.mark.slow
def test_sigint_mid_run_stores_an_aborted_run_with_its_samples(seeded, live_server_process, orm):
    label = f"sigint-{uuid.uuid4().hex[:8]}"
    process = start_run_perf(
        seeded, "--users", "5", "--spawn-rate", "5", "--duration", "2m", "--wait", "0.1,0.3",
        "--scenario", "EventBrowser", "--host", live_server_process.url, "--label", label,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            run = PerfRun.objects.filter(label=label).first()
            if run and StatsSample.objects.filter(run=run).count() >= 2:
                break
            time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait()

    assert process.returncode == 130  # 128 + SIGINT, as a shell reports it: an aborted run is no pass

    run = PerfRun.objects.get(label=label)
    assert run.status == PerfRun.Status.ABORTED
    assert run.total_requests > 0 and run.actual_duration < 60
    assert StatsSample.objects.filter(run=run).count() >= 2
    assert EndpointStats.objects.filter(run=run, name=names.EVENT_LIST).exists()
    assert f"Run {run.pk} aborted" in stdout


@pytest.mark.slow
@pytest.mark.once  # by hand: the exit codes of failed requests (the email path); the server's database is incidental
def test_failed_requests_set_the_exit_code(seeded, live_server_process, tmp_path: Path):
    """Requests that fail (here: registration's email never arrives, no Mailpit) give exit code 1,
    or the one asked for, and are recorded as ``email_verification_wait``."""
    server = _server_without_test_tokens(seeded, tmp_path)
    env = {**seeded, "LOCUST_MAILPIT_URL": f"http://127.0.0.1:{free_port()}",
           "LOCUST_EMAIL_POLL_TIMEOUT": "0.5", "LOCUST_EMAIL_POLL_INTERVAL": "0.1"}
    args = ("--users", "1", "--spawn-rate", "1", "--duration", "3s", "--wait", "0.1,0.2",
            "--scenario", "NewUserRegistration", "--host", server.url, "--no-save")
    # The two runs side by side: one run's length, not two.
    default = start_run_perf(env, *args, "--json", str(tmp_path / "run.json"))
    chosen = start_run_perf(env, *args, "--exit-code-on-error", "7")
    try:
        _, default_err = default.communicate(timeout=120)
        chosen.communicate(timeout=120)
    finally:
        for process in (default, chosen):
            process.kill()
            process.wait()
        server.stop()

    assert default.returncode == 1, default_err[-2000:]
    assert chosen.returncode == 7
    failures = json.loads((tmp_path / "run.json").read_text())["failures"]
    assert {(f["method"], f["name"]) for f in failures} == {(names.EMAIL_WAIT_METHOD, names.EMAIL_WAIT)}


def _server_without_test_tokens(env: dict[str, str], tmp_path: Path) -> LiveServer:
    server = LiveServer(env={**env, "SYSTEM_TESTING": "False"}, port=free_port(), log_path=tmp_path / "server.log")
    server.start(workers=1, threads=2)
    return server


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--users", "0"), "--users must be between 1 and 100,000, got 0"),
        (("--users", "2000000000"), "--users must be between 1 and 100,000, got 2000000000"),
        (("--spawn-rate", "0"), "--spawn-rate must be a finite number greater than 0, got 0"),
        (("--spawn-rate", "inf"), "--spawn-rate must be a finite number greater than 0, got inf"),
        (("--rate", "inf"), "--rate must be a finite number greater than 0, got inf"),
        (("--stop-timeout", "nan"), "--stop-timeout must be 0 or at least 0.001 seconds, got nan"),
        # Absurd values the web form once took: a spawn every 1e300 s, all at once, a think time longer than any run.
        (("--spawn-rate", "1e-300"), "--spawn-rate 1e-300 a second is one every 1e+300 s, longer than the longest"),
        (("--spawn-rate", "1e308"), "--spawn-rate must be at most 100,000 a second, got 1e+308"),
        (("--wait", "0,1e300"), "--wait 1e+300 s is longer than the longest run, 30 days"),
        (("--wait", "0,1e-9"), "--wait must be 0 or at least 0.001 seconds, got 1e-09"),
        (("--duration", "0.0001s"), "duration must be at least 1 ms"),
        (("--seed", str(2**64)), "--seed must fit in 64 bits"),
        (("--label", "x" * 201), "--label is 201 characters long; the most is 200"),
        (("--duration", "99999999999999999999h"), "is longer than the most allowed, 30 days"),
        (("--exit-code-on-error", "256"), "--exit-code-on-error must be between 1 and 255"),
        (("--exit-code-on-error", "0"), "--exit-code-on-error must be between 1 and 255"),
        (("--processes", "1000"), "--processes must be between 1 and"),
        (("--host", "http://perf:s3cret@127.0.0.1:8000/api"), "--host must not contain credentials"),
        # A CR LF in the host would put a header line of its own into every request: refused, shown escaped.
        (("--host", "http://127.0.0.1:8200/api/healthcheck?x=\r\nX-Evil: 1"),
         "bad --host 'http://127.0.0.1:8200/api/healthcheck?x=\\r\\nX-Evil: 1': it holds a control character"),
        (("--host", "http://127.0.0.1:8200/api\rX-Evil: 1"), "it holds a control character or a space"),
        (("--user", "5"), "unrecognized arguments: --user 5"),
        (("--duration", "5x"), "bad duration"),
        (("--scenario", "NoSuchUser"), "unknown scenario 'NoSuchUser'; valid scenarios: EventBrowser"),
        (("--wait", "3,1"), "--wait minimum 3 is greater than maximum 1"),
        (("--host", "http://10.1.2.3:8000/api"), "not a loopback address"),
        (("--host", "http://10.1.2.3:8000/api", "--allow-remote"),
         "http://10.1.2.3:8000/api is not in PERF_ALLOWED_HOSTS (empty); add its host name there"),
        (("--host", "http://127.0.0.1:{closed}/api"), "cannot reach http://127.0.0.1:{closed}/api/healthcheck"),
        # Every echo of what was typed is escaped: a CR LF would end the line and start a forged one.
        (("--tags", "a\r\nb"), "no task to run: none is selected by --tags a\\r\\nb;"),
        (("--tags", "x", "--exclude-tags", "a\r\nb"), "none is selected by --tags x and --exclude-tags a\\r\\nb;"),
        (("--shape", "step:add=1\r\nx"), "--shape step: add=1\\r\\nx: add must be a whole number of users"),
        (("--scenario", "a\r\nb"), "unknown scenario 'a\\r\\nb'; valid scenarios"),
        (("--rate-stages", "1m:5\r\nx"), "--rate-stages stage 1 ('1m:5\\r\\nx'): the target must be a rate"),
        (("--threshold", "p95<1s\r\nx"), "bad --threshold 'p95<1s\\r\\nx': p95 needs a time"),
        (("--plan", "a\r\nb"), "unknown --plan 'a\\r\\nb'"),
        (("--json", "manage.py/a\r\nb/run.json"),
         "--json manage.py/a\\r\\nb/run.json: manage.py is a file, so the folder manage.py/a\\r\\nb cannot be made"),
        (("--label", "bad\udcff\r\n\x1b[2J"), "--label 'bad\\xff\\r\\n\\x1b[2J' is not valid UTF-8 text"),
        (("a\r\nb",), "unrecognized arguments: a\\r\\nb (see --help)"),
    ],
)
def test_bad_input_is_one_line_usage_error(seeded, args, message):
    closed = str(free_port())
    args = tuple(arg.replace("{closed}", closed) for arg in args)
    result = run_perf(seeded, "--duration", "5s", *args, "--no-save", timeout=60)

    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(error_lines) == 1, result.stderr
    assert error_lines[0].isprintable(), error_lines[0]  # no raw control character: no CR, no terminal escape
    assert message.replace("{closed}", closed) in error_lines[0]
    assert "Traceback" not in result.stderr
    assert "s3cret" not in result.stderr + result.stdout


# --- the open model's shapes ---------------------------------------------------------------------------------------


@pytest.fixture
def rate_shape(settings) -> str:
    """A project's shape whose kind is "rate" (none of the built-ins is), under the name ``arrivals``."""
    settings.PERF_SHAPES = {"arrivals": "tests.perf.rate_shape_pack.Arrivals"}
    return "arrivals:rate=5,length=10s"


def test_a_rate_shape_is_the_open_model_in_one_process(rate_shape):
    """A shape of arrivals is refused where --rate-stages is (split over workers or shards, each would run the
    rate as users), and takes the open model's options, not the closed one's."""
    setup = check_request(RunRequest(shape=rate_shape, users=20, spawn_rate=20.0, save=False, audit=False))
    assert setup.plan.profile is not None and setup.plan.profile.kind == "rate"
    assert (setup.plan.users, setup.processes) == (20, 1)  # -u is the pool, as with --rate-stages
    assert check_request(RunRequest(shape="step:add=1,every=1s,to=2", processes="2", save=False,
                                    audit=False)).processes == 2  # a shape of users is split as ever
    refused = [
        ({"processes": "2"}, "--processes and --shape arrivals (an arrival rate) cannot be combined; choose one"),
        ({"distributed": "celery", "save": True},
         "--distributed and --shape arrivals (an arrival rate) cannot be combined; choose one"),
        ({"rate": 5.0}, "--shape sets the arrival rate over time: drop --rate"),
        ({"wait": "0.1,0.2"}, "--wait does not apply with --shape: iterations arrive on the schedule"),
    ]
    for options, message in refused:
        with pytest.raises(UsageError) as raised:
            check_request(RunRequest(**{"shape": rate_shape, "save": False, "audit": False, **options}))
        assert message in str(raised.value), options


# --- the health check stays on the host it was given ---------------------------------------------------------------


@contextmanager
def redirecting_server(location: str) -> Iterator[tuple[str, list[str]]]:
    """A loopback server answering every GET with a 302 to ``location`` + the path asked; (its root, the paths
    asked so far)."""
    asked: list[str] = []

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            asked.append(self.path)
            self.send_response(302)
            self.send_header("Location", location + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's name)
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.once  # by hand: reaches no database; what it tests cannot differ by it
def test_the_health_check_does_not_follow_a_redirect_to_another_host(live_env, settings):
    """The host is checked to be this machine before anything is sent, but its answer could still send the
    check elsewhere: a 302 to another host (here this machine's own non-loopback address, with a listener that
    records any connection) is an answer, not a place to go."""
    address = own_address()
    listener = socket.create_server((address, 0))
    listener.settimeout(0.2)
    try:
        with redirecting_server(f"http://{address}:{listener.getsockname()[1]}") as (root, asked):
            result = run_perf(live_env, "--host", f"{root}/api", "--duration", "5s", "--no-save", "--no-audit",
                              timeout=60)
            settings.PERF_HEALTHCHECK_PATH = ""  # without a health-check path, any answer shows a server is there
            check_reachable(f"{root}/api")
        with pytest.raises(TimeoutError):
            listener.accept()  # not one connection
    finally:
        listener.close()
    assert asked == ["/api/healthcheck", "/api/"]
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        f"CommandError: {root}/api/healthcheck answered 302, not 200; is this the API root? pass --host"]


# --- the README's commands -----------------------------------------------------------------------------------------


def readme_section(title: str) -> str:
    """The README's section under the heading ``title``, to the next heading of any level."""
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n### {title}\n") + len(f"\n### {title}\n")
    following = re.search(r"^#{1,6} ", text[start:], flags=re.MULTILINE)
    return text[start:start + following.start()] if following else text[start:]


def test_every_command_of_the_readmes_load_profiles_passes_run_perfs_checks():
    """Each standard test's commands (the table's every code span, its options alone or after run_perf) and any
    other run_perf command of the section, read by run_perf's own parser and checked as a run would be: a
    command the README gives that exits 2 teaches the wrong thing."""
    section = readme_section("Load profiles")
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Test |")]
    assert len(rows) == 6 and all("`run_perf " in row for row in rows), rows  # the six standard tests
    spans = [span.removeprefix("run_perf ") for row in rows for span in re.findall(r"`([^`]+)`", row)]
    spans += [span for span in re.findall(r"`run_perf ([^`]+)`", section) if span not in spans]
    parser = load_command_class("perf", "run_perf").create_parser("manage.py", "run_perf")
    refused = []
    for command in spans:
        try:
            options = vars(parser.parse_args([*shlex.split(command), "--no-save", "--no-audit"]))
            check_request(RunRequest.from_options(options))
        except (CommandError, UsageError) as exc:
            refused.append(f"run_perf {command}: {exc}")
    assert refused == []
