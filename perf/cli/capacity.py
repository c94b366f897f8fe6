"""The capacity search a ``run_perf --find-capacity`` request asks for, checked: its options to one
``perf.load.capacity.CapacitySearch``, or ValueError with one line naming the fix.

The options that set the load by hand (``-t``, ``--stages``, a shape, ``--abort-on-threshold``) mean nothing to a
search that sets it itself, and are refused rather than quietly ignored. A search runs in one process: its steps
are judged on the registry they are recorded in, which ``--processes`` and Celery shards split.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

from perf.cli.profiles import MAX_USERS
from perf.load.capacity import CapacitySearch, CapacitySettings
from perf.load.thresholds import Threshold
from perf.options import MAX_RATE, check_rate, check_seconds, parse_duration, parse_percent

if TYPE_CHECKING:  # the request's module imports this one
    from perf.cli.invocation import RunRequest

DEFAULT_START_USERS = 10.0
DEFAULT_MAX_USERS = 1000.0
DEFAULT_MAX_RATE = 1000.0
DEFAULT_FACTOR = 2.0
DEFAULT_SETTLE = "10s"
DEFAULT_HOLD = "30s"
DEFAULT_RESOLUTION = "10%"
DEFAULT_BUDGET = "30m"
# An open-model search's pool (-u) when not given: enough for a few hundred iterations a second at ~100 ms each.
DEFAULT_POOL = 50


def capacity_search(request: "RunRequest", thresholds: Sequence[Threshold]) -> CapacitySearch | None:
    """The search ``request`` asks for (None without --find-capacity); ValueError for any option it cannot take."""
    search_only = [option for option, value in (
        ("--start-load", request.start_load), ("--max-users", request.max_users), ("--max-rate", request.max_rate),
        ("--step-factor", request.step_factor), ("--step-increment", request.step_increment),
        ("--settle", request.settle), ("--hold", request.hold), ("--resolution", request.resolution),
        ("--budget", request.budget)) if value is not None]
    if not request.find_capacity:
        if search_only:
            raise ValueError(f"{search_only[0]} is a capacity search's option: add --find-capacity")
        return None
    _refuse_manual_load(request)
    if not thresholds:
        raise ValueError('--find-capacity needs the rules a step must pass: add --threshold, e.g. '
                         '--threshold "p95<500ms" --threshold "error_rate<1%"')
    open_model = request.rate is not None
    if open_model:
        if request.start_load is not None or request.max_users is not None:
            raise ValueError("with --rate the search steps the arrival rate from R: drop --start-load and "
                             "--max-users (give --max-rate; -u sizes the pool)")
        start = check_rate("--rate", request.rate or 0.0)
        ceiling = check_rate("--max-rate", request.max_rate if request.max_rate is not None else DEFAULT_MAX_RATE)
        most, option = MAX_RATE, "--max-rate"
    else:
        if request.max_rate is not None:
            raise ValueError("--max-rate is the open model's ceiling: add --rate R (the first step's rate), "
                             "or give --max-users")
        start = request.start_load if request.start_load is not None else DEFAULT_START_USERS
        ceiling = request.max_users if request.max_users is not None else DEFAULT_MAX_USERS
        most, option = float(MAX_USERS), "--max-users"
        for name, value in (("--start-load", start), ("--max-users", ceiling)):
            if value != int(value) or not 1 <= value <= MAX_USERS:
                raise ValueError(f"{name} counts users: a whole number from 1 to {MAX_USERS:,}, got {value:g}")
    if ceiling > most:
        raise ValueError(f"{option} {ceiling:g} is beyond the most a run may ask for, {most:,.0f}")
    if start > ceiling:
        raise ValueError(f"the first step ({start:g}) is above the ceiling {option} {ceiling:g}: lower it or raise "
                         f"{option}")
    factor, increment = _growth(request.step_factor, request.step_increment)
    settle = check_seconds("--settle", parse_duration(request.settle or DEFAULT_SETTLE))
    hold = check_seconds("--hold", parse_duration(request.hold or DEFAULT_HOLD), zero=False)
    budget = check_seconds("--budget", parse_duration(request.budget or DEFAULT_BUDGET), zero=False)
    resolution = parse_percent(request.resolution or DEFAULT_RESOLUTION)
    if not 0 < resolution < 100:
        raise ValueError(f"--resolution must be between 0 and 100%, got {resolution:g}%")
    if settle + hold > budget:
        raise ValueError(f"--budget {budget:g} s is shorter than one step (--settle {settle:g} s + --hold "
                         f"{hold:g} s): give the search more time")
    settings = CapacitySettings(kind="rate" if open_model else "users", start=float(start), factor=factor,
                                increment=increment, settle=settle, hold=hold, resolution=resolution / 100,
                                max_load=float(ceiling), budget=budget, thresholds=tuple(thresholds))
    return CapacitySearch(settings)


def _refuse_manual_load(request: "RunRequest") -> None:
    """Options that set the load or the run's length by hand: the search sets both."""
    given = [option for option, value in (
        ("-t/--duration", request.duration), ("--stages", request.stages), ("--rate-stages", request.rate_stages),
        ("--shape", request.shape)) if value is not None]
    if given:
        fix = "give --budget for the whole search's time" if given[0] == "-t/--duration" else "drop it"
        raise ValueError(f"--find-capacity sets the load and the run's length itself: {given[0]} cannot be given "
                         f"with it; {fix}")
    if request.users is not None and request.rate is None:
        raise ValueError("--find-capacity steps the users itself: drop -u/--users (give --start-load and "
                         "--max-users), or add --rate R to search the arrival rate with a pool of -u users")
    if request.abort_on_threshold:
        raise ValueError("--find-capacity judges each step on the thresholds and goes on: drop --abort-on-threshold")
    if request.processes is not None or request.distributed:
        raise ValueError("--find-capacity runs in one process (each step is judged on the figures it records): "
                         "drop --processes and --distributed")


def _growth(factor: float | None, increment: float | None) -> tuple[float | None, float | None]:
    if factor is not None and increment is not None:
        raise ValueError("--step-factor and --step-increment are two ways to grow a step: give one")
    if increment is not None:
        if not (increment > 0 and increment < float("inf")):
            raise ValueError(f"--step-increment must be greater than 0, got {increment:g}")
        return None, increment
    factor = DEFAULT_FACTOR if factor is None else factor
    if not (1 < factor <= 100):
        raise ValueError(f"--step-factor must be above 1 (each step bigger than the last) and at most 100, "
                         f"got {factor:g}")
    return factor, None
