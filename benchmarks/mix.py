"""What the platform's eight-scenario mix costs the generator, beside the bare engine, in one run.

Goals (issue 13, "Speed II"), each printed beside its measurement:
- per-request cost of the mix ≤ 3× the bare engine's, both measured here in alternating rounds (100 users, no
  think time, against a target that keeps up, so the generator's core is the limit);
- fixed costs: a 2-minute run_perf run spends < 0.5 CPU-s outside requests, start-up included;
- connections: ≤ 1 opened per 100 requests in steady state, the server's keep-alive (75 s, gunicorn.conf.py)
  outlasting the default think time (1–3 s).

The target answers with the platform's real responses. The script makes a scratch backend (SQLite in a
temporary folder, ``benchmarks/mix_settings.py``: the project's settings with an MD5 password hasher, so a
login costs the server no more than any request), seeds it with ``bootstrap_perf_tests`` and serves it with
gunicorn (``gunicorn.conf.py``, 3 workers × 2 threads pinned to core 1). The mix runs against it for a few
seconds with every answer kept (the first successful one per method and path: body, status, the backend's
headers, ``Server-Timing`` included). Then, printed in this order:

1. **Per-request cost at saturation.** The backend stops; nginx (1 worker, core 1) replays the recorded
   answers, and ``/ok`` answers "ok" for the bare engine. Bare and mix runs alternate, each in a process
   pinned to core 0, through ``LoadRunner`` with its real 2 s tick, progress line and history clock; the run's
   CPU less that metered per-second work, divided by its requests, is the cost of a request.
2. **Profile.** One more mix run sampled by py-spy, C frames included, each sample put in a category by its
   innermost frames: the kernel's socket calls, JSON, Server-Timing, statistics, the HTTP transport, the
   session, gevent, greenlet switches, scenario code.
3. **The mix at its think time** (1–3 s) with 100, 1,000 and 5,000 users against the replay: what a request
   costs when few requests share each wake-up of the process, and how many users fill a core.
4. **Fixed costs**, first of all (while the backend runs): a whole ``manage.py run_perf`` (100 users, default
   think time, 2 minutes, stored in the scratch database and audited) in a process pinned to core 0, its
   start-up (interpreter, imports, Django set-up, then the run's own set-up), every piece of per-second work
   (ticks, samples, the progress line, history points, the store's hand-over and its threads) and the end
   metered; outside requests is its total less its requests × the cost of a request at that think time (3).
   Connections opened per 100 requests after the ramp-up come from the same run.

With ``--deadlines`` it measures only how a request's time-out is kept (issue 17), in alternating rounds of the
bare engine against nginx's ``/ok``, each strategy in its own worker: ``again``, the transport's own (one libev
timer per connection restarted with its full time per request, ``RequestDeadline``); ``fresh``, a new
``gevent.Timeout`` per request; ``socket``, a time-out on the socket itself, which gevent keeps with a timer and
an exception per wait (what a deadline checked around each wait costs at least). The reused ``gevent.Timeout``
that was there before is not measured: it was wrong (it went on from the time it had left).

Run: .venv/bin/python benchmarks/mix.py [--rounds 3] [--duration 15] [--users 100] [--fixed-duration 120]
     [--scale-users 100,1000,5000] [--skip-fixed] [--skip-profile] [--skip-scale] [--deadlines]
Needs nginx (apt-get install nginx-light) and taskset; never part of the test run.
"""

import argparse
import base64
import functools
import io
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import nginx_target  # noqa: E402

GENERATOR_CORE, TARGET_CORE = "0", "1"
SETTINGS = "mix_settings"
MIX_GOAL = 3.0  # mix cost per request ≤ this × the bare engine's
FIXED_GOAL_S = 0.5  # CPU-s outside requests in a 2-minute run, start-up included
CONNECT_GOAL = 1.0  # connections per 100 requests in steady state
# The backend for recording and the fixed-cost run: gunicorn.conf.py's settings, sized for one core.
BACKEND_WORKERS, BACKEND_THREADS = 3, 2
RECORD_SECONDS = 12.0
# Response headers the replay leaves to nginx (it sends its own) or that describe the connection.
HOP_HEADERS = {"date", "server", "connection", "content-length", "transfer-encoding", "keep-alive", "content-type"}


# ------------------------------------------------------------------------------------------ metering


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Meter:
    """CPU of named pieces of work, each call's own (thread) CPU less that of the metered calls inside it."""

    def __init__(self) -> None:
        from gevent.monkey import get_original

        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stacks: dict[int, list[float]] = defaultdict(list)
        self._ident = get_original("_thread", "get_ident")  # the OS thread, whatever gevent patched

    def wrap(self, owner: Any, attr: str, label: str) -> bool:
        original = getattr(owner, attr, None)
        if original is None:
            return False
        meter = self

        @functools.wraps(original)
        def metered(*args: Any, **kwargs: Any) -> Any:
            stack = meter._stacks[meter._ident()]
            began = time.thread_time()
            stack.append(0.0)
            try:
                return original(*args, **kwargs)
            finally:
                inner = stack.pop()
                spent = time.thread_time() - began
                meter.cpu[label] += spent - inner
                meter.calls[label] += 1
                if stack:
                    stack[-1] += spent

        setattr(owner, attr, metered)
        return True

    def total(self, prefix: str = "") -> float:
        return sum(value for label, value in self.cpu.items() if label.startswith(prefix))


