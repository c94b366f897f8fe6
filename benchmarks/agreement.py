"""Agreement with the reference tool: the same fixed workload through perfkit and through Locust, side by side.

Goals (issue 17, "Agreement with the reference tool"), per endpoint:
- requests equal, and failures equal cause by cause (time-out, each 5xx status, reset/closed, …);
- p50, p95 and p99 within 5 % or 2 ms of Locust's, whichever is looser.

The workload is built so that agreement is possible in principle; otherwise the comparison would measure noise.
- A fixed amount of work, not a fixed duration: N users (``--users``) each do exactly K iterations
  (``--iterations``) and stop (``StopUser`` in both tools). An iteration is GET /fast, /slow?i=…, /flaky?i=…
  and a constant think time (``--think``); user u sends i = u·K … u·K + K − 1, so every i from 0 to N·K − 1
  is sent once in each tool.
- A target whose behaviour the request decides, never the timing (``benchmarks/agreement_target.py``, a
  threaded HTTP/1.1 keep-alive server with a thread per connection, so that nothing queues and a request's
  latency is the delay chosen for it): ``/fast`` at once; ``/slow`` after 2 ms to 0.6 T, or after 1.5 T for
  3 % of the i (time-outs in both tools; T = ``--timeout``); ``/flaky`` after 5 to 80 ms, 503 for 5 % of the
  i. So the target answers both tools' N·K requests identically, and the "target" column shows what it
  chose: the counts, and the delays at each percentile (a time-out at T), which each tool's figure should
  exceed by its round trip (~0.2 ms).
- The start-up is kept out of the figures. Each user's first request pays for its connection and for the
  client's first use, and the tools start users differently (Locust's ``-r N`` dispatches all N in one
  instant, perfkit spreads them over the second): measured here, one user's first request took 3–4 ms in
  either tool, and with 50 users the median first request took 0.7–0.9 ms in perfkit and 13–51 ms in Locust
  (five runs). So that first request goes to ``/warm-up`` and is not compared; the users then wait for one
  another and start their iterations spread over 0.2 s.

How each tool is run and read:
- perfkit: the engine in a subprocess of this virtualenv (``LoadRunner``, ``RunPlan``, ``StatsRegistry``,
  ``HttpSession(url, registry.record, timeout=T)``, as ``benchmarks/generator.py`` builds it), stopped once
  every user has stopped; figures from the registry: per-endpoint entries, their percentiles, failures by text.
- Locust 2.47: ``FastHttpUser`` with ``network_timeout = connection_timeout = T`` from
  ``benchmarks/.venv-locust`` (``make bench-venv``), headless, ``-u N -r N`` and ``--csv``; the locustfile quits
  once every user has stopped (``--run-time`` and ``--stop-timeout`` are a bound only); figures from its
  ``_stats.csv`` and ``_failures.csv``. Its request hook also keeps every time unrounded.
- A failure's cause is its class, the text before the first ':' or '(': perfkit's "TimeoutError: timed out"
  and "HTTPError('503 Server Error: …')", Locust's "RetriesExceeded(…, original=timed out)" and
  "LocustBadStatusCode(code=503)". The class is put in a category both tools share: time-out, the status of a
  bad status, reset/closed, refused, or else the class itself.
- Both tools time a request from its send to the last byte of the answer (Locust from just before it builds
  the request, some 0.1 ms earlier); a time-out is timed at T in both.

Locust's rounding, and ranks. Locust keeps each time rounded (to 1 ms below 100 ms, 10 ms below 1 s, 100 ms
below 10 s: ``bucket_response_time``) and prints the rounded value at rank ⌊n·p⌋ + 1; so its 1000 stands for
any time in [995, 1050) ms, up to 5 % away. A percentile therefore meets its goal when perfkit's figure is
within 5 % or 2 ms of some time Locust's printed figure stands for: the distance to that interval, not to the
rounded value. perfkit keeps times within 1 % (``perf/load/histogram.py``; a time-out of 1000.5 ms reads 993)
and ranks by ⌈n·p⌉, one rank below Locust's whenever n·p is whole (the target column shows both ranks, as
"perfkit's/Locust's", when they differ); with 2,000 requests an endpoint, neighbouring ranks are within 0.3 %
of each other, and with 100 they can be 8 % apart, so small runs compare ranks as much as timing. The last
column is the check without either effect: Locust's own unrounded times from its request hook, at perfkit's
rank, against perfkit's figure.

What it found (2026-12-04, 2 shared cores, load average 5–8 from other work):
- At c15cf9b, whose transport re-armed one ``gevent.Timeout`` per connection, perfkit recorded 1,603, 1,687 and
  1,693 time-outs on /fast, /slow and /flaky (of 2,000 requests each) where Locust and the target had 0, 60
  and 0: a user's waits added up until every later request "timed out" at once (issue 17). From 98df720 (a
  timer restarted in full per request) the counts are equal and all nine percentiles meet their goal.
- A figure can read below every time behind it: 3 % of /slow time out at 1,000.5 ms, and perfkit's p99 reads
  993 ms, the midpoint of the 1 % bucket the time falls in (within the histogram's stated error; Locust's
  1000 is rounded too). A threshold such as ``p99<995ms`` would pass on requests that all took 1 s.
- At 100 users and 0.02 s think time, Locust spends 2.5–3× perfkit's CPU on the iterations (1.7 against 0.6
  CPU-s); on the busy machine either tool's sub-millisecond /fast p99 moved by up to 8 ms (17 ms for Locust
  at load 11) from one run to the next, beyond the 2 ms goal, while the counts stayed equal. The defaults
  keep both tools' loops light enough for the goal.

Run: .venv/bin/python benchmarks/agreement.py [--users 50] [--iterations 40] [--timeout 1.0] [--think 0.05]
(about 25 s with the defaults; the two tools run one after the other, each against a fresh target). Exit code
0 whatever the figures (it is a benchmark), 2 on bad options.
"""

