"""What a capacity search found, explained: what broke first, the Universal Scalability Law's fit, one paragraph.

The engine (``perf.load.capacity``) steps and judges; this reads its steps (``CapacitySearch.as_json``) and adds:

- **what broke first**: the first threshold the first failing step broke; the endpoint whose p95 rose first (the
  earliest step at which it reached ``ROSE`` times its p95 at the first step, the biggest rise breaking a tie);
  and where that endpoint's time went at the knee, from the Server-Timing breakdown (the application's time, the
  database's and its queries, and the rest of the client's time, which under load is the wait for a worker);
- **a USL fit** of throughput against load (``perf.analysis.usl``): users in the closed model; in the open model
  the requests in flight (Little's law: throughput times mean latency), since an arrival rate is what was asked
  for, not what the server worked on at once. Shown only when the fit is good, and always as a prediction;
- **the verdict**: one paragraph that says the capacity, or why there is none.
"""

from typing import Any

from perf.analysis.usl import fit_usl

# Thresholds on failures (perf.load.thresholds' metrics): what broke is an endpoint that failed, not one that slowed.
FAILURE_METRICS = frozenset({"error_rate", "failures", "failures_per_s"})
# An endpoint's p95 "rose" at the first step where it reached this many times its p95 at the first step.
ROSE = 1.5


def conclude(found: dict[str, Any]) -> dict[str, Any]:
    """``found`` (the engine's JSON) with ``broke_first``, ``usl`` and ``verdict`` filled in."""
    steps = found["steps"]
    result = dict(found)
    result["broke_first"] = broke_first(found)
    result["usl"] = _usl(found["model"], steps)
    result["verdict"] = verdict(result)
    return result


def broke_first(found: dict[str, Any]) -> dict[str, Any] | None:
    """The threshold, the endpoint and the breakdown at the knee; None when no step failed on the thresholds."""
    steps = found["steps"]
    failing = found.get("first_failing")
    if failing is None:
        return None
    knee = next(step for step in steps if step["index"] == failing["step"])
    broken = next((verdict for verdict in knee["verdicts"] if not verdict["ok"]), None)
    by_failures = broken is not None and broken.get("metric") in FAILURE_METRICS
    endpoint = _most_failed(knee) if by_failures else _first_to_rise(steps, knee)
    breakdown = None
    if endpoint is not None:
        figures = next((item for item in knee["endpoints"] if _key(item) == endpoint), None)
        if figures is not None:
            breakdown = {part: figures.get(part) for part in ("client_ms", "app_ms", "db_ms", "queries", "queue_ms")}
    return {"threshold": broken["expression"] if broken else "no answers",
            "actual": _actual(broken) if broken else None, "endpoint": endpoint, "breakdown": breakdown,
            "by": "failures" if by_failures else "latency"}


def _most_failed(knee: dict[str, Any]) -> str | None:
    """A failure threshold broke: the endpoint with the most failures at the knee."""
    failing = [item for item in knee["endpoints"] if item.get("failures")]
    return _key(max(failing, key=lambda item: item["failures"])) if failing else None


def _key(endpoint: dict[str, Any]) -> str:
    return f"{endpoint['method']} {endpoint['name']}".strip()


def _first_to_rise(steps: list[dict[str, Any]], knee: dict[str, Any]) -> str | None:
    """The endpoint whose p95 rose first, in the order of load (a bisection's steps sorted in), up to the knee."""
    ordered = sorted((step for step in steps if step["load"] <= knee["load"]), key=lambda step: (step["load"],
                                                                                                 step["index"]))
    first: dict[str, float] = {}
    rose: dict[str, tuple[int, float]] = {}  # endpoint → (position of the step it rose at, how much)
    for position, step in enumerate(ordered):
        for endpoint in step["endpoints"]:
            key, p95 = _key(endpoint), endpoint.get("p95")
            if p95 is None:
                continue
            base = first.setdefault(key, p95)
            if key not in rose and base > 0 and p95 >= ROSE * base:
                rose[key] = (position, p95 / base)
    if rose:
        return min(rose, key=lambda key: (rose[key][0], -rose[key][1]))
    # None rose that much: the endpoint slowest at the knee.
    at_knee = [item for item in knee["endpoints"] if item.get("p95") is not None]
    return _key(max(at_knee, key=lambda item: item["p95"])) if at_knee else None


def _actual(verdict: dict[str, Any]) -> str | None:
    """What was measured, as the verdict's line prints it (``p95<500ms: 612 ms`` → ``612 ms``)."""
    return str(verdict.get("line", "")).partition(": ")[2] or None


