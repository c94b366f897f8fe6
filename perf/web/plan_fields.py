"""A saved plan (PerfPlan) as the command line and as the New run page see it.

A plan stores RunRequest field names and values. ``plan_arguments`` makes the command line they stand for, so that
the admin checks a plan with run_perf's own parser and checks (``perf.web.launch.check_arguments``), as the New run
page checks its fields. ``form_data`` fills the New run page's fields from a plan: "Run now" submits them as they
are, and ``?plan=NAME`` shows them to change first; either way the run is started with ``--plan NAME``, so that what
the page has no field for (a seed, processes, a rate) comes from the plan, and the run is judged against its history.
"""

import argparse
from functools import cache
from typing import Any

from django.core.management import load_command_class

from perf.cli.invocation import DEFAULT_DURATION, DEFAULT_SPAWN_RATE, DEFAULT_USERS
from perf.models import PerfPlan


@cache
def _actions() -> dict[str, argparse.Action]:
    parser = load_command_class("perf", "run_perf").create_parser("manage.py", "run_perf")
    return {action.dest: action for action in parser._actions if action.option_strings}


def plan_arguments(options: dict[str, Any]) -> list[str]:
    """The ``run_perf`` arguments that ``options`` (RunRequest field names → values) stand for; ValueError for a
    name run_perf has no option for. Values go as ``--option=value``, so that one starting with "-" stays a value."""
    actions = _actions()
    args: list[str] = []
    for name, value in options.items():
        action = actions.get(name)
        if action is None:
            raise ValueError(f"run_perf has no option {name!r}")
        flag = max(action.option_strings, key=len)
        if action.nargs == 0:  # a flag: store_true (const True) or store_false (const False)
            if value == action.const:
                args.append(flag)
        elif isinstance(action, argparse._AppendAction):
            args += [f"{flag}={item}" for item in (value if isinstance(value, list | tuple) else [value])]
        elif value is not None:
            args.append(f"{flag}={value}")
    return args


def form_data(plan: PerfPlan, host: str) -> dict[str, Any]:
    """The New run page's fields for ``plan`` (``host``: the page's own offer, when the plan names none)."""
    options = plan.options or {}
    data: dict[str, Any] = {
        "plan": plan.name, "host": options.get("host") or host, "label": options.get("label") or plan.name,
        "wait": options.get("wait") or "", "scenarios": list(options.get("scenarios") or []),
        "thresholds": "\n".join(plan.thresholds or options.get("thresholds") or []),
    }
    if options.get("stages"):
        data["stages"] = options["stages"]
    elif options.get("rate_stages"):
        data.update(rate_stages=options["rate_stages"], users=options.get("users") or DEFAULT_USERS)
    elif options.get("shape"):
        name, _, parameters = str(options["shape"]).partition(":")
        data.update(shape=name, shape_parameters=parameters)
        data.update({key: options[key] for key in ("users", "duration") if options.get(key) is not None})
    else:
        data.update(users=options.get("users") or DEFAULT_USERS,
                    spawn_rate=options.get("spawn_rate") or DEFAULT_SPAWN_RATE,
                    duration=options.get("duration") or DEFAULT_DURATION)
    return data
