"""Comparing two runs that followed a load profile (issue 20): the same profile (same stages: durations and
targets) is compared stage with stage, each stage judged as the Aggregated row is, so a regression in one stage is
flagged in that stage; different profiles get one note saying the stages are not compared and why. Through the
Comparison, ``perf_compare`` as a child process, the admin's compare page over real HTTP and ``run_perf
--compare-to`` end to end.

Runs are stored as run_perf stores them (tests/perf/staged.py).
"""

import re

import pytest

from perf.analysis.compare import STAGES_NOT_COMPARED, compare_runs
from perf.models import PerfRun
from tests.adminclient import AdminClient
from tests.factories import PASSWORD, make_user, unique
from tests.liveserver import manage, run_perf
from tests.perf.builders import stored_run
from tests.perf.staged import STAGES, stored_staged_run

COMPARE = "/admin/perf/perfrun/compare/"
# Stage 2 doubles its latency; stage 3 is the slowest in both runs, so the run's p95 and p99 stay 200 ms and the
# Aggregated row shows no regression: only the stage with stage block finds it.
BASE_MS = [20, 30, 200]
SLOWER_MS = [20, 60, 200]


def stage_lines(table: str) -> list[str]:
    """The per-stage block of a printed comparison, one line a stage."""
    block = table.split("Per stage of the load profile\n")[1]
    return [line for line in block.splitlines() if "stage " in line and "→" in line.split("stage ", 1)[1]]


@pytest.fixture
def slower_in_stage_2(orm) -> tuple[PerfRun, PerfRun]:
    return stored_staged_run(BASE_MS), stored_staged_run(SLOWER_MS)


def test_a_regression_in_one_stage_is_flagged_in_that_stage(slower_in_stage_2) -> None:
    base, new = slower_in_stage_2
    comparison = compare_runs(base, new)
    lines = stage_lines(comparison.table())
    assert len(lines) == 3, comparison.table()
    first, second, third = lines
    assert second.startswith("!") and "stage 2 (4 → 4)" in second and "30 → 60 (+100.0%) !" in second, second
    assert not first.startswith("!") and not third.startswith("!"), lines
    assert "200 → 200 (+0.0%)" in third and "30 → 30" in third
    assert comparison.regressions(10.0) == [
        "stage 2 (4 → 4): p95 30 → 60 ms (+100.0%); p99 30 → 60 ms (+100.0%)"]
    # The run as a whole hid it.
    aggregated = next(row for row in comparison.rows if row.aggregated)
    assert aggregated.regressed_cells(10.0, comparison.rates_comparable) == []
    assert not [note for note in comparison.notes if STAGES_NOT_COMPARED in note]


def test_each_stages_error_rate_and_rate_are_judged_as_the_aggregated_row_is(orm) -> None:
    base = stored_staged_run(BASE_MS)
    # Stage 1 fails 6 of 30 (0 → 20 %, over 10 points); stage 3 makes fewer requests (30 → 24: -20 % req/s).
    failing = stored_staged_run(BASE_MS, failures=[6, 0, 0])
    regressions = compare_runs(base, failing).regressions(10.0)
    assert regressions[-1] == "stage 1 (0 → 4): error % 0.00% → 20.00% (+20.00 pt)", regressions
    assert not any(line.startswith(("stage 2", "stage 3")) for line in regressions), regressions
    # Too few requests in a stage (below MIN_REQUESTS): listed, never judged, as an endpoint would be.
    few = compare_runs(stored_staged_run(BASE_MS, per_stage=10), stored_staged_run(SLOWER_MS, per_stage=10))
    assert [row.judged for row in few.stages] == [False, False, False]
    assert not [line for line in few.regressions(10.0) if line.startswith("stage")]


def test_a_stage_only_one_run_reached_is_listed_not_judged(orm) -> None:
    whole, cut = stored_staged_run(BASE_MS), stored_staged_run(SLOWER_MS[:2])
    comparison = compare_runs(whole, cut)
    assert [(row.name, row.in_both) for row in comparison.stages] == [
        ("stage 1 (0 → 4)", True), ("stage 2 (4 → 4)", True), ("stage 3 (4 → 0)", False)]
    assert f"only in run {whole.pk}, not compared: stage 3 (4 → 0)" in comparison.notes


@pytest.mark.parametrize(("other", "why"), [
    ("10s:4,30s:4,10s:0", "stage 2 lasts 20s in run {a} and 30s in run {b}"),
    ("10s:4,20s:6,10s:0", "stage 2 goes 4 → 4 in run {a} and 4 → 6 in run {b}"),
    ("10s:4,30s:0", "run {a}'s profile has 3 stages and run {b}'s 2"),
])
def test_different_profiles_get_one_line_saying_why_the_stages_are_not_compared(orm, other: str, why: str) -> None:
    base, new = stored_staged_run(BASE_MS), stored_staged_run(SLOWER_MS, stages=other)
    comparison = compare_runs(base, new)
    said = [note for note in comparison.notes if STAGES_NOT_COMPARED in note]
    assert said == [f"{STAGES_NOT_COMPARED}: {why.format(a=base.pk, b=new.pk)}"], comparison.notes
    assert comparison.stages == [] and "Per stage" not in comparison.table()
    assert not comparison.rates_comparable  # another profile is another load


