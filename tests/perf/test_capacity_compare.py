"""Comparing capacity searches (issue 21): two searches by their capacity before → after (load and req/s, the change
in %), σ and κ when both have a fit, and each one's status; a fall by more than the tolerance is a regression (exit 4
with ``--fail-on-regression``). A search against a load test gets one line saying they cannot be compared as
capacity searches, then the ordinary comparison. Through the Comparison, ``perf_compare`` as a child process and
the admin's compare page.

Searches are stored as run_perf stores them (tests/perf/capacity_builders.py).
"""

import html
import re

import pytest
from django.test import Client

from perf.analysis.capacity_compare import NOT_AS_CAPACITY
from perf.analysis.compare import ENDPOINTS_NOT_JUDGED, compare_runs
from perf.models import PerfRun
from tests.factories import make_user
from tests.liveserver import manage
from tests.perf import capacity_builders as cb
from tests.perf.builders import stored_run

COMPARE = "/admin/perf/perfrun/compare/"


def capacity_lines(printed: str) -> dict[str, str]:
    """The capacity block of a printed comparison: label → the rest of its line."""
    block = printed.split("Capacity search")[1].split("\n! regression")[0]
    lines = {}
    for line in block.splitlines()[2:]:
        for label in ("status", "capacity", "req/s at capacity", "USL σ (contention)", "USL κ (coherency)"):
            if line.lstrip("! ").startswith(label + " "):
                lines[label] = re.sub(r"\s+", " ", line.lstrip("! ")[len(label):]).strip()
                if line.startswith("!"):
                    lines[label] += " !"
    return lines


@pytest.fixture
def slower(orm) -> tuple[PerfRun, PerfRun]:
    """A search that found 47 users, then the same backend 25 % slower: 20 users, and more contention."""
    new = cb.found_search(slower=1.25)
    new["usl"] = {**new["usl"], "sigma": 0.08}
    return cb.stored_search(cb.found_search()), cb.stored_search(new)


def test_two_searches_are_compared_by_their_capacity_and_a_fall_is_a_regression(slower) -> None:
    base, new = slower
    comparison = compare_runs(base, new)
    assert comparison.capacity is not None
    printed = comparison.capacity.table(10.0)
    assert capacity_lines(printed) == {
        "status": "capacity found → capacity found",
        "capacity": "47 users → 20 users (-57.4%) !",
        "req/s at capacity": "126.5 → 82.9 (-34.4%)",
        "USL σ (contention)": "0.04 → 0.08 (+100.0%)",
        "USL κ (coherency)": "0.0004 → 0.0004 (+0.0%)",
    }, printed
    assert comparison.regressions(10.0) == ["capacity 47 users → 20 users (-57.4%)"]
    assert comparison.regressions(60.0) == []
    # The endpoints' figures are over every step, at loads that differ: listed, never judged.
    assert ENDPOINTS_NOT_JUDGED in comparison.notes
    assert not [line for line in comparison.table().splitlines() if line.startswith("!")]
    assert not [note for note in comparison.notes if "users differ" in note or "planned duration" in note]


def test_a_higher_capacity_is_no_regression(orm) -> None:
    base, new = cb.stored_search(cb.found_search(slower=1.25)), cb.stored_search(cb.found_search())
    comparison = compare_runs(base, new)
    assert capacity_lines(comparison.capacity.table(10.0))["capacity"] == "20 users → 47 users (+135.0%)"
    assert comparison.regressions(10.0) == []


def test_a_first_step_that_failed_is_a_capacity_below_it(orm) -> None:
    base, new = cb.stored_search(cb.found_search()), cb.stored_search(cb.first_step_failed_search())
    comparison = compare_runs(base, new)
    assert comparison.regressions(10.0) == ["capacity 47 users → below 10 users (-78.7%)"]
    assert capacity_lines(comparison.capacity.table(10.0))["status"] == "capacity found → first step failed"


def test_a_search_the_generator_limited_is_not_judged(orm) -> None:
    base, new = cb.stored_search(cb.found_search()), cb.stored_search(cb.generator_limited_search())
    comparison = compare_runs(base, new)
    assert comparison.regressions(10.0) == []
    assert capacity_lines(comparison.capacity.table(10.0))["capacity"] == \
        "47 users → none (invalid: generator limit)"
    assert (f"run {new.pk}'s search was limited by the load generator: its result is invalid, its capacity not "
            "compared") in comparison.notes


def test_a_ceiling_is_a_lower_bound_judged_only_as_the_base(orm) -> None:
    ceiling, found = cb.stored_search(cb.ceiling_search()), cb.stored_search(cb.found_search(slower=1.25))
    # Above 40 users, then 20 found: certainly lower. Found 20, then above 40 ... nothing certain either way but up.
    assert compare_runs(ceiling, found).regressions(10.0) == ["capacity above 40 users → 20 users (-50.0%)"]
    assert compare_runs(found, ceiling).regressions(10.0) == []