def meter_per_second_work(meter: Meter) -> None:
    """Everything a run does by the clock rather than per request, wherever the code base has it."""
    from perf.cli.progress import ProgressPrinter
    from perf.load import runner as runner_module
    from perf.load.stats import StatsRegistry

    meter.wrap(runner_module.Runner, "report_tick", "tick: other (CPU check, thresholds, callbacks)")
    meter.wrap(StatsRegistry, "take_sample", "tick: sample")
    meter.wrap(StatsRegistry, "mark_second", "second: history point")
    meter.wrap(runner_module.Runner, "report_second", "second: other")
    meter.wrap(ProgressPrinter, "__call__", "tick: progress line")
    try:
        from perf.reports.live_csv import LiveOutput

        meter.wrap(LiveOutput, "second", "second: live output (CSV, --print-stats)")
    except ImportError:
        pass


# ------------------------------------------------------------------------------------------ the pack


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    for path in (str(ROOT), str(BENCH)):
        if path not in sys.path:
            sys.path.insert(0, path)
    import django

    django.setup()


def load_pack() -> tuple[list[type], Callable[[], Any]]:
    """The configured scenario classes (``PERF_SCENARIOS``) and the factory of their shared context."""
    from perf import packs

    return list(packs.scenarios().values()), packs.make_context


# ------------------------------------------------------------------------------------------ workers
# Each runs in its own process pinned to the generator core and prints one JSON line.


def _runner(url: str, users: int, duration: float, kind: str, record: Callable | None = None,
            think: bool = False) -> tuple[Any, Any]:
    """A LoadRunner as run_perf builds one (2 s ticks, a progress line, the history clock)."""
    from perf.cli.progress import ProgressPrinter
    from perf.load.hooks import RunHooks
    from perf.load.runner import LoadRunner, RunPlan
    from perf.load.session import HttpSession
    from perf.load.stats import StatsRegistry
    from perf.load.user import User, constant, task

    stats = StatsRegistry()
    context = None
    if kind == "bare":
        class Bare(User):
            wait_time = staticmethod(constant(0))

            @task
            def get(self) -> None:
                self.client.get("/ok", name="/ok")

        scenarios: list[type] = [Bare]
        base = url
    else:
        scenarios, make_context = load_pack()
        context = make_context()
        base = url + "/api"
    wait = None if think or kind == "bare" else (0.0, 0.0)
    plan = RunPlan(users=users, spawn_rate=100_000, duration=duration, wait=wait)
    hook = record or (lambda registry: registry.record)

    def make_session(registry: Any) -> HttpSession:
        return HttpSession(base, hook(registry), timeout=30.0)

    progress = ProgressPrinter(open(os.devnull, "w"), duration, is_tty=False)  # noqa: SIM115
    runner = LoadRunner(scenarios, plan, stats, make_session, context=context, hooks=RunHooks(on_tick=progress))
    return runner, stats


DEADLINES = ("again", "fresh", "socket")


def use_deadline(strategy: str) -> None:
    """Make the transport keep each request's time-out the way ``strategy`` says (see the docstring)."""
    from gevent import Timeout

    from perf.load import transport

    if strategy == "fresh":
        class FreshTimeout:
            """A new gevent.Timeout per request, throwing the transport's own exception."""

            def __init__(self, seconds: float) -> None:
                self.seconds, self.expired = seconds, transport.RequestTimedOut()
                self._timeout: Timeout | None = None

            def arm(self) -> None:
                self._timeout = Timeout(self.seconds, self.expired)
                self._timeout.start()

            def disarm(self) -> None:
                if self._timeout is not None:
                    self._timeout.close()

        transport.RequestDeadline = FreshTimeout  # type: ignore[misc]
    elif strategy == "socket":
        transport.cooperative = lambda: False  # the socket keeps its own time-out, for every wait