def test_a_staged_run_against_a_plain_one_says_which_followed_a_profile(orm) -> None:
    staged, plain = stored_staged_run(BASE_MS), stored_run(users=4, planned_duration=40.0)
    said = [note for note in compare_runs(plain, staged).notes if STAGES_NOT_COMPARED in note]
    assert said == [f"{STAGES_NOT_COMPARED}: run {staged.pk} followed a load profile (--stages {STAGES}) and run "
                    f"{plain.pk} did not"]


def test_two_plain_runs_say_nothing_of_stages(orm) -> None:
    comparison = compare_runs(stored_run(), stored_run())
    assert comparison.stages == [] and not [note for note in comparison.notes if "stage" in note]


# perf_compare, as a child process


def test_perf_compare_prints_the_stages_and_its_gate_fails_on_a_stage(slower_in_stage_2, live_env) -> None:
    base, new = slower_in_stage_2
    result = manage("perf_compare", str(base.pk), str(new.pk), "--fail-on-regression", "10%", env=live_env,
                    check=False)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "30 → 60 (+100.0%) !" in stage_lines(result.stdout)[1]
    assert "REGRESSION stage 2 (4 → 4): p95 30 → 60 ms (+100.0%); p99 30 → 60 ms (+100.0%)" in result.stdout
    assert "REGRESSION GET" not in result.stdout and "REGRESSION Aggregated" not in result.stdout


# the admin's compare page, over real HTTP


@pytest.fixture
def admin(orm, live_server_process) -> AdminClient:
    email = f"{unique('stage-cmp')}@example.com"
    make_user(username=email, email=email, is_staff=True, is_superuser=True)
    return AdminClient(live_server_process.root).login(email, PASSWORD)


def compare_page(admin: AdminClient, base: PerfRun, new: PerfRun) -> str:
    response = admin.get(COMPARE, params={"a": base.pk, "b": new.pk})
    assert response.status_code == 200 and response.url.split("?")[0].endswith(COMPARE), response.url
    return response.text


def test_the_compare_page_has_a_stage_block_with_the_regressed_stage_marked(admin, slower_in_stage_2) -> None:
    page = compare_page(admin, *slower_in_stage_2)
    table = page.split('<table id="compare-stages">')[1].split("</table>")[0]
    rows = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table.split("<tbody>")[1], re.S)]
    assert [row.split(" (")[0].removeprefix("REGRESSION ") for row in rows] == ["stage 1", "stage 2", "stage 3"]
    assert rows[1].startswith("REGRESSION stage 2 (4 → 4)") and "30 → 60 (+100.0%)" in rows[1], rows
    assert not rows[0].startswith("REGRESSION") and not rows[2].startswith("REGRESSION"), rows
    assert STAGES_NOT_COMPARED not in page


def test_the_compare_page_of_different_profiles_has_the_line_and_no_stage_block(admin, orm) -> None:
    base, new = stored_staged_run(BASE_MS), stored_staged_run(SLOWER_MS, stages="10s:4,30s:4,10s:0")
    page = compare_page(admin, base, new)
    assert f"{STAGES_NOT_COMPARED}: stage 2 lasts 20s in run {base.pk} and 30s in run {new.pk}" in page
    assert 'id="compare-stages"' not in page


# run_perf --compare-to, end to end


@pytest.mark.slow
def test_run_perf_compares_stage_with_stage_with_a_stored_run_of_the_same_profile(seeded, live_server_process,
                                                                                  orm) -> None:
    # A baseline that followed the same stages at 2 s a request: the new run is far quicker in every stage.
    base = stored_staged_run([2_000, 2_000], stages="2s:3,2s:3", host=live_server_process.url,
                             scenarios=["EventBrowser"], options={"wait": "0.02,0.05"})
    label = unique("stage-cmp-e2e")
    result = run_perf(seeded, "--stages", "2s:3,2s:3", "--wait", "0.02,0.05", "--scenario", "EventBrowser",
                      "--no-audit", "--host", live_server_process.url, "--label", label,
                      "--compare-to", str(base.pk), "--fail-on-regression", "10%")
    compared = result.stdout.split(f"Compared with run {base.pk}:\n")[1]
    lines = stage_lines(compared)
    assert [line.split(")")[0].split("stage ")[1] for line in lines] == ["1 (0 → 3", "2 (3 → 3"], compared
    assert all("2,000 → " in line for line in lines), lines
    assert STAGES_NOT_COMPARED not in result.stdout
    assert not re.search(r"REGRESSION stage \d .*p9[59]", result.stdout), result.stdout
