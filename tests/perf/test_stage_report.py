"""The Stages section of the run page and the HTML report (issue 20), over real HTTP: a stored run that followed a
load profile shows one row per stage with its span, req/s, percentiles, failures and each threshold's verdict for
that stage; a plain run shows none; the HTML file (the download, and run_perf's own --html) has it too. And the
console's per-stage table, which run_perf prints at the end of such a run, with a line for each stage's failed
threshold.

Runs are stored as run_perf stores them (tests/perf/staged.py): the registry marked at each stage boundary,
``perf.load.stage_figures`` computing each stage's figures and verdicts.
"""

import html
import re
import xml.etree.ElementTree as ET

import pytest

from perf.load.stage_figures import stage_figures
from perf.load.thresholds import parse_threshold
from perf.models import PerfRun
from perf.reports import console
from tests.adminclient import AdminClient
from tests.factories import PASSWORD, make_user, unique
from tests.liveserver import run_perf
from tests.perf.builders import stored_run
from tests.perf.staged import ENDPOINT, staged_registry, stored_staged_run

CHANGELIST = "/admin/perf/perfrun/"


def text(markup: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup))).strip()


def stage_rows(page: str) -> list[str]:
    """Each stage row of the page's Stages section, as text."""
    section = re.search(r'<section id="stages"[^>]*>(.*?)</section>', page, re.S)
    assert section is not None, "no Stages section"
    return [text(row) for row in re.findall(r"<tr data-stage=.*?</tr>", section.group(1), re.S)]


@pytest.fixture
def admin(orm, live_server_process) -> AdminClient:
    email = f"{unique('stages-admin')}@example.com"
    make_user(username=email, email=email, is_staff=True, is_superuser=True)
    return AdminClient(live_server_process.root).login(email, PASSWORD)


def page(admin: AdminClient, run: PerfRun, path: str = "") -> str:
    response = admin.get(f"{CHANGELIST}{run.pk}/{path}")
    assert response.status_code == 200, response.text[-2000:]
    return response.text


def test_the_run_page_shows_each_stage_with_its_figures_and_verdicts(admin: AdminClient) -> None:
    # Stage 2 is slow (150 ms against p95<100ms) and has 3 failures out of 30; stages 1 and 3 are quick.
    run = stored_staged_run([20, 150, 20], thresholds=("p95<100ms", "error_rate<5%"), failures=[0, 3, 0])
    rows = stage_rows(page(admin, run, "change/"))
    assert rows == [
        "stage 1 (0 → 4) 0s – 10s 30 3.0 20 20 20 0 (0.00%) 20 ms PASS 0% PASS",
        "stage 2 (4 → 4) 10s – 30s 30 1.5 150 150 150 3 (10.00%) 150 ms FAIL 10% FAIL",
        "stage 3 (4 → 0) 30s – 40s 30 3.0 20 20 20 0 (0.00%) 20 ms PASS 0% PASS",
    ]
    section = re.search(r'<section id="stages".*?</section>', page(admin, run, "change/"), re.S).group(0)
    headers = [text(cell) for cell in re.findall(r"<th[^>]*>.*?</th>", section, re.S)]
    assert headers == ["Stage", "Time", "# Requests", "Req/s", "p50 (ms)", "p95 (ms)", "p99 (ms)", "Failures",
                       "p95<100ms", "error_rate<5%"]
    assert "The targets in the names are users" in text(section)


def test_a_run_that_ended_inside_a_stage_says_how_long_it_ran_there(admin: AdminClient) -> None:
    # Only two stages reached: the second ran to the run's end, 30 s, its whole span; a run cut at 25 s ran 15 s.
    run = stored_staged_run([20, 40])
    PerfRun.objects.filter(pk=run.pk).update(stages=[{**run.stages[0]}, {**run.stages[1], "seconds": 15.0}])
    rows = stage_rows(page(admin, run, "change/"))
    assert len(rows) == 2 and rows[1].startswith("stage 2 (4 → 4) 10s – 30s ran 15s 30"), rows


def test_a_plain_run_has_no_stages_section(admin: AdminClient) -> None:
    from perf.load.stats import StatsRegistry

    stats = StatsRegistry(start_time=1_700_000_000.0)
    for _ in range(10):
        stats.record("GET", "/events/", 12.0, 100)
    plain = page(admin, stored_run(stats), "change/")
    # The live page keeps every section's place so a running run can fill it in; this one is empty and hidden.
    assert re.search(r'<section id="stages" class="perf-section" data-perf-section="stages" hidden="hidden">'
                     r"</section>", plain), re.findall(r'<section id="stages".*?</section>', plain, re.S)
    assert "perf-table perf-stages" not in plain


