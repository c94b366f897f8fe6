"""The closed model over several forked processes, for when one core is not enough to drive the load.

One gevent process tops out at one core (docs/design.md, "HTTP transport"); ``--processes N`` forks N
workers, each a :class:`~perf.load.runner.LoadRunner` over its share of the users
(:class:`~perf.load.shares.Share`, as a Celery shard is). Every second a
worker sends what it recorded since its last report (a drained :class:`StatsRegistry`, with the stage
marks it took meanwhile), its live user count and its CPU %, over a pipe; the parent merges each delta
into the run's registry, which is exact (histograms add key-wise), takes the samples on its own ticks
and is the only process that prints or touches the database. It keeps each worker's own figures too, so
that the run's stage marks are the workers' added up at the end (``stage_figures.merge_marks``).
Workers inherit scenarios, context and ``make_session`` by fork, so nothing of the run has to be
picklable but the statistics.
"""

import contextlib
import os
import pickle
import signal
import struct
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import gevent
import gevent.os
from gevent import monkey
from gevent.event import Event

from perf.load.context import RunContext
from perf.load.hooks import RunHooks, Tick
from perf.load.profile import Profile
from perf.load.runner import LoadRunner, Runner, RunPlan
from perf.load.session import HttpSession
from perf.load.shares import Share, findings, merge_findings
from perf.load.stage_figures import mark_after, merge_marks
from perf.load.stats import Sample, StatsRegistry
from perf.load.user import User

REPORT_INTERVAL = 1.0
# A worker that has not finished this long after its planned end is killed.
HANG_GRACE = 10.0
REAP_TIMEOUT = 5.0
_HEADER = struct.Struct(">I")


class WorkerStats(StatsRegistry):
    """A worker's registry, emptied at every report so that it always holds the delta not yet sent. A stage
    mark taken on it holds what was recorded since the last drain: the parent adds it to what it had from
    the worker (``stage_figures.mark_after``)."""

    def drain(self) -> StatsRegistry:
        """Hand over what was recorded since the last drain, and the stage marks taken meanwhile, and start
        afresh.

        Swapping the containers (not the registry) keeps the sessions' bound ``record`` valid;
        under gevent no request lands between the statements.
        """
        delta = StatsRegistry(entries=self.entries, total=self.total, failures=self.failures,
                              exceptions=self.exceptions, start_time=self.start_time, stage_marks=self.stage_marks)
        self.reset_tables()
        self.stage_marks = []
        return delta

    def take_sample(self, users: int, now: float | None = None, target: float | None = None) -> Sample:
        """The time series is the parent's, over the merged figures; a worker keeps none."""
        now = time.time() if now is None else now
        return Sample(timestamp=now, elapsed=now - self.start_time, users=users, requests_per_second=0.0,
                      failures_per_second=0.0, p50=None, p95=None, avg_response_time=None,
                      total_requests=0, total_failures=0)


@dataclass
class _Worker:
    """The parent's view of one worker process."""

    index: int
    pid: int
    fd: int
    control: int = -1  # the write end of the pipe to the worker: changes of target (see ProcessRunner.change_target)
    # Everything merged from this worker, with its stage marks as they stood on it: its part of the run's marks.
    stats: StatsRegistry = field(default_factory=StatsRegistry, repr=False)
    requests: int = 0
    users: int = 0
    cpu_percent: float = 0.0
    done: bool = False
    error: str = ""
    hung_up: bool = False
    killed: bool = False
    exited: bool = False
    reader: gevent.Greenlet | None = field(default=None, repr=False)


