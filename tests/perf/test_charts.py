"""The run's pictures and the --html report: SVG charts from plain data, and the file that shares its
templates with the admin run page.

Charts are checked as documents (they parse as XML, carry their series and legends, label their axes
with units, say when there is nothing to draw, escape and never cut names) rather than pixel by pixel;
tests/perf/test_browser.py looks at them in a browser.
"""

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from django.test import Client

from perf.load.stats import Sample, StatsRegistry
from perf.load.thresholds import evaluate, parse_threshold
from perf.reports import charts
from perf.reports.description import RunDescription
from perf.reports.html_report import write_html
from perf.reports.render import SECTIONS
from tests.factories import make_user, unique
from tests.perf.builders import Requests, Sampled, make_registry, stored_run

SVG = "{http://www.w3.org/2000/svg}"
HOST = "http://127.0.0.1:8000/api"
EVIL = "<script>alert(1)</script>"


def sample(elapsed: float, users: int, rps: float, fps: float, p50: float | None, p95: float | None,
           endpoints: dict[str, tuple[float, float | None]] | None = None) -> Sample:
    return Sample(timestamp=1_700_000_000.0 + elapsed, elapsed=elapsed, users=users, requests_per_second=rps,
                  failures_per_second=fps, p50=p50, p95=p95, avg_response_time=p50, total_requests=0,
                  total_failures=0, p99=None if p95 is None else p95 * 1.5, endpoints=endpoints or {})


SAMPLES = [sample(5, 2, 10, 0, 20, 40, {"GET /a": (4.0, 30.0)}), sample(10, 4, 22, 1, 25, 60, {"GET /a": (9.5, 41.0)}),
           sample(15, 6, 31, 0, 30, 90, {"GET /a": (12.0, None), "POST /b": (3.0, 80.0)})]
LONG_NAME = "/organizations/{organization_slug}/events/{event_id}/ticket-tiers/{tier_id}/checkout/pay-what-you-can"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(node.itertext()) for node in root.iter(f"{SVG}text")]


def series_paths(root: ET.Element) -> dict[str, list[ET.Element]]:
    return {group.get("data-series"): list(group) for group in root.iter(f"{SVG}g") if group.get("data-series")}


def endpoints(*names: str) -> StatsRegistry:
    """30 GETs to each name in turn (5 ms slower for each next name, the first of each failing), a sample after
    each name's with one more user."""
    steps: list[Requests | Sampled] = []
    for number, name in enumerate(names, 1):
        steps += [Requests(name, [5 * number + i for i in range(30)], failing={0}),
                  Sampled(users=number, at=5 * number)]
    return make_registry(*steps)


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


def test_latency_chart_draws_p50_p95_and_p99() -> None:
    root = parse(charts.latency_chart(SAMPLES))
    assert set(series_paths(root)) == {"p50", "p95", "p99"}
    assert {"p50", "p95", "p99", "response time (ms)"} <= set(texts(root))


def test_every_line_chart_has_a_legend_and_units_on_both_axes() -> None:
    for svg in [*charts.timeline_charts(SAMPLES), *charts.endpoint_charts("GET /a", SAMPLES)]:
        root = parse(svg)
        legend = [node.text for node in root.iter(f"{SVG}text") if node.get("class") == "legend"]
        assert legend and set(legend) == set(series_paths(root)), legend
        labels = set(texts(root))
        assert "elapsed time since start" in labels and "5s" in labels  # time ticks carry their unit
        assert labels & {"running users", "per second (req/s)", "response time (ms)", "requests per second (req/s)"}


def test_timeline_charts_come_in_locusts_order() -> None:
    titles = [parse(svg).find(f"{SVG}title").text for svg in charts.timeline_charts(SAMPLES)]
    assert titles == ["Requests and failures per second", "Response times, 10 s rolling window", "Users"]


