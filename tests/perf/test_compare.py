"""Comparing stored runs: the Comparison itself, ``perf_compare``, the admin's Compare action and page,
and ``run_perf --compare-to`` end to end.

Runs are stored the way run_perf stores them (perf.store.persist) under unique labels in the shared live
database; each test builds its own pair and looks only at those.
"""

from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client

from perf.analysis.compare import compare_runs, resolve_run
from perf.load.stats import StatsRegistry
from perf.models import EndpointStats, PerfRun
from perf.options import parse_percent
from platform_pack.clients import api as names
from tests.factories import make_user, unique
from tests.liveserver import manage, run_perf
from tests.perf.builders import Requests, make_registry, stored_run

EVENTS = "/events/"
RSVP = "/events/{id}/rsvp/{answer} [BOTTLENECK]"
DETAIL = "/events/{id} [detail]"
CHANGELIST = "/admin/perf/perfrun/"
COMPARE = CHANGELIST + "compare/"
FAILED = "HTTPError('503 Server Error')"


def endpoints(rsvp_ms: float = 100.0, rsvp_failures: int = 0, detail_ms: float = 10.0,
              only: str = "/gone") -> StatsRegistry:
    """Constant latencies, so every percentile is exact: /events/ 10 ms ×40, the RSVP endpoint ×30,
    a detail endpoint with too few requests to judge (×5), and one endpoint ``only`` this run has (×25)."""
    return make_registry(
        Requests(EVENTS, [10.0] * 40, size=2_000),
        Requests(RSVP, [rsvp_ms] * 30, method="POST", size=150, failing=range(rsvp_failures), error=FAILED),
        Requests(DETAIL, [detail_ms] * 5, size=500),
        Requests(only, [5.0] * 25, size=10),
    )


def store(registry: StatsRegistry, duration: float = 10.0, status: str = "completed", **config: Any) -> PerfRun:
    """A finished run as run_perf stores it; ``config`` overrides the load options (the notes compare them)."""
    values: dict[str, Any] = {
        "label": unique("cmp"), "host": "http://127.0.0.1:8000/api", "users": 10, "spawn_rate": 2.0,
        "planned_duration": 60.0, "scenarios": ["EventBrowser", "RSVPUser"],
        "user_split": {"EventBrowser": 6, "RSVPUser": 4}, "seed": 42, "database_vendor": "sqlite",
        "options": {"wait": "0.1,0.2"},
    }
    return stored_run(registry, status=status, duration=duration, **{**values, **config})


@pytest.fixture
def pair(orm) -> tuple[PerfRun, PerfRun]:
    """Like-for-like runs; the second is three times slower on the RSVP endpoint (and on the tiny detail one)."""
    base = store(endpoints())
    new = store(endpoints(rsvp_ms=300.0, detail_ms=100.0, only="/health"))
    return base, new


def line_of(table: str, name: str) -> str:
    return next(line for line in table.splitlines() if f" {name} " in line)


# the comparison


def test_table_shows_base_new_and_change_per_endpoint(pair) -> None:
    table = compare_runs(*pair).table()
    assert "100 → 300 (+200.0%)" in line_of(table, RSVP)
    assert "10 → 10 (+0.0%)" in line_of(table, EVENTS)
    assert "Aggregated" in table


def test_table_marks_the_regressed_endpoint_only(pair) -> None:
    table = compare_runs(*pair).table()
    assert line_of(table, RSVP).startswith("!")
    assert not line_of(table, EVENTS).startswith("!")


def test_regressions_name_each_endpoint_and_figure_that_rose(pair) -> None:
    base, new = pair
    regressions = compare_runs(base, new).regressions(10)
    assert len(regressions) == 2
    assert regressions[0] == f"POST {RSVP}: p95 100 → 300 ms (+200.0%); p99 100 → 300 ms (+200.0%)"
    # The Aggregated histogram spans 5-300 ms, so its p95 is a bucket's approximation of 100 ms.
    assert regressions[1].startswith("Aggregated: p95 ") and "; p99 " in regressions[1]


