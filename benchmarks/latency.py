"""Where the generator's tail latency comes from at a paced 500 req/s: one experiment per candidate cause.

``benchmarks/generator.py`` measures the latency the generator adds at a paced 500 req/s (50 connections,
a uniformly random 0..2T pause after each response, T = 100 ms) against nginx on the other core. Its p99 has
been several ms above wrk's, with the bare geventhttpclient client too. This script runs the same paced load
with one change at a time, alternating over rounds, and prints p50/p99/p99.9 beside wrk's together with what
each candidate would leave as evidence:

- ``engine``: as generator.py (LoadRunner, no ticks, no other thread), users started 1/rate apart.
- ``engine+burst``, ``raw-ghc+burst``: every user started at once, as generator.py did until issue 13.
- ``engine+tick``: the runner's real 2 s tick (samples) and its 1 s history clock (``second_clock``).
- ``engine+thread``: a second OS thread (gevent ThreadPool, as the store's) holding the GIL for 12 ms of
  Python work every 2 s and 1 ms every 0.5 s, as a stored run's progress saves and stop-flag polls do;
  ``+switch`` also sets ``sys.setswitchinterval(0.0005)``.
- ``engine+idle-thread``: the thread exists but waits (no work): does its mere presence cost anything?
- ``engine+gc-off``: the cyclic garbage collector disabled for the run.
- ``engine+rx``: the kernel's receive timestamp of each response (SO_TIMESTAMPING) splits a request's time
  into the part before the response reached the generator's socket (network and server) and the part after
  (the generator getting round to reading it).
- ``engine+timer``: a probe greenlet that asks for a 1 ms sleep in a loop and records how late it wakes
  (libev's timer granularity and the loop's lag), beside the load.
- ``+nice`` (the generator at nice -10) and ``+hog`` (a busy loop on the generator's core), for wrk and the
  engine: how much other work on the machine moves the tail.

Evidence per run: the generator's involuntary context switches and run-queue delay (the time it was ready to
run but another task had the core, /proc/self/schedstat) during the load, the garbage collector's passes and
their longest pause, and the slow requests (> 1 ms): how many overlapped a GC pass, a tick, the thread's work,
or a run-queue wait of 0.5 ms or more during their own flight; the p99 of the requests that waited for the
CPU less than 0.05 ms in flight.

The finding (docs/scaling.md, "Latency the generator adds"): the old 6 ms p99 was the benchmark starting all
users at once; the GIL switch interval shows only in the far tail while a second thread runs Python; GC and
the tick are ruled out; the rest is other work on this shared machine, for wrk as for the engine.

Run: .venv/bin/python benchmarks/latency.py [--rounds 3] [--duration 10] [--variants engine,wrk,...]
(default: the variants behind that finding; every variant: --variants all)
"""

import argparse
import contextlib
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import nginx_target  # noqa: E402

GENERATOR_CORE, TARGET_CORE = "0", "1"
VARIANTS = ("wrk", "raw-ghc", "engine", "engine+tick", "engine+idle-thread", "engine+thread", "engine+thread+switch",
            "engine+gc-off", "engine+timer", "engine+rx", "engine+burst", "raw-ghc+burst", "wrk+nice", "engine+nice",
            "wrk+hog", "engine+hog")
DEFAULT_VARIANTS = ("wrk", "raw-ghc", "engine", "engine+burst", "engine+tick", "engine+thread",
                    "engine+thread+switch", "engine+gc-off", "engine+rx")
# "+nice": the generator at nice -10, so that other tasks on its core wait for it rather than the other way round.
# "+hog": a busy loop pinned to the generator's core at the default priority for the whole run, standing for
# the other work of a shared machine (the test suites of other people here).
SLOW_MS = 1.0