import argparse
import csv
import itertools
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.request import urlopen

sys.path.insert(0, str(Path(__file__).resolve().parent))
import agreement_target  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(__file__).resolve().parent / "agreement_target.py"
DEFAULT_LOCUST_PYTHON = ROOT / "benchmarks" / ".venv-locust" / "bin" / "python"
ENDPOINTS = ("/fast", "/slow", "/flaky")
PERCENTILES = (0.5, 0.95, 0.99)
WARM_UP = "/warm-up"
# After the warm-up, user u of N starts its first iteration START_SPREAD·u/N s after the last user warmed up.
START_SPREAD = 0.2
RELATIVE_GOAL, ABSOLUTE_GOAL_MS = 0.05, 2.0

# --------------------------------------------------------------------------------------------- workload


def bound_seconds(users: int, iterations: int, timeout: float, think: float) -> float:
    """The longest a run may take (every request of a user a time-out), with room for start-up; a bound only."""
    # Users all start within the first second, warm up (≤ T) and wait for one another (≤ 2T + 10 s).
    return 12.0 + START_SPREAD + 3 * timeout + iterations * (think + 3 * timeout + 0.2)


LOCUSTFILE = '''\
"""benchmarks/agreement.py's workload for Locust: N users, K iterations each, then StopUser."""
import itertools
import json
import os
import time

import gevent
import gevent.event
from locust import FastHttpUser, constant, events, task
from locust.exception import StopUser
from locust.stats import CSV_STATS_INTERVAL_SEC

HOST = os.environ["AGREEMENT_URL"]
USERS = int(os.environ["AGREEMENT_USERS"])
ITERATIONS = int(os.environ["AGREEMENT_ITERATIONS"])
TIMEOUT = float(os.environ["AGREEMENT_TIMEOUT"])
THINK = float(os.environ["AGREEMENT_THINK"])
RAW = os.environ["AGREEMENT_RAW"]
START_SPREAD = float(os.environ["AGREEMENT_SPREAD"])

_index = itertools.count()
_raw = {}
_finished = [0]
_warmed = [0]
_everyone_warm = gevent.event.Event()
_phase = {}  # the iterations: from every user warmed up to the last one done


@events.request.add_listener
def _keep(request_type, name, response_time, response_length, exception=None, **_):
    _raw.setdefault(name, []).append(response_time)


@events.quitting.add_listener
def _dump(environment, **_):
    with open(RAW, "w") as out:
        json.dump({"times": _raw, "finished": _finished[0], "phase": _phase}, out)


def _quit(environment):
    # The CSV writer rewrites its files every CSV_STATS_INTERVAL_SEC: let it write the final figures first.
    gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.5)
    environment.runner.quit()


class Agreement(FastHttpUser):
    host = HOST
    network_timeout = TIMEOUT
    connection_timeout = TIMEOUT
    wait_time = constant(THINK)

    def on_start(self):
        self.index = next(_index)
        self.done = 0
        self.client.get("/warm-up", name="/warm-up")  # the first request's costs, apart (see agreement.py)
        _warmed[0] += 1
        if _warmed[0] == USERS:
            _phase["start"], _phase["cpu_start"] = time.monotonic(), time.process_time()
            _everyone_warm.set()
        _everyone_warm.wait(timeout=2 * TIMEOUT + 10)
        gevent.sleep(START_SPREAD * self.index / USERS)

    @task
    def iteration(self):
        i = self.index * ITERATIONS + self.done
        self.client.get("/fast", name="/fast")
        self.client.get(f"/slow?i={i}", name="/slow")
        self.client.get(f"/flaky?i={i}", name="/flaky")
        self.done += 1
        if self.done >= ITERATIONS:
            _finished[0] += 1
            if _finished[0] == USERS:
                _phase["end"], _phase["cpu_end"] = time.monotonic(), time.process_time()
                gevent.spawn(_quit, self.environment)
            raise StopUser()
'''