def test_endpoint_charts_draw_one_endpoints_rate_and_p95_from_the_samples() -> None:
    rate, p95 = (parse(svg) for svg in charts.endpoint_charts("GET /a", SAMPLES))
    assert rate.find(f"{SVG}title").text == "GET /a: Requests per second"
    assert p95.find(f"{SVG}title").text == "GET /a: p95 response time, 10 s rolling window"
    assert "req/s: max 12" in rate.find(f"{SVG}desc").text
    assert "p95: max 41" in p95.find(f"{SVG}desc").text
    # Before an endpoint's first request it has no rate: drawn as zero, not as a gap.
    first = parse(charts.endpoint_charts("POST /b", SAMPLES)[0])
    assert [shape.tag for shape in series_paths(first)["req/s"]] == [f"{SVG}path"]


def test_endpoint_charts_read_stored_samples_as_json_pairs() -> None:
    stored = [sample(5, 1, 1, 0, 1, 1, {"GET /a": [2.0, 7.0]})]  # a StatsSample's JSON holds lists
    assert "req/s: max 2" in parse(charts.endpoint_charts("GET /a", stored)[0]).find(f"{SVG}desc").text


def test_users_chart_y_axis_reaches_the_peak_on_a_round_value() -> None:
    labels = texts(parse(charts.users_chart([sample(5, 3, 1, 0, 1, 1), sample(10, 87, 1, 0, 1, 1)])))
    assert {"0", "20", "40", "60", "80", "100"} <= set(labels)
    assert "10s" in labels


def test_charts_without_samples_say_so() -> None:
    for svg in charts.timeline_charts([]):
        assert "No data yet" in texts(parse(svg))


def test_distribution_bars_account_for_every_request() -> None:
    registry = endpoints("/events/")
    root = parse(charts.distribution_chart("GET /events/", registry.total.histogram.to_json()))
    bars = next(group for group in root.iter(f"{SVG}g") if group.get("class") == "bars")
    counts = [int(re.search(r": ([\d,]+) \(", rect.find(f"{SVG}title").text)[1].replace(",", "")) for rect in bars]
    assert sum(counts) == 30
    assert {"10", "100"} <= set(texts(root))  # a log axis in ms: its ticks are plain numbers


def test_distribution_of_an_endpoint_without_requests_says_so() -> None:
    assert "No requests" in texts(parse(charts.distribution_chart("GET /x", {})))


def test_long_names_wrap_onto_more_lines_and_are_never_cut() -> None:
    name = f"POST {LONG_NAME}"
    root = parse(charts.distribution_chart(name, {"100": 3}))
    lines = [node.text for node in root.iter(f"{SVG}text") if node.get("font-weight") == "600" and
             node.get("font-size") == "12"]
    assert len(lines) > 1
    assert "".join(lines) == name
    assert "…" not in charts.distribution_chart(name, {"100": 3})
    assert int(root.get("height")) > charts.DISTRIBUTION_SIZE[1]


def test_wrap_text_breaks_after_separators_and_keeps_every_character() -> None:
    assert charts.wrap_text("/events/{id}/my-status", 10) == ["/events/", "{id}/my-", "status"]
    assert charts.wrap_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]
    assert charts.wrap_text("short", 10) == ["short"]


def test_distribution_chart_has_a_legend_and_labelled_axes() -> None:
    root = parse(charts.distribution_chart("GET /events/", endpoints("/events/").total.histogram.to_json()))
    labels = texts(root)
    assert "requests" in labels and any(label.startswith("p50 ") for label in labels)
    assert {"% of requests", "response time (ms, log scale)"} <= set(labels)


def test_names_are_escaped_in_every_chart() -> None:
    svg = charts.distribution_chart(EVIL, {"100": 3})
    assert "<script" not in svg
    root = parse(svg)
    assert root.find(f"{SVG}script") is None
    assert EVIL in root.find(f"{SVG}title").text


# the --html report


def report_meta(registry: StatsRegistry) -> dict:
    verdicts = evaluate([parse_threshold("p95<500ms"), parse_threshold("error_rate<1%")], registry, 30.0)
    return {
        "label": "nightly", "host": HOST, "users": 3, "status": "completed", "scenarios": ["EventBrowser"],
        "user_split": {"EventBrowser": 3}, "seed": 7, "thresholds": [verdict.as_dict() for verdict in verdicts],
        "audit": {"ok": False, "checks": [{"name": "tier quantity_sold", "ok": False, "detail": "tier 9: 3 ≠ 2"}]},
    }


