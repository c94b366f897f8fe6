"""Memory per simulated user holding an idle keep-alive connection.

Goal (issue: speed): 10,000 simulated users each with a live keep-alive connection in one
process ≤ 15 KB per user. Reference per idle simulated user holding a connection:
requests ≈ 29 KB, geventhttpclient ≈ 13 KB.

A local nginx (worker_processes 1, keep-alive 300 s) is the target. Each measurement runs in
a fresh subprocess of this script, so the allocations of one cannot mask another's:
  engine             the real engine: a LoadRunner of N users whose on_start makes one GET,
                     then who think for an hour (wait_time constant(3600))
  raw+greenlet       a minimal hand-written user: a greenlet opens a geventhttpclient
                     HTTPClient with one GET, then sleeps holding it (the 13 KB reference)
  raw                N bare HTTPClient objects, one GET each, no greenlets
  requests+greenlet  the same with requests.Session (the 29 KB reference; if requests is installed)
  requests           N bare requests.Session objects, one GET each
Per-user cost is (RSS after − RSS before) / N, RSS read from /proc/self/statm (current, not
peak). Connections are counted live: ESTABLISHED sockets of the process to nginx's port.
--explain adds an engine run under tracemalloc (slower) showing where the engine's bytes go,
and bare sleeping greenlets, the floor of any one-greenlet-per-user design.

Run: .venv/bin/python benchmarks/memory.py [--users 10000] [--modes engine,raw] [--seed 1] [--explain]
Needs nginx (default: the one on PATH, else /usr/sbin/nginx) and RLIMIT_NOFILE ≥ users + 64.
"""

from gevent import monkey

monkey.patch_all()  # as manage.py does for run_perf: before anything imports socket or threading

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import linecache  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from geventhttpclient import HTTPClient  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from perf.load.runner import LoadRunner, RunPlan  # noqa: E402
from perf.load.session import HttpSession  # noqa: E402
from perf.load.stats import StatsRegistry  # noqa: E402
from perf.load.user import User, constant, task  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nginx_target import start_nginx, stop_nginx  # noqa: E402

GOAL_KB = 15.0
REFERENCE_KB = {"raw+greenlet": 13.0, "requests+greenlet": 29.0}
MODES = ("engine", "raw+greenlet", "raw", "requests+greenlet", "requests")
THINK = 3600.0



class IdleUser(User):
    """Opens its connection with one request, then thinks for an hour holding it."""

    wait_time = constant(THINK)

    def on_start(self) -> None:
        self.client.get("/")

    @task
    def idle(self) -> None:
        pass


