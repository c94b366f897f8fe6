"""Saved plans: ``run_perf --plan NAME`` (the plan's options, the given ones over them, the run linked to its plan and
host, judged against the plan's history at the end and exit 4 on a regression), an unknown plan, and the plan's
admin page (its options checked by run_perf's own parser and checks on save, "Run now", the New run page from a
plan).
"""

import json
import socket
from typing import Any

import pytest

from perf.cli import exit_codes
from perf.load.stats import StatsRegistry
from perf.models import PerfPlan, PerfRun
from tests.adminclient import AdminClient, staff_client
from tests.factories import unique
from tests.liveserver import ROOT, run_perf
from tests.perf.builders import lines_of, poll, stored_run, superuser


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


# the admin


def plan_fields(name: str, options: str, **changes: str) -> dict[str, str]:
    """The plan's add form as a browser sends it."""
    fields = {"name": name, "description": "", "options": options, "thresholds": '["p95<30s"]', "noise_k": "3",
              "history_size": "20", "min_history": "5", "min_band_percent": "5", "metrics": "[]",
              "fail_on_regression": "on", "baseline": ""}
    fields.update(changes)
    return fields


def test_the_committed_nightly_plan_is_one_the_admin_saves(seeded, live_server_process, orm):
    """docs/ci/perf-nightly.yml loads perf-plans.json: its plan must be one run_perf takes, as the admin checks it."""
    [entry] = json.loads((ROOT / "perf-plans.json").read_text())
    fields = entry["fields"]
    admin = AdminClient(live_server_process.root).login(*superuser())
    name = unique("nightly")
    saved = admin.post("/admin/perf/perfplan/add/", plan_fields(name, json.dumps(fields["options"]),
                                                                thresholds=json.dumps(fields["thresholds"])))
    assert saved.status_code == 200 and PerfPlan.objects.filter(name=name).exists(), saved.text[-2000:]
    assert PerfPlan.objects.get(name=name).options == fields["options"]


def test_a_plans_options_are_checked_by_run_perf_on_save(seeded, live_server_process, orm):
    admin = AdminClient(live_server_process.root).login(*superuser())
    url = live_server_process.url
    refused = admin.post("/admin/perf/perfplan/add/", plan_fields(unique("bad"), f'{{"users": 0, "host": "{url}"}}'))
    assert "run_perf refuses these options: --users must be between 1 and" in refused.text
    unknown = admin.post("/admin/perf/perfplan/add/", plan_fields(unique("bad"), '{"csv": "/tmp/x"}'))
    assert "A plan cannot set csv; it may set users" in unknown.text
    together = admin.post("/admin/perf/perfplan/add/",
                          plan_fields(unique("bad"), '{"stages": "1s:2", "users": 3}'))
    assert "run_perf refuses these options: --stages sets the users over time: drop -u/--users" in together.text
    threshold = admin.post("/admin/perf/perfplan/add/", plan_fields(unique("bad"), "{}", thresholds='["p95<"]'))
    assert "run_perf refuses these options: bad --threshold" in threshold.text
    assert not PerfPlan.objects.filter(name__startswith="bad").exists()

    name = unique("good")
    saved = admin.post("/admin/perf/perfplan/add/", plan_fields(
        name, f'{{"users": "3", "duration": "2s", "scenarios": ["EventBrowser"], "host": "{url}"}}'))
    assert saved.status_code == 200 and "/admin/perf/perfplan/" in saved.url
    plan = PerfPlan.objects.get(name=name)
    # As the parser read them: the number of users is a number.
    assert plan.options == {"users": 3, "duration": "2s", "scenarios": ["EventBrowser"], "host": url}
    assert plan.thresholds == ["p95<30s"]


@pytest.mark.slow
def test_run_now_starts_the_plan_for_those_who_may_start_runs_only(seeded, live_server_process, orm, quiet):
    plan = make_plan(live_server_process.url, thresholds=["p95<30s"])
    page = f"/admin/perf/perfplan/{plan.pk}/change/"
    # May edit plans, may not start runs: no button, and the POST is refused with nothing started.
    editor = staff_client(live_server_process.root, "view_perfplan", "change_perfplan", "view_perfrun")
    assert editor.get(page).status_code == 200 and "Run now" not in editor.get(page).text
    assert editor.post(f"/admin/perf/perfplan/{plan.pk}/run/").status_code == 403
    assert not PerfRun.objects.filter(plan=plan).exists()

    admin = AdminClient(live_server_process.root).login(*superuser())
    assert "Run now" in admin.get(page).text and f"?plan={plan.name}" in admin.get(page).text
    assert admin.get(f"/admin/perf/perfplan/{plan.pk}/run/").status_code == 405
    started = admin.post(f"/admin/perf/perfplan/{plan.pk}/run/", {"run_anyway": "on"})
    run = PerfRun.objects.get(plan=plan)
    assert started.url.endswith(f"/admin/perf/perfrun/{run.pk}/change/")
    assert f"Run {run.pk} of plan {plan.name} started" in started.text
    assert run.label == plan.name and run.options["plan"] == plan.name and run.options["users"] == 3
    assert run.options["audit"] is False  # from the plan: the page has no field for it
    finished = poll(lambda: PerfRun.objects.exclude(status=PerfRun.Status.RUNNING).filter(pk=run.pk).first(),
                    f"run {run.pk} did not end", timeout=60)
    assert finished.status == PerfRun.Status.COMPLETED
    # The plan's verdicts are stored after the final save (the run is judged once its figures are whole).
    judged = poll(lambda: PerfRun.objects.filter(pk=run.pk, regressions__isnull=False).first(),
                  f"run {run.pk} was never judged against its plan", timeout=30)
    assert judged.regressions["plan"] == plan.name


def test_run_now_keeps_to_the_web_limits(seeded, live_server_process, orm, quiet):
    plan = make_plan(live_server_process.url, options={"users": 5000})
    admin = AdminClient(live_server_process.root).login(*superuser())
    refused = admin.post(f"/admin/perf/perfplan/{plan.pk}/run/", {"run_anyway": "on"})
    assert refused.url.endswith(f"/admin/perf/perfplan/{plan.pk}/change/")
    assert f"Plan {plan.name} cannot start from this page: Users are at most" in refused.text
    assert not PerfRun.objects.filter(plan=plan).exists()


def test_the_new_run_page_starts_from_a_plan(seeded, live_server_process, orm):
    plan = make_plan(live_server_process.url, options={"users": 4, "wait": "0.1,0.3"}, thresholds=["p95<2s"])
    admin = AdminClient(live_server_process.root).login(*superuser())
    page = admin.get(f"/admin/perf/perfrun/add/?plan={plan.name}").text
    assert f'<option value="{plan.name}" selected>' in page
    assert 'name="users" value="4"' in page and 'value="0.1,0.3"' in page and "p95&lt;2s" in page
    assert f'value="{plan.name}"' in page  # the label
    line = admin.post("/admin/perf/perfrun/add/command-line/", {
        "plan": plan.name, "users": "4", "spawn_rate": "10", "duration": "2s", "host": live_server_process.url,
        "label": "x"}).json()
    assert line["problems"] == [] and f"--plan={plan.name}" in line["command"]