def test_a_rise_below_the_tolerance_is_no_regression(pair) -> None:
    assert compare_runs(*pair).regressions(250) == []


def test_an_endpoint_with_few_requests_is_not_judged(pair) -> None:
    comparison = compare_runs(*pair)
    assert not any(DETAIL in line for line in comparison.regressions(10))
    detail = next(row for row in comparison.as_rows() if row.name == DETAIL)
    assert not detail.judged and not detail.regressed


def test_endpoints_in_one_run_only_are_noted_and_not_compared(pair) -> None:
    base, new = pair
    comparison = compare_runs(base, new)
    assert f"only in run {base.pk}, not compared: GET /gone" in comparison.notes
    assert f"only in run {new.pk}, not compared: GET /health" in comparison.notes
    assert "— → 5 " in line_of(comparison.table(), "/health")
    assert not any("/health" in line or "/gone" in line for line in comparison.regressions(0))


def test_error_rate_rising_from_zero_is_judged_in_points(orm) -> None:
    base, new = store(endpoints()), store(endpoints(rsvp_failures=6))  # 0% → 20%
    comparison = compare_runs(base, new)
    assert f"POST {RSVP}: error % 0.00% → 20.00% (+20.00 pt)" in comparison.regressions(10)
    assert not any("error %" in line for line in comparison.regressions(25))


def test_error_rate_rising_from_a_base_is_judged_relatively(orm) -> None:
    base, new = store(endpoints(rsvp_failures=3)), store(endpoints(rsvp_failures=4))  # 10% → 13.3%
    comparison = compare_runs(base, new)
    assert any("error % 10.00% → 13.33% (+33.3%)" in line for line in comparison.regressions(30))
    assert not any("error %" in line for line in comparison.regressions(40))


def test_falling_req_per_second_is_a_regression_under_the_same_load(orm) -> None:
    base, new = store(endpoints(), duration=10.0), store(endpoints(), duration=20.0)
    regressions = compare_runs(base, new).regressions(10)
    assert f"GET {EVENTS}: req/s 4.0 → 2.0 (-50.0%)" in regressions


def test_req_per_second_is_not_judged_when_the_load_differs(orm) -> None:
    base, new = store(endpoints(), duration=10.0), store(endpoints(), duration=20.0, users=20)
    comparison = compare_runs(base, new)
    assert "users differ: 10 vs 20: rates are not like-for-like" in comparison.notes
    assert comparison.regressions(10) == []


def test_each_differing_load_option_gets_one_note(orm) -> None:
    base = store(endpoints())
    new = store(endpoints(only="/gone"), users=20, spawn_rate=4.0, planned_duration=120.0,
                scenarios=["EventBrowser"], user_split={"EventBrowser": 20}, seed=43, host="http://localhost:9000/api",
                database_vendor="postgresql", options={"wait": "0.5,1"})
    notes = compare_runs(base, new).notes
    assert [note.split(":")[0] for note in notes] == [
        "users differ", "spawn rate differs", "planned duration differs", "scenarios differ", "wait differs",
        "seed differs", "host differs", "database differs",
        "req/s is not judged for regressions because the load differed",
    ]
    assert "wait differs: 0.1,0.2 vs 0.5,1: rates are not like-for-like" in notes
    assert "database differs: sqlite vs postgresql: latencies are not like-for-like" in notes


def test_like_for_like_runs_have_no_notes(orm) -> None:
    base = store(endpoints())
    new = store(endpoints(rsvp_ms=120.0), options={"wait": "0.10, 0.20"})
    assert compare_runs(base, new).notes == []


def test_an_aborted_run_is_noted(orm) -> None:
    base, new = store(endpoints()), store(endpoints(), status="aborted")
    assert f"run {new.pk} is aborted: its figures cover only part of the planned load" in compare_runs(base, new).notes


