"""CI-native results (issue 22): ``run_perf --junit PATH`` and ``--summary-md PATH``, and GitHub's job summary.

The writers are tested on stored runs described as the admin's downloads describe them
(``RunDescription.from_run``), then end to end: real ``run_perf`` processes against the live server, whose
files are parsed and held against what the same process printed and stored.
"""

import os
import re
import uuid
from pathlib import Path
from xml.etree import ElementTree

import pytest

from perf.load.stats import StatsRegistry
from perf.load.thresholds import evaluate, parse_threshold
from perf.models import PerfRun
from perf.reports.description import ComparisonResult, RunDescription
from perf.reports.junit import junit_xml, write_junit
from perf.reports.summary_md import append_step_summary, summary_markdown
from platform_pack.clients import api as names
from tests.factories import unique
from tests.liveserver import run_perf
from tests.perf import capacity_builders as cb
from tests.perf.builders import browse_args, lines_of, stored_run

DURATION = 10.0
SLOW, FAST = "/slow/", "/fast/"
AUDIT = {"ok": False, "checks": [{"name": "tier_sales", "ok": False, "detail": "event 3 sold 11 of its 10 seats"},
                                 {"name": "duplicate_rsvps", "ok": True, "detail": ""}]}
REGRESSIONS = (f"GET {SLOW}: p95 300 → 640 ms (+113.3%)", "ramp to 20: p95 200 → 500 ms (+150.0%)")


def _registry() -> StatsRegistry:
    """/slow/ at 600-640 ms (the p95 threshold breaks), /fast/ at 10 ms with 2 failures of 40."""
    stats = StatsRegistry()
    for i in range(40):
        stats.record("GET", SLOW, 600.0 + i, 500)
        stats.record("GET", FAST, 10.0, 500, "HTTPError('500')" if i < 2 else None)
    return stats


def _described(gate: bool = True) -> tuple[StatsRegistry, RunDescription]:
    stats = _registry()
    verdicts = evaluate([parse_threshold("p95<500ms"), parse_threshold("error_rate<10%")], stats, DURATION)
    run = stored_run(stats, duration=DURATION, label="nightly", git_revision="abc1234",
                     thresholds=[v.as_dict() for v in verdicts], audit=AUDIT)
    comparison = ComparisonResult(baseline=7, baseline_label="last week", percent=10.0, gate=gate,
                                  regressions=REGRESSIONS, notes=("seed differs: none vs 3",))
    return stats, RunDescription.from_run(run, comparison=comparison)


def _suite(xml: str) -> ElementTree.Element:
    root = ElementTree.fromstring(xml)
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    return suite


def _cases(suite: ElementTree.Element) -> dict[str, ElementTree.Element]:
    return {f"{case.get('classname')}/{case.get('name')}": case for case in suite.findall("testcase")}


def _failure(case: ElementTree.Element) -> str | None:
    failure = case.find("failure")
    return None if failure is None else failure.get("message")


# ---------------------------------------------------------------------------------------------- the writers


def test_junit_has_a_test_per_verdict_and_failures_holding_the_figures(orm) -> None:
    stats, run = _described()
    suite = _suite(junit_xml(stats, DURATION, run))
    cases = _cases(suite)

    assert list(cases) == [
        "perfkit.thresholds/p95<500ms", "perfkit.thresholds/error_rate<10%",
        f"perfkit.regressions/GET {FAST} vs run 7", f"perfkit.regressions/GET {SLOW} vs run 7",
        "perfkit.regressions/Aggregated vs run 7", "perfkit.regressions/ramp to 20 vs run 7",
        "perfkit.audit/tier_sales", "perfkit.audit/duplicate_rsvps",
        "perfkit.run/run completed", "perfkit.run/no failed requests",
    ]
    failed = {name: _failure(case) for name, case in cases.items() if _failure(case) is not None}
    assert re.fullmatch(r"p95<500ms: 6[0-9]{2} ms", run.thresholds[0].line)  # the figure, with its unit
    assert failed == {
        "perfkit.thresholds/p95<500ms": run.thresholds[0].line,
        f"perfkit.regressions/GET {SLOW} vs run 7": REGRESSIONS[0],
        "perfkit.regressions/ramp to 20 vs run 7": REGRESSIONS[1],
        "perfkit.audit/tier_sales": "event 3 sold 11 of its 10 seats",
        "perfkit.run/no failed requests": "2 of 80 requests failed (2.50%)",
    }
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("10", "5", "0",
                                                                                                     "0")
    assert suite.get("name") == f"perfkit run {run.run_id} nightly" and suite.get("time") == "10.000"
    assert suite.get("timestamp", "").startswith(str(PerfRun.objects.get(pk=run.run_id).started_at.year))
    properties = {p.get("name"): p.get("value") for p in suite.iterfind("properties/property")}
    assert properties["git_revision"] == "abc1234"
    assert properties["admin_url"] == f"http://127.0.0.1:8000/admin/perf/perfrun/{run.run_id}/change/"
    assert "seed differs" in (cases[f"perfkit.regressions/GET {FAST} vs run 7"].findtext("system-out") or "")