@pytest.fixture
def html_report(tmp_path: Path) -> tuple[str, ET.Element]:
    registry = endpoints("/events/", EVIL)
    path = write_html(tmp_path / "out" / "report.html", registry, 30.0, RunDescription.from_json(report_meta(registry)))
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>\n")
    return text, ET.fromstring(text.split("\n", 1)[1])


def cell_texts(row: ET.Element) -> list[str]:
    return [" ".join("".join(td.itertext()).split()) for td in row.findall("td")]


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
        table = root.find(f".//section[@id='{section}']//table")
        names = [cell_texts(row)[1].removesuffix(" bottleneck") for row in table.iter("tr") if row.findall("td")]
        assert names == ["/events/", EVIL, "Aggregated"]
    failures = root.find(".//section[@id='failures']//table")
    assert cell_texts(next(row for row in failures.iter("tr") if row.findall("td")))[3] == "1"


def test_html_report_has_timeline_endpoint_and_distribution_charts(html_report: tuple[str, ET.Element]) -> None:
    _, root = html_report
    charts_section = root.find(".//section[@id='charts']")
    assert len(charts_section.findall(f"./div/figure/{SVG}svg")) == 3
    # No server to ask for another endpoint: every endpoint's charts are in the file, the slowest open.
    details = charts_section.findall(".//details")
    assert ["".join(d.find("summary").itertext()) for d in details] == ["GET /events/", f"GET {EVIL}"]
    assert [d.get("open") for d in details] == [None, "open"]
    assert all(len(d.findall(f".//{SVG}svg")) == 2 for d in details)
    titles = [svg.find(f"{SVG}title").text for svg in root.findall(".//section[@id='distribution']//" + f"{SVG}svg")]
    assert titles == [f"Response-time distribution: GET {name}" for name in ("/events/", EVIL)] + [
        "Response-time distribution: Aggregated"]


def test_html_report_shows_threshold_and_audit_verdicts_in_its_header(html_report: tuple[str, ET.Element]) -> None:
    _, root = html_report
    header = root.find(".//section[@id='summary']")
    thresholds = [cell_texts(row) for row in header.find(".//div[@id='thresholds']//tbody")]
    assert thresholds == [["p95<500ms", "36 ms", "< 500 ms", "PASS"], ["error_rate<1%", "3.33%", "< 1%", "FAIL"]]
    audit = header.find(".//div[@id='audit']")
    assert " ".join("".join(audit.find(".//summary").itertext()).split()) == "Data-integrity audit FAIL 1 check"
    assert [" ".join("".join(li.itertext()).split()) for li in audit.iter("li")] == [
        "FAIL tier quantity_sold: tier 9: 3 ≠ 2"]


def test_html_report_keeps_options_last_and_collapsed(html_report: tuple[str, ET.Element]) -> None:
    _, root = html_report
    sections = root.findall(".//main/section")
    assert [section.get("id") for section in sections] == [
        "summary", "figures", "charts", "requests", "response-times", "distribution", "failures", "options"]
    options = sections[-1].find("details")
    assert options.get("open") is None
    rows = {row.find("th").text: "".join(row.find("td").itertext()) for row in options.iter("tr")}
    assert rows["Seed"] == "7" and rows["User split"] == "EventBrowser 3"


def test_html_report_and_admin_page_share_their_section_templates(orm, tmp_path: Path) -> None:
    """The same sections, from the same templates: their headings and tables match word for word."""
    registry = endpoints("/events/", "/auth/token/pair")
    run = stored_run(registry, duration=30.0, label=unique("shared"), host=HOST, users=3,
                     thresholds=report_meta(registry)["thresholds"])
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    page = client.get(f"/admin/perf/perfrun/{run.pk}/change/").content.decode()
    file = write_html(tmp_path / "r.html", registry, 30.0, RunDescription.from_json(
        {"status": "completed", "host": HOST, "users": 3, "thresholds": report_meta(registry)["thresholds"]}))
    text = file.read_text()
    for section_id in ("requests", "response-times", "failures"):
        inner = re.search(rf'<section id="{section_id}"[^>]*>(.*?)</section>', text, re.DOTALL).group(1)
        assert inner in page, section_id
    for name in {section.name for section in SECTIONS}:
        assert f'data-perf-section="{name}"' in page
