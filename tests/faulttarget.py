"""The fault target (scripts/fault_target.py) as a real process, and perfkit's engine driven against it.

The engine runs in a child process patched by gevent first, as ``manage.py run_perf`` runs it: in the test
process the standard library is not patched, so the transport would take its blocking-socket path, users
would take turns instead of overlapping, and no request could be in flight when a run ends. The child
builds the run from the same pieces a test would (``LoadRunner``, ``RunPlan``, ``StatsRegistry``,
``HttpSession`` with a ``RequestLog``), with a scenario class named by its dotted path (a test module's
own), and writes the run's ``--json`` summary; it can pause and resume the target at set moments of the
run, so a pause lands where the test means it to whatever the child's start-up took, and it can keep its own
event loop busy for a moment, as a burst of work by many users would.
"""

import argparse
import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scripts.stack_services import die_with_parent

ROOT = Path(__file__).resolve().parent.parent

DRIVER = (
    "from gevent import monkey; monkey.patch_all()\n"
    "import sys; sys.path.insert(0, {root!r})\n"
    "from tests.faulttarget import drive_main; sys.exit(drive_main(sys.argv[1:]))\n"
)


@dataclass
class RunningTarget:
    """A fault target process on 127.0.0.1; ``url`` is its API root, ``access_log`` the log it appends to."""

    process: subprocess.Popen
    port: int
    access_log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> int:
        """Resume it if paused, then SIGTERM; its exit code (it must stop cleanly within a few seconds)."""
        if self.process.poll() is None:
            self.resume()
            self.process.terminate()
            try:
                return self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise RuntimeError("the fault target did not stop within 10 s of SIGTERM") from None
        return self.process.returncode


@contextmanager
def fault_target(folder: Path, *options: str) -> Iterator[RunningTarget]:
    """``scripts/fault_target.py OPTIONS`` on a free port, logging to ``folder/access.log``, stopped afterwards.

    Its own output goes to ``folder/fault_target.out`` (a pipe nobody read could fill and stall it)."""
    access_log, output = folder / "access.log", folder / "fault_target.out"
    with output.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "fault_target.py"), "--port", "0", "--access-log",
             str(access_log), *options],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True, preexec_fn=die_with_parent,
        )
    deadline = time.monotonic() + 15
    while not output.read_text().startswith("listening on ") or not output.read_text().endswith("\n"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError(f"the fault target did not start: {output.read_text()[-2000:]}")
        time.sleep(0.02)
    first = output.read_text().splitlines()[0]
    target = RunningTarget(process, int(first.rsplit(":", 1)[1]), access_log)
    try:
        yield target
    finally:
        target.stop()


@dataclass(frozen=True)
class Drive:
    """One engine run against a target: what to run and where its two files go."""

    scenario: str  # "module:Class"
    url: str
    users: int
    duration: float
    timeout: float
    request_log: Path
    summary: Path
    wait: tuple[float, float] = (0.0, 0.05)
    spawn_rate: float = 100.0
    stop_timeout: float = 0.0
    seed: int = 17
    pause: tuple[int, float, float] | None = None  # (target pid, at s into the run, for s)
    busy: tuple[float, float] | None = None  # the event loop kept busy (at s into the run, for s)


def drive(run: Drive, limit: float = 60.0) -> subprocess.CompletedProcess:
    """Run ``run`` in a gevent-patched child process to its end; its output is captured."""
    args = ["--scenario", run.scenario, "--url", run.url, "--users", str(run.users), "--duration", str(run.duration),
            "--timeout", str(run.timeout), "--request-log", str(run.request_log), "--summary", str(run.summary),
            "--wait", f"{run.wait[0]},{run.wait[1]}", "--spawn-rate", str(run.spawn_rate),
            "--stop-timeout", str(run.stop_timeout), "--seed", str(run.seed)]
    if run.pause is not None:
        pid, at, length = run.pause
        args += ["--pause", f"{pid},{at},{length}"]
    if run.busy is not None:
        args += ["--busy", f"{run.busy[0]},{run.busy[1]}"]
    return subprocess.run([sys.executable, "-c", DRIVER.format(root=str(ROOT)), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=limit, preexec_fn=die_with_parent)


def drive_main(argv: list[str]) -> int:
    """The child's side of ``drive``: one ``LoadRunner`` run, its summary written as ``run_perf --json`` does."""
    import gevent

    from perf.load.request_log import RequestLog
    from perf.load.runner import LoadRunner, RunPlan
    from perf.load.session import HttpSession
    from perf.load.stats import StatsRegistry
    from perf.reports.description import RunDescription
    from perf.reports.summary_json import summary_json, write_json

    parser = argparse.ArgumentParser()
    for name in ("scenario", "url", "request-log", "summary", "wait", "pause", "busy"):
        parser.add_argument(f"--{name}")
    for name in ("users", "seed"):
        parser.add_argument(f"--{name}", type=int)
    for name in ("duration", "timeout", "spawn-rate", "stop-timeout"):
        parser.add_argument(f"--{name}", type=float)
    args = parser.parse_args(argv)
    module, _, name = args.scenario.partition(":")
    scenario = getattr(importlib.import_module(module), name)
    low, high = (float(value) for value in args.wait.split(","))
    plan = RunPlan(users=args.users, spawn_rate=args.spawn_rate, duration=args.duration,
                   stop_timeout=args.stop_timeout, wait=(low, high), seed=args.seed, tick_interval=1.0,
                   request_timeout=args.timeout)
    stats = StatsRegistry()
    request_log = RequestLog(args.request_log)
    runner = LoadRunner([scenario], plan, stats, make_session=lambda registry: HttpSession(
        args.url, registry.record, timeout=args.timeout, request_log=request_log))
    if args.pause:
        pid, at, length = args.pause.split(",")
        gevent.spawn_later(float(at), os.kill, int(pid), signal.SIGSTOP)
        gevent.spawn_later(float(at) + float(length), os.kill, int(pid), signal.SIGCONT)
    started = time.monotonic()
    if args.busy:
        at, length = (float(value) for value in args.busy.split(","))
        gevent.spawn(_busy, started + at, length)
    result = runner.run()
    wall = time.monotonic() - started
    request_log.close()
    summary = summary_json(stats, wall, RunDescription(users=args.users, seed=args.seed))
    # What only this harness knows, beside the description run_perf writes: the tests read it from the same file.
    summary["meta"].update(result=result, wall=wall, in_flight_at_end=runner.in_flight_at_end,
                           cut_off_at_end=runner.cut_off_at_end)
    write_json(args.summary, summary)
    return 0


def _busy(moment: float, seconds: float) -> None:
    """Keep the event loop from everything else for ``seconds`` from ``moment`` (monotonic), as a burst of work
    by many users would: what is due meanwhile (timers, answers) all falls due in the loop's next turn."""
    import gevent

    while time.monotonic() < moment:
        gevent.sleep(0.002)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