def test_without_a_gate_a_regression_is_said_but_passes_as_the_run_does(orm) -> None:
    stats, run = _described(gate=False)
    cases = _cases(_suite(junit_xml(stats, DURATION, run)))

    slow = cases[f"perfkit.regressions/GET {SLOW} vs run 7"]
    assert _failure(slow) is None
    assert REGRESSIONS[0] in (slow.findtext("system-out") or "")
    assert "not a gate without --fail-on-regression" in (slow.findtext("system-out") or "")


def test_a_capacity_search_fails_as_its_exit_code_and_skips_the_steps_past_the_knee(orm) -> None:
    found = cb.stored_search(cb.found_search())
    suite = _suite(junit_xml(cb.search_registry(cb.found_search()), 60.0, RunDescription.from_run(found)))
    cases = _cases(suite)
    steps = [case for name, case in cases.items() if name.startswith("perfkit.capacity.steps/")]

    assert _failure(cases["perfkit.capacity/capacity search"]) is None
    assert len(steps) == len(found.capacity["steps"]) and suite.get("failures") == "0"
    past = [case for case in steps if case.find("skipped") is not None]
    assert len(past) == sum(not step["passed"] for step in found.capacity["steps"]) > 0
    assert all((case.find("skipped").get("message") or "").startswith("past the capacity: p95<500ms: ")
               for case in past)
    assert "perfkit.run/no failed requests" not in cases  # failures past the knee are what a search looks for

    for data, why in ((cb.first_step_failed_search(), "the first step already failed"),
                      (cb.generator_limited_search(), "the load generator limited itself")):
        run = RunDescription.from_run(cb.stored_search(data))
        outcome = _cases(_suite(junit_xml(cb.search_registry(data), 60.0, run)))["perfkit.capacity/capacity search"]
        assert (_failure(outcome) or "").startswith(f"{why}"), _failure(outcome)
        assert data["verdict"] in (_failure(outcome) or "")


NOISE = {"plan": "nightly", "fail_on_regression": True, "regressed": 1, "runs": [1, 2, 3, 4, 5], "verdicts": [
    {"endpoint": f"GET {SLOW}", "metric": "p95", "verdict": "regressed", "value": 640.0, "median": 480.0, "band": 30.0,
     "low": 450.0, "high": 510.0, "history": 5},
    {"endpoint": f"GET {FAST}", "metric": "p95", "verdict": "within noise", "value": 10.0, "median": 10.2, "band": 1.0,
     "low": 9.2, "high": 11.2, "history": 5},
    {"endpoint": f"GET {FAST}", "metric": "failure_rate", "verdict": "not enough history", "value": 5.0,
     "median": None, "band": None, "low": None, "high": None, "history": 2},
]}


@pytest.mark.parametrize("gate", [True, False], ids=["plan-fails", "plan-marks-only"])
def test_a_plans_noise_verdicts_are_test_cases_and_a_summary_table(orm, gate: bool) -> None:
    """``run_perf --plan``: a regression against the plan's history fails its test case (when the plan fails on
    regressions, as the exit code does), "not enough history" is skipped, and both files carry the figures."""
    stats = _registry()
    run = stored_run(stats, duration=DURATION, label="nightly", regressions={**NOISE, "fail_on_regression": gate})
    described = RunDescription.from_run(run)
    cases = _cases(_suite(junit_xml(stats, DURATION, described)))

    slow = cases[f"perfkit.noise/p95 GET {SLOW} against plan nightly"]
    said = f"GET {SLOW} p95 640.0 ms: regressed (history 480.0 ± 30.0 ms over 5 runs)"
    assert _failure(slow) == (said if gate else None)
    assert _failure(cases[f"perfkit.noise/p95 GET {FAST} against plan nightly"]) is None
    assert cases[f"perfkit.noise/failure_rate GET {FAST} against plan nightly"].find("skipped") is not None
    markdown = summary_markdown(stats, DURATION, described)
    assert "### Against plan nightly's history" in markdown and said in markdown
    # The stored verdicts go through the JSON summary and back.
    assert RunDescription.from_json(described.as_json()).noise == described.noise