def worker_load(url: str, kind: str, users: int, duration: float, think: bool = False,
                deadline: str = "again") -> dict:
    """One bare or mix run; CPU of the run less its metered per-second work, per request. With ``think``
    (the scenarios' own think time), also the CPU and requests of the run's second half, once every user
    has logged in and settled."""
    from gevent import monkey

    monkey.patch_all()
    import gevent

    use_deadline(deadline)

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a socket per user
    if kind == "mix":
        setup_django()
    meter = Meter()
    meter_per_second_work(meter)
    runner, stats = _runner(url, users, duration, kind, think=think)
    began, wall = _cpu(), time.monotonic()
    half: list[tuple[float, int, float]] = []
    gevent.spawn_later(duration / 2, lambda: half.append((_cpu(), stats.total.num_requests, meter.total())))
    with runner.second_clock():
        runner.run()
    cpu, wall = _cpu() - began, time.monotonic() - wall
    total = stats.total
    per_second = meter.total()
    figures = {
        "kind": kind, "users": users, "requests": total.num_requests, "failures": total.num_failures, "cpu": cpu,
        "wall": wall,
        "per_second_cpu": per_second, "per_second": dict(meter.cpu),
        "connections": total.new_connections, "reopened": total.reopened_connections,
        "failure_kinds": [f"{f.method} {f.name}: {f.error} ×{f.occurrences}" for f in stats.failures.values()][:8],
        "exceptions": [f"{e.message} ×{e.count}" for e in stats.exceptions.values()][:5],
        "endpoints": {f"{e.method} {e.name}": [e.num_requests, e.avg_content_length] for e in stats.entries.values()},
    }
    if half:
        at_cpu, at_requests, at_metered = half[0]
        figures["second_half"] = {"cpu": began + cpu - at_cpu, "requests": total.num_requests - at_requests,
                                  "per_second_cpu": per_second - at_metered, "wall": duration / 2}
    return figures


def worker_record(url: str, users: int, duration: float, out: str) -> dict:
    """The mix against the real backend, keeping the first successful response per (method, path)."""
    from gevent import monkey

    monkey.patch_all()
    setup_django()
    from perf.load import transport

    records: dict[tuple[str, str], dict] = {}
    original = transport.Connection.request

    def request(self: Any, method: str, uri: str, headers: dict, body: bytes) -> tuple:
        status, response_headers, content = original(self, method, uri, headers, body)
        key = (method, uri.split("?", 1)[0])
        kept = records.get(key)
        if kept is None or (not 200 <= kept["status"] < 300 and 200 <= status < 300):
            records[key] = {"method": method, "path": key[1], "status": status,
                            "headers": [[k, v] for k, v in response_headers.items() if k not in HOP_HEADERS],
                            "content_type": response_headers.get("content-type", "application/json"),
                            "body": base64.b64encode(content).decode()}
        return status, response_headers, content

    transport.Connection.request = request
    # run_perf's pre-run check asks for /healthcheck: keep its answer too.
    health = transport.Connection("127.0.0.1", int(url.rsplit(":", 1)[1]), 10.0)
    health.request("GET", "/api/healthcheck", {}, b"")
    health.close()
    runner, stats = _runner(url, users, duration, "mix")
    with runner.second_clock():
        runner.run()
    Path(out).write_text(json.dumps(list(records.values())))
    total = stats.total
    return {"requests": total.num_requests, "failures": total.num_failures, "recorded": len(records),
            "rate": total.num_requests / duration,
            "failure_kinds": [f"{f.method} {f.name}: {f.error} ×{f.occurrences}" for f in stats.failures.values()][:8]}


def lean_store() -> None:
    """The experiment behind a recommendation (perf/store/thread.py, not changed here): the progress of a stored run
    saved every 10 s rather than at every 2 s tick, and the admin's stop flag read every 2 s, not every 0.5 s."""
    from perf.store import thread

    save = thread.RunStore.save_progress
    ticks = defaultdict(int)

    def every_fifth(self: Any, stats: Any, elapsed: float) -> None:
        ticks[id(self)] += 1
        if ticks[id(self)] % 5 == 1:
            save(self, stats, elapsed)

    thread.RunStore.save_progress = every_fifth
    watch = thread.RunStore.watch_stop
    thread.RunStore.watch_stop = lambda self, on_stop, interval=2.0: watch(self, on_stop, interval)


