"""What the perf tests build over and over: ``run_perf`` arguments, settings modules, small scenarios, the
waits for a run that another process stores, and a run stored the way ``run_perf`` stores it.

Each of these was once copied from test file to test file, and the copies had begun to drift (one wait polled
every 0.05 s, its copy every 0.2 s, a third checked another column). One copy each, here, so that a fix reaches
every test. Figures a single test asserts on (its registries, the run fields it compares) stay in that test.
"""

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from perf.load.stats import StatsRegistry
from perf.load.user import StopUser, User, constant, task
from perf.models import EndpointStats, PerfRun, StatsSample
from perf.store.persist import add_samples, finish_run, start_run
from tests.adminclient import AdminClient
from tests.factories import PASSWORD, make_user, unique
from tests.liveserver import ROOT

T = TypeVar("T")


# ------------------------------------------------------------------------------------------ run_perf arguments


def browse_args(url: str, label: str | None, duration: str | None, *extra: str | bytes, users: int = 5,
                spawn_rate: float = 10, wait: str = "0.05,0.2", audit: bool = False) -> tuple[str | bytes, ...]:
    """A read-only load (EventBrowser) on ``url``: its requests never wait for the database's write lock, so a
    test can hold that lock, signal the process or stop the run without the load itself being what fails.
    ``label`` and ``duration`` None leave the option out. Without ``audit`` the integrity audit is skipped, so
    another test's broken invariant cannot change the exit code. ``extra`` may be bytes, as a shell passes
    arguments that are not UTF-8."""
    args: list[str | bytes] = ["--users", str(users), "--spawn-rate", f"{spawn_rate:g}"]
    if duration is not None:
        args += ["--duration", duration]
    args += ["--wait", wait, "--scenario", "EventBrowser", "--host", url]
    if label is not None:
        args += ["--label", label]
    if not audit:
        args.append("--no-audit")
    return (*args, *extra)


def stoppable_args(url: str, label: str, *extra: str) -> tuple[str | bytes, ...]:
    """A run long enough to be running when Stop is pressed (or its process killed) on a busy machine; it never
    runs that long."""
    return browse_args(url, label, "3m", *extra, users=4)


def settings_module(folder: Path, **names: object) -> dict[str, str]:
    """A settings module that is the repository's with some PERF_* names changed; the environment that selects
    it (merge it over the test's own)."""
    lines = ["from settings_perf import *  # noqa: F403"]
    lines += [f"{name} = {value!r}" for name, value in names.items()]
    (folder / "changed_settings.py").write_text("\n".join(lines) + "\n")
    return {"PYTHONPATH": f"{folder}:{ROOT}", "DJANGO_SETTINGS_MODULE": "changed_settings"}


def superuser() -> tuple[str, str]:
    """A superuser's login, made for the test: no seeded account may open the admin (their password is public)."""
    return make_user(is_staff=True, is_superuser=True).username, PASSWORD


# ------------------------------------------------------------------------------------------ a run_perf process


def finish(process: subprocess.Popen, timeout: float = 60) -> tuple[str, str]:
    """The process's output once it has exited; killed if it outlives ``timeout`` (which then raises)."""
    try:
        return process.communicate(timeout=timeout)
    finally:
        process.kill()
        process.wait()


def lines_of(text: str) -> list[str]:
    """The lines of ``text`` that say something: what "one clear line" is counted on."""
    return [line for line in text.splitlines() if line.strip()]


def poll(find: Callable[[], T | None], what: str, timeout: float = 60, every: float = 0.2) -> T:
    """``find()`` once it gives something, asked every ``every`` s; an AssertionError saying ``what`` was not
    seen within ``timeout`` s otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found is not None:
            return found
        time.sleep(every)
    raise AssertionError(f"{what} within {timeout:g} s")


def wait_for_row(label: str, timeout: float = 60) -> PerfRun:
    """The run's ``running`` row, written before its first request."""
    return poll(lambda: PerfRun.objects.filter(label=label).first(), f"run {label} wrote no row", timeout, 0.05)


def wait_for_requests(label: str, timeout: float = 60) -> PerfRun:
    """The stored run once it has a sample with requests in it."""
    def sampled() -> PerfRun | None:
        run = PerfRun.objects.filter(label=label).first()
        return run if run and StatsSample.objects.filter(run=run, total_requests__gt=0).exists() else None
    return poll(sampled, f"run {label} stored no sample with requests", timeout)