def test_text_xml_cannot_hold_is_replaced_and_the_file_is_written_whole(tmp_path: Path) -> None:
    stats = _registry()
    run = RunDescription(label="bell\x07 & <tag>", status="aborted", stop_reason="SIGTERM", host="http://x/api")
    path = write_junit(tmp_path / "deep" / "junit.xml", stats, 1.5, run)

    suite = _suite(path.read_text())
    assert suite.get("name") == "perfkit bell\N{REPLACEMENT CHARACTER} & <tag>"
    assert _failure(_cases(suite)["perfkit.run/run completed"]) == "the run is aborted: SIGTERM"
    assert "admin_url" not in {p.get("name") for p in suite.iterfind("properties/property")}  # not stored


def test_a_run_whose_runner_broke_says_so_in_both_files_as_its_page_does() -> None:
    """Stored ``failed`` with the runner's error (perf.cli.run._save_failed): the Markdown's heading says "Failed:",
    not "Stopped early:" (nothing stopped it: it broke), and the JUnit run case fails with the error."""
    run = RunDescription(run_id=5, label="nightly", status="failed", error="RuntimeError('the shape broke')")
    heading = summary_markdown(_registry(), DURATION, run).split("###")[0]
    assert "Failed: RuntimeError('the shape broke')" in heading and "Stopped early" not in heading
    suite = _suite(junit_xml(_registry(), DURATION, run))
    assert _failure(_cases(suite)["perfkit.run/run completed"]) == "the run is failed: RuntimeError('the shape broke')"


def test_summary_md_holds_the_figures_the_verdicts_and_the_link(orm) -> None:
    stats, run = _described()
    text = summary_markdown(stats, DURATION, run)

    assert text.startswith(f"## perfkit run {run.run_id} · nightly: completed\n")
    assert "load test, 10s, against `http://127.0.0.1:8000/api`, revision `abc1234`, " in text
    assert f"[Run {run.run_id} in the admin](http://127.0.0.1:8000/admin/perf/perfrun/{run.run_id}/change/)" in text
    assert "| Requests | Failures | req/s | p50 | p95 | p99 |" in text
    assert "| 80 | 2 (2.50%) | 8.0 | " in text  # 80 requests in 10 s
    assert f"| ❌ FAIL | `p95<500ms` | {run.thresholds[0].line.split(': ')[1]} |" in text
    assert "| ✅ PASS | `error_rate<10%` | 2.5% |" in text
    assert "### Compared with run 7 (last week)\n\nRegressions above 10% fail the run (--fail-on-regression)." in text
    assert f"| ❌ FAIL | GET {SLOW} | p95 300 → 640 ms (+113.3%) |" in text
    assert "- seed differs: none vs 3" in text
    assert "### Integrity audit: ❌ FAIL" in text and "| `tier_sales` | event 3 sold 11 of its 10 seats |" in text
    assert f"| GET | `{SLOW}` | 40 | 0 | 4.0 |" in text


def test_summary_md_of_a_capacity_search_and_of_an_unsaved_run(orm) -> None:
    data = cb.found_search()
    text = summary_markdown(cb.search_registry(data), 60.0, RunDescription.from_run(cb.stored_search(data)))
    assert "### Capacity" in text and data["verdict"] in text
    assert "| 5 | " in text and "❌ FAIL p95<500ms: " in text  # the failing step, with its figure

    unsaved = summary_markdown(_registry(), DURATION, RunDescription(run_id=12, unsaved=True, label="a|b"))
    assert unsaved.startswith("## perfkit run 12 · a\\|b: unknown")
    assert "/admin/" not in unsaved and "perf_import" in unsaved


def test_the_job_summary_is_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "step_summary.md"
    path.write_text("# Earlier step\n")
    append_step_summary(path, "## perfkit run 1\n")
    append_step_summary(path, "## perfkit run 2\n")
    assert path.read_text() == "# Earlier step\n\n## perfkit run 1\n\n## perfkit run 2\n"


# ---------------------------------------------------------------------------------------------- run_perf