def _phase_seconds(phase: dict[str, float]) -> dict[str, float] | None:
    """Wall and CPU seconds of the iterations (from the last warm-up to the last iteration); None if unfinished."""
    if "end" not in phase or "start" not in phase:
        return None
    return {"wall": phase["end"] - phase["start"], "cpu": phase["cpu_end"] - phase["cpu_start"]}


# --------------------------------------------------------------------------------------------- causes

_TIMEOUT_CLASSES = {"TimeoutError", "timeout", "Timeout", "ConnectionTimeout", "ReadTimeout", "ConnectTimeout"}
_CLOSED_CLASSES = {"ConnectionResetError", "BrokenPipeError", "ConnectionAbortedError", "ConnectionError",
                   "HTTPConnectionClosed", "RemoteDisconnected", "StaleConnection", "EmptyResponse",
                   "IncompleteRead"}
_STATUS_CLASSES = {"HTTPError", "LocustBadStatusCode", "BadStatusCode"}


def failure_class(text: str) -> str:
    """The class a failure text starts with: the text before the first ':' or '('."""
    return re.split(r"[:(]", text, maxsplit=1)[0].strip() or text


def cause(text: str) -> str:
    """A category both tools share: ``time-out``, ``status 503``, ``reset/closed``, ``refused`` or the class."""
    kind = failure_class(text)
    if kind in _TIMEOUT_CLASSES or "timed out" in text:
        return "time-out"
    if kind in _STATUS_CLASSES:
        status = re.search(r"\b([1-5]\d\d)\b", text)
        return f"status {status.group(1)}" if status else "bad status"
    if kind == "ConnectionRefusedError":
        return "refused"
    if kind in _CLOSED_CLASSES:
        return "reset/closed"
    return kind


# --------------------------------------------------------------------------------------------- perfkit side