def test_searches_of_users_and_of_a_rate_are_on_different_scales(orm) -> None:
    users, rate = cb.stored_search(cb.found_search()), cb.stored_search(cb.open_model_search())
    comparison = compare_runs(users, rate)
    assert comparison.regressions(10.0) == []
    assert (f"run {users.pk} searched users and run {rate.pk} iterations/s: the capacities are on different scales, "
            "not judged") in comparison.notes
    assert capacity_lines(comparison.capacity.table(10.0))["capacity"] == "47 users → 40 iterations/s"


def test_a_search_against_a_load_test_says_so_in_one_line_then_compares_as_ever(orm) -> None:
    search, plain = cb.stored_search(cb.found_search()), stored_run(cb.search_registry(cb.found_search(slower=2)))
    comparison = compare_runs(plain, search)
    assert comparison.capacity is None
    said = [note for note in comparison.notes if NOT_AS_CAPACITY in note]
    assert said == [f"run {search.pk} is a capacity search and run {plain.pk} a load test: they cannot be compared "
                    "as capacity searches; the ordinary comparison follows"]
    assert ENDPOINTS_NOT_JUDGED not in comparison.notes
    # The ordinary comparison, judged as ever: the search's requests were quicker than the slowed load test's.
    assert [row.label for row in comparison.rows] == ["GET /events/", "Aggregated"]
    assert comparison.regressions(10.0) == []
    assert comparison.capacity_rows() == []


def test_two_load_tests_say_nothing_of_capacity(orm) -> None:
    stats = cb.search_registry(cb.found_search())
    comparison = compare_runs(stored_run(stats), stored_run(stats))
    assert comparison.capacity is None and not [note for note in comparison.notes if "capacity" in note]


# perf_compare, as a child process


def test_perf_compare_prints_the_capacities_and_its_gate_fails_on_a_fall(slower, live_env) -> None:
    base, new = slower
    result = manage("perf_compare", str(base.pk), str(new.pk), "--fail-on-regression", "10%", env=live_env,
                    check=False)
    assert result.returncode == 4, result.stdout + result.stderr
    out = result.stdout
    assert f"Base: run {base.pk} (" in out and ", completed, capacity search, " in out
    assert capacity_lines(out)["capacity"] == "47 users → 20 users (-57.4%) !"
    assert "REGRESSION capacity 47 users → 20 users (-57.4%)" in out
    assert "REGRESSION GET" not in out and "REGRESSION Aggregated" not in out
    # The capacity block comes before the per-endpoint table.
    assert out.index("Capacity search") < out.index("Aggregated")


def test_perf_compare_passes_when_the_capacity_held(slower, live_env) -> None:
    base, new = slower
    result = manage("perf_compare", str(new.pk), str(base.pk), "--fail-on-regression", "10%", env=live_env,
                    check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No regression above 10%." in result.stdout
    assert capacity_lines(result.stdout)["capacity"] == "20 users → 47 users (+135.0%)"


def test_perf_compare_of_a_search_and_a_load_test_prints_the_line_and_the_ordinary_table(orm, live_env) -> None:
    search, plain = cb.stored_search(cb.found_search()), stored_run(cb.search_registry(cb.found_search()))
    result = manage("perf_compare", str(plain.pk), str(search.pk), env=live_env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Note: run {search.pk} is a capacity search and run {plain.pk} a load test: they {NOT_AS_CAPACITY}" \
        in result.stdout
    assert "Capacity search" not in result.stdout and "Aggregated" in result.stdout


# the admin's compare page


@pytest.fixture
def admin(orm) -> Client:
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def compare_page(admin: Client, base: PerfRun, new: PerfRun) -> str:
    response = admin.get(COMPARE, {"a": base.pk, "b": new.pk})
    assert response.status_code == 200
    return response.content.decode()


def rows_of(table: str) -> list[str]:
    return [html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row))).strip()
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table.split("<tbody>")[1], re.S)]


def test_the_compare_page_shows_the_capacities_with_the_fall_marked(admin: Client, slower) -> None:
    page = compare_page(admin, *slower)
    table = page.split('<table id="compare-capacity">')[1].split("</table>")[0]
    assert rows_of(table) == [
        "status capacity found capacity found",
        "REGRESSION capacity 47 users 20 users (-57.4%)",
        "req/s at capacity 126.5 82.9 (-34.4%)",
        "USL σ (contention) 0.04 0.08 (+100.0%)",
        "USL κ (coherency) 0.0004 0.0004 (+0.0%)",
    ]
    assert "over every step of each search" in page and ENDPOINTS_NOT_JUDGED in html.unescape(page)
    endpoints = page.split('<table id="compare-table">')[1].split("</table>")[0]
    assert "REGRESSION" not in endpoints


def test_the_compare_page_of_a_search_and_a_load_test_has_the_line_and_no_capacity_block(admin: Client) -> None:
    search, plain = cb.stored_search(cb.found_search()), stored_run(cb.search_registry(cb.found_search()))
    page = html.unescape(compare_page(admin, search, plain))
    assert f"run {search.pk} is a capacity search and run {plain.pk} a load test: they {NOT_AS_CAPACITY}" in page
    assert 'id="compare-capacity"' not in page and 'id="compare-table"' in page
