"""Saved plans: ``run_perf --plan NAME`` (the plan's options, the given ones over them, the run linked to its plan and
host, judged against the plan's history at the end and exit 4 on a regression), an unknown plan, and the plan's
admin page (its options checked by run_perf's own parser and checks on save, "Run now", the New run page from a
plan).
"""

import socket
from typing import Any

import pytest

from perf.cli import exit_codes
from perf.load.stats import StatsRegistry
from perf.models import PerfPlan, PerfRun
from tests.factories import unique
from tests.liveserver import run_perf
from tests.perf.builders import lines_of, stored_run


def make_plan(url: str, **fields: Any) -> PerfPlan:
    options = {"users": 3, "spawn_rate": 10, "duration": "2s", "scenarios": ["EventBrowser"], "wait": "0.05,0.2",
               "host": url, "audit": False, **fields.pop("options", {})}
    return PerfPlan.objects.create(name=unique("plan"), options=options, **fields)


def fast_history(like: PerfRun, nights: int = 5) -> None:
    """Nights of the plan at 0.1 ms on every request: any real run is slower than that, and beyond the 1 ms floor."""
    for _ in range(nights):
        stats = StatsRegistry(start_time=1_700_000_000.0)
        for _ in range(40):
            stats.record("GET", "/events/", 0.1, 100)
        stored_run(stats, plan=like.plan, options=like.options)


@pytest.mark.slow
def test_a_plan_runs_with_the_given_options_over_its_own_and_fails_on_a_regression(
    seeded, live_server_process, orm
):
    plan = make_plan(live_server_process.url, thresholds=["p95<30s"])
    label = unique("planned")
    first = run_perf(seeded, "--plan", plan.name, "--users", "2", "--label", label, timeout=120)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    run = PerfRun.objects.get(label=label)
    # The plan's options, with --users and --label over them: what the run ran with is what it stores.
    assert run.plan == plan and run.users == 2 and run.options["users"] == 2 and run.options["plan"] == plan.name
    assert run.options["duration"] == "2s" and run.options["scenarios"] == ["EventBrowser"]
    assert run.options["thresholds"] == ["p95<30s"] and run.thresholds[0]["expression"] == "p95<30s"
    assert run.hostname == socket.gethostname() and run.git_revision
    assert f"Against plan {plan.name}'s last 0 comparable runs" in first.stdout
    assert "not enough history" in first.stdout
    assert run.regressions["regressed"] == 0 and run.regressions["runs"] == []

    fast_history(run)
    second = run_perf(seeded, "--plan", plan.name, "--users", "2", timeout=120)
    assert second.returncode == exit_codes.REGRESSION, second.stdout[-3000:] + second.stderr[-2000:]
    judged = PerfRun.objects.filter(plan=plan).exclude(pk=run.pk).order_by("-started_at").first()
    assert judged is not None and judged.label == plan.name  # a plan's run is named after it unless labelled
    aggregated = next(v for v in judged.regressions["verdicts"]
                      if v["endpoint"] == "Aggregated" and v["metric"] == "p95")
    assert aggregated["verdict"] == "regressed" and aggregated["median"] == pytest.approx(0.1)
    assert aggregated["value"] > aggregated["high"] and len(judged.regressions["runs"]) == 6
    assert "regressed" in second.stdout

    # A plan that does not fail on regressions still says so, and exits 0.
    PerfPlan.objects.filter(pk=plan.pk).update(fail_on_regression=False)
    third = run_perf(seeded, "--plan", plan.name, "--users", "2", timeout=120)
    assert third.returncode == 0 and "regressed" in third.stdout, third.stdout[-3000:] + third.stderr[-2000:]


def test_an_unknown_plan_is_one_line_and_exit_2(seeded, orm):
    PerfPlan.objects.get_or_create(name="known-plan")
    result = run_perf(seeded, "--plan", "no-such-plan", "--duration", "1s", timeout=60)
    assert result.returncode == exit_codes.USAGE
    assert lines_of(result.stderr) == [lines_of(result.stderr)[0]]
    assert "unknown --plan 'no-such-plan': the plans are" in result.stderr and "known-plan" in result.stderr
    assert not PerfRun.objects.filter(options__plan="no-such-plan").exists()
