"""The New run page's "Find capacity" mode (``run_perf --find-capacity``, issue 21): the settings it offers, with the
command's defaults, what the page checks before the command does, and the options the settings make.

The command stays the judge of what a search may be (a factor above 1, a resolution, a start below the ceiling, a
step that fits in the budget). The page checks what the command cannot know, that one click in the browser keeps
within PERF_WEB_MAX_USERS and PERF_WEB_MAX_DURATION, and reads the numbers and durations it must compare with them,
so that a mistake is named beside its field. A search is judged step by step by its thresholds: the page asks for
one before the command would.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from math import isfinite
from typing import Any

from django import forms

from perf.options import parse_duration, parse_percent
from perf.reports import formats

# The command's defaults (the capacity contract), which the page's fields start with.
START_LOAD = 10
MAX_LOAD = 1000
STEP_FACTOR = 2.0
SETTLE = "10s"
HOLD = "30s"
RESOLUTION = "10%"
BUDGET = "30m"

# What a search raises: users (the closed model) or the arrival rate (the open model, on Users' pool).
USERS, RATE = "users", "rate"
UNITS = {USERS: "users", RATE: "iterations a second"}
# The settings' fields, read only with Find capacity ticked; the page's script hides and disables them otherwise.
SETTINGS = ("capacity_model", "start_load", "max_load", "step_factor", "step_increment", "settle", "hold",
            "resolution", "budget")
# The page's fields a search sets, by model: they stay empty (the script hides them).
SET_BY_SEARCH = {USERS: ("users", "spawn_rate", "duration"), RATE: ("spawn_rate", "duration")}

Problems = list[tuple[str, str]]  # (field, message)


class CapacityFields(forms.Form):
    """Find capacity's fields, with the command's defaults; the New run form (perf.web.run_control.NewRunForm)
    is one of these, and places them after the load profiles."""

    # Find capacity's settings: read only with it ticked (the rows the page's script shows with it).
    CAPACITY_SETTINGS = SETTINGS

    find_capacity = forms.BooleanField(
        required=False, label="Find capacity",
        help_text="Or find the most load the server takes: raise it step by step until a step fails the Thresholds "
                  "(give one at least), then narrow down between the last step that passed and the first that failed. "
                  "The settings below are its own; Spawn rate, Duration and the other load profiles then stay empty, "
                  "and so does Users unless it is the pool of iterations a second.")
    capacity_model = forms.ChoiceField(
        required=False, label="Steps of", initial=USERS, widget=forms.RadioSelect,
        choices=[(USERS, "users (the closed model)"),
                 (RATE, "iterations a second (the open model; Users is then the pool they run on)")])
    start_load = forms.CharField(
        required=False, max_length=32, label="Start load", initial=START_LOAD,
        widget=forms.NumberInput(attrs={"min": "0", "step": "any"}),
        help_text=f"The first step's load, users or iterations a second (default {START_LOAD}).")
    max_load = forms.CharField(
        required=False, max_length=32, label="Ceiling", widget=forms.NumberInput(attrs={"min": "0", "step": "any"}),
        help_text=f"The most load the search asks for, users or iterations a second (default "
                  f"{MAX_LOAD:,}): a search that reaches it with every step passing says so.")
    step_factor = forms.CharField(
        required=False, max_length=32, label="Step factor", initial=f"{STEP_FACTOR:g}",
        widget=forms.NumberInput(attrs={"min": "1", "step": "any"}),
        help_text=f"Each step's load is the last one's times this (default {STEP_FACTOR:g}).")
    step_increment = forms.CharField(
        required=False, max_length=32, label="Step increment",
        widget=forms.NumberInput(attrs={"min": "0", "step": "any"}),
        help_text="Or each step adds this to the last one's load instead; Step factor then stays empty.")
    settle = forms.CharField(
        required=False, max_length=32, initial=SETTLE,
        help_text=f"Each step's first moments, left out of its figures while the load settles (default "
                  f"{SETTLE}).")
    hold = forms.CharField(required=False, max_length=32, initial=HOLD,
                           help_text=f"Each step's judged window, after it settled (default {HOLD}).")
    resolution = forms.CharField(
        required=False, max_length=32, initial=RESOLUTION,
        help_text=f"Narrowing down stops when the last passing and the first failing loads are this close (default "
                  f"{RESOLUTION}).")
    budget = forms.CharField(required=False, max_length=32,
                             help_text=f"The whole search's time, at most (default {BUDGET}).")

    def offer_capacity_within(self, most_users: int, most_seconds: float) -> None:
        """The ceiling and the budget the page starts with, and says it keeps to: the command's defaults, or the
        page's limits where they are lower (the default would be refused)."""
        self.fields["max_load"].initial = min(MAX_LOAD, most_users)
        self.fields["max_load"].help_text += f" At most {most_users:,} from this page."
        fits = parse_duration(BUDGET) <= most_seconds
        self.fields["budget"].initial = BUDGET if fits else duration_text(most_seconds)
        self.fields["budget"].help_text += f" At most {formats.duration(most_seconds)} from this page."