def worker_fixed(url: str, users: int, duration: float, workdir: str, lean: bool = False) -> dict:
    """A whole ``run_perf`` in this process, as ``manage.py run_perf`` runs it, with its costs metered."""
    began = time.monotonic()
    from gevent import monkey

    monkey.patch_all()
    interpreter = _cpu()
    setup_django()
    from django.core.management import ManagementUtility

    from perf.load import runner as runner_module
    from perf.load.stats import StatsRegistry

    imported = _cpu()
    if lean:
        lean_store()
    meter = Meter()
    meter_per_second_work(meter)
    try:
        from perf.store import thread

        meter.wrap(thread.RunStore, "save_progress", "tick: store hand-over (snapshot)")
        meter.wrap(thread.DatabaseThread, "_once", "thread: other")
        meter.wrap(thread.DatabaseThread, "_retrying", "thread: other")
        meter.wrap(thread.persist, "save_progress", "thread: progress save (every tick)")
        meter.wrap(thread.persist, "control_requests", "thread: stop-flag poll (every 0.5 s)")
    except (ImportError, AttributeError):
        pass
    marks: dict[str, float] = {}
    registries: list[Any] = []
    steady: list[tuple[float, int, int]] = []  # (elapsed, requests, connections) at each tick
    original_run = runner_module.LoadRunner.run

    def run(self: Any) -> str:
        marks["run_start"] = _cpu()
        registries.append(self.stats)
        try:
            return original_run(self)
        finally:
            marks["run_end"] = _cpu()

    runner_module.LoadRunner.run = run
    original_sample = StatsRegistry.take_sample

    def take_sample(self: Any, *args: Any, **kwargs: Any) -> Any:
        sample = original_sample(self, *args, **kwargs)
        steady.append((sample.elapsed, self.total.num_requests, self.total.new_connections))
        return sample

    StatsRegistry.take_sample = take_sample
    out = io.StringIO()
    argv = ["manage.py", "run_perf", "--host", url + "/api", "--users", str(users), "--spawn-rate", "10",
            "--duration", f"{duration:g}s", "--label", "benchmarks/mix.py fixed costs"]
    code = 0
    stdout = sys.stdout
    sys.stdout = out
    try:
        ManagementUtility(argv).execute()
    except SystemExit as exc:
        code = exc.code or 0
    finally:
        sys.stdout = stdout
    end = _cpu()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # what the run started (git rev-parse), waited for
    stats = registries[0] if registries else None
    total = stats.total if stats is not None else None
    # Steady state: from the first tick 10 s after the last user started (spawn rate 10/s) to the end.
    settled = next(((r, c) for elapsed, r, c in steady if elapsed >= users / 10 + 10), None)
    figures = {
        "exit_code": code, "wall": time.monotonic() - began, "interpreter": interpreter,
        "imports": imported - interpreter, "cpu_total": end + children.ru_utime + children.ru_stime,
        "children": children.ru_utime + children.ru_stime,
        "run_setup": marks.get("run_start", end) - imported,
        "run": marks.get("run_end", end) - marks.get("run_start", end),
        "after_run": end - marks.get("run_end", end),
        "metered": dict(meter.cpu), "calls": dict(meter.calls),
        "requests": total.num_requests if total else 0, "failures": total.num_failures if total else 0,
        "connections": total.new_connections if total else 0,
        "reopened": total.reopened_connections if total else 0,
        "tail": out.getvalue()[-1500:],
    }
    if settled is not None and total is not None and total.num_requests > settled[0]:
        figures["steady_requests"] = total.num_requests - settled[0]
        figures["steady_connections"] = total.new_connections - settled[1]
    return figures


# ------------------------------------------------------------------------------------------ profile
# py-spy (requirements-dev.txt) samples the worker from outside, C frames included (--native): greenlet
# switches confuse a tracing profiler (a greenlet waiting in the hub looks like one long call), tracing
# every call inflates small functions, and a signal-driven sampler inside the process charges the time
# of C calls (the socket syscalls, llhttp, json's scanner) to whatever Python line runs next.

# A sample goes to the first category that its innermost frames match, innermost first.
CATEGORIES = (
    ("kernel: socket send and receive", ("send (libc", "recv (libc", "sock_call", "sock_send", "sock_recv",
                                         "connect (libc")),
    ("kernel: epoll, clock", ("epoll_wait", "epoll_ctl", "clock_gettime")),
    ("JSON decoding", ("_json.c", "json/decoder.py", "json/__init__.py")),
    ("JSON encoding (request bodies)", ("json/encoder.py",)),
    ("garbage collector", ("gcmodule.c", "gc_collect")),
    ("Server-Timing parsing", ("parse_server_timing",)),
    ("statistics (record, histogram)", ("perf/load/stats.py", "perf/load/histogram.py", "perf/load/history.py",
                                        "perf/load/server_timing.py")),
    ("HTTP: request bytes, response head (transport)", ("perf/load/transport.py", "llhttp", "_parser.c")),
    ("session (request/response objects)", ("perf/load/session.py", "urllib/parse.py")),
    ("greenlet switches", ("greenlet::", "slp_", "greenlet/")),
    ("gevent: sockets, timers, hub", ("gevent/", "_gevent_c", "corecext", "libev")),
    ("scenario code and API client", ("platform_pack/", "scenarios/", "clients/", "perf/load/user.py",
                                      "random.py", "uuid.py", "decimal", "bisect")),
    ("runner and per-second work", ("perf/load/runner.py", "perf/cli/progress.py", "perf/reports/")),
)
# A thread's stack waiting for work (gevent's resolver pool): not CPU, whatever py-spy thinks.
IDLE = ("PyThread_acquire_lock_timed", "acquire_with_timeout", "_thread_sleep", "pthread_cond")