@pytest.mark.slow
def test_run_perf_writes_both_files_and_the_job_summary(seeded, live_server_process, orm, tmp_path: Path) -> None:
    label = f"ci-{uuid.uuid4().hex[:8]}"
    junit, summary, step = tmp_path / "junit.xml", tmp_path / "out" / "summary.md", tmp_path / "step.md"
    step.write_text("# Tests\n")
    result = run_perf({**seeded, "GITHUB_STEP_SUMMARY": str(step)},
                      *browse_args(live_server_process.url, label, "3s", "--threshold", "p95<0.001ms",
                                   "--threshold", "error_rate<50%", "--junit", str(junit),
                                   "--summary-md", str(summary), users=2, audit=True))

    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-3000:]
    run = PerfRun.objects.get(label=label)
    suite = _suite(junit.read_text())
    cases = _cases(suite)
    printed = [line.removeprefix("FAIL ") for line in result.stdout.splitlines() if line.startswith("FAIL p95")]
    assert _failure(cases["perfkit.thresholds/p95<0.001ms"]) == printed[0]
    assert _failure(cases["perfkit.thresholds/error_rate<50%"]) is None
    audited = [f"perfkit.audit/{check['name']}" for check in run.audit["checks"]]
    assert audited and set(audited) <= set(cases)
    failures = [name for name, case in cases.items() if _failure(case) is not None]
    assert suite.get("tests") == str(len(cases)) == str(2 + len(audited) + 2)
    assert suite.get("failures") == str(len(failures))
    assert suite.get("name") == f"perfkit run {run.pk} {label}"

    text = summary.read_text()
    assert f"## perfkit run {run.pk} · {label}: completed" in text
    assert f"/admin/perf/perfrun/{run.pk}/change/)" in text
    assert f"| {run.total_requests:,} | {run.total_failures:,} (" in text
    assert "| ❌ FAIL | `p95<0.001ms` |" in text and "### Integrity audit" in text
    assert f"`{names.EVENT_LIST}`" in text
    assert step.read_text() == "# Tests\n\n" + text


@pytest.mark.slow
def test_run_perf_junit_fails_the_endpoints_that_regressed(seeded, live_server_process, orm, tmp_path: Path) -> None:
    # A baseline far faster than any real answer: the run regresses on every endpoint judged.
    registry = StatsRegistry()
    for name in (names.EVENT_LIST, names.EVENT_DETAIL, names.TIERS):
        for _ in range(50):
            registry.record("GET", name, 0.01, 1_000)
    base = stored_run(registry, duration=3.0, users=2, spawn_rate=2.0, planned_duration=3.0,
                      options={"wait": "0.05,0.2"})
    junit = tmp_path / "junit.xml"
    # A job summary that cannot be written (here a folder) is one line, and the run keeps the exit code it earned.
    result = run_perf({**seeded, "GITHUB_STEP_SUMMARY": str(tmp_path)},
                      *browse_args(live_server_process.url, unique("ci-cmp"), "3s", "--compare-to", str(base.pk),
                                   "--fail-on-regression", "10%", "--junit", str(junit),
                                   "--summary-md", str(tmp_path / "summary.md"), users=2, spawn_rate=2))

    assert result.returncode == 4, result.stdout[-3000:] + result.stderr[-3000:]
    regressed = [line.removeprefix("REGRESSION ") for line in result.stdout.splitlines()
                 if line.startswith("REGRESSION ")]
    cases = _cases(_suite(junit.read_text()))
    aggregated = cases[f"perfkit.regressions/Aggregated vs run {base.pk}"]
    assert _failure(aggregated) == next(line for line in regressed if line.startswith("Aggregated: "))
    failed = [_failure(case) for name, case in cases.items() if name.startswith("perfkit.regressions/")]
    assert sorted(filter(None, failed)) == sorted(regressed)
    assert "### Compared with run" in (tmp_path / "summary.md").read_text()
    assert lines_of(result.stderr) == [
        f"could not write the job summary $GITHUB_STEP_SUMMARY {tmp_path}: Is a directory"]


def test_run_perf_refuses_a_folder_for_either_file(seeded, tmp_path: Path) -> None:
    for option in ("--junit", "--summary-md"):
        result = run_perf(seeded, "--duration", "3s", option, str(tmp_path))
        assert result.returncode == 2
        assert lines_of(result.stderr) == [
            f"CommandError: {option} {tmp_path}: {tmp_path} is a folder; give a file path"]
        assert not os.listdir(tmp_path)