def _usl(model: str, steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    # Throughput is what was served: answers that failed (a 503 at once) are no work done.
    points = [(_load(model, step), step["requests_per_second"] * (1 - step["failure_percent"] / 100))
              for step in steps if not step["generator_limited"] and step["requests"]]
    fit = fit_usl([(load, rate) for load, rate in points if load > 0])
    return fit.as_json("users" if model == "users" else "concurrency") if fit is not None else None


def _load(model: str, step: dict[str, Any]) -> float:
    return float(step["load"]) if model == "users" else float(step["concurrency"])


def _amount(found: dict[str, Any], load: float) -> str:
    if found["model"] == "users":
        return f"{load:g} user{'s' if load != 1 else ''}"
    return f"{load:g} iterations/s"


def verdict(result: dict[str, Any]) -> str:
    """One paragraph in plain words: the capacity and the load beside it, what broke, the fit; or why none."""
    status, steps = result["status"], result["steps"]
    capacity, failing = result.get("capacity"), result.get("first_failing")
    settings = result["settings"]
    parts: list[str] = []
    if status == "generator_limit":
        limited = next((step for step in steps if step["generator_limited"]), None)
        why = ""
        if limited is not None:
            why = (f" at {_amount(result, limited['load'])} (generator CPU {limited['cpu_percent']:.0f}%"
                   + (f", {limited['dropped_percent']:g}% of arrivals dropped for want of a free user"
                      if limited.get("dropped_percent") else "") + ")")
        return (f"No capacity is reported: the generator was the limit{why}, so the figures measure this machine, "
                "not the server. Run the load from a machine of its own, give the open model a bigger pool (-u), "
                "or lighten the scenarios, and search again.")
    if status == "first_step_failed":
        first = steps[0] if steps else None
        broken = [v["expression"] for v in first["verdicts"] if not v["ok"]] if first else []
        rules = ", ".join(broken) or "every step needs answers"
        load = _amount(result, first["load"]) if first else "the first load"
        option = "--start-load" if result["model"] == "users" else "--rate"
        return f"Even the first step, {load}, failed ({rules}): the capacity is below it. Start lower with {option}."
    if capacity is not None:
        text = (f"The capacity is {_amount(result, capacity['load'])} ({capacity['requests_per_second']:.1f} req/s): "
                "every threshold held there")
        if status == "ceiling":
            limit = result.get("limit") or {}
            text = (f"Every step passed up to the ceiling, {_amount(result, capacity['load'])} "
                    f"({capacity['requests_per_second']:.1f} req/s): the capacity is above that. Raise "
                    f"{'--max-users' if limit.get('kind') == 'max_users' else '--max-rate'} to search further")
        elif status == "budget":
            text = (f"The time budget ({settings['budget']:g} s) ran out before the search ended; the highest load "
                    f"that passed is {_amount(result, capacity['load'])} ({capacity['requests_per_second']:.1f} "
                    "req/s), so the capacity is at least that")
        elif status == "stopped":
            text = (f"The search was stopped before it ended; the highest load that passed so far is "
                    f"{_amount(result, capacity['load'])} ({capacity['requests_per_second']:.1f} req/s)")
        parts.append(text + ".")
    if failing is not None:
        broke = result.get("broke_first") or {}
        rule = broke.get("threshold")
        actual = f" ({broke['actual']})" if broke.get("actual") else ""
        parts.append(f"At {_amount(result, failing['load'])} ({failing['requests_per_second']:.1f} req/s) "
                     f"{rule}{actual} failed.")
        endpoint, breakdown = broke.get("endpoint"), broke.get("breakdown") or {}
        if endpoint and broke.get("by") == "failures":
            parts.append(f"{endpoint} failed first.")
        elif endpoint:
            sentence = f"{endpoint} slowed first"
            if breakdown.get("app_ms") is not None and breakdown.get("client_ms") is not None:
                db = (f", {breakdown['db_ms']:.1f} ms of it in {breakdown['queries']:.0f} database queries"
                      if breakdown.get("db_ms") is not None and breakdown.get("queries") is not None else "")
                sentence += (f"; there its {breakdown['client_ms']:.0f} ms at the client were "
                             f"{breakdown['app_ms']:.0f} ms in the application{db}, and "
                             f"{breakdown['queue_ms']:.0f} ms waiting for a worker (queueing)")
            parts.append(sentence + ".")
    usl = result.get("usl")
    if usl and usl.get("shown"):
        parts.append(_usl_sentence(usl))
    return " ".join(parts)


def _usl_sentence(usl: dict[str, Any]) -> str:
    """The fit in words, as a prediction: a peak read as "at most this" (a knee fitted sharply puts a peak just past
    it, which says where throughput stops growing more than that it falls), or the ceiling λ/σ, or no limit."""
    axis = "users" if usl["load_axis"] == "users" else "requests in flight"
    if usl.get("peak_load") is not None and usl.get("peak_throughput") is not None:
        limit = (f"at most about {usl['peak_throughput']:.0f} req/s, reached near {usl['peak_load']:.0f} {axis}")
    elif usl["sigma"] > 0:
        limit = f"at most about {usl['lambda'] / usl['sigma']:.0f} req/s however many {axis}"
    else:
        limit = "throughput growing with the load, with no limit in sight"
    return (f"The Universal Scalability Law fits the steps (R² {usl['r2']:.2f}): contention σ {usl['sigma']:.3g}, "
            f"coherency κ {usl['kappa']:.3g}, predicting {limit}; a model's prediction, not a measurement.")