def _category(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, needles in CATEGORIES:
            if any(needle in frame for needle in needles):
                return name
    return "other (the interpreter itself)"


def profile_worker(args: list[str], env: dict[str, str], seconds: float) -> tuple[dict, dict] | None:
    """Run a worker and sample it with py-spy for ``seconds`` after a second of warm-up: (figures, profile)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return None
    command = ["taskset", "-c", GENERATOR_CORE, sys.executable, str(Path(__file__).resolve()), *args]
    worker = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "samples.txt"
        time.sleep(1.5)
        # Blocking (the default) stops the worker for each sample, which costs it wall time but no CPU of its own.
        subprocess.run([spy, "record", "--pid", str(worker.pid), "--duration", f"{seconds:g}", "--rate", "250",
                        "--native", "--format", "raw", "-o", str(out)], capture_output=True, timeout=seconds + 60)
        stdout, stderr = worker.communicate(timeout=300)
        if worker.returncode != 0:
            raise RuntimeError(f"profiled worker failed:\n{stderr[-2000:]}")
        text = out.read_text() if out.exists() else ""
    counts: dict[str, int] = defaultdict(int)
    functions: dict[str, int] = defaultdict(int)
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if any(marker in frame for frame in frames[-3:] for marker in IDLE):
            continue
        counts[_category(frames)] += int(count)
        named = [frame for frame in frames if not frame.startswith("0x")]
        if named:
            functions[re.sub(r"\(.*/", "(", named[-1])] += int(count)
    total = sum(counts.values())
    figures = json.loads(stdout.strip().splitlines()[-1])
    return figures, {"samples": total,
                     "categories": {k: v / total for k, v in sorted(counts.items(), key=lambda kv: -kv[1])},
                     "top": [(name, n / total) for name, n in sorted(functions.items(), key=lambda kv: -kv[1])[:12]]}


# ------------------------------------------------------------------------------------------ targets


def backend_env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(BENCH)]),
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        "SYSTEM_TESTING": "True",  # verification tokens in a response header: no mailbox needed
        "EMAIL_URL": "dummymail://",
        "DEBUG": "True",
        # The seed's admin login belongs to this throw-away database, not to the developer's .admin_password.
        "PERF_ADMIN_PASSWORD_FILE": str(workdir / "admin_password"),
    })
    return env


def start_backend(workdir: Path) -> tuple[subprocess.Popen, str]:
    env = backend_env(workdir)
    python = sys.executable
    for command in (["migrate", "--no-input", "-v0"], ["bootstrap_perf_tests"]):
        done = subprocess.run([python, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)
        if done.returncode != 0:
            raise SystemExit(f"manage.py {command[0]} failed:\n{done.stderr[-2000:]}")
    port = nginx_target.free_port()
    gunicorn = str(Path(python).parent / "gunicorn")
    log = open(workdir / "gunicorn.log", "w")  # noqa: SIM115
    process = subprocess.Popen(["taskset", "-c", TARGET_CORE, gunicorn, "-c", "gunicorn.conf.py", "--bind",
                                f"127.0.0.1:{port}", "--workers", str(BACKEND_WORKERS), "--threads",
                                str(BACKEND_THREADS)], cwd=ROOT, env=env, stdout=log, stderr=log,
                               start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited: {(workdir / 'gunicorn.log').read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    stop_process(process)
    raise SystemExit("gunicorn did not start listening within 60 s")


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


REPLAY_CONF = """\
worker_processes 1;
worker_rlimit_nofile 65536;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 30000; }}
http {{
    access_log off;
    # As gunicorn.conf.py: idle connections are kept 75 s, and never closed after N requests.
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    etag off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {tmp}/bodies;
        location = /ok {{ return 200 "ok"; }}
{locations}
    }}
}}
"""


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def replay_conf(records: list[dict], tmp: Path, port: int) -> str:
    """One internal location per recorded response (its body a file, its headers added), and one public
    location per path that jumps there with the recorded status: ``return 418`` and ``error_page 418 =STATUS``
    make nginx answer any method, POST included, from a static file (the error page is fetched as a GET)."""
    bodies = tmp / "bodies" / "_r"
    bodies.mkdir(parents=True)
    by_path: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    lines = []
    for index, record in enumerate(records):
        (bodies / str(index)).write_bytes(base64.b64decode(record["body"]))
        headers = "".join(f" add_header {_quote(name)} {_quote(value)} always;" for name, value in record["headers"])
        lines.append(f"        location = /_r/{index} {{ internal; default_type {_quote(record['content_type'])};"
                     f"{headers} }}")
        by_path[record["path"]].append((index, record))
    for path, answers in by_path.items():
        codes = []
        for offset, (index, record) in enumerate(answers):
            code = 418 + offset  # one jump code per method on this path
            codes.append(f"error_page {code} ={record['status']} /_r/{index};")
        if len(answers) == 1:
            body = f"{codes[0]} return 418;"
        else:
            branches = " ".join(f"if ($request_method = {record['method']}) {{ return {418 + offset}; }}"
                                for offset, (_, record) in enumerate(answers))
            body = " ".join(codes) + " " + branches + " return 404;"
        lines.append(f"        location = {path} {{ {body} }}")
    return REPLAY_CONF.format(tmp=tmp, port=port, locations="\n".join(lines))


def start_replay(records: list[dict], tmp: Path) -> tuple[subprocess.Popen, str]:
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / sub).mkdir(exist_ok=True)
    os.chmod(tmp, 0o755)
    port = nginx_target.free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(replay_conf(records, tmp, port))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    process = subprocess.Popen(["taskset", "-c", TARGET_CORE, nginx, "-c", str(conf), "-p", str(tmp), "-g",
                                "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"nginx exited: {process.stderr.read().decode(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    nginx_target.stop_nginx(process)
    raise SystemExit("nginx did not start listening within 10 s")


# ------------------------------------------------------------------------------------------ driver


def run_worker(args: list[str], env: dict[str, str], timeout: float) -> dict:
    command = ["taskset", "-c", GENERATOR_CORE, sys.executable, str(Path(__file__).resolve()), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"worker {args[:2]} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _goal(met: bool) -> str:
    return "met" if met else "NOT met"


def _med(values: list[float]) -> float:
    return statistics.median(values)


def _load_args(kind: str, url: str, users: int, duration: float, think: bool = False) -> list[str]:
    return ["--worker", kind, "--url", url, "--users", str(users), "--duration", f"{duration:g}",
            *(["--think"] if think else [])]


def load_rounds(args: argparse.Namespace, url: str, env: dict[str, str]) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {"bare": [], "mix": []}
    for round_index in range(args.rounds):
        for kind in ("bare", "mix") if round_index % 2 == 0 else ("mix", "bare"):
            results[kind].append(run_worker(_load_args(kind, url, args.users, args.duration), env,
                                            args.duration + 120))
    return results


def deadline_rounds(args: argparse.Namespace, url: str, env: dict[str, str]) -> dict[str, list[dict]]:
    """The bare engine with each way of keeping a request's time-out, in an order that turns each round."""
    results: dict[str, list[dict]] = {strategy: [] for strategy in DEADLINES}
    for round_index in range(args.rounds):
        order = DEADLINES[round_index % len(DEADLINES):] + DEADLINES[:round_index % len(DEADLINES)]
        for strategy in order:
            results[strategy].append(run_worker([*_load_args("bare", url, args.users, args.duration),
                                                 "--deadline", strategy], env, args.duration + 120))
    return results


