"""The run's pictures: SVG charts from plain data, the admin tag that draws a stored run, the --html report.

Charts are checked as documents (they parse as XML, carry their series, say when there is nothing
to draw, escape names) rather than pixel by pixel; tests/perf/test_browser.py looks at them in a browser.
"""

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from django.db import connection
from django.template import Context, Template
from django.test import Client
from django.test.utils import CaptureQueriesContext

from perf import charts
from perf.load.html_report import write_html
from perf.load.stats import Sample, StatsRegistry
from perf.load.thresholds import evaluate, parse_threshold
from perf.persist import finish_run, start_run
from tests.factories import make_user, unique

SVG = "{http://www.w3.org/2000/svg}"
HOST = "http://127.0.0.1:8000/api"
EVIL = "<script>alert(1)</script>"


def sample(elapsed: float, users: int, rps: float, fps: float, p50: float | None, p95: float | None) -> Sample:
    return Sample(timestamp=1_700_000_000.0 + elapsed, elapsed=elapsed, users=users, requests_per_second=rps,
                  failures_per_second=fps, p50=p50, p95=p95, avg_response_time=p50, total_requests=0,
                  total_failures=0)


SAMPLES = [sample(5, 2, 10, 0, 20, 40), sample(10, 4, 22, 1, 25, 60), sample(15, 6, 31, 0, 30, 90)]


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(node.itertext()) for node in root.iter(f"{SVG}text")]


def series_paths(root: ET.Element) -> dict[str, list[ET.Element]]:
    return {group.get("data-series"): list(group) for group in root.iter(f"{SVG}g") if group.get("data-series")}


def make_registry(*names: str) -> StatsRegistry:
    registry = StatsRegistry(start_time=1_700_000_000.0)
    for index, name in enumerate(names):
        for i in range(30):
            registry.record("GET", name, 5 * (index + 1) + i, 100, "HTTPError('500')" if i == 0 else None)
        registry.take_sample(users=index + 1, now=1_700_000_000.0 + 5 * (index + 1))
    return registry


# charts


def test_each_timeline_chart_is_an_accessible_svg_of_fixed_size() -> None:
    for svg in charts.timeline_charts(SAMPLES):
        root = parse(svg)
        assert root.get("role") == "img"
        assert "perf-chart" in root.get("class", "").split()
        assert root.find(f"{SVG}title").text
        assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"


def test_throughput_chart_draws_requests_and_failures_with_a_legend() -> None:
    root = parse(charts.throughput_chart(SAMPLES))
    paths = series_paths(root)
    assert set(paths) == {"req/s", "failures/s"}
    assert all(shape.tag == f"{SVG}path" for shapes in paths.values() for shape in shapes)
    assert {"req/s", "failures/s"} <= set(texts(root))


def test_latency_chart_leaves_a_gap_where_a_window_had_no_requests() -> None:
    gappy = [*SAMPLES, sample(20, 6, 0, 0, None, None), sample(25, 6, 5, 0, 30, 50), sample(30, 6, 5, 0, 31, 55)]
    p50 = series_paths(parse(charts.latency_chart(gappy)))["p50"]
    assert [shape.tag for shape in p50] == [f"{SVG}path", f"{SVG}path"]


def test_users_chart_y_axis_reaches_the_peak_on_a_round_value() -> None:
    labels = texts(parse(charts.users_chart([sample(5, 3, 1, 0, 1, 1), sample(10, 87, 1, 0, 1, 1)])))
    assert {"0", "20", "40", "60", "80", "100"} <= set(labels)
    assert "10s" in labels


def test_charts_without_samples_say_so() -> None:
    for svg in charts.timeline_charts([]):
        assert "No data yet" in texts(parse(svg))


def test_distribution_bars_account_for_every_request() -> None:
    registry = make_registry("/events/")
    root = parse(charts.distribution_chart("GET /events/", registry.total.histogram.to_json()))
    bars = next(group for group in root.iter(f"{SVG}g") if group.get("class") == "bars")
    counts = [int(re.search(r": ([\d,]+) \(", rect.find(f"{SVG}title").text)[1].replace(",", "")) for rect in bars]
    assert sum(counts) == 30
    assert {"10 ms", "100 ms"} <= set(texts(root))


def test_distribution_of_an_endpoint_without_requests_says_so() -> None:
    assert "No requests" in texts(parse(charts.distribution_chart("GET /x", {})))


