"""Capacity searches as ``run_perf --find-capacity`` stores them (``PerfRun.kind = "capacity"``, its JSON in
``PerfRun.capacity``), for the tests of the reports and the comparison to read.

The figures are a backend that saturates: Gunther's law with σ = 0.04, κ = 0.0004 and λ = 10 req/s a user (a peak
near 49 users), a closed model without think time (so a step's mean latency is its load over its throughput, by
Little's law), a percent or two of deterministic noise. Each step's verdicts are real ``Verdict.as_dict()`` of the
thresholds ``p95<500ms`` and ``error_rate<1%``. Searches: one that finds its capacity in eight steps (four raising,
four narrowing) with a USL fit good enough to show; one whose fit is not; one that the generator limited; one
whose first step already failed; one that hit its ceiling; one still searching; one of an open model.
"""

from collections.abc import Sequence
from datetime import timedelta
from math import sqrt
from typing import Any

from django.utils import timezone

from perf.analysis.usl import usl_throughput
from perf.load.stats import StatsRegistry
from perf.load.thresholds import Verdict, parse_threshold
from perf.models import PerfRun
from perf.store.persist import save_progress
from tests.perf.builders import stored_run

SIGMA, KAPPA, LAM = 0.04, 0.0004, 10.0
THRESHOLDS = ("p95<500ms", "error_rate<1%")
ENDPOINT = ("GET", "/events/")
SETTLE, HOLD = 10.0, 30.0
START = 1_700_000_000.0
NOISE = (1.012, 0.991, 1.018, 0.985, 1.006, 0.994, 1.009, 0.997, 1.003, 0.988)
# The search that finds its capacity: 10, 20, 40 pass, 80 fails; then 60, 50 fail, 45 and 47 pass.
FOUND = ((10, "raise"), (20, "raise"), (40, "raise"), (80, "raise"), (60, "narrow"), (50, "narrow"), (45, "narrow"),
         (47, "narrow"))
PEAK_LOAD = sqrt((1 - SIGMA) / KAPPA)


def verdicts(p95: float | None, failure_percent: float, thresholds: Sequence[str] = THRESHOLDS) -> list[dict[str, Any]]:
    """Each threshold's verdict over a step's figures, as the engine stores them."""
    found = []
    for text in thresholds:
        rule = parse_threshold(text)
        actual = p95 if rule.metric == "p95" else failure_percent if rule.metric == "error_rate" else None
        found.append(Verdict(rule, actual, actual is not None and rule.holds(actual)).as_dict())
    return found


def step(index: int, load: float, phase: str, rps: float, p95: float | None, *, failure_percent: float = 0.0,
         cpu: float = 25.0, generator_limited: bool = False, dropped_percent: float | None = None,
         thresholds: Sequence[str] = THRESHOLDS) -> dict[str, Any]:
    """One step of the JSON, its window placed after the ones before it (settle, then the judged hold)."""
    start = index * (SETTLE + HOLD)
    requests = round(rps * HOLD)
    failures = round(requests * failure_percent / 100)
    judged = verdicts(p95, failure_percent, thresholds)
    return {
        "index": index, "load": load, "phase": phase, "start": start, "settle_end": start + SETTLE,
        "end": start + SETTLE + HOLD, "seconds": HOLD, "requests": requests, "failures": failures,
        "failure_percent": failure_percent, "requests_per_second": round(rps, 2),
        "p50": None if p95 is None else round(p95 * 0.7, 1), "p95": p95,
        "p99": None if p95 is None else round(p95 * 1.25, 1), "concurrency": round(rps * (p95 or 0) * 0.75 / 1000, 2),
        "cpu_percent": cpu, "dropped_percent": dropped_percent,
        "passed": all(item["ok"] for item in judged) and not generator_limited, "generator_limited": generator_limited,
        "verdicts": judged,
        "endpoints": [{"method": ENDPOINT[0], "name": ENDPOINT[1], "requests": requests, "p95": p95,
                       "app_ms": 45.0, "db_ms": 12.5, "queries": 4.0, "queue_ms": None if p95 is None else p95 - 45}],
    }