@dataclass(frozen=True)
class CapacitySearch:
    """A search as the page's fields ask for it; numbers as read, durations and the resolution as typed."""

    model: str
    start: float
    ceiling: float
    budget: str
    factor: float | None = None
    increment: float | None = None
    settle: str = ""
    hold: str = ""
    resolution: str = ""
    pool: int | None = None  # the open model's users

    def arguments(self) -> list[str]:
        """The contract's options: a setting left empty is left out, and the command's default applies; the
        ceiling and the budget always go, since the page bounds every run it starts."""
        if self.model == RATE:
            args = ["--find-capacity", f"--rate={number(self.start)}", f"--max-rate={number(self.ceiling)}",
                    f"--users={self.pool}"]
        else:
            args = ["--find-capacity", f"--start-load={number(self.start)}", f"--max-users={number(self.ceiling)}"]
        if self.factor is not None:
            args.append(f"--step-factor={number(self.factor)}")
        if self.increment is not None:
            args.append(f"--step-increment={number(self.increment)}")
        args += [f"--{option}={text}" for option, text in (("settle", self.settle), ("hold", self.hold),
                                                            ("resolution", self.resolution)) if text]
        args.append(f"--budget={self.budget}")
        return args


def number(value: float) -> str:
    """A number as the command line takes it: a whole one without a decimal point (``--max-users`` wants an int)."""
    return str(int(value)) if value.is_integer() else f"{value:g}"