def rss_bytes() -> int:
    """Resident set size now, from /proc (ru_maxrss would only show the peak)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def raise_nofile(wanted: int) -> int:
    """Soft limit to ``wanted``, the hard one too if allowed (root with CAP_SYS_RESOURCE), else
    as far as the hard one goes; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
        except (ValueError, OSError):
            pass
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def live_connections(port: int) -> int:
    """ESTABLISHED TCP sockets of this process whose peer port is ``port``."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                next(rows)
                for row in rows:
                    fields = row.split()
                    if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
                        count += 1
        except FileNotFoundError:
            pass
    return count


# ---------------------------------------------------------------- one measurement (child process)


def settle() -> int:
    """RSS once the loop has run and cyclic garbage is gone."""
    gevent.sleep(0.2)
    gc.collect()
    return rss_bytes()


def wait_for(done: Callable[[], bool], seconds: float) -> float:
    started = time.monotonic()
    while not done() and time.monotonic() - started < seconds:
        gevent.sleep(0.05)
    return time.monotonic() - started


def measure_engine(users: int, port: int, spawn_rate: float, seed: int | None, trace: bool = False) -> dict:
    """The real engine; with ``trace``, the Python heap's growth by allocation site, and one user's parts."""
    base = f"http://127.0.0.1:{port}"
    warm = HttpSession(base, lambda *a: None)  # imports and lazy set-up happen before the baseline
    warm.get("/")
    warm.close()
    del warm
    if trace:
        tracemalloc.start(1)
        first = tracemalloc.take_snapshot()
    before = settle()
    stats = StatsRegistry()

    def make_session(registry: StatsRegistry) -> HttpSession:
        return HttpSession(base, registry.record, timeout=30.0)

    plan = RunPlan(users=users, spawn_rate=spawn_rate, duration=24 * 3600, seed=seed)
    runner = LoadRunner([IdleUser], plan, stats, make_session)
    running = gevent.spawn(runner.run)
    ready = wait_for(lambda: stats.total.num_requests >= users or running.dead, 120 + users / spawn_rate)
    gevent.sleep(0.5)  # the last users reach their think time
    after = settle()
    result: dict[str, Any] = {
        "before": before, "after": after, "seconds": ready, "requests": stats.total.num_requests,
        "failures": stats.total.num_failures, "waiting": sum(user.waiting for user, _ in runner.users),
        "live": live_connections(port),
    }
    if trace:
        second = tracemalloc.take_snapshot()
        drop = [tracemalloc.Filter(False, tracemalloc.__file__)]
        diff = second.filter_traces(drop).compare_to(first.filter_traces(drop), "lineno")
        result["traced_growth"] = sum(stat.size_diff for stat in diff)
        result["top"] = [
            {"where": f"{Path(frame.filename).name}:{frame.lineno}", "bytes": stat.size_diff,
             "count": stat.count_diff, "line": linecache.getline(frame.filename, frame.lineno).strip()}
            for stat in diff[:12]
            for frame in [stat.traceback[0]]
        ]
    runner.request_stop("measured")
    running.join(timeout=30)
    if trace:
        result["parts"] = user_parts(base)
        tracemalloc.stop()
    return result


def traced_cost(make: Callable[[], Any], count: int = 200) -> int:
    """Bytes of Python heap one object costs, everything it allocates included (tracemalloc running)."""
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    made = [make() for _ in range(count)]
    gc.collect()
    cost = (tracemalloc.get_traced_memory()[0] - before - sys.getsizeof(made)) // count
    del made
    return cost


def user_parts(base: str) -> list[tuple[str, int]]:
    """What each part of one simulated user costs built alone, before it connects."""
    import random

    from gevent.lock import BoundedSemaphore
    from gevent.queue import LifoQueue

    session = HttpSession(base, lambda *a: None)
    return [
        ("random.Random() (Mersenne Twister state + dict)", traced_cost(random.Random)),
        ("User object", traced_cost(lambda: IdleUser(session, None))),
        ("HttpSession, its HTTPClient and pool included", traced_cost(lambda: HttpSession(base, lambda *a: None))),
        ("  HTTPClient.from_url, its pool included", traced_cost(lambda: HTTPClient.from_url(base, concurrency=1))),
        ("    the pool's LifoQueue(1)", traced_cost(lambda: LifoQueue(1))),
        ("    the pool's BoundedSemaphore(1)", traced_cost(lambda: BoundedSemaphore(1))),
    ]


def open_raw(base: str) -> HTTPClient:
    client = HTTPClient.from_url(base, concurrency=1, connection_timeout=30.0, network_timeout=30.0)
    response = client.get("/")
    response.read()
    response.release()
    return client


def open_requests(base: str) -> Any:
    import requests

    session = requests.Session()
    session.get(base, timeout=30).content  # noqa: B018 — read the body, so the connection goes back to the pool
    return session


def measure_held(users: int, port: int, open_one: Callable[[str], Any] | None, in_greenlets: bool,
                 spawn_rate: float) -> dict:
    """N connections opened one after another and kept in a list, or each by its own greenlet that
    then sleeps holding it; ``open_one=None``: bare greenlets that only sleep."""
    base = f"http://127.0.0.1:{port}/"
    if open_one is not None:
        open_one(base).close()  # imports and lazy set-up happen before the baseline
    held: list[Any] = []
    failures: list[str] = []
    greenlets: list[gevent.Greenlet] = []
    before = settle()
    started = time.monotonic()
    if not in_greenlets:
        held.extend(open_one(base) for _ in range(users))
    else:
        def user() -> None:
            if open_one is not None:
                try:
                    held.append(open_one(base))
                except Exception as exc:
                    failures.append(repr(exc))
                    return
            else:
                held.append(None)
            gevent.sleep(THINK)

        batch = 100  # at the engine's spawn rate, so that connects do not all pile up at once
        for index in range(users):
            greenlets.append(gevent.spawn(user))
            if index % batch == batch - 1:
                gevent.sleep(batch / spawn_rate)
        wait_for(lambda: len(held) + len(failures) >= users, 120)
    ready = time.monotonic() - started
    gevent.sleep(0.5 if in_greenlets else 0)
    after = settle()
    result = {"before": before, "after": after, "seconds": ready, "requests": len(held), "failures": len(failures),
              "live": live_connections(port) if open_one is not None else 0}
    gevent.killall(greenlets)
    for connection in held:
        if connection is not None:
            connection.close()
    return result


def measure(mode: str, args: argparse.Namespace) -> dict:
    if mode == "engine":
        return measure_engine(args.users, args.port, args.spawn_rate, args.seed)
    if mode == "explain":
        return measure_engine(args.users, args.port, args.spawn_rate, args.seed, trace=True)
    if mode == "greenlet":
        return measure_held(args.users, args.port, None, True, args.spawn_rate)
    if mode.startswith("requests"):
        try:
            import requests  # noqa: F401
        except ImportError:
            return {"skipped": "requests is not installed"}
    open_one = open_requests if mode.startswith("requests") else open_raw
    return measure_held(args.users, args.port, open_one, mode.endswith("+greenlet"), args.spawn_rate)


# ---------------------------------------------------------------- the driver (parent process)


def run_child(mode: str, args: argparse.Namespace, port: int) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--mode", mode, "--users", str(args.users),
               "--port", str(port), "--spawn-rate", str(args.spawn_rate)]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not done.stdout.strip():
        return {"error": (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def kb_per_user(result: dict, users: int) -> float:
    return (result["after"] - result["before"]) / users / 1024


def print_table(results: dict[str, dict], users: int) -> None:
    print(f"{'mode':<18} {'users':>7} {'live conns':>10} {'failed':>6} {'setup s':>7} {'RSS before MB':>13} "
          f"{'RSS after MB':>12} {'KB/user':>8} {'reference':>9}")
    for mode, result in results.items():
        if "before" not in result:
            print(f"{mode:<18} {result.get('error') or result.get('skipped')}")
            continue
        reference = f"{REFERENCE_KB[mode]:.0f} KB" if mode in REFERENCE_KB else ""
        print(f"{mode:<18} {users:>7} {result['live']:>10} {result['failures']:>6} {result['seconds']:7.1f} "
              f"{result['before'] / 2**20:13.1f} {result['after'] / 2**20:12.1f} {kb_per_user(result, users):8.1f} "
              f"{reference:>9}")


def print_explain(explained: dict, floor: dict, engine_kb: float | None, users: int) -> None:
    print("\nWhere the engine's memory goes")
    if "before" in floor:
        print(f"  a bare gevent greenlet parked in gevent.sleep: {kb_per_user(floor, users):.1f} KB "
              "(its C stack, saved to the heap at each switch, and its own CPython frame-stack chunk)")
    if "top" not in explained:
        print(f"  explain: {explained.get('error')}")
        return
    traced = explained["traced_growth"] / users / 1024
    rss = engine_kb if engine_kb is not None else kb_per_user(explained, users)
    print(f"  engine: Python heap (tracemalloc) {traced:.1f} KB/user of {rss:.1f} KB/user RSS; the other "
          f"{rss - traced:.1f} KB is outside it: each greenlet's frame-stack chunk (a 16 KB mmap, pages touched "
          "by the deepest call stay resident) and the allocator's slack")
    print(f"\n  {'top allocation sites (growth)':<28} {'B/user':>7} {'blocks':>6}  source line "
          "(hub.wait: where a greenlet switches out, its saved C stack is counted there)")
    for site in explained["top"]:
        print(f"  {site['where']:<28} {site['bytes'] / users:7.0f} {site['count'] / users:6.1f}  {site['line'][:60]}")
    print(f"\n  {'parts of one user, built alone (Python heap)':<50} {'bytes':>6}")
    for name, size in explained["parts"]:
        print(f"  {name:<50} {size:>6}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of: {', '.join(MODES)}")
    parser.add_argument("--spawn-rate", type=float, default=5000.0, help="users started per second")
    parser.add_argument("--seed", type=int, help="seed the engine users' RNGs (as run_perf --seed)")
    parser.add_argument("--explain", action="store_true", help="also show where the engine's memory goes")
    parser.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    parser.add_argument("--mode", choices=(*MODES, "explain", "greenlet"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    # Each process (a measurement, nginx) holds one end of every connection, plus a few files.
    nofile = raise_nofile(2 * args.users + 1024)
    if nofile < args.users + 64:
        raise SystemExit(f"RLIMIT_NOFILE is {nofile}: cannot hold {args.users} connections (hard limit too low)")
    if args.mode:  # one measurement, in its own process; the result is the last stdout line
        print(json.dumps(measure(args.mode, args)))
        return
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown mode(s): {', '.join(sorted(unknown))}")
    results: dict[str, dict] = {}
    explained = floor = None
    with tempfile.TemporaryDirectory(prefix="perfkit-memory-") as tmp:
        proc, port = start_nginx(Path(tmp), nofile, nginx=args.nginx)
        try:
            print(f"target: nginx on 127.0.0.1:{port}; {args.users:,} users per measurement, each in a fresh process"
                  + (f"; engine seed {args.seed}" if args.seed is not None else "") + "\n")
            for mode in modes:
                results[mode] = run_child(mode, args, port)
            if args.explain:
                explained = run_child("explain", args, port)
                floor = run_child("greenlet", args, port)
        finally:
            stop_nginx(proc)
    print_table(results, args.users)
    measured = {mode: kb_per_user(r, args.users) for mode, r in results.items() if "before" in r}
    engine = measured.get("engine")
    if engine is not None:
        print()
        for other in ("raw+greenlet", "requests+greenlet", "raw", "requests"):
            if other in measured:
                print(f"engine / {other}: {engine / measured[other]:.2f}×")
        live = results["engine"]["live"]
        alive = "all live" if live == args.users else f"ONLY {live} of {args.users} live"
        verdict = "met" if engine <= GOAL_KB and live == args.users else "NOT met"
        print(f"engine: {engine:.1f} KB per idle user holding a connection ({alive}); "
              f"goal ≤ {GOAL_KB:.0f} KB: {verdict}")
    if explained is not None and floor is not None:
        print_explain(explained, floor, engine, args.users)


if __name__ == "__main__":
    main()