def test_a_stored_stage_that_does_not_hold_the_layout_shows_dashes_and_the_page_opens(admin: AdminClient) -> None:
    run = stored_staged_run([20, 40])
    PerfRun.objects.filter(pk=run.pk).update(stages=[
        {"index": 0, "name": "stage 1 (0 → 4)", "requests": "many", "thresholds": [{"ok": "yes"}, 7]},
        "not a stage",
    ])
    rows = stage_rows(page(admin, run, "change/"))
    assert rows == ["stage 1 (0 → 4) — – — — — — — — — —"], rows


def test_the_html_download_has_the_stages_section(admin: AdminClient) -> None:
    staged = stored_staged_run([20, 150, 20])
    document = page(admin, staged, "download/html/")
    rows = stage_rows(document)
    # The file stays well-formed XML after its doctype, as every report file is, with the section in its place.
    sections = ET.fromstring(document.split("\n", 1)[1]).findall(".//main/section")
    assert [section.get("id") for section in sections][:4] == ["summary", "figures", "stages", "charts"]
    assert [row.split(" 0s")[0].split(" 10s")[0].split(" 30s")[0] for row in rows] == [
        "stage 1 (0 → 4)", "stage 2 (4 → 4)", "stage 3 (4 → 0)"]
    assert rows[1].endswith("150 ms FAIL") and rows[0].endswith("20 ms PASS")
    plain = page(admin, stored_run(), "download/html/")
    assert 'id="stages"' not in plain and 'id="requests"' in plain


@pytest.mark.slow
def test_run_perfs_own_html_file_has_a_row_per_stage(seeded, live_server_process, orm, tmp_path) -> None:
    report = tmp_path / "report.html"
    label = unique("stages-html")
    result = run_perf(seeded, "--stages", "2s:3,2s:3", "--wait", "0.02,0.05", "--scenario", "EventBrowser",
                      "--no-audit", "--host", live_server_process.url, "--label", label, "--threshold", "p95<10s",
                      "--html", str(report))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = stage_rows(report.read_text())
    assert [row.split(" 0s")[0].split(" 2.0s")[0] for row in rows] == ["stage 1 (0 → 3)", "stage 2 (3 → 3)"], rows
    assert all(row.endswith("PASS") for row in rows), rows
    stored = PerfRun.objects.get(label=label)
    assert len(stored.stages) == 2
    for row, stage in zip(rows, stored.stages, strict=True):
        assert stage["requests"] > 0 and f" {stage['requests']:,} " in row, (row, stage)


def test_the_console_prints_each_stages_figures_and_a_line_for_each_threshold_a_stage_failed() -> None:
    # As the run page's: stage 2 slow (150 ms against p95<100ms) with 3 failures out of 30, stages 1 and 3 quick.
    stats, profile = staged_registry([20, 150, 20], failures=[0, 3, 0])
    rules = [parse_threshold("p95<100ms"), parse_threshold("error_rate<5%")]
    stages = stage_figures(stats, profile.spans(), 40.0, rules)
    assert console.stages_table(stages).splitlines() == [
        "Per stage of the load profile",
        "Stage   Time   Target     # reqs   req/s   50%   95%   99%   # fails   Thresholds",
        "-------|------|--------|--------|-------|-----|-----|-----|---------|------------",
        "1       0-10s  0 → 4          30    3.00    20    20    20  0(0.00%)          2/2",
        "2       10-30s 4 → 4          30    1.50   150   150   150 3(10.00%)          0/2",
        "3       30-40s 4 → 0          30    3.00    20    20    20  0(0.00%)          2/2",
    ]
    assert console.stage_verdict_lines(stages) == [
        "FAIL stage 2: p95<100ms: 150 ms", "FAIL stage 2: error_rate<5%: 10%"]


def test_the_console_says_how_long_a_run_that_ended_inside_a_stage_ran_there() -> None:
    # Stopped at 25 s, in stage 2: its requests came in the 15 s it ran, not in its 20 s span; no stage 3. Stage 2
    # has 30 requests at 40 ms and 100 more at 1, 2, … 100 ms: of its 130, the median is 40 ms, the 95th percentile
    # the 124th (94 ms) and the 99th the 129th (99 ms, 100 within the histogram's 1 %).
    stats, profile = staged_registry([20, 40])
    for ms in range(1, 101):
        stats.record("GET", ENDPOINT, float(ms), 500)
    stages = stage_figures(stats, profile.spans(), 25.0)
    assert console.stages_table(stages).splitlines()[3:] == [
        "1       0-10s            0 → 4          30    3.00    20    20    20  0(0.00%)            -",
        "2       10-30s (ran 15s) 4 → 4         130    8.67    40    94   100  0(0.00%)            -",
    ]
    assert console.stage_verdict_lines(stages) == []