def worker_perfkit(url: str, users: int, iterations: int, timeout: float, think: float) -> dict[str, Any]:
    """The engine in this process, as run_perf drives it; prints nothing, returns the figures."""
    from gevent import monkey

    monkey.patch_all()
    sys.path.insert(0, str(ROOT))
    import gevent
    from gevent.event import Event

    from perf.load.runner import LoadRunner, RunPlan
    from perf.load.session import HttpSession
    from perf.load.stats import StatsRegistry
    from perf.load.user import StopUser, User, constant, task

    indexes = itertools.count()
    finished, warmed = [0], [0]
    everyone_warm = Event()
    phase: dict[str, float] = {}  # the iterations: from every user warmed up to the last one done

    class Agreement(User):
        wait_time = staticmethod(constant(think))

        def on_start(self) -> None:
            self.index = next(indexes)
            self.done = 0
            self.client.get("/warm-up", name="/warm-up")
            warmed[0] += 1
            if warmed[0] == users:
                phase["start"], phase["cpu_start"] = time.monotonic(), time.process_time()
                everyone_warm.set()
            everyone_warm.wait(timeout=2 * timeout + 10)
            gevent.sleep(START_SPREAD * self.index / users)

        @task
        def iteration(self) -> None:
            i = self.index * iterations + self.done
            self.client.get("/fast", name="/fast")
            self.client.get(f"/slow?i={i}", name="/slow")
            self.client.get(f"/flaky?i={i}", name="/flaky")
            self.done += 1
            if self.done >= iterations:
                finished[0] += 1
                if finished[0] == users:
                    phase["end"], phase["cpu_end"] = time.monotonic(), time.process_time()
                raise StopUser()

    registry = StatsRegistry()
    bound = bound_seconds(users, iterations, timeout, think)
    plan = RunPlan(users=users, spawn_rate=users, duration=bound, stop_timeout=timeout + 1, request_timeout=timeout)
    runner = LoadRunner([Agreement], plan, registry, lambda stats: HttpSession(url, stats.record, timeout=timeout))

    def stop_when_all_stopped() -> None:
        while len(runner.users) < users or not all(greenlet.dead for _, greenlet in runner.users):
            gevent.sleep(0.02)
        runner.request_stop("every user did its iterations")

    watcher = gevent.spawn(stop_when_all_stopped)
    reason = runner.run()
    watcher.kill()
    endpoints: dict[str, dict[str, Any]] = {}
    for (_, name), entry in registry.entries.items():
        endpoints[name] = {"requests": entry.num_requests, "failures": entry.num_failures, "classes": {},
                           "max": entry.max_response_time,
                           **{f"p{round(p * 100)}": entry.percentile(p) for p in PERCENTILES}}
    for failure in registry.failures.values():
        classes = endpoints[failure.name]["classes"]
        classes[failure.error] = classes.get(failure.error, 0) + failure.occurrences
    exceptions = [f"{e.message} ×{e.count}" for e in registry.exceptions.values()]
    return {"endpoints": endpoints, "phase": _phase_seconds(phase), "finished": finished[0], "stop": reason,
            "exceptions": exceptions}


# --------------------------------------------------------------------------------------------- Locust side


def same_rank_percentile(times: list[float], fraction: float) -> float | None:
    """The unrounded percentile at perfkit's rank (⌈n·p⌉, ``perf/load/histogram.py``): timing alone compared."""
    if not times:
        return None
    ordered = sorted(times)
    return ordered[max(1, math.ceil(len(ordered) * fraction - 1e-9)) - 1]


def _cell(text: str) -> float | None:
    """A number of Locust's CSV; "N/A" (no requests) is None."""
    try:
        return float(text)
    except ValueError:
        return None


