"""The admin run page as a report: header and verdicts, formatted figures, charts per endpoint, the tables,
options last; its live view for a running run; the downloads made from the stored run.

Runs are stored the way run_perf stores them (perf.store.persist), in the shared live database; pages are
fetched with Django's test client logged in as the user each test needs.
"""

import csv
import html
import io
import json
import re
import zipfile
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from perf.load.stats import StatsRegistry
from perf.load.thresholds import evaluate, parse_threshold
from perf.models import PerfRun
from perf.reports import locust_csv
from perf.store.persist import finish_run, save_progress
from tests.factories import make_user, unique
from tests.perf.builders import stored_run

CHANGELIST = "/admin/perf/perfrun/"
START = 1_700_000_000.0
LONG_NAME = "/events/{event_id}/tickets/{tier_id}/checkout/pay-what-you-can/confirm-and-email-the-receipt"
ENDPOINTS = (("GET", "/events/"), ("POST", "/auth/token/pair"), ("POST", LONG_NAME), ("GET", "/health"))


def registry(ticks: int = 10) -> StatsRegistry:
    """Four endpoints of distinct speeds (the last the fastest), one kind of failure, a sample every 2 s."""
    stats = StatsRegistry(start_time=START)
    for tick in range(1, ticks + 1):
        for i in range(10):
            for index, (method, name) in enumerate(ENDPOINTS):
                error = "HTTPError('503 Server Error')" if name == "/auth/token/pair" and i == 0 else None
                stats.record(method, name, [20.4, 140.6, 260.2, 2.2][index] + i, 500, error)
        stats.take_sample(users=min(tick, 5), now=START + 2 * tick)
    return stats


def page_run(stats: StatsRegistry | None = None, **options: Any) -> PerfRun:
    """A run of the load the pages show (5 users, 150 s planned, seed 3), stored as run_perf stores it; without
    ``stats`` still running. ``options`` are stored_run's: its status and duration, fields overriding these."""
    fields = {"label": unique("page"), "users": 5, "planned_duration": 150.0, "seed": 3,
              "options": {"users": 5, "wait": "1,3"}}
    return stored_run(stats, **{**fields, **options})


def finished(duration: float = 150.0, **extra: object) -> PerfRun:
    stats = registry()
    verdicts = evaluate([parse_threshold("p95<500ms"), parse_threshold("error_rate<1%")], stats, duration)
    extra.setdefault("thresholds", [verdict.as_dict() for verdict in verdicts])
    extra.setdefault("audit", {"ok": False, "checks": [
        {"name": "tier quantity_sold", "ok": False, "detail": "tier 9: 3 sold, 2 tickets"},
        {"name": "one RSVP per user", "ok": True, "detail": ""}]})
    return page_run(stats, duration=duration, **extra)


def running(ticks: int = 10) -> PerfRun:
    """A run its process is still writing: the figures of the first ``ticks`` ticks, status running."""
    run = page_run(label=unique("live"))
    save_progress(run, registry(ticks), 2.0 * ticks)
    return run


