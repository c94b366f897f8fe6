"""Soak: a long run_perf run against a slow backend; the generator's memory and files, each request in the server's log.

Goals (issues: speed, 17): the generator's RSS stays flat within 5 MB per hour after warm-up; the run has
0 failures; and 0 failures the server did not cause: every request the client counted is in the server's
log, and every failure is one the server's log confirms (perf/analysis/reconcile.py). A generator that leaks a few
KB per request looks fine in a one-minute run and falls over in an afternoon, and a transport whose
time-outs add up across requests looks fine against a 5 ms target and invents failures against a slow one
(issue 17: gevent's re-armed Timeout); only a long run against slow answers, watched from outside and
checked against the server, shows either.

By default a backend is started the way ``make serve`` does (migrate, bootstrap_perf_tests, gunicorn
4 workers, emails to files, SYSTEM_TESTING=True), on a free loopback port and with its own SQLite database
in a temporary folder, so the developer's perf.sqlite3 is never touched. It is made slow on purpose:
``--server-delay 100-400`` (the default; ``off`` for none) sets BACKEND_ARTIFICIAL_DELAY_MS, so each /api/
request sleeps a uniform random 100-400 ms in the backend (backend/artificial_delay.py), and gunicorn gets
enough threads that those sleeps never queue (``server_threads``). gunicorn writes its access log (the
request time and the X-Perf-Request id, gunicorn.conf.py) into the temporary folder, and run_perf writes
one line per request with ``--request-log``; after the run, with the server stopped so that its log is
whole, ``manage.py perf_reconcile`` pairs the two and prints its report. With ``--host`` an already
running server is loaded instead (loopback only): its delay is whatever it was started with, and its log
is not ours, so the reconciliation is not run; the temporary database then only stores the run, so the
data-integrity audit is skipped (it would audit an empty database).

``manage.py run_perf`` runs as a child process with the same DATABASE_URL (the run is stored in the
temporary database and deleted with it) and writes its summary with ``--json``; the totals come from
there. Every ``--interval`` seconds this script reads the child's RSS (VmRSS in /proc/PID/status) and
open file descriptors (entries of /proc/PID/fd), summed over the child and any processes it forked.
The slopes are least-squares fits over the samples taken while the load ran, after a warm-up: the
first 20% of the run or 5 minutes, whichever is shorter (never less than the ramp-up). A short run
is a smoke test only: a slope fitted over two minutes and scaled to an hour magnifies noise, so the
30-minute default is the measurement.

Exit status: 0 when every goal is met (with ``--host``: the two that can be checked) and run_perf exited 0;
1 otherwise; 2 on bad options; 130 when interrupted (the server is stopped and the temporary folder
removed in every case).

Run: .venv/bin/python benchmarks/soak.py [--minutes 30] [--users 100] [--spawn-rate 10] [--interval 30]
     [--server-delay 100-400|off] [--host http://127.0.0.1:8000/api] [--no-audit]      (or: make soak)
"""

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Plain Python, no Django set-up (the modules import django.conf's lazy settings and nothing reads them).
from backend.artificial_delay import parse_delay_ms  # noqa: E402
from perf.config import PerfConfig, parse_seconds  # noqa: E402
from perf.options import check_base_url, is_loopback_host  # noqa: E402

RSS_GOAL_MB_PER_HOUR = 5.0
WARMUP_SHARE, WARMUP_CAP_S = 0.2, 300.0
MIN_FIT_SAMPLES = 3
# As `make serve` (Makefile WORKERS/THREADS): 4 workers x 2 threads keep 2 cores busy.
WORKERS, THREADS = 4, 2
# What `make soak` loads: a backend whose answers take 100-400 ms more than its work (issue 17).
DEFAULT_SERVER_DELAY = "100-400"
# Start-up, the end report, the audit and saving the run come on top of the load's duration.
RUN_GRACE_S = 180.0
SETUP_TIMEOUT_S = 600.0
SERVER_START_TIMEOUT_S = 60.0
# perf_reconcile reads two files of ~150,000 lines each after a 30-minute run: seconds, bounded anyway.
RECONCILE_TIMEOUT_S = 600.0
STOP_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 40


@dataclass(frozen=True)
class Sample:
    elapsed: float
    rss_mb: float
    fds: int
    processes: int


@dataclass(frozen=True)
class Fit:
    slope_per_hour: float
    first: float
    last: float
    count: int


# ---------------------------------------------------------------- options


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the load, ramp-up included")
    parser.add_argument("--users", type=int, default=100, help="simulated users (closed model)")
    parser.add_argument("--spawn-rate", type=float, default=10.0, help="users started per second")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--host", help="API root of a running server, e.g. http://127.0.0.1:8000/api "
                                       "(loopback only); default: start one with a temporary database")
    parser.add_argument("--server-delay", metavar="MIN-MAX",
                        help=f"milliseconds each /api/ request of the server started here sleeps, uniform random "
                             f"(BACKEND_ARTIFICIAL_DELAY_MS; default {DEFAULT_SERVER_DELAY}; off: none)")
    parser.add_argument("--no-audit", action="store_true", help="skip run_perf's data-integrity audit")
    parser.add_argument("--keep", metavar="DIR", type=Path,
                        help="copy the run's request log, the server's access log and the summary into DIR at the "
                             "end, to reconcile them again (manage.py perf_reconcile)")
    args = parser.parse_args()
    check_args(parser, args)
    return args


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse, before anything starts, options that cannot give a slope or would load another machine."""
    if args.minutes <= 0 or args.users < 1 or args.spawn_rate <= 0 or args.interval <= 0:
        parser.error("--minutes, --users, --spawn-rate and --interval must be positive")
    if args.host is not None:
        try:
            args.host = check_base_url(args.host)
        except ValueError as exc:
            parser.error(str(exc))
        if not is_loopback_host(args.host):
            parser.error(f"{args.host} is not a loopback address: a soak loads this machine only")
        if args.server_delay is not None:
            parser.error("--server-delay sets up the server this script starts; a running server (--host) keeps "
                         "the BACKEND_ARTIFICIAL_DELAY_MS it was started with")
    delay = DEFAULT_SERVER_DELAY if args.server_delay is None else args.server_delay
    try:
        args.delay_ms = None if args.host is not None or delay.strip().lower() == "off" else parse_delay_ms(delay)
    except ValueError as exc:
        parser.error(f"--server-delay: {exc}")
    # run_perf's request time-out (its default, or the variable it reads): the reconciliation needs it.
    raw_timeout = os.environ.get("LOCUST_REQUEST_TIMEOUT")
    try:
        args.request_timeout = (PerfConfig.request_timeout if raw_timeout is None
                                else parse_seconds("LOCUST_REQUEST_TIMEOUT", raw_timeout))
    except ValueError as exc:
        parser.error(str(exc))
    duration = args.minutes * 60
    warmup, _ = warmup_for(duration, args.users / args.spawn_rate)
    if (duration - warmup) / args.interval < MIN_FIT_SAMPLES:
        parser.error(f"only {max(0, int((duration - warmup) / args.interval))} samples would follow the "
                     f"{warmup:.0f} s warm-up; a slope needs {MIN_FIT_SAMPLES}: lower --interval or raise --minutes")


def warmup_for(duration: float, ramp_up: float) -> tuple[float, str]:
    """Seconds left out of the fits, and which rule set them: start-up allocations are not a leak."""
    if WARMUP_SHARE * duration <= WARMUP_CAP_S:
        seconds, rule = WARMUP_SHARE * duration, f"the first {WARMUP_SHARE:.0%} of the run"
    else:
        seconds, rule = WARMUP_CAP_S, f"the first {WARMUP_CAP_S / 60:.0f} minutes"
    if ramp_up > seconds:
        return ramp_up, "the ramp-up (users / spawn rate), longer than the usual warm-up"
    return seconds, rule


# ---------------------------------------------------------------- /proc


def process_tree(root: int) -> list[int]:
    """``root`` and every process descended from it (run_perf --processes forks workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                # The command name is in parentheses and may hold spaces: split after the last ')'.
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone since the listing
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def rss_kb(pid: int) -> int:
    """Resident set size now (not the peak), 0 for a process that is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def take_sample(pid: int, started: float) -> Sample:
    tree = process_tree(pid)
    return Sample(elapsed=time.monotonic() - started, rss_mb=sum(rss_kb(p) for p in tree) / 1024,
                  fds=sum(fd_count(p) for p in tree), processes=len(tree))


# ---------------------------------------------------------------- child processes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def soak_env(folder: Path) -> dict[str, str]:
    """The environment of every child: the temporary database, emails to files, tokens in headers."""
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": f"sqlite:///{folder / 'soak.sqlite3'}",
        "EMAIL_URL": f"filemail:///{folder / 'mail'}",  # django-environ drops one slash
        "SYSTEM_TESTING": "True",
        # The seed's admin login belongs to this throw-away database, not to the developer's .admin_password.
        "PERF_ADMIN_PASSWORD_FILE": str(folder / "admin_password"),
        # The project's settings with an MD5 password hasher (benchmarks/mix_settings.py): at Django's default
        # cost every login hashes for ~0.3 s of CPU, and 100 users' logins alone saturate both cores, so answers
        # would take seconds whatever the delay asked for. The soak's target answers in 100-400 ms as meant.
        "DJANGO_SETTINGS_MODULE": "mix_settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "benchmarks"), str(ROOT), env.get("PYTHONPATH")])),
    })
    # A long run must not end because the seeded ticket tiers sold out.
    env.setdefault("LOCUST_TICKET_TIER_CAPACITY", "1000000")
    return env


def manage(env: dict[str, str], *arguments: str) -> None:
    """One bounded manage.py command; its output only when it fails."""
    done = subprocess.run([sys.executable, str(ROOT / "manage.py"), *arguments], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=SETUP_TIMEOUT_S)
    if done.returncode != 0:
        fail(f"manage.py {' '.join(arguments)} exited {done.returncode}:\n{done.stdout}{done.stderr}")


def server_threads(users: int, delay_ms: tuple[float, float] | None) -> int:
    """gthread threads per worker: `make serve`'s 2, or with a slow server enough that no request waits for one.

    The soak measures the generator, so the server must not be the queue. With 100-400 ms of sleep in each
    request, 100 users at the default think time (1-3 s, ≈ 0.8 requests a second each) keep ≈ 20 requests
    sleeping at once on average (Little's law: 80 req/s x 0.25 s), far more in bursts: 4 x 2 = 8 threads would
    queue them, latency would grow with the queue and the users would slow down, so the run would measure
    gunicorn's backlog instead of the generator. In the closed model a user has at most one request in flight,
    so ``users`` threads in all would always be enough; a kept-alive connection stays with the worker that
    accepted it, and the workers' shares of 100 connections are uneven (≈ 25 ± 5 each), hence twice the even
    share. A sleeping thread costs no CPU: the two cores still bound the real work as before.
    """
    if delay_ms is None:
        return THREADS
    return max(THREADS, math.ceil(2 * users / WORKERS))


def start_server(env: dict[str, str], log: IO[str], access_log: Path, threads: int) -> tuple[subprocess.Popen, str]:
    """gunicorn as `make serve` runs it, with its access log written (the server's side of the reconciliation),
    in a session of its own so that Ctrl-C reaches this script first."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}",
         "--workers", str(WORKERS), "--threads", str(threads), "--log-level", "warning",
         "--access-logfile", str(access_log)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return server, f"http://127.0.0.1:{port}/api"


def wait_until_healthy(server: subprocess.Popen, api: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            fail(f"gunicorn exited {server.returncode}:\n{tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{api}/healthcheck", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    fail(f"the server did not answer {api}/healthcheck within {SERVER_START_TIMEOUT_S:.0f} s:\n{tail(log_path)}")


def start_generator(args: argparse.Namespace, api: str, env: dict[str, str], json_path: Path, request_log: Path,
                    log: IO[str]) -> subprocess.Popen:
    """run_perf with its output in a file, so its 2-second progress lines do not bury the samples."""
    command = [sys.executable, str(ROOT / "manage.py"), "run_perf", "--host", api, "--users", str(args.users),
               "--spawn-rate", f"{args.spawn_rate:g}", "--duration", f"{round(args.minutes * 60)}s",
               "--label", "soak", "--json", str(json_path), "--request-log", str(request_log)]
    if args.no_audit or args.host is not None:
        command.append("--no-audit")
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(process: subprocess.Popen | None, first: signal.Signals) -> None:
    """``first`` (SIGINT lets run_perf store the run as aborted), then SIGKILL after a bounded wait."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, first)  # the whole session: gunicorn's workers, run_perf's forks
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_S)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------- sampling and figures


def sample_run(generator: subprocess.Popen, interval: float, limit: float) -> list[Sample]:
    """One sample every ``interval`` s until run_perf exits, printed as taken; bounded by ``limit`` s."""
    started = time.monotonic()
    samples: list[Sample] = []
    print(f"{'elapsed s':>9} {'RSS MB':>8} {'open fds':>8} {'procs':>5}", flush=True)
    while True:
        due = started + (len(samples) + 1) * interval
        try:
            generator.wait(timeout=max(0.0, min(due, started + limit) - time.monotonic()))
            return samples
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() - started >= limit:
            print(f"run_perf still running {limit:.0f} s after it started: stopping it", flush=True)
            stop(generator, signal.SIGINT)
            return samples
        sample = take_sample(generator.pid, started)
        samples.append(sample)
        print(f"{sample.elapsed:9.0f} {sample.rss_mb:8.1f} {sample.fds:8d} {sample.processes:5d}", flush=True)


def least_squares(points: list[tuple[float, float]]) -> Fit:
    """Slope of y per hour of x (seconds), fitted to every point, not just the ends: robust to one odd sample."""
    xs, ys = [x / 3600 for x, _ in points], [y for _, y in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread if spread else 0.0
    return Fit(slope_per_hour=slope, first=ys[0], last=ys[-1], count=len(points))


@dataclass(frozen=True)
class Reconciliation:
    """What ``manage.py perf_reconcile`` said: its exit status (0: the two sides agree) and its report."""

    ok: bool
    report: str


def reconcile(env: dict[str, str], request_log: Path, access_log: Path, json_path: Path,
              timeout: float) -> Reconciliation:
    """Pair the client's request log with the server's access log (perf/analysis/reconcile.py), in a child process
    so that this script never sets Django up; ``timeout`` is run_perf's request time-out, which tells a time-out the
    server caused (it took longer, or never answered) from one the client invented."""
    command = [sys.executable, str(ROOT / "manage.py"), "perf_reconcile", "--requests", str(request_log),
               "--access-log", str(access_log), "--summary", str(json_path), "--timeout", f"{timeout:g}"]
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=RECONCILE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return Reconciliation(ok=False, report=f"perf_reconcile did not finish within {RECONCILE_TIMEOUT_S:.0f} s")
    text = (done.stdout + done.stderr).rstrip()
    if done.returncode not in (0, 1):
        text += f"\n(perf_reconcile exited {done.returncode})"
    return Reconciliation(ok=done.returncode == 0, report=text or "(perf_reconcile printed nothing)")


def server_counts(access_log: Path) -> tuple[int, int] | None:
    """Lines of gunicorn's access log: those carrying an X-Perf-Request id (the run's requests), and all of them
    (health checks included). Its last field is the id, ``-`` when the request carried none."""
    try:
        with open(access_log, encoding="utf-8", errors="replace") as lines:
            total = tagged = 0
            for line in lines:
                total += 1
                tagged += line.rstrip().rsplit(" ", 1)[-1] != "-"
    except OSError:
        return None
    return tagged, total


def read_totals(json_path: Path) -> dict[str, Any] | None:
    """The Aggregated entry of run_perf's --json summary (perf/reports/summary_json.py)."""
    try:
        summary = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return next((entry for entry in summary["entries"] if entry.get("aggregated")), None)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(samples: list[Sample], totals: dict[str, Any] | None, exit_code: int, args: argparse.Namespace,
           log_path: Path, reconciliation: Reconciliation | None, counts: tuple[int, int] | None) -> int:
    """Figures beside their goals; returns the exit status. ``reconciliation`` is None with --host (not checked)."""
    duration = args.minutes * 60
    warmup, rule = warmup_for(duration, args.users / args.spawn_rate)
    window = [s for s in samples if warmup < s.elapsed <= duration]
    print(f"\nwarm-up left out: {warmup:.0f} s ({rule}); fitted: {len(window)} samples taken while the load ran")
    rss_ok = False
    if len(window) >= MIN_FIT_SAMPLES:
        rss = least_squares([(s.elapsed, s.rss_mb) for s in window])
        fds = least_squares([(s.elapsed, s.fds) for s in window])
        rss_ok = abs(rss.slope_per_hour) <= RSS_GOAL_MB_PER_HOUR
        print(f"RSS slope after warm-up: {rss.slope_per_hour:+.2f} MB per hour ({rss.first:.1f} → {rss.last:.1f} MB, "
              f"max {max(s.rss_mb for s in window):.1f}); goal: RSS flat within {RSS_GOAL_MB_PER_HOUR:.0f} MB per "
              f"hour after warm-up: {verdict(rss_ok)}")
        print(f"open fds slope after warm-up: {fds.slope_per_hour:+.1f} per hour ({fds.first:.0f} → {fds.last:.0f}, "
              f"max {max(s.fds for s in window)})")
    else:
        print(f"RSS slope: not measured, only {len(window)} samples after warm-up; goal: RSS flat within "
              f"{RSS_GOAL_MB_PER_HOUR:.0f} MB per hour after warm-up: FAIL")
    failures_ok = totals is not None and totals["num_failures"] == 0
    if totals is None:
        print("requests: unknown, run_perf wrote no JSON summary; goal: 0 failures: FAIL")
    else:
        print(f"requests: {totals['num_requests']:,} ({totals['rps']:.1f} req/s), failures: "
              f"{totals['num_failures']:,}; goal: 0 failures: {verdict(failures_ok)}")
        figures = [("p50", totals["percentiles"]["50%"]), ("p95", totals["percentiles"]["95%"]),
                   ("p99", totals["percentiles"]["99%"]), ("max", totals["max_response_time"])]
        print("response time (client): " + ", ".join(  # a percentile is None when nothing was recorded
            f"{label} {'-' if value is None else f'{value:,.0f}'} ms" for label, value in figures))
    if reconciliation is None:
        print("server's access log: not ours with --host; goal: failures the server did not cause: 0: not checked")
    else:
        if counts is None:
            print("server-side requests: unknown, gunicorn wrote no access log")
        else:
            print(f"server-side requests: {counts[0]:,} with the run's X-Perf-Request id in gunicorn's access log "
                  f"({counts[1]:,} lines in all, health checks included)")
        print("reconciliation with the server's access log (manage.py perf_reconcile):")
        print("\n".join(f"  {line}" for line in reconciliation.report.splitlines()))
        print(f"goal: failures the server did not cause: 0 (every request in the server's log, every failure "
              f"confirmed by it): {verdict(reconciliation.ok)}")
    print(f"run_perf exit status: {exit_code}")
    if exit_code != 0 or not failures_ok:
        print(f"\nlast lines of run_perf's output:\n{tail(log_path)}")
    reconciled = reconciliation is None or reconciliation.ok
    return 0 if rss_ok and failures_ok and reconciled and exit_code == 0 else 1


# ---------------------------------------------------------------- driver


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


def fail(message: str) -> NoReturn:
    raise SystemExit(message)


def interrupt(signum: int, frame: object) -> NoReturn:
    """SIGTERM as Ctrl-C: both unwind through the clean-up."""
    raise KeyboardInterrupt


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Clean-up must not be cut short by a second Ctrl-C: it would leave the server running."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def soak(args: argparse.Namespace, folder: Path) -> int:
    env = soak_env(folder)
    server_log, run_log, json_path = folder / "server.log", folder / "run_perf.log", folder / "summary.json"
    access_log, request_log = folder / "access.log", folder / "requests.log"
    server = generator = None
    with open(server_log, "w") as server_out, open(run_log, "w") as run_out:
        try:
            manage(env, "migrate", "--no-input", "-v0")
            if args.host is None:
                manage(env, "bootstrap_perf_tests")
                threads = server_threads(args.users, args.delay_ms)
                delay = "" if args.delay_ms is None else f"{args.delay_ms[0]:g}-{args.delay_ms[1]:g}"
                server, api = start_server({**env, "BACKEND_ARTIFICIAL_DELAY_MS": delay}, server_out, access_log,
                                           threads)
                wait_until_healthy(server, api, server_log)
                slow = f"each /api/ request sleeps {delay} ms" if delay else "no artificial delay"
                print(f"server: gunicorn {WORKERS} workers x {threads} threads at {api}, {slow}, database {folder}")
            else:
                api = args.host
                print(f"server: {api} (already running; the run is stored in {folder}, no integrity audit)")
            print(f"load: {args.users} users, spawn rate {args.spawn_rate:g}/s, {args.minutes:g} min, closed model; "
                  f"a sample every {args.interval:g} s of run_perf's process tree\n", flush=True)
            generator = start_generator(args, api, env, json_path, request_log, run_out)
            samples = sample_run(generator, args.interval, args.minutes * 60 + RUN_GRACE_S)
        except KeyboardInterrupt:
            print("\ninterrupted: stopping run_perf and the server, removing the temporary folder", flush=True)
            return 130
        finally:
            with uninterrupted():
                stop(generator, signal.SIGINT)
                stop(server, signal.SIGTERM)  # before the reconciliation: the requests it finished are logged
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        for kept in (request_log, access_log, json_path, run_log):
            if kept.exists():
                shutil.copy2(kept, args.keep / kept.name)
    reconciliation = None if args.host is not None else reconcile(env, request_log, access_log, json_path,
                                                                  args.request_timeout)
    return report(samples, read_totals(json_path), generator.returncode, args, run_log, reconciliation,
                  server_counts(access_log))


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, interrupt)
    with tempfile.TemporaryDirectory(prefix="perfkit-soak-") as folder:
        status = soak(args, Path(folder))
    sys.exit(status)


if __name__ == "__main__":
    main()