def test_names_are_escaped_in_every_chart() -> None:
    svg = charts.distribution_chart(EVIL, {"100": 3})
    assert "<script" not in svg
    root = parse(svg)
    assert root.find(f"{SVG}script") is None
    assert EVIL in root.find(f"{SVG}title").text


# the admin tag


def test_chart_tag_reads_a_run_in_two_queries_however_many_endpoints(orm) -> None:
    counts = []
    for names in (("/a",), ("/a", "/b", "/c", "/d", "/e")):
        run = start_run(label=unique("charts"), host=HOST)
        finish_run(run, make_registry(*names), "completed", duration=30.0)
        with CaptureQueriesContext(connection) as queries:
            html = Template("{% load perf_charts %}{% perf_run_charts run %}").render(Context({"run": run}))
        assert html.count('class="perf-chart ') == 3 + len(names) + 1
        counts.append(len(queries))
    assert counts == [2, 2]


def test_run_change_page_has_a_charts_section(orm) -> None:
    run = start_run(label=unique("charts"), host=HOST)
    finish_run(run, make_registry("/events/", EVIL), "completed", duration=30.0)
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    html = client.get(f"/admin/perf/perfrun/{run.pk}/change/").content.decode()
    assert ">Charts</h2>" in html
    assert html.count('class="perf-chart ') == 3 + 2 + 1
    assert "<script>alert" not in html


# the --html report


@pytest.fixture
def html_report(tmp_path: Path) -> tuple[str, ET.Element]:
    registry = make_registry("/events/", EVIL)
    verdicts = evaluate([parse_threshold("p95<500ms"), parse_threshold("error_rate<1%")], registry, 30.0)
    meta = {
        "label": "nightly", "host": HOST, "users": 3, "status": "completed", "scenarios": ["EventBrowser"],
        "user_split": {"EventBrowser": 3}, "seed": 7, "thresholds": [verdict.as_dict() for verdict in verdicts],
        "audit": {"ok": False, "checks": [{"name": "tier quantity_sold", "ok": False, "detail": "tier 9: 3 ≠ 2"}]},
    }
    path = write_html(tmp_path / "out" / "report.html", registry, 30.0, meta)
    text = path.read_text(encoding="utf-8")
    return text, ET.fromstring(text.split("\n", 1)[1])


def test_html_report_fetches_nothing(html_report: tuple[str, ET.Element]) -> None:
    text, root = html_report
    assert not [node.tag for node in root.iter() if node.tag in ("script", "link", "img", "iframe", "object")]
    assert not [node.tag for node in root.iter() if {"src", "href"} & set(node.attrib)]
    assert "url(" not in text and "@import" not in text
    # The only URLs are the host as text and the SVG namespace, which names a vocabulary and is never fetched.
    assert set(re.findall(r"https?://[^\s\"<]*", text)) <= {HOST, "http://www.w3.org/2000/svg"}


def test_html_report_has_the_tables_for_every_endpoint(html_report: tuple[str, ET.Element]) -> None:
    _, root = html_report
    for section in ("requests", "response-times"):
        table = root.find(f".//section[@id='{section}']/table")
        names = [row.findall("td")[1].text for row in table.iter("tr") if row.findall("td")]
        assert names == ["/events/", EVIL, "Aggregated"]
    failures = root.find(".//section[@id='failures']/table")
    assert [td.text for td in failures.iter("td")][3] == "1"


def test_html_report_has_timeline_and_distribution_charts(html_report: tuple[str, ET.Element]) -> None:
    _, root = html_report
    assert len(root.findall(".//section[@id='charts']//" + f"{SVG}svg")) == 3
    titles = [svg.find(f"{SVG}title").text for svg in root.findall(".//section[@id='distribution']//" + f"{SVG}svg")]
    assert titles == [f"Response-time distribution: GET {name}" for name in ("/events/", EVIL)] + [
        "Response-time distribution: Aggregated"]


def test_html_report_shows_threshold_and_audit_verdicts(html_report: tuple[str, ET.Element]) -> None:
    _, root = html_report
    thresholds = [[td.text for td in row.iter("td")] for row in root.find(".//section[@id='thresholds']//tbody")]
    assert thresholds == [["p95<500ms", "35.67 ms", "PASS"], ["error_rate<1%", "3.33%", "FAIL"]]
    audit = root.find(".//section[@id='audit']")
    assert "".join(audit.find("p").itertext()) == "Audit failed."
    assert [td.text for td in audit.iter("td")] == ["tier quantity_sold", "FAIL", "tier 9: 3 ≠ 2"]