def test_queries_per_request_are_compared_when_the_backend_reported_them(pair) -> None:
    base, new = pair
    EndpointStats.objects.filter(run=base, name=EVENTS).update(avg_queries=3.0)
    EndpointStats.objects.filter(run=new, name=EVENTS).update(avg_queries=5.0)
    table = compare_runs(base, new).table()
    assert line_of(table, EVENTS).rstrip().endswith("3.0 → 5.0 (+66.7%)")
    assert line_of(table, RSVP).rstrip().endswith("— → —")


def test_rows_for_the_admin_hold_the_table_figures(pair) -> None:
    rows = {row.name: row for row in compare_runs(*pair).as_rows()}
    p95 = next(cell for cell in rows[RSVP].cells if cell.label == "p95")
    assert (p95.base, p95.new, p95.delta, p95.worse, p95.regressed) == ("100", "300", "+200.0%", True, True)
    assert (rows[RSVP].requests.base, rows[RSVP].requests.new) == ("30", "30")
    assert rows["/gone"].only_in == "base" and rows["/health"].only_in == "new"
    assert rows["Aggregated"].aggregated


@pytest.mark.parametrize(("text", "value"), [("10%", 10.0), ("10", 10.0), (" 12.5 % ", 12.5), ("0", 0.0)])
def test_parse_percent_reads_a_number_with_or_without_the_sign(text: str, value: float) -> None:
    assert parse_percent(text) == value


@pytest.mark.parametrize("text", ["", "%", "ten", "-5%", "nan", "10%%"])
def test_parse_percent_rejects_anything_else_in_one_line(text: str) -> None:
    with pytest.raises(ValueError, match=r"^bad percent .*: use a number of percent like 10 or 10%$"):
        parse_percent(text)


def test_resolve_run_finds_a_run_by_id(pair) -> None:
    assert resolve_run(str(pair[0].pk)) == pair[0]


def test_resolve_last_is_the_newest_completed_run_and_previous_the_one_before(orm) -> None:
    older, newer = store(endpoints()), store(endpoints())
    store(endpoints(), status="aborted")
    assert (resolve_run("last"), resolve_run("previous")) == (newer, older)


@pytest.mark.parametrize(("ref", "message"), [
    ("999999999", "no stored run 999999999; see the admin for ids"),
    ("run-3", "bad run 'run-3': use a run id, last or previous; see the admin for ids"),
])
def test_resolve_run_rejects_an_unknown_run_in_one_line(orm, ref: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        resolve_run(ref)
    assert str(caught.value) == message


def test_resolve_run_refuses_a_run_without_final_figures(orm) -> None:
    running = stored_run(label=unique("running"))
    with pytest.raises(ValueError, match="is still running"):
        resolve_run(str(running.pk))


# perf_compare, as a child process


def test_perf_compare_prints_the_table_and_notes_and_exits_0(pair, live_env) -> None:
    base, new = pair
    result = manage("perf_compare", str(base.pk), str(new.pk), env=live_env, check=False)
    assert result.returncode == 0, result.stderr
    assert "100 → 300 (+200.0%)" in line_of(result.stdout, RSVP)
    assert f"Note: only in run {new.pk}, not compared: GET /health" in result.stdout


def test_perf_compare_exits_4_when_the_gate_finds_a_regression(pair, live_env) -> None:
    base, new = pair
    result = manage("perf_compare", str(base.pk), str(new.pk), "--fail-on-regression", "10%", env=live_env,
                    check=False)
    assert result.returncode == 4, result.stderr
    assert f"REGRESSION POST {RSVP}: p95 100 → 300 ms (+200.0%)" in result.stdout


def test_perf_compare_with_an_unknown_run_is_a_one_line_error(pair, live_env) -> None:
    result = manage("perf_compare", str(pair[0].pk), "999999999", env=live_env, check=False)
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        "CommandError: no stored run 999999999; see the admin for ids"
    ]


# the admin