def saturating_steps(plan: Sequence[tuple[float, str]] = FOUND, failures: Sequence[float] = ()) -> list[dict[str, Any]]:
    """The steps of ``plan`` (load, phase) measured on the saturating backend: throughput from the law, p95 from
    Little's law (1.3 × the mean), ``failures[i]`` % failed at step ``i``."""
    steps = []
    for index, (load, phase) in enumerate(plan):
        rps = usl_throughput(load, SIGMA, KAPPA, LAM) * NOISE[index % len(NOISE)]
        p95 = round(1.3 * 1000 * load / rps, 1)
        failed = failures[index] if index < len(failures) else 0.0
        steps.append(step(index, load, phase, rps, p95, failure_percent=failed, cpu=15 + load / 4))
    return steps


def usl_json(shown: bool = True, why: str = "", load_axis: str = "users") -> dict[str, Any]:
    return {"sigma": SIGMA, "kappa": KAPPA, "lambda": LAM, "r2": 0.97 if shown else 0.62, "peak_load": PEAK_LOAD,
            "peak_throughput": usl_throughput(PEAK_LOAD, SIGMA, KAPPA, LAM), "shown": shown, "why": why,
            "load_axis": load_axis}


def result(steps: Sequence[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """``capacity`` (the highest passing step) or ``first_failing`` (the lowest failing one), as the engine says."""
    chosen = [s for s in steps if s["passed"]] if key == "capacity" else [s for s in steps if not s["passed"]]
    if not chosen:
        return None
    best = max(chosen, key=lambda s: s["load"]) if key == "capacity" else min(chosen, key=lambda s: s["load"])
    return {"load": best["load"], "requests_per_second": best["requests_per_second"], "step": best["index"]}


def capacity_json(steps: Sequence[dict[str, Any]], status: str, *, usl: dict[str, Any] | None = None,
                  verdict: str = "", limit: dict[str, Any] | None = None, broke_first: dict[str, Any] | None = None,
                  current: dict[str, Any] | None = None, model: str = "users", start: float = 10,
                  max_load: float = 1000, thresholds: Sequence[str] = THRESHOLDS) -> dict[str, Any]:
    """The whole JSON of the contract around ``steps``."""
    return {
        "model": model, "unit": "users" if model == "users" else "iterations/s",
        "settings": {"start": start, "factor": 2.0, "increment": None, "settle": SETTLE, "hold": HOLD,
                     "resolution": 0.1, "max_load": max_load, "budget": 1800.0, "thresholds": list(thresholds)},
        "status": status, "current": current, "steps": list(steps),
        "capacity": None if status == "generator_limit" else result(steps, "capacity"),
        "first_failing": result(steps, "first_failing"), "limit": limit, "broke_first": broke_first, "usl": usl,
        "verdict": verdict,
    }


BROKE_FIRST = {"threshold": "p95<500ms", "actual": "512 ms", "endpoint": "GET /events/",
               "breakdown": {"client_ms": 512.0, "app_ms": 45.0, "db_ms": 12.5, "queries": 4.0, "queue_ms": 467.0}}


def found_search(usl_shown: bool = True, slower: float = 1.0) -> dict[str, Any]:
    """Capacity 47 users (~127 req/s), 50 the first failing; ``slower`` divides every throughput (and so multiplies
    every latency): a slower backend with the same plan."""
    steps = saturating_steps()
    if slower != 1.0:
        steps = [step(s["index"], s["load"], s["phase"], s["requests_per_second"] / slower, round(s["p95"] * slower, 1),
                      cpu=s["cpu_percent"]) for s in steps]
    why = "" if usl_shown else "R² 0.62 is below 0.9: the steps do not follow the law closely enough"
    capacity, failing = result(steps, "capacity"), result(steps, "first_failing")
    assert capacity is not None and failing is not None
    return capacity_json(
        steps, "found", usl=usl_json(usl_shown, why), broke_first=BROKE_FIRST,
        verdict=(f"The capacity is {capacity['load']} users ({capacity['requests_per_second']:.1f} req/s): at "
                 f"{failing['load']} users p95 rose over its 500 ms limit on GET /events/, nearly all of it queueing. "
                 "Throughput flattened from 40 users on while response times grew: the server's workers were all "
                 "busy."))


def first_step_failed_search() -> dict[str, Any]:
    steps = [step(0, 10, "raise", 8.0, 1250.0, failure_percent=4.0)]
    return capacity_json(steps, "first_step_failed", broke_first={**BROKE_FIRST, "actual": "1,250 ms"},
                         verdict="Even 10 users were too many: p95 was 1,250 ms and 4% of requests failed.")


def generator_limited_search() -> dict[str, Any]:
    steps = saturating_steps(FOUND[:3])
    steps.append(step(3, 80, "raise", 60.0, 300.0, cpu=98.0, generator_limited=True))
    return capacity_json(steps, "generator_limit", verdict="The generator's CPU was at 98% at 80 users: it, not the "
                         "server, was the limit. Run the search with more generator capacity (--distributed).")


def ceiling_search() -> dict[str, Any]:
    steps = saturating_steps(FOUND[:3])
    return capacity_json(steps, "ceiling", limit={"kind": "max_users", "value": 40}, max_load=40,
                         verdict="Every step passed up to the 40 users allowed.")


def searching(done: int, elapsed: float) -> dict[str, Any]:
    """The found search after ``done`` steps, the next one under way ``elapsed`` s after the run's start."""
    steps = saturating_steps()[:done]
    load, phase = FOUND[done]
    start = done * (SETTLE + HOLD)
    current = {"index": done, "load": load, "phase": phase, "start": start, "settle_end": start + SETTLE,
               "end": start + SETTLE + HOLD}
    data = capacity_json(steps, "searching", current=current)
    assert start <= elapsed < start + SETTLE + HOLD, "the step under way must be under way"
    return data


def open_model_search() -> dict[str, Any]:
    """Arrival rates of 20, 40 and 80 iterations/s; 80 drops 12% of its arrivals and fails."""
    steps = [step(0, 20, "raise", 20.0, 120.0, dropped_percent=0.0),
             step(1, 40, "raise", 40.0, 180.0, dropped_percent=0.0),
             step(2, 80, "raise", 70.0, 900.0, dropped_percent=12.0, failure_percent=2.0)]
    return capacity_json(steps, "found", model="rate", start=20, verdict="40 iterations/s is the capacity.")


# ------------------------------------------------------------------------------------------ stored


def search_registry(data: dict[str, Any]) -> StatsRegistry:
    """The requests of every step in one registry (what the ordinary sections show), a sample at each step's end."""
    stats = StatsRegistry(start_time=START)
    for item in data["steps"]:
        failed = round(item["failure_percent"] / 5)  # of 20 requests
        for i in range(20):
            latency = (item["p95"] or 100.0) * (0.5 + i / 40)
            stats.record(*ENDPOINT, latency, 800, "HTTPError('503')" if i < failed else None)
        stats.take_sample(users=round(item["load"]), now=START + item["end"])
    return stats


def stored_search(data: dict[str, Any], *, status: str = "completed", **fields: Any) -> PerfRun:
    """A finished capacity search stored as run_perf stores it."""
    stats = search_registry(data)
    duration = max((item["end"] for item in data["steps"]), default=HOLD)
    values = {"kind": PerfRun.Kind.CAPACITY, "capacity": data, "users": 1000, "planned_duration": 1800.0,
              "options": {"find_capacity": True, "threshold": list(data["settings"]["thresholds"])}}
    return stored_run(stats, status=status, duration=duration, **{**values, **fields})


def running_search(done: int, elapsed: float, **fields: Any) -> PerfRun:
    """A capacity search under way: ``done`` steps stored, the next one running, the run started ``elapsed`` s ago."""
    data = searching(done, elapsed)
    run = stored_run(kind=PerfRun.Kind.CAPACITY, capacity=data, users=1000, planned_duration=1800.0,
                     started_at=timezone.now() - timedelta(seconds=elapsed), **fields)
    save_progress(run, search_registry(data), elapsed)
    return run


def advance(run: PerfRun, done: int, elapsed: float) -> dict[str, Any]:
    """The search's process after its next steps: ``done`` steps stored, as it rewrites ``PerfRun.capacity``."""
    data = searching(done, elapsed)
    PerfRun.objects.filter(pk=run.pk).update(capacity=data, started_at=timezone.now() - timedelta(seconds=elapsed))
    save_progress(run, search_registry(data), elapsed)
    return data