def print_deadlines(results: dict[str, list[dict]], args: argparse.Namespace) -> None:
    print(f"\nA request's time-out, three ways: {args.users} users, no think time, the bare engine against "
          f"nginx's /ok (core {TARGET_CORE}), generator on core {GENERATOR_CORE}; median of {args.rounds} "
          f"rounds of {args.duration:g} s")
    print(f"   {'strategy':<10}{'req/s':>9}{'µs/request':>12}{'vs again':>10}{'failures':>10}")
    base = _med([per_request_us(r) for r in results["again"]])
    for strategy, rs in results.items():
        cost = _med([per_request_us(r) for r in rs])
        rate = _med([r["requests"] / r["wall"] for r in rs])
        failures = _med([r["failures"] for r in rs])
        print(f"   {strategy:<10}{rate:>9,.0f}{cost:>12.1f}{cost / base:>9.2f}×{failures:>10.0f}")


def per_request_us(result: dict) -> float:
    return (result["cpu"] - result["per_second_cpu"]) / max(result["requests"], 1) * 1e6


def print_rounds(results: dict[str, list[dict]], args: argparse.Namespace) -> tuple[float, float]:
    print(f"\n1. Per-request cost at saturation: {args.users} users, no think time, nginx replaying the backend's "
          f"answers (core {TARGET_CORE}), generator on core {GENERATOR_CORE}; median of {args.rounds} rounds of "
          f"{args.duration:g} s, the run's per-second work taken out")
    print(f"   {'run':<6}{'req/s':>9}{'CPU s':>8}{'µs/request':>12}{'req/CPU-s':>11}{'failures':>10}"
          f"{'connections/100 req':>21}")
    costs = {}
    for kind, rs in results.items():
        cost = _med([per_request_us(r) for r in rs])
        costs[kind] = cost
        rate = _med([r["requests"] / r["wall"] for r in rs])
        connections = _med([100 * r["connections"] / max(r["requests"], 1) for r in rs])
        print(f"   {kind:<6}{rate:>9,.0f}{_med([r['cpu'] for r in rs]):>8.2f}{cost:>12.1f}{1e6 / cost:>11,.0f}"
              f"{_med([r['failures'] for r in rs]):>10.0f}{connections:>21.3f}")
    ratio = costs["mix"] / costs["bare"]
    print(f"   goal: mix ≤ {MIX_GOAL:g}× the bare engine per request: {ratio:.2f}× — {_goal(ratio <= MIX_GOAL)}")
    mix = results["mix"][-1]
    if mix["failure_kinds"] or mix["exceptions"]:
        print("   mix failures (a request the replay has no answer for?): "
              + "; ".join(mix["failure_kinds"] + mix["exceptions"])[:600])
    sizes = sorted(mix["endpoints"].items(), key=lambda kv: -kv[1][0])
    body = sum(n * size for n, size in mix["endpoints"].values()) / max(mix["requests"], 1)
    print(f"   the mix's requests (mean body {body:,.0f} B): "
          + ", ".join(f"{name.split(' ', 1)[1].replace(' [BOTTLENECK]', '')} {100 * n / max(mix['requests'], 1):.0f}%"
                      for name, (n, _) in sizes[:8]) + ", …")
    return costs["bare"], costs["mix"]