def _schedstat() -> tuple[float, float]:
    """(seconds on the CPU, seconds waiting on a run queue) of this process's main thread."""
    with open(f"/proc/self/task/{os.getpid()}/schedstat") as handle:
        on_cpu, waiting, _ = handle.read().split()
    return int(on_cpu) / 1e9, int(waiting) / 1e9


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def _share_after(late: list[tuple[float, float]]) -> float | None:
    """Of the slowest 1 % of requests, the share of their time after their answer had reached the socket."""
    if not late:
        return None
    tail = sorted(late)[-max(len(late) // 100, 1):]
    return sum(after for _, after in tail) / max(sum(ms for ms, _ in tail), 1e-9)


def worker(url: str, variant: str, users: int, duration: float, rate: float) -> dict:
    """One paced run in this process (pinned by the caller); the figures as a dict."""
    from gevent import monkey

    monkey.patch_all()
    import gc
    import random

    import gevent
    from gevent.threadpool import ThreadPool

    sys.path.insert(0, str(ROOT))
    from perf.load.runner import LoadRunner, RunPlan
    from perf.load.session import HttpSession
    from perf.load.stats import StatsRegistry
    from perf.load.user import User, between, task

    pacing = users / rate
    burst = variant == "engine+burst"
    events: list[tuple[float, float]] = []  # (start perf_counter, ms) per request
    busy: list[tuple[float, float, str]] = []  # (from, to, what) of GC passes, ticks and thread work
    gc_started: list[float] = []

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_started.append(time.perf_counter())
        elif gc_started:
            busy.append((gc_started.pop(), time.perf_counter(), f"gc{info['generation']}"))

    gc.callbacks.append(on_gc)

    class Bench(User):
        wait_time = staticmethod(between(0, 2 * pacing))

        @task
        def get(self) -> None:
            self.client.get("/", name="/")

    stats = StatsRegistry()
    record = stats.record
    # The main thread's run-queue wait, read around every request: was the generator kept off the CPU by
    # another task while this request was in flight?
    schedstat = os.open(f"/proc/self/task/{os.getpid()}/schedstat", os.O_RDONLY)

    def waited() -> float:
        return int(os.pread(schedstat, 100, 0).split()[1]) / 1e6

    original_send = HttpSession.send
    request_runq: list[float] = []

    def send(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        before = waited()
        response = original_send(self, *args, **kwargs)
        request_runq.append(waited() - before)
        return response

    HttpSession.send = send

    received: list[float] = [0.0, 0.0]  # kernel receive time and read time of the last response's first bytes
    late: list[tuple[float, float]] = []  # (ms, of which after the response reached the socket) per request
    if variant == "engine+rx":
        import struct

        from gevent import _socket3

        from perf.load import transport

        connect = transport.Connection._connect

        def stamped_connect(self):  # noqa: ANN001, ANN202
            sock = connect(self)
            sock.setsockopt(socket.SOL_SOCKET, 37, (1 << 3) | (1 << 4))  # SO_TIMESTAMPING: RX_SOFTWARE|SOFTWARE
            return sock

        def stamped_recv(self, size, flags=0):  # noqa: ANN001, ANN202
            data, ancillary, _, _ = self.recvmsg(size, 256, flags)
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == 37:
                    seconds, nanoseconds = struct.unpack("qq", payload[:16])
                    received[0], received[1] = seconds + nanoseconds / 1e9, time.time()
            return data

        transport.Connection._connect = stamped_connect
        _socket3.socket.recv = stamped_recv

    def hook(method, name, elapsed_ms, *rest) -> None:  # noqa: ANN001
        events.append((time.perf_counter() - elapsed_ms / 1000.0, elapsed_ms))
        if variant == "engine+rx":
            late.append((elapsed_ms, (received[1] - received[0]) * 1000))
        record(method, name, elapsed_ms, *rest)

    tick = 2.0 if variant == "engine+tick" else duration
    # Users start 1/rate apart, the spacing of the paced arrivals. Started all at once (spawn rate 100,000, as
    # before), their 50 first requests, each with its connect, queue behind one another for up to ~10 ms: in
    # a 10 s run of 5,000 requests those 50 are exactly the slowest 1 %, and they were the 6 ms "p99".
    spawn_rate = 100_000 if burst else rate
    plan = RunPlan(users=users, spawn_rate=spawn_rate, duration=duration, tick_interval=tick)
    runner = LoadRunner([Bench], plan, stats, lambda registry: HttpSession(url, hook))

    if variant == "engine+tick":
        take_sample = stats.take_sample

        def timed_sample(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            began = time.perf_counter()
            try:
                return take_sample(*args, **kwargs)
            finally:
                busy.append((began, time.perf_counter(), "tick"))

        stats.take_sample = timed_sample
    pool = None
    stop_thread = False
    if variant.startswith("engine+thread") or variant == "engine+idle-thread":
        pool = ThreadPool(1)
        if variant == "engine+thread+switch":
            sys.setswitchinterval(0.0005)

        def store_like(seconds: float) -> None:
            """Python work holding the GIL for ``seconds`` of CPU, as the store's thread does (benchmarks/mix.py
            measured ~12 ms per progress save every 2 s and ~1 ms per stop-flag poll every 0.5 s)."""
            began, cpu = time.perf_counter(), time.thread_time()
            while time.thread_time() - cpu < seconds:
                sum(range(200))
            busy.append((began, time.perf_counter(), "thread"))

        def feeder() -> None:
            polls = 0
            while not stop_thread:
                gevent.sleep(0.5)
                polls += 1
                if variant != "engine+idle-thread":
                    pool.spawn(store_like, 0.012 if polls % 4 == 0 else 0.001).get()

        gevent.spawn(feeder)
        pool.spawn(lambda: None).get()  # the thread exists from here on
    if variant == "engine+gc-off":
        gc.disable()
    lateness: list[float] = []
    if variant == "engine+timer":
        def probe() -> None:
            while True:
                due = time.perf_counter() + 0.001
                gevent.sleep(0.001)
                lateness.append((time.perf_counter() - due) * 1000)

        gevent.spawn(probe)

    usage, sched = resource.getrusage(resource.RUSAGE_SELF), _schedstat()
    random.seed(1)
    runner.run()
    stop_thread = True
    usage_end, sched_end = resource.getrusage(resource.RUSAGE_SELF), _schedstat()
    gc.callbacks.remove(on_gc)
    latencies = [ms for _, ms in events]
    slow = [(start, ms) for start, ms in events if ms > SLOW_MS]
    # Requests whose own flight saw the generator wait on the run queue for at least 0.5 ms.
    slow_preempted = sum(1 for (_, ms), runq in zip(events, request_runq, strict=False) if ms > SLOW_MS and runq >= 0.5)
    preempted = [ms for (_, ms), runq in zip(events, request_runq, strict=False) if runq < 0.05]

    def overlapping(start: float, ms: float, kind: str) -> bool:
        end = start + ms / 1000.0
        return any(b_from < end and b_to > start for b_from, b_to, what in busy if what.startswith(kind))

    gc_pauses = [(b_to - b_from) * 1000 for b_from, b_to, what in busy if what.startswith("gc")]
    figures = {
        "variant": variant, "requests": len(events), "cpu": (usage_end.ru_utime + usage_end.ru_stime)
        - (usage.ru_utime + usage.ru_stime),
        "p50": _percentile(latencies, 0.5), "p99": _percentile(latencies, 0.99), "p999": _percentile(latencies, 0.999),
        "max": max(latencies, default=None), "slow": len(slow),
        "nivcsw": usage_end.ru_nivcsw - usage.ru_nivcsw, "runq_ms": (sched_end[1] - sched[1]) * 1000,
        "gc_passes": len(gc_pauses), "gc_max_ms": max(gc_pauses, default=0.0), "gc_total_ms": sum(gc_pauses),
        "slow_in_gc": sum(overlapping(s, ms, "gc") for s, ms in slow),
        "slow_in_tick": sum(overlapping(s, ms, "tick") for s, ms in slow),
        "slow_in_thread": sum(overlapping(s, ms, "thread") for s, ms in slow),
        "slow_preempted": slow_preempted,
        # Of the slowest 1 %, the share of their time that came after the response had reached the socket.
        "tail_after_socket": _share_after(late),
        "p99_before_socket": _percentile([ms - after for ms, after in late], 0.99) if late else None,
        "p99_unpreempted": _percentile(preempted, 0.99),
        "timer_p50": _percentile(lateness, 0.5), "timer_p99": _percentile(lateness, 0.99),
    }
    if pool is not None:
        pool.kill()
    return figures


def worker_raw(url: str, users: int, duration: float, rate: float, burst: bool = False) -> dict:
    """geventhttpclient's bare client, paced the same way (as generator.py's raw-ghc)."""
    from gevent import monkey

    monkey.patch_all()
    import random

    import gevent
    from geventhttpclient import HTTPClient

    pacing = users / rate
    deadline = time.monotonic() + duration
    latencies: list[float] = []

    def loop() -> None:
        client = HTTPClient.from_url(url + "/", concurrency=1)
        if not burst:
            gevent.sleep(random.uniform(0, 2 * pacing))  # arrivals spread from the start, as in the steady state
        while time.monotonic() < deadline:
            start = time.perf_counter()
            response = client.get("/")
            response.read()
            response.release()
            latencies.append((time.perf_counter() - start) * 1000)
            gevent.sleep(random.uniform(0, 2 * pacing))

    usage, sched = resource.getrusage(resource.RUSAGE_SELF), _schedstat()
    gevent.joinall([gevent.spawn(loop) for _ in range(users)])
    usage_end, sched_end = resource.getrusage(resource.RUSAGE_SELF), _schedstat()
    return {"variant": "raw-ghc", "requests": len(latencies),
            "cpu": usage_end.ru_utime + usage_end.ru_stime - usage.ru_utime - usage.ru_stime,
            "p50": _percentile(latencies, 0.5), "p99": _percentile(latencies, 0.99),
            "p999": _percentile(latencies, 0.999), "max": max(latencies, default=None),
            "slow": sum(ms > SLOW_MS for ms in latencies), "nivcsw": usage_end.ru_nivcsw - usage.ru_nivcsw,
            "runq_ms": (sched_end[1] - sched[1]) * 1000}


def _tasks_waited(pid: int) -> float:
    """Seconds the threads of ``pid`` have waited on a run queue so far."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int((task / "schedstat").read_text().split()[1]) / 1e9
    return total


def run_wrk(url: str, users: int, duration: float, rate: float, workdir: Path, prefix: list[str]) -> dict:
    pacing = users / rate
    script = workdir / "pace.lua"
    script.write_text(f"function delay() return math.random(0, {round(2 * pacing * 1000)}) end\n")
    command = [*prefix, "taskset", "-c", GENERATOR_CORE, "wrk", "-t1", f"-c{users}", f"-d{duration:g}s", "--latency",
               "-s", str(script), url + "/"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    waited = _tasks_waited(process.pid)
    time.sleep(max(duration - 0.6, 0.1))
    try:
        waited = _tasks_waited(process.pid) - waited
    except OSError:
        waited = None
    _, status, usage = os.wait4(process.pid, 0)
    output = process.stdout.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"wrk failed: {process.stderr.read()}")
    figures: dict = {"variant": "wrk", "cpu": usage.ru_utime + usage.ru_stime, "nivcsw": usage.ru_nivcsw,
                     "runq_ms": None if waited is None else waited * 1000}
    units = (("us", 0.001), ("ms", 1.0), ("s", 1000.0))
    for line in output.splitlines():
        parts = line.split()
        if "requests in" in line:
            figures["requests"] = int(parts[0])
        elif parts[:1] in (["50%"], ["99%"]):
            text = parts[1]
            value = next(float(text[: -len(unit)]) * factor for unit, factor in units if text.endswith(unit))
            figures["p50" if parts[0] == "50%" else "p99"] = value
    return figures


def measure(variant: str, url: str, args: argparse.Namespace, workdir: Path) -> dict:
    tool, _, change = variant.partition("+")
    prefix = ["nice", "-n", "-10"] if change == "nice" else []
    hog = None
    if change == "hog":
        hog = subprocess.Popen(["taskset", "-c", GENERATOR_CORE, sys.executable, "-c",
                                f"import time\nend = time.monotonic() + {args.duration + 5}\n"
                                "while time.monotonic() < end: pass"])
    try:
        if tool == "wrk":
            return run_wrk(url, args.connections, args.duration, args.rate, workdir, prefix)
        worker = f"{tool}" if change in ("nice", "hog") else variant
        command = [*prefix, "taskset", "-c", GENERATOR_CORE, sys.executable, str(Path(__file__).resolve()),
                   "--worker", worker, "--url", url, "--connections", str(args.connections), "--duration",
                   str(args.duration), "--rate", str(args.rate)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=args.duration + 120, cwd=ROOT)
        if result.returncode != 0:
            raise RuntimeError(f"{variant} worker failed:\n{result.stderr[-2000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()


def _med(results: list[dict], key: str) -> float | None:
    values = [r[key] for r in results if r.get(key) is not None]
    return statistics.median(values) if values else None


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        if args.worker.startswith("raw-ghc"):
            figures = worker_raw(args.url, args.connections, args.duration, args.rate, args.worker.endswith("burst"))
        else:
            figures = worker(args.url, args.worker, args.connections, args.duration, args.rate)
        print(json.dumps(figures))
        return
    if not shutil.which("nginx") or not shutil.which("wrk"):
        raise SystemExit("needs nginx and wrk (apt-get install nginx-light wrk)")
    variants = list(VARIANTS) if args.variants == "all" else [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    results: dict[str, list[dict]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        process, port = nginx_target.start_nginx(Path(tmp), core=TARGET_CORE)
        url = f"http://127.0.0.1:{port}"
        try:
            print(f"paced {args.rate:g} req/s, {args.connections} connections, {args.duration:g} s a run, "
                  f"{args.rounds} rounds; nginx on core {TARGET_CORE}, generators on core {GENERATOR_CORE}; "
                  f"load average {os.getloadavg()[0]:.2f}")
            for round_index in range(args.rounds):
                for variant in variants if round_index % 2 == 0 else list(reversed(variants)):
                    results[variant].append(measure(variant, url, args, Path(tmp)))
        finally:
            nginx_target.stop_nginx(process)
    print(f"\n{'variant':<22}{'p50 ms':>8}{'p99 ms':>8}{'p99.9':>8}{'max':>7}{'>1ms':>6}{'nivcsw':>8}{'runq ms':>9}"
          f"{'GC n':>6}{'GC max':>8}{'slow in GC/tick/thread/runq':>29}{'p99 unpreempted':>16}"
          f"{'timer late p50/p99':>20}{'tail after socket':>19}{'p99 before socket':>19}")
    for variant, rs in results.items():
        slow_in = "/".join(_f(_med(rs, key), 0)
                           for key in ("slow_in_gc", "slow_in_tick", "slow_in_thread", "slow_preempted"))
        timer = f"{_f(_med(rs, 'timer_p50'), 3)}/{_f(_med(rs, 'timer_p99'), 3)}"
        print(f"{variant:<22}{_f(_med(rs, 'p50'), 3):>8}{_f(_med(rs, 'p99')):>8}{_f(_med(rs, 'p999')):>8}"
              f"{_f(_med(rs, 'max'), 1):>7}{_f(_med(rs, 'slow'), 0):>6}{_f(_med(rs, 'nivcsw'), 0):>8}"
              f"{_f(_med(rs, 'runq_ms'), 1):>9}{_f(_med(rs, 'gc_passes'), 0):>6}{_f(_med(rs, 'gc_max_ms'), 2):>8}"
              f"{slow_in:>29}{_f(_med(rs, 'p99_unpreempted')):>16}{timer:>20}"
              f"{_f(_med(rs, 'tail_after_socket')):>19}{_f(_med(rs, 'p99_before_socket')):>19}")
    print(f"(medians over {args.rounds} rounds; p99 per round: "
          + "; ".join(f"{v} {'/'.join(_f(r.get('p99')) for r in rs)}" for v, rs in results.items()) + ")")


if __name__ == "__main__":
    main()