def run_locust(python: Path, url: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    locustfile = workdir / "agreement_locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    prefix, raw_path = workdir / "locust", workdir / "locust_raw.json"
    bound = bound_seconds(args.users, args.iterations, args.timeout, args.think)
    # LOCUST_* variables of this project (LOCUST_BACKEND_URL, …) would be read by Locust as its own options.
    env = {key: value for key, value in os.environ.items() if not key.startswith("LOCUST_")}
    env.update(AGREEMENT_URL=url, AGREEMENT_USERS=str(args.users), AGREEMENT_ITERATIONS=str(args.iterations),
               AGREEMENT_TIMEOUT=repr(args.timeout), AGREEMENT_THINK=repr(args.think), AGREEMENT_RAW=str(raw_path),
               AGREEMENT_SPREAD=repr(START_SPREAD))
    command = [str(python), "-m", "locust", "-f", str(locustfile), "--headless", "-u", str(args.users),
               "-r", str(args.users), "--run-time", f"{math.ceil(bound)}s", "--stop-timeout",
               f"{math.ceil(args.timeout + 1)}", "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=bound + 60, cwd=workdir, env=env)
    stats_path = Path(f"{prefix}_stats.csv")
    if not stats_path.exists() or not raw_path.exists():
        raise RuntimeError(f"locust wrote no figures (exit {result.returncode}):\n{result.stderr[-3000:]}")
    endpoints: dict[str, dict[str, Any]] = {}
    with stats_path.open(newline="") as rows:
        for row in csv.DictReader(rows):
            if row["Name"] == "Aggregated":
                continue
            endpoints[row["Name"]] = {"requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                                      "max": _cell(row["Max Response Time"]), "classes": {},
                                      **{f"p{round(p * 100)}": _cell(row[f"{round(p * 100)}%"]) for p in PERCENTILES}}
    with Path(f"{prefix}_failures.csv").open(newline="") as rows:
        for row in csv.DictReader(rows):
            classes = endpoints.setdefault(row["Name"], {"requests": 0, "failures": 0, "classes": {}})["classes"]
            classes[row["Error"]] = classes.get(row["Error"], 0) + int(row["Occurrences"])
    raw = json.loads(raw_path.read_text())
    for name, times in raw["times"].items():
        figures = endpoints.setdefault(name, {"requests": 0, "failures": 0, "classes": {}})
        figures["hook_requests"] = len(times)
        for p in PERCENTILES:
            figures[f"u{round(p * 100)}"] = same_rank_percentile(times, p)
    exceptions = []
    exceptions_path = Path(f"{prefix}_exceptions.csv")
    if exceptions_path.exists():
        with exceptions_path.open(newline="") as rows:
            exceptions = [f"{row.get('Message', '')} ×{row.get('Count', '')}" for row in csv.DictReader(rows)]
    return {"endpoints": endpoints, "phase": _phase_seconds(raw["phase"]), "finished": raw["finished"],
            "exceptions": exceptions, "exit": result.returncode}


# --------------------------------------------------------------------------------------------- target


def start_target(timeout: float, errors: Path) -> tuple[subprocess.Popen, str]:
    """The target on a free port; its stderr goes to ``errors`` (a pipe nobody reads could fill and stall it)."""
    with errors.open("w") as stderr:
        process = subprocess.Popen([sys.executable, str(TARGET), "--timeout", repr(timeout)], stdout=subprocess.PIPE,
                                   stderr=stderr, text=True)
    line = process.stdout.readline() if process.stdout else ""  # it prints the line once it listens
    if not line.startswith("port "):
        process.kill()
        process.wait(timeout=5)
        raise RuntimeError(f"the target did not start: {line}{errors.read_text()[-2000:]}")
    return process, f"http://127.0.0.1:{int(line.split()[1])}"


def stop_target(process: subprocess.Popen, url: str) -> dict[str, int]:
    try:
        with urlopen(f"{url}/_counts", timeout=5) as answer:
            counts = json.loads(answer.read())
    except OSError:
        counts = {}
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
    return counts


def run_tool(tool: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """One tool against a fresh target; its figures and what the target saw."""
    errors = workdir / f"target-{tool}.err"
    target, url = start_target(args.timeout, errors)
    try:
        if tool == "perfkit":
            command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--url", url,
                       "--users", str(args.users), "--iterations", str(args.iterations),
                       "--timeout", repr(args.timeout), "--think", repr(args.think)]
            bound = bound_seconds(args.users, args.iterations, args.timeout, args.think)
            result = subprocess.run(command, capture_output=True, text=True, timeout=bound + 60, cwd=ROOT)
            if result.returncode != 0:
                raise RuntimeError(f"the perfkit worker failed:\n{result.stderr[-3000:]}")
            figures = json.loads(result.stdout.strip().splitlines()[-1])
        else:
            figures = run_locust(args.locust_python, url, args, workdir)
    finally:
        figures_target = stop_target(target, url)
    figures["target"] = figures_target
    figures["target_errors"] = errors.read_text()[-1000:]
    return figures


# --------------------------------------------------------------------------------------------- comparison


def locust_interval(value: float) -> tuple[float, float]:
    """The unrounded times Locust prints as ``value`` (its ``bucket_response_time``, then ``int``)."""

    def step(t: float) -> float:
        return 1.0 if t < 100 else 10.0 if t < 1000 else 100.0 if t < 10000 else 1000.0

    return (value - step(value - 1) / 2 if value > 0 else 0.0), value + step(value) / 2


def tolerance(reference: float) -> float:
    return max(ABSOLUTE_GOAL_MS, RELATIVE_GOAL * reference)


def percentile_met(perfkit: float | None, printed: float | None) -> bool:
    """perfkit's figure within 5 % or 2 ms of some time Locust's printed (rounded) figure stands for."""
    if perfkit is None or printed is None:
        return perfkit is None and printed is None
    low, high = locust_interval(printed)
    nearest = min(max(perfkit, low), high)
    return abs(perfkit - nearest) <= tolerance(nearest)


def unrounded_met(perfkit: float | None, unrounded: float | None) -> bool:
    if perfkit is None or unrounded is None:
        return perfkit is None and unrounded is None
    return abs(perfkit - unrounded) <= tolerance(unrounded)


def causes_of(figures: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for text, n in figures.get("classes", {}).items():
        counts[cause(text)] = counts.get(cause(text), 0) + n
    return counts


def expected(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """What the target chose for this endpoint's N·K requests: the ground truth both tools measure.

    Delays in ms, a time-out counted at T (when the client gives up); the percentiles at perfkit's rank
    (⌈n·p⌉) and at Locust's (⌊n·p⌋ + 1), which differ by one when n·p is a whole number.
    """
    n = args.users * args.iterations
    answers = [agreement_target.answer(name, i, args.timeout) for i in range(n)]
    delays = sorted(min(delay, args.timeout) * 1000 for _, delay in answers)
    causes = {"time-out": sum(delay >= args.timeout for _, delay in answers)}
    for status, _ in answers:
        if status >= 400:
            causes[f"status {status}"] = causes.get(f"status {status}", 0) + 1
    figures: dict[str, Any] = {"requests": n, "failures": sum(causes.values()), "causes": causes}
    for p in PERCENTILES:
        mine, theirs = max(1, math.ceil(n * p - 1e-9)), min(n, int(n * p) + 1)
        figures[f"p{round(p * 100)}"] = (delays[mine - 1], delays[theirs - 1])
    return figures


def mark(met: bool) -> str:
    return "✓" if met else "✗"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _ranks(values: tuple[float, float]) -> str:
    return _ms(values[0]) if _ms(values[0]) == _ms(values[1]) else f"{_ms(values[0])}/{_ms(values[1])}"


def print_comparison(perfkit: dict[str, Any], locust: dict[str, Any], args: argparse.Namespace) -> None:
    met_counts = met_total = met_pct = total_pct = unrounded_misses = 0
    classes: dict[str, set[str]] = {"perfkit": set(), "Locust": set()}
    goal_pct = f"{RELATIVE_GOAL:.0%} or {ABSOLUTE_GOAL_MS:g} ms"
    empty: dict[str, Any] = {"requests": 0, "failures": 0, "classes": {}}
    names = [name for name in ENDPOINTS if name in perfkit["endpoints"] or name in locust["endpoints"]]
    names += sorted((set(perfkit["endpoints"]) | set(locust["endpoints"])) - set(names) - {WARM_UP})
    print("\nper endpoint: perfkit's registry, Locust's CSV files, and what the target chose (its delays; a "
          "time-out at T; percentiles at perfkit's rank/Locust's when they differ); the last column holds Locust's "
          "own times from its request hook, unrounded and at perfkit's rank, against perfkit's figure")
    for name in names:
        mine, theirs = perfkit["endpoints"].get(name, empty), locust["endpoints"].get(name, empty)
        truth = expected(name, args) if name in ENDPOINTS else {"requests": "-", "failures": "-", "causes": {}}
        for tool, figures in (("perfkit", mine), ("Locust", theirs)):
            classes[tool].update(failure_class(text) for text in figures["classes"])
        print(f"\nGET {name}")
        print(f"  {'':<16}{'perfkit':>10}{'Locust':>10}{'target':>14}   {'goal':<14}   unrounded Locust")
        rows: list[tuple[str, int, int, Any]] = [
            ("requests", mine["requests"], theirs["requests"], truth["requests"]),
            ("failures", mine["failures"], theirs["failures"], truth["failures"]),
        ]
        mine_causes, their_causes = causes_of(mine), causes_of(theirs)
        for kind in sorted(set(mine_causes) | set(their_causes) | {k for k, v in truth["causes"].items() if v}):
            rows.append((f"  {kind}", mine_causes.get(kind, 0), their_causes.get(kind, 0),
                         truth["causes"].get(kind, 0)))
        for label, a, b, t in rows:
            met = a == b
            met_counts += met
            met_total += 1
            note = f"{theirs.get('hook_requests', '-')} requests" if label == "requests" else ""
            print(f"  {label:<16}{a:>10}{b:>10}{t:>14}   {'equal':<14}{mark(met)}  {note}")
        for p in PERCENTILES:
            key = f"p{round(p * 100)}"
            a, b, u = mine.get(key), theirs.get(key), theirs.get(f"u{round(p * 100)}")
            met, plain = percentile_met(a, b), unrounded_met(a, u)
            met_pct += met
            total_pct += 1
            unrounded_misses += not plain
            target = _ranks(truth[key]) if key in truth else "-"
            note = f"{_ms(u)} {mark(plain)}" if u is not None else ""
            printed = "-" if b is None else f"{b:.0f}"  # Locust's figure is a whole number of ms
            print(f"  {key + ' ms':<16}{_ms(a):>10}{printed:>10}{target:>14}   {goal_pct:<14}{mark(met)}  {note}")
    warm = [(tool, figures["endpoints"].get(WARM_UP)) for tool, figures in (("perfkit", perfkit), ("Locust", locust))]
    print(f"\n{WARM_UP}, each user's first request (connect and first-use costs; not compared): "
          + "; ".join(f"{tool} {w['requests']} requests, p50 {_ms(w.get('p50'))} ms, max {_ms(w.get('max'))} ms"
                      for tool, w in warm if w))
    print(f"failure classes as each tool names them: perfkit {', '.join(sorted(classes['perfkit'])) or 'none'}; "
          f"Locust {', '.join(sorted(classes['Locust'])) or 'none'}")
    for tool, figures in (("perfkit", perfkit), ("Locust", locust)):
        seen = ", ".join(f"{path} {figures['target'].get(path, 0)}" for path in ENDPOINTS)
        extra = f"; exceptions in scenario code: {'; '.join(figures['exceptions'])}" if figures["exceptions"] else ""
        phase = figures["phase"]
        took = "(unfinished)" if phase is None else f"in {phase['wall']:.1f} s using {phase['cpu']:.2f} CPU-s"
        print(f"{tool}: {figures['finished']}/{args.users} users did their {args.iterations} iterations {took} "
              f"(from the last warm-up to the last iteration); the target saw {seen}{extra}")
        if figures["target_errors"]:
            print(f"  the target's stderr while {tool} ran: {figures['target_errors']}")
    verdict = "agree" if met_counts == met_total and met_pct == total_pct else "DISAGREE"
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    busy = f" on {cores} cores: other work moves ms-level figures" if load > cores else ""
    print(f"\nsummary: the tools {verdict}: counts equal in {met_counts} of {met_total} rows, percentiles within "
          f"{goal_pct} in {met_pct} of {total_pct} (unrounded: {total_pct - unrounded_misses} of {total_pct}); "
          f"load average {load:.2f}{busy}")


# --------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50, help="simulated users in each tool (default 50)")
    parser.add_argument("--iterations", type=int, default=40, help="iterations each user does (default 40)")
    parser.add_argument("--timeout", type=float, default=1.0, help="request time-out, seconds (default 1.0)")
    parser.add_argument("--think", type=float, default=0.05, help="think time after each iteration (default 0.05)")
    parser.add_argument("--locust-python", type=Path, default=DEFAULT_LOCUST_PYTHON)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 1 <= args.users <= 1000:
        parser.error("--users must be between 1 and 1000 (the target runs a thread per user)")
    if not 1 <= args.iterations <= 10_000:
        parser.error("--iterations must be between 1 and 10000")
    if not 0 < args.timeout <= 60:
        parser.error("--timeout must be > 0 and ≤ 60 seconds")
    if not 0 <= args.think <= 60:
        parser.error("--think must be between 0 and 60 seconds")
    return args


def main() -> None:
    args = parse_args()
    if args.worker:
        print(json.dumps(worker_perfkit(args.url, args.users, args.iterations, args.timeout, args.think)))
        return
    locust_ok = args.locust_python.exists() and subprocess.run(
        [str(args.locust_python), "-c", "import locust"], capture_output=True).returncode == 0
    print(f"workload: {args.users} users × {args.iterations} iterations (GET /fast, /slow?i, /flaky?i, then "
          f"{args.think:g} s), request time-out {args.timeout:g} s; target: benchmarks/agreement_target.py, "
          f"fresh for each tool; load average {os.getloadavg()[0]:.2f}")
    if not locust_ok:
        print(f"Locust is not installed at {args.locust_python}: run `make bench-venv`; nothing to compare")
        return
    with tempfile.TemporaryDirectory(prefix="perfkit-agreement-") as tmp:
        try:
            perfkit = run_tool("perfkit", args, Path(tmp))
            locust = run_tool("locust", args, Path(tmp))
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"no comparison: {exc}")
            return
    print_comparison(perfkit, locust, args)


if __name__ == "__main__":
    main()