def duration_text(seconds: float) -> str:
    """``1h30m``, ``10m``, ``45s``: a limit as a field's value."""
    whole = max(1, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{value}{unit}" for value, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if value)


def check_search(data: Mapping[str, Any], most_users: int, most_seconds: float) -> tuple[CapacitySearch | None,
                                                                                          Problems]:
    """The search the page's cleaned ``data`` asks for, or None, and what is wrong, each beside its field.
    ``most_users`` bounds the ceiling (users, or iterations a second: PERF_WEB_MAX_USERS), ``most_seconds`` the
    budget (PERF_WEB_MAX_DURATION)."""
    problems: Problems = []
    model = RATE if data.get("capacity_model") == RATE else USERS
    unit = UNITS[model]
    given = _text(data, "start_load"), _text(data, "max_load"), _text(data, "budget")
    for name, text in zip(("start_load", "max_load", "budget"), given, strict=True):
        if not text:
            problems.append((name, "This field is required."))
    start = _load(problems, "start_load", "Start load", given[0], model)
    ceiling = _load(problems, "max_load", "Ceiling", given[1], model)
    for name, label, value in (("start_load", "Start load", start), ("max_load", "Ceiling", ceiling)):
        if value is not None and value > most_users:
            problems.append((name, f"{label} asks for {value:,.0f} {unit}; at most {most_users:,} from this page "
                                   f"(PERF_WEB_MAX_USERS{_rate_note(model)}); larger searches start from the command "
                                   "line."))
    factor = _number(problems, "step_factor", "Step factor", "a number above 1, like 2", _text(data, "step_factor"),
                     lambda value: value > 1)
    increment = _load(problems, "step_increment", "Step increment", _text(data, "step_increment"), model)
    if factor is not None and increment is not None:
        problems.append(("step_increment", "Step factor and Step increment cannot be combined: leave one of them "
                                           "empty."))
    durations = {name: _duration(problems, name, label, _text(data, name))
                 for name, label in (("settle", "Settle"), ("hold", "Hold"), ("budget", "Budget"))}
    budget = durations["budget"]
    if budget is not None and budget > most_seconds:
        problems.append(("budget", f"Budget is {formats.duration(budget)}; at most {formats.duration(most_seconds)} "
                                   "from this page (PERF_WEB_MAX_DURATION); longer searches start from the command "
                                   "line."))
    resolution = _text(data, "resolution")
    if resolution:
        try:
            parse_percent(resolution)
        except ValueError:
            problems.append(("resolution", f"Resolution is a percent, like 10%, not {resolution[:20]!r}."))
    problems += _other_fields(data, model)
    if problems or start is None or ceiling is None:
        return None, problems
    return CapacitySearch(model=model, start=start, ceiling=ceiling, budget=given[2], factor=factor,
                          increment=increment, settle=_text(data, "settle"), hold=_text(data, "hold"),
                          resolution=resolution, pool=data.get("users") if model == RATE else None), problems


def _other_fields(data: Mapping[str, Any], model: str) -> Problems:
    """The page's other fields as a search needs them: thresholds to judge each step by, none of the fields the
    search sets, and for the open model the pool and no think time."""
    problems: Problems = []
    if not str(data.get("thresholds") or "").strip():
        problems.append(("thresholds", "Find capacity needs at least one threshold: each step passes while they all "
                                       "hold, e.g. p95<500ms."))
    set_by_search = SET_BY_SEARCH[model]
    if any(data.get(name) not in (None, "") for name in set_by_search):
        if model == RATE:
            problems.append(("find_capacity", "With Find capacity in iterations a second, the search sets the arrival "
                                              "rate and the run's length: leave Spawn rate and Duration empty."))
        else:
            problems.append(("find_capacity", "With Find capacity, the search sets the users and the run's length: "
                                              "leave Users, Spawn rate and Duration empty."))
    if model == RATE:
        if data.get("users") in (None, ""):
            problems.append(("users", "With Find capacity in iterations a second, Users is the pool the iterations "
                                      "run on: give it."))
        if str(data.get("wait") or "").strip():
            problems.append(("wait", "Think time does not apply to a search in iterations a second: iterations "
                                     "arrive on the schedule, without think time."))
    return problems


def _rate_note(model: str) -> str:
    return ", which bounds a search's ceiling in iterations a second too" if model == RATE else ""


def _text(data: Mapping[str, Any], name: str) -> str:
    return str(data.get(name) or "").strip()


def _load(problems: Problems, name: str, label: str, text: str, model: str) -> float | None:
    """A load: whole users (1 or more), or iterations a second (above 0)."""
    if model == USERS:
        return _number(problems, name, label, "a whole number of users, 1 or more", text,
                       lambda value: value >= 1 and value.is_integer())
    return _number(problems, name, label, "a number of iterations a second, above 0", text, lambda value: value > 0)


def _number(problems: Problems, name: str, label: str, what: str, text: str,
            ok: Callable[[float], bool]) -> float | None:
    """``text`` as a number that passes ``ok``, or None with a problem naming ``what`` it should be ("": None)."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not isfinite(value) or not ok(value):
        problems.append((name, f"{label} must be {what}, not {text[:20]!r}."))
        return None
    return value


def _duration(problems: Problems, name: str, label: str, text: str) -> float | None:
    if not text:
        return None
    try:
        return parse_duration(text)
    except ValueError:
        problems.append((name, f"{label} must be a positive time like 90, 90s, 5m or 1h30m, at most 30 days."))
        return None
