"""A capacity search on its run page, its live view and its HTML file (issue 21): the Capacity section first, with
the capacity and the first failing load, the status in words, what broke first, each step, the USL fit only when it
is good enough (and labelled a prediction), the verdict, and three charts against load; a search under way grows
on its live view as its process rewrites ``PerfRun.capacity``; the JSON summary keeps it through ``perf_import``.

Searches are stored as run_perf stores them (tests/perf/capacity_builders.py); the admin is asked through Django's
test client, the import through ``manage.py perf_import`` in a child process.
"""

import html
import json
import re
from pathlib import Path

import pytest
from django.test import Client

from perf.models import PerfRun
from perf.reports.capacity_view import console_text
from perf.reports.description import DescriptionError, RunDescription
from perf.reports.html_report import write_html
from perf.reports.summary_json import summary_json, write_json
from tests.capacitytarget import capacity_run_env, capacity_target, run_capacity_perf
from tests.factories import make_user, unique
from tests.liveserver import manage, start_run_perf
from tests.perf import capacity_builders as cb
from tests.perf.builders import finish, poll, stored_run

CHANGELIST = "/admin/perf/perfrun/"


def text(markup: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup))).strip()


def section(page: str, name: str) -> str:
    """The inner HTML of one section of a page (``<section id=...>``); AssertionError when it is missing."""
    found = re.search(rf'<section id="{name}"[^>]*>(.*?)</section>', page, re.S)
    assert found is not None, f"no {name} section"
    return found.group(1)


def step_rows(markup: str) -> list[str]:
    return [text(row) for row in re.findall(r"<tr data-step=.*?</tr>", markup, re.S)]


def svgs(markup: str) -> list[str]:
    return re.findall(r"<svg .*?</svg>", markup, re.S)