@pytest.fixture
def admin_client(orm) -> Client:
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def select(client: Client, *runs: PerfRun, follow: bool = False):
    data = {"action": "compare_selected", ACTION_CHECKBOX_NAME: [str(run.pk) for run in runs], "index": "0"}
    return client.post(CHANGELIST, data, follow=follow)


def test_compare_action_redirects_to_the_compare_page_older_run_first(admin_client: Client, pair) -> None:
    base, new = pair
    response = select(admin_client, new, base)
    assert response.status_code == 302
    assert response["Location"] == f"{COMPARE}?a={base.pk}&b={new.pk}"


def test_compare_page_shows_both_runs_endpoints_and_the_regression(admin_client: Client, pair) -> None:
    base, new = pair
    response = admin_client.get(COMPARE, {"a": base.pk, "b": new.pk})
    assert response.status_code == 200
    page = response.content.decode()
    assert f'href="{CHANGELIST}{base.pk}/change/">run {base.pk}</a>' in page
    assert f'href="{CHANGELIST}{new.pk}/change/">run {new.pk}</a>' in page
    table = page.split('<table id="compare-table">')[1].split("</table>")[0]
    rsvp_row = next(row for row in table.split("<tr") if RSVP in row)
    assert "REGRESSION" in rsvp_row and "100 → 300" in rsvp_row
    events_row = next(row for row in table.split("<tr") if f"<td>{EVENTS}</td>" in row)
    assert "REGRESSION" not in events_row
    assert f"only in run {new.pk}, not compared: GET /health" in page


def test_compare_action_with_one_run_selected_shows_an_error(admin_client: Client, pair) -> None:
    response = select(admin_client, pair[0], follow=True)
    assert response.redirect_chain[-1][0].startswith(CHANGELIST)
    assert "Select exactly two runs to compare (1 selected)." in response.content.decode()


def test_compare_page_with_an_unknown_run_goes_back_with_an_error(admin_client: Client, pair) -> None:
    response = admin_client.get(COMPARE, {"a": pair[0].pk, "b": 999999999}, follow=True)
    assert response.redirect_chain == [(CHANGELIST, 302)]
    assert "Cannot compare: no stored run 999999999" in response.content.decode()


def test_compare_page_is_for_staff_only(orm, pair) -> None:
    client = Client()
    client.force_login(make_user())
    response = client.get(COMPARE, {"a": pair[0].pk, "b": pair[1].pk})
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# run_perf --compare-to, end to end


@pytest.mark.slow
def test_run_perf_compares_with_a_stored_run_and_passes_a_loose_gate(seeded, live_server_process, orm) -> None:
    # A slow baseline on EventBrowser's endpoints: an eleven-fold slowdown would be needed to fail at 1000%.
    registry = StatsRegistry()
    for name in (names.EVENT_LIST, names.EVENT_DETAIL, names.TIERS):
        for _ in range(50):
            registry.record("GET", name, 2_000.0, 1_000)
    base = store(registry, duration=3.0, users=2, spawn_rate=2.0, planned_duration=3.0, scenarios=["EventBrowser"],
                 user_split={"EventBrowser": 2})
    label = unique("cmp-e2e")
    result = run_perf(seeded, "--scenario", "EventBrowser", "--users", "2", "--spawn-rate", "2", "--duration", "3s",
                      "--wait", "0.1,0.2", "--host", live_server_process.url, "--label", label, "--no-audit",
                      "--compare-to", str(base.pk), "--fail-on-regression", "1000%")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    compared = result.stdout.split(f"Compared with run {base.pk}:\n")[1]
    assert names.EVENT_LIST in compared and "2,000 → " in compared
    assert "REGRESSION" not in result.stdout


def test_run_perf_compare_to_an_unknown_run_is_a_usage_error(seeded, live_server_process) -> None:
    result = run_perf(seeded, "--duration", "3s", "--host", live_server_process.url, "--compare-to", "999999999")
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        "CommandError: no stored run 999999999; see the admin for ids"
    ]