def wait_until_running(label: str, timeout: float = 60) -> PerfRun:
    """The run once its process has written progress with requests in it (its heartbeat included)."""
    return poll(lambda: PerfRun.objects.filter(label=label, total_requests__gt=0, heartbeat_at__isnull=False).first(),
                f"run {label} wrote no progress with requests", timeout)


# ------------------------------------------------------------------------------------------ a stored run

# The fields of a stored run a test does not care about: a small closed load of the repository's backend. A test
# passes the fields its assertions read, so that what it asserts is written where it is asserted.
RUN_FIELDS: dict[str, Any] = {
    "host": "http://127.0.0.1:8000/api", "users": 5, "spawn_rate": 1.0, "planned_duration": 60.0,
    "scenarios": ["EventBrowser"],
}
# What run_perf only knows once the run is over, so gives to finish_run, not start_run (perf/cli/run.py).
END_FIELDS = frozenset({"error", "thresholds", "open_model", "audit", "cpu_warning", "max_cpu_percent",
                        "stop_reason", "finished_at"})


def stop_from_admin(admin: Any, run: PerfRun, timeout: float = 30) -> PerfRun:
    """Press Stop on ``run`` as ``admin`` (an AdminClient) and wait until it is no longer running; the row as it
    ended (the caller asserts how)."""
    admin.post(f"/admin/perf/perfrun/{run.pk}/stop/")
    deadline = time.monotonic() + timeout
    while PerfRun.objects.get(pk=run.pk).status == PerfRun.Status.RUNNING and time.monotonic() < deadline:
        time.sleep(0.2)
    return PerfRun.objects.get(pk=run.pk)


def stored_run(stats: StatsRegistry | None = None, *, status: str = "completed", duration: float = 10.0,
               samples_while_running: int = 0, **fields: Any) -> PerfRun:
    """A run stored through the calls run_perf makes (perf.store.persist): ``start_run`` with ``RUN_FIELDS``
    overridden by ``fields``, the first ``samples_while_running`` samples of ``stats`` as the store's thread
    adds them, then ``finish_run`` with ``status``, ``duration`` and the ``END_FIELDS`` among ``fields``.

    Without ``stats`` the run is left ``running``, as its process leaves it before the end: every field is then
    written at the start. The label is unique unless given; the user split, unless given, puts every user on
    the one scenario, as run_perf would.
    """
    values = {"label": unique("run"), **RUN_FIELDS, **fields}
    if "user_split" not in fields and len(values["scenarios"]) == 1:
        values["user_split"] = {values["scenarios"][0]: values["users"]}
    at_end = {name: values.pop(name) for name in END_FIELDS & set(values)} if stats is not None else {}
    run = start_run(**values)
    if stats is None:
        if samples_while_running:
            raise ValueError("stored_run(): samples_while_running needs the stats they come from")
        return run
    add_samples(run, stats.samples[:samples_while_running])
    return finish_run(run, stats, status, duration, **at_end)


# ------------------------------------------------------------------------------------------ scenarios


class HealthChecker(User):
    """The cheapest request there is, again and again: load that measures the engine, not the backend."""

    @task
    def healthcheck(self) -> None:
        self.client.get("/healthcheck")


class Quitter(User):
    """Gives up in ``on_start``: a user that never runs a task, nor sends a request."""

    wait_time = constant(0.01)

    def on_start(self) -> None:
        raise StopUser

    @task
    def healthcheck(self) -> None:
        self.client.get("/healthcheck")


# ------------------------------------------------------------------------------------------ Stop from the admin
# (shared by test_run_control and test_distributed)


def stop_and_check(admin: AdminClient, process, label: str) -> PerfRun:
    """Press Stop; the load ends within 2 s of the request and the run is stored aborted with its data."""
    run = wait_until_running(label)
    response = admin.post(f"/admin/perf/perfrun/{run.pk}/stop/")
    assert response.status_code == 200 and f"/admin/perf/perfrun/{run.pk}/change/" in response.url
    stdout, stderr = process.communicate(timeout=60)
    run.refresh_from_db()
    assert run.status == PerfRun.Status.ABORTED, stdout[-2000:] + stderr[-2000:]
    assert run.stop_reason == f"stopped from the admin by {admin.username}"
    assert run.stop_requested_by == admin.username and run.total_requests > 0
    last_request = max(row.last_request_at for row in EndpointStats.objects.filter(run=run, is_aggregated=False))
    assert (last_request - run.stop_requested_at).total_seconds() < 2.0
    assert f"Stopped early: {run.stop_reason}" in stdout
    return run