def print_profile(figures: dict, profile: dict) -> None:
    cost = per_request_us(figures)
    print(f"\n2. Where a mix request's CPU goes (py-spy --native, {profile['samples']:,} samples of one mix run; "
          f"{cost:.0f} µs a request in that run)")
    for name, share in profile["categories"].items():
        print(f"   {name:<48}{share * cost:>7.1f} µs {100 * share:5.1f}%")
    print("   busiest functions, innermost frame: " + ", ".join(f"{name} {100 * share:.1f}%"
                                                              for name, share in profile["top"][:8]))


def think_time_scale(args: argparse.Namespace, url: str, env: dict[str, str]) -> list[dict]:
    return [run_worker(_load_args("mix", url, users, args.scale_duration, think=True), env, args.scale_duration + 300)
            for users in args.scale_users]


def print_scale(results: list[dict], saturated_us: float) -> float | None:
    print(f"\n3. The mix at its own think time (1–3 s) against the replay, measured over the second half of "
          f"{results[0]['wall']:.0f} s runs")
    print(f"   {'users':>7}{'req/s':>9}{'req/s a user':>14}{'CPU':>7}{'µs/request':>12}")
    think_us = None
    for r in results:
        half = r["second_half"]
        rate = half["requests"] / half["wall"]
        cost = (half["cpu"] - half["per_second_cpu"]) / max(half["requests"], 1) * 1e6
        think_us = think_us if think_us is not None else cost
        print(f"   {r['users']:>7,}{rate:>9,.0f}{rate / r['users']:>14.2f}{100 * half['cpu'] / half['wall']:>6.0f}%"
              f"{cost:>12.0f}")
    last = results[-1]["second_half"]
    busy = last["cpu"] / last["wall"]
    print(f"   per request, a run of few users pays for waking the process twice (for the response, after the think "
          f"time), which at saturation ({saturated_us:.0f} µs) many requests share; at "
          f"{results[-1]['users']:,} users the core is {100 * busy:.0f}% busy: about "
          f"{results[-1]['users'] * 0.9 / busy:,.0f} users would fill 90% of it")
    return think_us