class ProcessRunner(Runner):
    """Runs the users of one run in ``processes`` forked workers; LoadRunner's face for ``perf.cli.run``."""

    merges_shares = True

    def __init__(
        self,
        scenarios: Sequence[type[User]],
        plan: RunPlan,
        stats: StatsRegistry,
        make_session: Callable[[StatsRegistry], HttpSession],
        context: RunContext | None = None,
        processes: int = 2,
        hooks: RunHooks | None = None,
    ) -> None:
        super().__init__(scenarios, plan, stats, context, hooks)
        self.make_session = make_session
        self.shares = Share.split(self.spawn_order, processes)
        self.workers: list[_Worker] = []
        self._kill_at = float("inf")
        self._all_done = Event()
        self._open_pipes = 0
        self._cpu_peak = 0.0
        self._worker: LoadRunner | None = None  # set in a worker process only

    @property
    def child_requests(self) -> dict[int, int]:
        """Requests merged from each worker so far, by worker index."""
        return {worker.index: worker.requests for worker in self.workers}

    @property
    def user_count(self) -> int:
        return sum(worker.users for worker in self.workers)

    def summary_lines(self) -> list[str]:
        """How the load was shared."""
        counts = ", ".join(str(worker.requests) for worker in self.workers)
        plural = "" if len(self.workers) == 1 else "s"
        return [f"processes: {len(self.workers)} worker{plural}, requests per worker: {counts}"]

    def request_stop(self, reason: str = "aborted") -> None:
        """Stop every worker and keep what they measured; safe from a signal handler.

        In a worker this object is the parent's copy, still reached by the signal handlers the
        worker inherited: there it stops the worker's own users instead.
        """
        if self._worker is not None:
            self._worker.request_stop(reason)
            return
        if self.stopping:
            return
        super().request_stop(reason)
        self._kill_at = min(self._kill_at, time.monotonic() + self.plan.end_grace + HANG_GRACE)
        self._signal_workers(signal.SIGTERM)

    def change_target(self, target: float, at: float) -> Profile:
        """The parent's own profile (its stage marks, the stored spans), then every worker's: one line on its
        control pipe, which the worker applies to its share on the same clock."""
        profile = super().change_target(target, at)
        line = f"{target!r} {at!r}\n".encode()
        for worker in self.workers:
            if not worker.exited and worker.control >= 0:
                with contextlib.suppress(OSError):  # a worker that has ended hears nothing more
                    os.write(worker.control, line)
        return profile

    def run(self) -> str:
        """Fork the workers, merge their reports until all are done; returns ``"completed"`` or why not."""
        self.stats.start_time = time.time()
        started = time.monotonic()
        self._kill_at = min(self._kill_at, started + self.plan.duration + self.plan.end_grace + HANG_GRACE)
        try:
            if self.plan.profile is not None:
                self._begin_profile(self.stats.start_time)  # the workers' profiles count from the same moment
            self._fork_workers()
            self._open_pipes = len(self.workers)
            if not self.workers:
                self._all_done.set()  # stopped before any worker started
            for worker in self.workers:
                worker.reader = gevent.spawn(self._read_reports, worker)
            self._supervise(started)
        finally:
            self._end_profile()
            self._finish()
        self.stats.stage_marks = merge_marks([worker.stats for worker in self.workers])  # every report is in
        self._tick(started)
        failed = [worker for worker in self.workers if not worker.done]
        if failed and not self.stopping:
            worker = failed[0]
            if worker.killed:
                return (f"worker {worker.index} killed: still running {HANG_GRACE:g} s after the planned end and its "
                        f"{self.plan.end_grace:g} s grace")
            return f"worker {worker.index} failed: {_last_line(worker.error) or 'exited without reporting'}"[:200]
        return self._stop_reason

    # --- the parent ---------------------------------------------------------------------------------------------

    def _fork_workers(self) -> None:
        self.hooks.before_fork()
        fork = gevent.os.fork_and_watch if monkey.is_module_patched("os") else gevent.os.fork_gevent
        for share in self.shares:
            if self.stopping:
                return
            read_fd, write_fd = os.pipe()
            control_read, control_write = os.pipe()
            pid = fork()
            if pid == 0:
                os.close(read_fd)
                os.close(control_write)
                self._worker_main(share, write_fd, control_read)
            os.close(write_fd)
            os.close(control_read)
            gevent.os.make_nonblocking(read_fd)
            self.workers.append(_Worker(index=share.index, pid=pid, fd=read_fd, control=control_write))

    def _supervise(self, started: float) -> None:
        """Tick on the parent's own clock until every worker has hung up (or is killed for hanging).

        As in LoadRunner, periodic ticks end with the planned duration or a stop request: what the
        users do while stopping belongs to the final tick, taken once all reports are in.
        """
        end = started + self.plan.duration
        next_tick = started + self.plan.tick_interval
        while not self._all_done.is_set():
            now = time.monotonic()
            if now >= self._kill_at:
                for worker in self.workers:
                    worker.killed = not worker.hung_up
                self._signal_workers(signal.SIGKILL)
                break
            ticking = next_tick < end and not self.stopping
            if ticking and now >= next_tick:
                self._tick(started)
                while next_tick <= time.monotonic():
                    next_tick += self.plan.tick_interval
                continue
            self._all_done.wait(timeout=(min(next_tick, self._kill_at) if ticking else self._kill_at) - now)

    def _read_reports(self, worker: _Worker) -> None:
        """Length-prefixed pickles until the worker closes its end (it exits or is killed)."""
        buffer = bytearray()
        try:
            while chunk := gevent.os.nb_read(worker.fd, 1 << 16):
                buffer += chunk
                while len(buffer) >= _HEADER.size:
                    (size,) = _HEADER.unpack_from(buffer)
                    if len(buffer) < _HEADER.size + size:
                        break
                    message = pickle.loads(bytes(buffer[_HEADER.size:_HEADER.size + size]))
                    del buffer[:_HEADER.size + size]
                    self._handle(worker, message)
        finally:
            os.close(worker.fd)
            worker.hung_up = True
            self._open_pipes -= 1
            if not self._open_pipes:
                self._all_done.set()

    def _handle(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        """One unpickled message of a worker: ("report", delta, users, cpu %), ("done", notes, facts) or
        ("error", traceback)."""
        kind = message[0]
        if kind == "report":
            _, delta, users, cpu_percent = message
            mine = worker.stats
            mine.stage_marks += [mark_after(mine, mark) for mark in delta.stage_marks]
            mine.merge(delta)
            self.stats.merge(delta)
            worker.requests += delta.total.num_requests
            worker.users = users
            worker.cpu_percent = cpu_percent
            self._cpu_peak = max(self._cpu_peak, cpu_percent)
        elif kind == "done":
            _, notes, facts = message
            worker.done = True
            merge_findings(self.context, notes, facts)  # what the users learned for the end of the run
        elif kind == "error":
            worker.error = message[1]
            self.stats.record_exception(f"worker {worker.index} failed: {_last_line(message[1])}", message[1])

    def _tick(self, started: float, users: int | None = None) -> None:
        """A sample of the merged figures; the CPU figure is the busiest worker's since the last tick."""
        cpu_percent, self._cpu_peak = self._cpu_peak, 0.0
        self.report_tick(time.monotonic() - started, self.user_count if users is None else users, cpu_percent)

    def _signal_workers(self, sig: signal.Signals) -> None:
        for worker in self.workers:
            if not worker.exited:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, sig)

    def _finish(self) -> None:
        """Leave no worker behind: wait for the rest of their reports, then reap (killing any that linger).

        The pipes are normally all closed by now; not when the parent itself failed mid-run, and then
        the workers are told to stop as on Ctrl-C before anything harsher.
        """
        if not self._all_done.is_set():
            self._signal_workers(signal.SIGTERM)
            self._all_done.wait(timeout=self.plan.end_grace + REAP_TIMEOUT)
        readers = [worker.reader for worker in self.workers if worker.reader is not None]
        for sig in (None, signal.SIGKILL):
            if sig is not None:
                self._signal_workers(sig)
            deadline = time.monotonic() + REAP_TIMEOUT
            while time.monotonic() < deadline and not all(self._reap(worker) for worker in self.workers):
                gevent.sleep(0.02)
            if all(worker.exited for worker in self.workers):
                break
        gevent.joinall(readers, timeout=REAP_TIMEOUT)
        gevent.killall([reader for reader in readers if not reader.dead], timeout=REAP_TIMEOUT)
        for worker in self.workers:
            if worker.control >= 0:
                os.close(worker.control)
                worker.control = -1

    def _reap(self, worker: _Worker) -> bool:
        if not worker.exited:
            try:
                pid, _ = gevent.os.waitpid(worker.pid, os.WNOHANG)
            except ChildProcessError:
                pid = worker.pid  # already reaped (by gevent's SIGCHLD watcher)
            worker.exited = pid == worker.pid
        return worker.exited

    # --- a worker -----------------------------------------------------------------------------------------------

    def _worker_main(self, share: Share, fd: int, control: int) -> NoReturn:
        """The whole life of a worker process; it never returns into the parent's code."""
        code = 0
        try:
            stats = WorkerStats()

            def report(tick: Tick) -> None:
                _send(fd, ("report", stats.drain(), tick.users, tick.cpu_percent))

            worker = self._become_worker(share, stats, RunHooks(on_tick=report))
            gevent.os.make_nonblocking(fd)
            gevent.signal_handler(signal.SIGTERM, worker.request_stop, "stopped by the parent process")
            gevent.spawn(_follow_control, control, worker)
            worker.run()
            _send(fd, ("done", *findings(self.context)))
        except BaseException:
            code = 1
            with contextlib.suppress(BaseException):
                _send(fd, ("error", traceback.format_exc()))
        finally:
            os._exit(code)

    def _become_worker(self, share: Share, stats: WorkerStats, hooks: RunHooks) -> LoadRunner:
        # The terminal sends Ctrl-C to the whole process group: the parent alone decides.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _die_with_parent()
        for worker in self.workers:
            os.close(worker.fd)  # earlier siblings' pipes, inherited
            os.close(worker.control)
        self.workers = []
        devnull = os.open(os.devnull, os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(devnull, target)  # workers print nothing: the parent owns the terminal
        os.close(devnull)
        share.deal_accounts(self.context)  # workers never share a pre-seeded account
        self._worker = LoadRunner(list(self.scenarios.values()), share.scaled(self.plan, REPORT_INTERVAL), stats,
                                  self.make_session, context=self.context, hooks=hooks, share=share,
                                  clock_start=self.stats.start_time)
        return self._worker


def _follow_control(fd: int, worker: LoadRunner) -> None:
    """In a worker: each line from the parent, "target at", is a change of target (``Runner.change_target``)."""
    gevent.os.make_nonblocking(fd)
    pending = b""
    while True:
        data = gevent.os.nb_read(fd, 4096)
        if not data:
            return  # the parent closed its end: no more changes
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            target, at = line.split()
            worker.change_target(float(target), float(at))


def _send(fd: int, message: tuple[object, ...]) -> None:
    """One length-prefixed pickle, written cooperatively (a full pipe blocks this greenlet only)."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[gevent.os.nb_write(fd, view):]


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this worker if the parent dies, so a killed run leaves no load behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