@pytest.fixture
def admin(orm) -> Client:
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def run_page(admin: Client, run: PerfRun) -> str:
    response = admin.get(f"{CHANGELIST}{run.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def live(admin: Client, run: PerfRun) -> dict:
    response = admin.get(f"{CHANGELIST}{run.pk}/live/")
    assert response.status_code == 200
    return response.json()


# ---------------------------------------------------------------------------------------------- a finished search


def test_a_found_capacity_shows_first_with_the_first_failing_load_beside_it(admin: Client) -> None:
    run = cb.stored_search(cb.found_search())
    page = run_page(admin, run)
    ids = re.findall(r'<section id="([\w-]+)"', page)
    assert ids[:3] == ["summary", "capacity", "figures"], ids
    capacity = text(section(page, "capacity"))
    assert capacity.startswith("Capacity capacity found Capacity found: 47 users passed every threshold, and 50 "
                               "users failed."), capacity
    assert "Capacity 47 users 126.5 req/s First failing load 50 users 126.1 req/s" in capacity
    # The header names the kind; the users it was started with are no figure of a search.
    header = text(section(page, "summary"))
    assert "Capacity search" in header and "1,000 users" not in header
    # Its users are the ceiling it stepped below, never a plan.
    figures = text(section(page, "figures"))
    assert "Users (ceiling) 1,000" in figures and "planned" not in figures


def test_what_broke_first_names_the_threshold_endpoint_and_where_the_time_went(admin: Client) -> None:
    capacity = text(section(run_page(admin, cb.stored_search(cb.found_search())), "capacity"))
    assert "What broke first p95<500ms failed at 512 ms, worst on GET /events/." in capacity
    assert ("Client 512 ms what the user waited App 45 ms inside the Django app DB 12.5 ms 4.0 queries a request "
            "Queueing 467 ms") in capacity


def test_the_step_table_has_each_step_its_phase_figures_and_verdicts(admin: Client) -> None:
    markup = section(run_page(admin, cb.stored_search(cb.found_search())), "capacity")
    headers = [text(cell) for cell in re.findall(r"<th[^>]*>.*?</th>", markup.split("perf-capacity-steps")[1]
                                                  .split("</thead>")[0], re.S)]
    assert headers == ["#", "Phase", "Load (users)", "Req/s", "p50 (ms)", "p95 (ms)", "p99 (ms)", "Failures", "CPU",
                       "Result", "p95<500ms", "error_rate<1%"]
    rows = step_rows(markup)
    assert [row.split(" ")[:3] for row in rows] == [
        ["1", "raise", "10"], ["2", "raise", "20"], ["3", "raise", "40"], ["4", "raise", "80"],
        ["5", "narrow", "60"], ["6", "narrow", "50"], ["7", "narrow", "45"], ["8", "narrow", "47"]]
    assert rows[3] == "4 raise 80 117.8 618 883 1,103 0.00% 35% FAIL 883 ms FAIL 0% PASS", rows[3]
    assert rows[5].endswith("FAIL first failing 515 ms FAIL 0% PASS"), rows[5]
    assert rows[7] == "8 narrow 47 126.5 338 483 604 0.00% 27% PASS capacity 483 ms PASS 0% PASS", rows[7]
    assert 'class="perf-step-failed"' in markup and "perf-step-capacity" in markup


def test_a_shown_usl_fit_is_labelled_a_prediction_and_drawn_dashed(admin: Client) -> None:
    markup = section(run_page(admin, cb.stored_search(cb.found_search())), "capacity")
    model = text(markup.split('class="perf-capacity-model"')[1].split("</div></div>")[0])
    assert "prediction, not measured" in model
    assert "σ (contention) 0.04" in model and "κ (coherency) 0.0004" in model
    assert "Predicted peak load (N*) 49 users" in model and "Predicted peak throughput 126.9 req/s" in model
    assert "R² of the fit 0.970" in model
    throughput = svgs(markup)[0]
    assert 'data-series="USL fit (model)"' in throughput and 'stroke-dasharray="6 4"' in throughput
    assert "a model's prediction, not a measurement" in html.unescape(throughput)


def test_a_fit_not_good_enough_is_one_line_saying_why_and_no_curve(admin: Client) -> None:
    markup = section(run_page(admin, cb.stored_search(cb.found_search(usl_shown=False))), "capacity")
    assert "No USL fit shown: R² 0.62 is below 0.9: the steps do not follow the law closely enough" in text(markup)
    assert "perf-capacity-model" not in markup and "σ" not in text(markup)
    assert "USL fit" not in svgs(markup)[0]


def test_three_charts_against_load_mark_the_capacity_and_tell_passing_from_failing(admin: Client) -> None:
    charts = svgs(section(run_page(admin, cb.stored_search(cb.found_search())), "capacity"))
    titles = [re.search(r"<title>(.*?)</title>", svg).group(1) for svg in charts]
    assert titles == ["Throughput against load", "p95 against load", "Failures against load"]
    for svg in charts:
        assert 'data-mark="capacity 47 users"' in svg
        assert svg.count('data-passed="true"') == 5 and svg.count('data-passed="false"') == 3
        assert 'class="point-failed"' in svg and 'class="point-passed"' in svg
        assert "load (users)" in svg
    assert 'data-mark="limit 500 ms"' in charts[1] and 'data-mark="limit 1.00%"' in charts[2]


def test_a_search_the_generator_limited_says_its_result_is_invalid_and_shows_no_capacity(admin: Client) -> None:
    markup = section(run_page(admin, cb.stored_search(cb.generator_limited_search())), "capacity")
    said = text(markup)
    assert "invalid: generator limit" in said
    assert ("The load generator was the limit: it could not produce the load asked for, so the steps measured the "
            "generator, not the server. The result is invalid, and no capacity is shown.") in said
    assert "perf-capacity-result" not in markup and "What broke first" not in said
    assert "capacity" not in " ".join(step_rows(markup)) and "generator limit" in step_rows(markup)[3]
    assert all("data-mark=" not in svg for svg in svgs(markup)[:1])  # no knee on an invalid search


def test_a_search_whose_first_step_failed_says_the_capacity_is_below_it(admin: Client) -> None:
    said = text(section(run_page(admin, cb.stored_search(cb.first_step_failed_search())), "capacity"))
    assert "Even the first step failed: the capacity is below 10 users, the smallest load tried." in said
    assert "Capacity none found no step passed First failing load 10 users" in said
    assert "No USL" not in said  # no fit was made: nothing to explain


def test_a_search_that_reached_its_ceiling_says_the_capacity_is_above(admin: Client) -> None:
    said = text(section(run_page(admin, cb.stored_search(cb.ceiling_search())), "capacity"))
    assert ("Every step passed up to the largest load allowed (--max-users) (40 users): the capacity is above "
            "40 users.") in said
    assert "Capacity: above 40 users" in said


def test_an_open_models_fit_is_over_requests_in_flight_and_not_drawn_against_the_rate(admin: Client) -> None:
    data = cb.open_model_search()
    data["usl"] = cb.usl_json(load_axis="concurrency")
    markup = section(run_page(admin, cb.stored_search(data)), "capacity")
    assert "Predicted peak load (N*) 49 requests in flight" in text(markup)
    assert "not the arrival rate asked for, so it is not drawn on the charts against load" in text(markup)
    assert "USL fit" not in svgs(markup)[0]


def test_without_server_timing_what_broke_first_has_the_clients_time_and_says_why_no_more(admin: Client) -> None:
    data = cb.found_search()
    data["broke_first"] = {**cb.BROKE_FIRST, "breakdown": {"client_ms": 512.0, "app_ms": None, "db_ms": None,
                                                           "queries": None, "queue_ms": None}}
    said = text(section(run_page(admin, cb.stored_search(data)), "capacity"))
    assert "Client 512 ms what the user waited The server sent no Server-Timing header" in said
    assert "Queueing" not in said


def test_an_open_models_search_counts_iterations_a_second_and_shows_dropped_arrivals(admin: Client) -> None:
    markup = section(run_page(admin, cb.stored_search(cb.open_model_search())), "capacity")
    assert "Load (iterations/s)" in markup and ">Dropped<" in markup
    assert step_rows(markup)[2].startswith("3 raise 80 70.0 630 900 1,125 2.00% 25% 12.00% FAIL")
    assert "Capacity 40 iterations/s" in text(markup)


def test_a_load_test_has_no_capacity_section_and_no_kind_in_its_header(admin: Client) -> None:
    page = run_page(admin, stored_run(cb.search_registry(cb.found_search())))
    assert 'data-perf-section="capacity" hidden="hidden"' in page
    assert "Capacity search" not in text(section(page, "summary"))


def test_a_row_edited_by_hand_still_opens(admin: Client) -> None:
    run = cb.stored_search(cb.found_search())
    PerfRun.objects.filter(pk=run.pk).update(capacity={"status": "found", "steps": [{"load": "many"}, 3],
                                                       "capacity": {"load": None}, "usl": {"shown": True}})
    said = text(section(run_page(admin, run), "capacity"))
    assert "Capacity found" in said and "Capacity — — req/s" in said


def test_the_list_filters_capacity_searches(admin: Client) -> None:
    search, plain = cb.stored_search(cb.found_search()), stored_run()
    listed = admin.get(CHANGELIST, {"kind__exact": "capacity"}).content.decode()
    assert f"/perfrun/{search.pk}/change/" in listed and f"/perfrun/{plain.pk}/change/" not in listed


# ---------------------------------------------------------------------------------------------- a search under way


def test_a_running_search_shows_the_step_under_way_and_grows_on_its_live_view(admin: Client) -> None:
    run = cb.running_search(done=3, elapsed=130.0)
    first = live(admin, run)
    assert first["status"] == "running"
    markup = first["sections"]["capacity"]
    said = text(markup)
    assert "searching" in said and "Passed so far 40 users" in said
    # Step 4 (80 users, raising) runs from 120 s to 160 s: 130 s in, it has 30 s left and has settled.
    now = said.split("Step under way ")[1]
    assert now.startswith("Step now 4 raising the load Load now 80 users Left in step"), now
    left = float(re.search(r"Left in step (\d+)s", now).group(1))
    assert 25 <= left <= 30, now
    assert len(step_rows(markup)) == 3
    assert [svg.count('class="step"') for svg in svgs(markup)] == [3, 3, 3]
    assert 'data-mark="now 80 users"' in svgs(markup)[0]

    # The process ends step 4 (failed) and 5 and is settling in step 6 (50 users, narrowing) at 202 s.
    cb.advance(run, done=5, elapsed=202.0)
    markup = live(admin, run)["sections"]["capacity"]
    said = text(markup)
    assert len(step_rows(markup)) == 5 and "FAIL" in step_rows(markup)[3]
    now = said.split("Step under way ")[1]
    assert now.startswith("Step now 6 narrowing down Load now 50 users Left in step"), now
    assert "settling, not yet judged" in now
    assert [svg.count('class="step"') for svg in svgs(markup)] == [5, 5, 5]
    assert "First failing load 60 users" in said


def test_the_header_of_a_running_search_offers_no_change_of_target(admin: Client) -> None:
    header = live(admin, cb.running_search(done=2, elapsed=90.0))["sections"]["header"]
    assert "Capacity search" in header and 'name="target"' not in header and "perf-stop-button" in header


@pytest.mark.slow
def test_a_real_search_under_way_shows_its_step_on_the_live_view(admin: Client, live_env, tmp_path: Path) -> None:
    """run_perf --find-capacity storing its run: while it runs, the live view shows the steps judged so far and the
    one under way, from what its process writes after each step."""
    label = unique("capacity-live")
    with capacity_target(4, 0.02) as target:
        process = start_run_perf(capacity_run_env(tmp_path, live_env), "--host", target.url, "--find-capacity",
                                 "--threshold", "p95<50ms", "--start-load", "2", "--settle", "0.5s", "--hold", "1.5s",
                                 "--budget", "40s", "--no-audit", "--label", label)
        try:
            def two_steps_in() -> PerfRun | None:
                run = PerfRun.objects.filter(label=label).first()
                steps = (run.capacity or {}).get("steps") if run is not None else None
                return run if run is not None and run.status == "running" and steps and len(steps) >= 2 else None

            run = poll(two_steps_in, f"run {label} stored no two steps while running", 60, 0.1)
            data = live(admin, run)
            said = text(data["sections"]["capacity"])
            assert data["status"] == "running" and "searching" in said, said
            stored = PerfRun.objects.get(pk=run.pk).capacity
            under_way = stored["current"]
            assert under_way is not None and under_way["index"] >= len(stored["steps"]) - 1, stored
            assert "Step under way Step now" in said and "Left in step" in said, said
            assert len(step_rows(data["sections"]["capacity"])) >= 2
            stdout, stderr = finish(process, 60)
        finally:
            process.kill()
            process.wait()
    assert process.returncode == 0, stdout[-2000:] + stderr[-2000:]
    done = live(admin, run)
    assert done["status"] == "completed" and "Step under way" not in done["sections"]["capacity"]
    assert "capacity found" in text(done["sections"]["capacity"])


# ---------------------------------------------------------------------------------------------- the files


def test_the_html_file_has_the_capacity_section_first(tmp_path: Path) -> None:
    data = cb.found_search()
    written = write_html(tmp_path / "report.html", cb.search_registry(data), 320.0, RunDescription.live(
        row=None, status="completed", reason="completed", label="nightly", host="http://127.0.0.1:8000/api",
        users=1000, spawn_rate=10.0, planned_duration=1800.0, scenarios=("EventBrowser",),
        user_split={"EventBrowser": 1000}, seed=None, wait=None, options={}, started_at=cb.START,
        finished_at=cb.START + 320, git_revision="", database_vendor="sqlite", cpu_warning=False,
        max_cpu_percent=None, thresholds=[], open_model=None, capacity=data)).read_text()
    ids = re.findall(r'<section id="([\w-]+)"', written)
    assert ids[:2] == ["summary", "capacity"]
    assert "<title>Capacity search report: nightly</title>" in written
    assert "Capacity found: 47 users passed every threshold" in text(written)


def test_the_json_summary_keeps_the_search_through_perf_import(orm, live_env, tmp_path: Path) -> None:
    data = cb.found_search()
    description = RunDescription(label=f"imported-{tmp_path.name}", host="http://127.0.0.1:8000/api",
                                 status="completed", users=1000, kind="capacity", capacity=data)
    stats = cb.search_registry(data)
    summary = summary_json(stats, 320.0, description)
    assert summary["capacity"] == data and summary["meta"]["kind"] == "capacity"
    path = write_json(tmp_path / "summary.json", summary)
    result = manage("perf_import", str(path), env=live_env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    stored = PerfRun.objects.get(label=description.label)
    assert stored.kind == PerfRun.Kind.CAPACITY and stored.capacity == json.loads(json.dumps(data))
    # Read back as the run page reads it: the same description.
    assert RunDescription.from_run(stored).capacity == stored.capacity


def test_a_summary_without_capacity_is_a_load_test_and_a_wrong_type_is_refused() -> None:
    old = RunDescription(label="old", status="completed").as_json()
    del old["kind"], old["capacity"]
    back = RunDescription.from_json(old)
    assert back.kind == "load" and back.capacity is None and not back.is_capacity
    assert RunDescription.from_json({**old, "capacity": {"status": "found"}}).is_capacity
    with pytest.raises(DescriptionError, match=r"meta.capacity is \[1\], not dict"):
        RunDescription.from_json({**old, "capacity": [1]})


@pytest.mark.slow
def test_a_real_search_writes_its_capacity_into_its_html_and_json_files(tmp_path: Path) -> None:
    """run_perf --find-capacity against a server of 4 workers of 20 ms (200 req/s; 8 users wait 40 ms, 16 wait 80):
    its own files have the section and the JSON's capacity key, as the admin's would."""
    with capacity_target(4, 0.02) as target:
        result = run_capacity_perf(target.url, tmp_path, "--find-capacity", "--threshold", "p95<50ms",
                                   "--start-load", "2", "--settle", "0.5s", "--hold", "1.5s", "--budget", "40s",
                                   "--no-save", "--no-audit", "--html", str(tmp_path / "report.html"),
                                   "--json", str(tmp_path / "summary.json"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    found = summary["capacity"]
    assert summary["meta"]["kind"] == "capacity" and summary["meta"]["capacity"] == found
    assert found["status"] == "found" and 4 <= found["capacity"]["load"] < 16
    written = (tmp_path / "report.html").read_text()
    assert re.findall(r'<section id="([\w-]+)"', written)[:2] == ["summary", "capacity"]
    markup = section(written, "capacity")
    assert f"Capacity found: {found['capacity']['load']:g} users passed every threshold" in text(markup)
    assert len(step_rows(markup)) == len(found["steps"]) >= 4
    assert found["verdict"] in text(markup)


# ---------------------------------------------------------------------------------------------- the console


def test_the_console_text_says_what_the_page_says() -> None:
    printed = console_text(cb.found_search())
    lines = printed.splitlines()
    assert lines[:4] == [
        "Capacity found: 47 users passed every threshold, and 50 users failed.",
        "Capacity: 47 users (126.5 req/s)",
        "First failing load: 50 users (126.1 req/s)",
        "Broke first: p95<500ms at 512 ms on GET /events/ (client 512 ms, app 45 ms, db 12.5 ms, queueing 467 ms)",
    ]
    steps = [line.split() for line in lines if line[:1].isdigit()]
    assert [row[:3] for row in steps][-2:] == [["7", "narrow", "45"], ["8", "narrow", "47"]]
    assert " ".join(steps[5][9:]) == "FAIL first failing 515 ms FAIL 0% PASS"
    assert any(line.startswith("USL fit, a model's prediction (not measured): σ (contention) 0.04") for line in lines)
    assert lines[-1].startswith("The capacity is 47 users")


def test_the_console_text_of_an_invalid_search_shows_no_capacity() -> None:
    printed = console_text(cb.generator_limited_search())
    assert printed.startswith("The load generator was the limit") and "Capacity:" not in printed
    assert "FAIL generator limit" in printed and "USL" not in printed
    assert console_text(None) == ""
