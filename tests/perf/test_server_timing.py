"""Server-Timing: the middleware's header on real responses, and what the engine makes of it."""

import re

import pytest

from perf.load.server_timing import parse_server_timing
from perf.load.stats import StatsEntry, StatsRegistry
from perf.models import EndpointStats
from perf.reports import console
from perf.reports.description import RunDescription
from perf.store import persist
from tests.factories import unique
from tests.perf.builders import stored_run

HEADER = re.compile(r'^app;dur=\d+\.\d, db;dur=\d+\.\d;desc="(\d+) quer(y|ies)"$')


def test_every_api_response_carries_app_and_database_time(api):
    response = api.get("/events/")

    match = HEADER.match(response.headers["Server-Timing"])
    assert match, response.headers["Server-Timing"]
    assert int(match.group(1)) >= 2  # a count and a page


def test_a_request_without_queries_reports_zero(api):
    response = api.get("/healthcheck")

    assert response.headers["Server-Timing"].endswith('db;dur=0.0;desc="0 queries"')


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('app;dur=12.4, db;dur=3.1;desc="5 queries"', (12.4, 3.1, 5)),
        ('db;dur=3;desc="1 query", app;dur=7', (7.0, 3.0, 1)),
        ("cache;dur=1, app;dur=2.5", (2.5, None, None)),
        ("app;desc=x", None),
        ("cache;dur=1", None),
        ("app;dur=abc", None),
    ],
)
def test_parse_server_timing(header, expected):
    assert parse_server_timing(header) == expected


def test_client_minus_app_time_is_what_the_app_never_saw():
    stats = StatsRegistry()
    stats.record("GET", "/a", 50.0, 10, server=(30.0, 10.0, 4))
    stats.record("GET", "/a", 70.0, 10, server=(50.0, 20.0, 6))

    server = stats.entries[("GET", "/a")].server
    assert (server.count, server.avg_app_time, server.avg_db_time, server.avg_queries) == (2, 40.0, 15.0, 5.0)
    assert server.avg_network_time == 20.0
    assert abs(server.p95_app_time - 50.0) / 50.0 <= 0.01
    assert stats.total.server.count == 2


def test_requests_without_the_header_leave_no_server_figures():
    stats = StatsRegistry()
    stats.record("GET", "/a", 50.0, 10)

    assert stats.total.server is None
    assert console.server_table(stats) == ""


def test_server_figures_merge_and_survive_a_round_trip():
    first, second = StatsEntry("GET", "/a"), StatsEntry("GET", "/a")
    first.log_server(40.0, 30.0, 10.0, 4)
    second.log_server(60.0, 50.0, 20.0, 6)
    first.merge(second)

    rebuilt = StatsEntry.from_dict(first.to_dict())
    assert rebuilt.server.to_dict() == first.server.to_dict()
    assert rebuilt.server.avg_queries == 5.0


def test_the_final_tables_show_the_server_side_breakdown():
    stats = StatsRegistry()
    stats.record("GET", "/slow-in-db", 120.0, 10, server=(100.0, 90.0, 12))

    table = console.server_table(stats)
    assert "Server-side breakdown" in table and "/slow-in-db" in table and "12.0" in table


def test_stored_endpoints_keep_the_server_figures(orm):
    stats = StatsRegistry()
    stats.record("GET", "/stored", 80.0, 10, server=(60.0, 20.0, 3))
    run = stored_run(stats, duration=1.0, label=unique("server-timing"))

    row = EndpointStats.objects.get(run=run, name="/stored")
    assert (row.server_timed_requests, row.avg_app_time, row.avg_db_time, row.avg_queries) == (1, 60.0, 20.0, 3.0)
    assert row.avg_network_time == 20.0
    assert persist.load_registry(run).entries[("GET", "/stored")].server.avg_app_time == 60.0


def test_the_html_report_shows_the_server_side_breakdown(tmp_path):
    from xml.etree import ElementTree

    from perf.reports import html_report

    stats = StatsRegistry()
    stats.record("GET", "/slow-in-db", 120.0, 10, server=(100.0, 90.0, 12))
    stats.take_sample(users=1)

    page = html_report.write_html(tmp_path / "report.html", stats, 1.0, RunDescription(label="st")).read_text()
    section = page[page.index('<section id="server-timing">'):]
    assert "/slow-in-db" in section and ">12.0<" in section and ">90.0<" in section
    ElementTree.fromstring(page.split("\n", 1)[1])  # still well-formed


def test_the_html_report_leaves_the_breakdown_out_without_the_header(tmp_path):
    from perf.reports import html_report

    stats = StatsRegistry()
    stats.record("GET", "/a", 50.0, 10)

    page = html_report.write_html(tmp_path / "report.html", stats, 1.0, RunDescription()).read_text()
    assert 'id="server-timing"' not in page