def print_fixed(fixed: dict, think_us: float | None, duration: float, users: int, title: str = "") -> None:
    metered = fixed["metered"]
    thread = sum(v for k, v in metered.items() if k.startswith("thread"))
    loop = sum(v for k, v in metered.items() if not k.startswith("thread"))
    startup = fixed["interpreter"] + fixed["imports"] + fixed["run_setup"]
    print(f"\n4. Fixed costs{title}: manage.py run_perf, {users} users, default think time, {duration:g} s against the "
          f"backend (core {TARGET_CORE}), stored and audited: exit code {fixed['exit_code']}, "
          f"{fixed['requests']:,} requests, {fixed['failures']} failed, {fixed['cpu_total']:.2f} CPU-s in all")
    print(f"   start-up {startup:.2f} s: interpreter and gevent {fixed['interpreter']:.2f} s, imports and Django "
          f"set-up {fixed['imports']:.2f} s, the run's own set-up (checks, stored run row) {fixed['run_setup']:.2f} s")
    print(f"   per-second work {loop + thread:.2f} s (ms of CPU per second of run):")
    for label, cpu in sorted(metered.items(), key=lambda kv: -kv[1]):
        print(f"     {label:<52}{cpu / duration * 1000:7.2f} ms/s  ({fixed['calls'].get(label, 0)} calls)")
    print(f"   after the run (tables, final save, audit): {fixed['after_run']:.2f} s; child processes (git rev-parse): "
          f"{fixed['children']:.2f} s")
    requests_cpu = fixed["run"] - loop - thread
    print(f"   requests: {requests_cpu:.2f} s, {requests_cpu / max(fixed['requests'], 1) * 1e6:.0f} µs each "
          f"(the run's CPU less its per-second work; ramp-up included)")
    if think_us is not None:
        outside = fixed["cpu_total"] - fixed["requests"] * think_us / 1e6
        print(f"   goal: < {FIXED_GOAL_S} CPU-s outside requests in a 2-minute run, start-up included (total less "
              f"{fixed['requests']:,} requests × {think_us:.0f} µs, the cost of a request at this think time in 3): "
              f"{outside:.2f} s — {_goal(outside < FIXED_GOAL_S and duration >= 120)}"
              + ("" if duration >= 120 else f" (this run lasted {duration:g} s)"))
    if "steady_requests" in fixed:
        per_100 = 100 * fixed["steady_connections"] / max(fixed["steady_requests"], 1)
        print(f"   goal: ≤ {CONNECT_GOAL:g} connection opened per 100 requests in steady state (keep-alive 75 s, think "
              f"time 1–3 s): {per_100:.2f} ({fixed['steady_connections']} in {fixed['steady_requests']:,} requests "
              f"after the ramp-up; {fixed['connections']} in the whole run, {fixed['reopened']} reopened) — "
              f"{_goal(per_100 <= CONNECT_GOAL)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per bare or mix round")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--fixed-duration", type=float, default=120.0, help="seconds of the run_perf run")
    parser.add_argument("--scale-users", type=lambda text: [int(n) for n in text.split(",")], default=[100, 1000, 5000],
                        help="user counts of the think-time runs (default 100,1000,5000)")
    parser.add_argument("--scale-duration", type=float, default=30.0)
    parser.add_argument("--skip-fixed", action="store_true")
    parser.add_argument("--skip-profile", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--think", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", choices=DEADLINES, default="again", help=argparse.SUPPRESS)
    parser.add_argument("--deadlines", action="store_true",
                        help="only compare the ways of keeping a request's time-out (bare engine, nginx's /ok)")
    parser.add_argument("--lean-store", action="store_true",
                        help="also run the fixed-cost run with progress saved every 10 s and the stop flag read every "
                             "2 s (an experiment: perf/store/thread.py is unchanged)")
    args = parser.parse_args()
    if args.worker:
        if args.worker in ("bare", "mix"):
            figures = worker_load(args.url, args.worker, args.users, args.duration, args.think, args.deadline)
        elif args.worker == "record":
            figures = worker_record(args.url, args.users, args.duration, args.out)
        else:
            figures = worker_fixed(args.url, args.users, args.duration, args.out, args.lean_store)
        print(json.dumps(figures))
        return
    if not shutil.which("nginx") or not shutil.which("taskset"):
        raise SystemExit("needs nginx (apt-get install nginx-light) and taskset (util-linux)")
    print(f"load average {os.getloadavg()[0]:.2f} (figures are steadier below 0.7)")
    if args.deadlines:
        with tempfile.TemporaryDirectory(prefix="perfkit-mix-") as tmp:
            nginx, replay_url = start_replay([], Path(tmp))
            try:
                print_deadlines(deadline_rounds(args, replay_url, {**os.environ, "PYTHONPATH": str(ROOT)}), args)
            finally:
                nginx_target.stop_nginx(nginx)
        return
    with tempfile.TemporaryDirectory(prefix="perfkit-mix-") as tmp:
        workdir = Path(tmp)
        os.chmod(workdir, 0o755)  # nginx's worker (another user) reads the replayed bodies in here
        env = backend_env(workdir)
        backend, url = start_backend(workdir)
        try:
            recording = run_worker(["--worker", "record", "--url", url, "--users", str(args.users), "--duration",
                                    str(RECORD_SECONDS), "--out", str(workdir / "records.json")], env, 300)
            print(f"recorded {recording['recorded']} answers of the backend (gunicorn {BACKEND_WORKERS}×"
                  f"{BACKEND_THREADS} on core {TARGET_CORE}, MD5 hasher): {recording['requests']:,} requests at "
                  f"{recording['rate']:.0f} req/s, {recording['failures']} failed")
            fixed = lean = None
            fixed_args = ["--worker", "fixed", "--url", url, "--users", str(args.users), "--duration",
                          str(args.fixed_duration), "--out", str(workdir)]
            if not args.skip_fixed:
                fixed = run_worker(fixed_args, env, args.fixed_duration + 600)
                if args.lean_store:
                    lean = run_worker([*fixed_args, "--lean-store"], env, args.fixed_duration + 600)
        finally:
            stop_process(backend)
        records = json.loads((workdir / "records.json").read_text())
        replay_dir = workdir / "replay"
        replay_dir.mkdir()
        nginx, replay_url = start_replay(records, replay_dir)
        try:
            results = load_rounds(args, replay_url, env)
            profile = None
            if not args.skip_profile:
                profile = profile_worker(_load_args("mix", replay_url, args.users, 12.0), env, 8.0)
            scale = [] if args.skip_scale else think_time_scale(args, replay_url, env)
        finally:
            nginx_target.stop_nginx(nginx)
    bare_us, mix_us = print_rounds(results, args)
    if profile is not None:
        print_profile(*profile)
    elif not args.skip_profile:
        print("\n2. Profile skipped: py-spy is not installed (pip install -r requirements-dev.txt)")
    think_us = print_scale(scale, mix_us) if scale else None
    for title, run in (("", fixed), (" (experiment: progress saved every 10 s, stop flag read every 2 s)", lean)):
        if run is None:
            continue
        print_fixed(run, think_us, args.fixed_duration, args.users, title)
        if run["exit_code"] not in (0, None):
            print("   run_perf's last lines:\n" + re.sub(r"(?m)^", "     ", run["tail"][-800:]))
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