@pytest.fixture
def admin_client(orm) -> Client:
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def viewer_client(orm) -> Client:
    """Staff allowed to view runs, not to change them."""
    user = make_user(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_perfrun", content_type__app_label="perf"))
    client = Client()
    client.force_login(user)
    return client


def page_of(client: Client, run: PerfRun, query: str = "") -> str:
    response = client.get(f"{CHANGELIST}{run.pk}/change/{query}")
    assert response.status_code == 200
    return response.content.decode()


def section(page: str, section_id: str) -> str:
    """The markup of ``<section id=...>``, up to its end."""
    found = re.search(rf'<section id="{section_id}"[^>]*>(.*?)</section>', page, re.DOTALL)
    assert found, section_id
    return found.group(1)


def text(markup: str) -> str:
    """What a reader sees of ``markup``: tags dropped, entities decoded, spaces collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup))).strip()


# the page


def test_header_has_the_status_badge_and_every_verdict(admin_client: Client) -> None:
    run = finished()
    header = section(page_of(admin_client, run), "summary")
    assert f"Run {run.pk}: {run.label}" in header
    assert '<span class="perf-badge perf-status perf-status-completed">completed</span>' in header
    thresholds = text(header.split('id="thresholds"')[1].split('id="audit"')[0])
    assert f"p95<500ms {round(run.p95)} ms < 500 ms PASS" in thresholds
    assert "error_rate<1% 2.5% < 1% FAIL" in thresholds
    audit = text(header.split('id="audit"')[1])
    assert "Data-integrity audit FAIL 2 checks" in audit
    assert "FAIL tier quantity_sold: tier 9: 3 sold, 2 tickets" in audit and "PASS one RSVP per user" in audit
    # A failed audit shows its checks; a passed one folds them away.
    assert '<details open="open">' in header.split('id="audit"')[1]


def test_header_shows_the_comparisons_regressions(admin_client: Client) -> None:
    baseline = finished()
    slower = registry()
    for _ in range(200):
        slower.record("POST", LONG_NAME, 900.0, 500)
    run = page_run(slower, duration=150.0, label=unique("compared"),
                   options={"compare_to": str(baseline.pk), "fail_on_regression": "10%"})
    comparison = text(section(page_of(admin_client, run), "summary").split('id="comparison"')[1])
    assert f"Compared with run {baseline.pk}" in comparison
    assert "regression" in comparison and f"POST {LONG_NAME}: p95" in comparison
    assert "by more than 10% (--fail-on-regression)" in comparison


def test_key_figures_are_formatted_with_units(admin_client: Client) -> None:
    run = finished(duration=150.0)
    figures = text(section(page_of(admin_client, run), "figures"))
    assert "Duration 2m 30s" in figures
    assert f"p95 {round(run.p95)} ms" in figures and f"p99 {round(run.p99)} ms" in figures
    assert f"Median {round(run.p50)} ms" in figures and f"Max {round(run.max_response_time)} ms" in figures
    assert f"Requests/s {run.requests_per_second:.1f}" in figures
    assert "Failures 10 2.50%" in figures
    assert not re.search(r"\d\.\d+ ms", figures)


def test_request_table_has_locusts_columns_whole_ms_and_one_decimal_rates(admin_client: Client) -> None:
    run = finished()
    table = section(page_of(admin_client, run), "requests")
    headers = re.findall(r"<th(?: [^>]*)?>(.*?)</th>", table)
    assert headers == ["Type", "Name", "# Requests", "# Fails", "Median (ms)", "95%ile (ms)", "99%ile (ms)",
                       "Average (ms)", "Min (ms)", "Max (ms)", "Average size (bytes)", "RPS", "Failures/s"]
    aggregated = re.findall(r'<td class="num">(.*?)</td>', table.split('class="total"')[1])
    assert aggregated[0] == "400" and aggregated[1] == "10"
    assert all(re.fullmatch(r"[\d,]+", cell) for cell in aggregated[2:9]), aggregated
    assert all(re.fullmatch(r"\d+\.\d", cell) for cell in aggregated[9:]), aggregated


def test_sections_come_in_report_order_with_options_last_and_collapsed(admin_client: Client) -> None:
    page = page_of(admin_client, finished())
    order = ["summary", "figures", "charts", "requests", "response-times", "distribution", "failures",
             'id="perfrun_form"', "options"]
    positions = [page.index(name if name.startswith("id=") else f'<section id="{name}"') for name in order]
    assert positions == sorted(positions)
    options = section(page, "options")
    assert options.lstrip().startswith('<details class="perf-options">')
    assert "Spawn rate (users/s)" in options and "Wait (s)" in options


def test_label_and_notes_are_the_only_form_fields(admin_client: Client) -> None:
    page = page_of(admin_client, finished())
    form = page.split('id="perfrun_form"', 1)[1].split("</form>", 1)[0]
    names = set(re.findall(r'<(?:input|textarea|select)[^>]*name="([^"]+)"', form))
    assert names - {"csrfmiddlewaretoken", "_save", "_continue", "_addanother"} == {"label", "notes"}


def test_per_endpoint_charts_default_to_the_slowest_and_follow_the_endpoint_parameter(admin_client: Client) -> None:
    run = finished()
    charts = section(page_of(admin_client, run), "charts")
    assert f'<option value="POST {LONG_NAME}" selected="selected">' in charts
    assert f'<p class="perf-endpoint-name">POST {LONG_NAME}</p>' in charts
    charts = section(page_of(admin_client, run, "?endpoint=GET%20/events/"), "charts")
    assert '<option value="GET /events/" selected="selected">' in charts
    titles = re.findall(r'<figure class="perf-endpoint-figure"><svg.*?<title>(.*?)</title>', charts, re.DOTALL)
    assert titles == ["GET /events/: Requests per second", "GET /events/: p95 response time, 10 s rolling window"]
    # Without JavaScript the chooser is a GET form: a button submits it.
    assert '<form method="get" class="perf-endpoint-form">' in charts and 'type="submit"' in charts


def test_an_unknown_endpoint_parameter_falls_back_to_the_slowest(admin_client: Client) -> None:
    charts = section(page_of(admin_client, finished(), "?endpoint=GET%20/nope"), "charts")
    assert f'<p class="perf-endpoint-name">POST {LONG_NAME}</p>' in charts


def test_long_names_are_never_cut_short(admin_client: Client) -> None:
    page = page_of(admin_client, finished())
    assert "…" not in page
    assert page.count(LONG_NAME) >= 5  # tables, chooser, per-endpoint heading, distribution


def test_failures_and_server_breakdown_sections(admin_client: Client) -> None:
    page = page_of(admin_client, finished())
    failures = text(section(page, "failures"))
    assert "POST /auth/token/pair HTTPError('503 Server Error') 10" in failures
    assert 'id="server-timing"' in page and "hidden" in page.split('id="server-timing"')[1].split(">")[0]


def test_an_audit_without_checks_says_none_are_configured_rather_than_pass(admin_client: Client) -> None:
    header = text(section(page_of(admin_client, finished(audit={"ok": True, "checks": []})), "summary"))
    assert "Data-integrity audit no checks configured (PERF_AUDIT_CHECKS)" in header
    assert "PASS" not in header.split("Data-integrity audit")[1][:40]


def test_connections_section_shows_what_the_stored_run_counted(admin_client: Client) -> None:
    from perf.load.transport import NEW, REOPENED

    assert 'id="connections"' in page_of(admin_client, finished())  # placed, hidden: nothing was counted
    stats = registry()
    for opened in (NEW, NEW, REOPENED):
        stats.record("GET", "/events/", 20.0, 500, None, None, opened)
    run = page_run(stats, duration=20.0, label=unique("conns"))

    connections = text(section(page_of(admin_client, run), "connections"))
    assert "Opened Reopened Opened per 100 requests" in connections
    assert "GET /events/ 103 3 1 2.9" in connections  # 100 requests from registry(), 3 here


def test_a_view_only_user_sees_no_stop_button_and_cannot_edit(viewer_client: Client, orm) -> None:
    run = running()
    page = page_of(viewer_client, run)
    assert "perf-status-running" in page
    assert '<button type="submit" class="perf-stop-button">' not in page
    assert 'name="label"' not in page


def test_a_running_run_offers_stop_until_asked_then_names_who_asked(admin_client: Client) -> None:
    run = running()
    header = section(page_of(admin_client, run), "summary")
    assert f'action="{CHANGELIST}{run.pk}/stop/"' in header and "csrfmiddlewaretoken" in header
    assert '<button type="submit" class="perf-stop-button">Stop</button>' in header
    PerfRun.objects.filter(pk=run.pk).update(stop_requested_by="ops@example.com", stop_requested_at=timezone.now())
    header = section(page_of(admin_client, run), "summary")
    assert "stopping (requested by ops@example.com)" in header and "<button" not in header


# the live view


def live(client: Client, run: PerfRun, query: str = ""):
    return client.get(f"{CHANGELIST}{run.pk}/live/{query}")


def test_live_view_gives_staff_the_sections_as_json(viewer_client: Client) -> None:
    run = running(ticks=10)
    response = live(viewer_client, run)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert data["status"] == "running"
    assert set(data["sections"]) == {"header", "capacity", "figures", "stages", "charts", "endpoints", "percentiles",
                                     "server", "connections", "distribution", "failures", "shards", "options"}
    figures = text(data["sections"]["figures"])
    assert "Now" in figures and "Elapsed 20s of 2m 30s" in figures and "13%" in figures
    assert "Users now 5" in figures and "p99" in figures and "last 10 s" in figures
    assert "Current RPS" in data["sections"]["endpoints"]
    assert data["sections"]["server"] == "" and data["sections"]["shards"] == "" and data["sections"]["stages"] == ""
    assert data["sections"]["charts"].count('class="perf-chart ') == 3 + 2


def test_live_view_sections_follow_the_process(viewer_client: Client) -> None:
    run = running(ticks=5)
    before = text(live(viewer_client, run).json()["sections"]["figures"])
    save_progress(run, registry(10), 20.0)
    after = text(live(viewer_client, run).json()["sections"]["figures"])
    assert "Requests 200" in before and "Requests 400" in after
    finish_run(run, registry(10), "completed", duration=20.0)
    data = live(viewer_client, run).json()
    assert data["status"] == "completed" and "Now" not in text(data["sections"]["figures"])


def test_live_view_renders_the_chosen_endpoint(viewer_client: Client) -> None:
    charts = live(viewer_client, running(), "?endpoint=POST%20/auth/token/pair").json()["sections"]["charts"]
    assert '<p class="perf-endpoint-name">POST /auth/token/pair</p>' in charts


def test_live_view_sends_anonymous_users_to_the_login_page(orm) -> None:
    run = running()
    response = live(Client(), run)
    assert response.status_code == 302
    assert response["Location"].startswith(f"/admin/login/?next={CHANGELIST}{run.pk}/live/")


def test_live_view_refuses_staff_without_view_permission(orm) -> None:
    client = Client()
    client.force_login(make_user(is_staff=True))
    assert live(client, running()).status_code == 403


# downloads


def download(client: Client, run: PerfRun, kind: str):
    return client.get(f"{CHANGELIST}{run.pk}/download/{kind}/")


def test_page_links_the_three_downloads(admin_client: Client) -> None:
    run = finished()
    header = section(page_of(admin_client, run), "summary")
    for kind in ("csv", "json", "html"):
        assert f'href="{CHANGELIST}{run.pk}/download/{kind}/"' in header


def test_csv_download_is_locusts_four_files_from_the_stored_run(viewer_client: Client) -> None:
    run = finished()
    response = download(viewer_client, run, "csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="perf-run-{run.pk}.zip"'
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    prefix = f"perf-run-{run.pk}"
    headers = {
        f"{prefix}_stats.csv": locust_csv.STATS_CSV_HEADER,
        f"{prefix}_stats_history.csv": locust_csv.STATS_HISTORY_CSV_HEADER,
        f"{prefix}_failures.csv": locust_csv.FAILURES_CSV_HEADER,
        f"{prefix}_exceptions.csv": locust_csv.EXCEPTIONS_CSV_HEADER,
    }
    assert sorted(archive.namelist()) == sorted(headers)
    for name, header in headers.items():
        rows = list(csv.reader(io.StringIO(archive.read(name).decode())))
        assert tuple(rows[0]) == header, name
    stats_rows = list(csv.reader(io.StringIO(archive.read(f"{prefix}_stats.csv").decode())))
    assert stats_rows[-1][:4] == ["", "Aggregated", "400", "10"]
    assert len(list(csv.reader(io.StringIO(archive.read(f"{prefix}_stats_history.csv").decode())))) == 1 + 1 + 10


def test_json_download_is_the_summary_with_the_runs_fields_as_meta(viewer_client: Client) -> None:
    run = finished()
    response = download(viewer_client, run, "json")
    assert response["Content-Type"] == "application/json"
    summary = json.loads(response.content)
    assert summary["meta"]["run_id"] == run.pk and summary["meta"]["label"] == run.label
    assert summary["duration"] == 150.0
    assert summary["entries"][-1]["name"] == "Aggregated" and summary["entries"][-1]["num_requests"] == 400
    assert len(summary["samples"]) == 10


def test_html_download_is_the_report_file(viewer_client: Client) -> None:
    run = finished()
    response = download(viewer_client, run, "html")
    assert response["Content-Type"] == "text/html; charset=utf-8"
    page = response.content.decode()
    assert page.startswith("<!DOCTYPE html>")
    assert f"<title>Run {run.pk}: {run.label}</title>" in page
    assert "<script" not in page and "href=" not in page


def test_a_running_run_can_be_downloaded_too(viewer_client: Client) -> None:
    run = running(ticks=4)
    summary = json.loads(download(viewer_client, run, "json").content)
    assert summary["meta"]["status"] == "running" and summary["entries"][-1]["num_requests"] == 160


def test_unknown_download_is_404(viewer_client: Client) -> None:
    assert download(viewer_client, finished(), "pdf").status_code == 404


def test_downloads_send_anonymous_users_to_the_login_page(orm) -> None:
    response = download(Client(), finished(), "csv")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


# the list


def test_list_shows_status_badges_and_a_running_runs_live_figures(admin_client: Client) -> None:
    run = running(ticks=10)
    page = admin_client.get(CHANGELIST, {"q": run.label}).content.decode()
    row = next(row for row in page.split("<tr")[1:] if f">{run.label}</a>" in row)
    assert '<span class="perf-badge perf-status perf-status-running">running</span>' in row
    stored = PerfRun.objects.get(pk=run.pk)
    cells = re.findall(r'<td class="field-(\w+)[^"]*">(.*?)</td>', row)
    figures = dict(cells)
    assert figures["rps"] == f"{stored.requests_per_second:.1f}"
    assert figures["p95_ms"] == str(round(stored.p95))
    assert figures["error_percent"] == f"{stored.error_percent:.2f}%"
    assert 'src="/static/perf/run_list.js"' in page


def test_a_run_that_has_not_measured_anything_yet_has_a_page(admin_client: Client) -> None:
    run = page_run(label=unique("empty"))
    page = page_of(admin_client, run)
    assert "No data yet" in section(page, "charts") and "No endpoint has recorded a request yet." in page
    figures = text(section(page, "figures"))
    assert "Starting: 1 of " in figures and "Requests 0" not in figures  # what is happening, not zeros
    assert live(admin_client, run).json()["status"] == "running"
    assert download(admin_client, run, "csv").status_code == 200


def test_a_failed_run_says_why_in_its_header(admin_client: Client) -> None:
    run = page_run(registry(2), status="failed", duration=4.0, label=unique("failed"), error="RuntimeError('boom')")
    header = text(section(page_of(admin_client, run), "summary"))
    assert "failed" in header and "Failed: RuntimeError('boom')" in header
