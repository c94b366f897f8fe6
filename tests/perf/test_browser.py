"""The admin as a person sees it: headless Chromium logs in, opens stored runs, the compare page and the
``--html`` report, at 1,400 px wide (the run list also on a 390 px phone), and starts, watches and stops a
run from the New run page.

Chromium as every browser test module drives it (tests/perf/browser.py). The pages come from the live gunicorn,
the page's script included (it is the only way to see a running run's page update itself).
"""

import shutil
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from perf.load.stats import StatsRegistry
from perf.models import PerfRun
from perf.reports.description import RunDescription
from perf.reports.html_report import write_html
from perf.store.persist import finish_run, save_progress
from tests.factories import unique
from tests.perf.browser import (
    BROWSER_MARKS,
    SHOTS,
    WIDTH,
    assert_nothing_scrolls_sideways,
    chromium,
    full_page_screenshot,
    log_in,
    logged_in_chromium,
    superuser_email,
)
from tests.perf.builders import stored_run

LONG_NAME = ("/organizations/{organization_slug}/events/{event_id}/ticket-tiers/{tier_id}/checkout/pay-what-you-can/"
             "confirm-and-send-the-receipt-by-email [BOTTLENECK]")
ENDPOINTS = ("/events/", "/events/{id}/my-status [BOTTLENECK]", LONG_NAME)
START = 1_700_000_000.0

pytestmark = BROWSER_MARKS


def load(slowdown: float, steps: int = 8) -> StatsRegistry:
    registry = StatsRegistry(start_time=START)
    for step in range(1, steps + 1):
        for i in range(10 * step):
            registry.record("GET", ENDPOINTS[0], (8 + i % 13) * slowdown, 2_000)
            registry.record("GET", ENDPOINTS[1], (40 + i % 37) * slowdown, 300, "HTTPError('503')" if i == 7 else None)
            registry.record("POST", ENDPOINTS[2], (90 + i % 50) * slowdown, 800)
        registry.take_sample(users=min(2 * step, 8), now=START + 5 * step)
    return registry


def slowed_run(label: str, slowdown: float) -> PerfRun:
    """A finished run of ``load(slowdown)``, its first four samples stored while it ran."""
    return stored_run(load(slowdown), duration=40.0, samples_while_running=4, label=label, users=8, spawn_rate=2.0,
                      planned_duration=40.0, scenarios=["EventBrowser", "RSVPUser"],
                      user_split={"EventBrowser": 5, "RSVPUser": 3})


def running_run(label: str, steps: int = 8) -> tuple[PerfRun, StatsRegistry]:
    """A run as its process leaves it between two ticks: the figures so far written, status running."""
    registry = load(1.0, steps)
    run = stored_run(label=label, users=8, spawn_rate=2.0, planned_duration=120.0)
    save_progress(run, registry, 5.0 * steps)
    return run, registry


@pytest.fixture(scope="module")
def runs(django_db_setup, django_db_blocker) -> tuple[PerfRun, PerfRun]:
    with django_db_blocker.unblock():
        return slowed_run(unique("browser-a"), 1.0), slowed_run(unique("browser-b"), 1.3)


@pytest.fixture(scope="module")
def admin_login(django_db_setup, django_db_blocker) -> str:
    with django_db_blocker.unblock():
        return superuser_email("admin")


@pytest.fixture(scope="module")
def browser(live_server_process, admin_login: str) -> Iterator[WebDriver]:
    """One logged-in Chromium for the module: starting a browser costs more than a page."""
    with logged_in_chromium(live_server_process.root, admin_login) as driver:
        yield driver


def assert_names_whole(driver: WebDriver) -> None:
    """Every endpoint name cell shows its whole name: wrapped, not cut or hidden."""
    cells = driver.find_elements(By.CSS_SELECTOR, "td.perf-name")
    assert cells
    for cell in cells:
        assert driver.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", cell), cell.text
        assert "…" not in cell.text
    names = {cell.text.removesuffix("bottleneck").strip() for cell in cells}
    assert LONG_NAME in names


def test_run_page_at_1400_px_fits_and_shows_whole_names(
    browser: WebDriver, live_server_process, runs: tuple[PerfRun, PerfRun], tmp_path: Path
) -> None:
    browser.get(f"{live_server_process.root}/admin/perf/perfrun/{runs[0].pk}/change/")
    assert browser.execute_script("return window.innerWidth") == WIDTH
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.perf-chart")
    assert len(charts) >= 3 + 2 + len(ENDPOINTS) + 1
    assert all(chart.size["width"] > 300 and chart.size["height"] > 100 for chart in charts)
    assert_nothing_scrolls_sideways(browser)
    assert_names_whole(browser)
    # The per-endpoint charts are about the slowest endpoint, named in full above them.
    assert browser.find_element(By.CSS_SELECTOR, ".perf-endpoint-name").text == f"POST {LONG_NAME}"
    # Charts are above the fold: the first timeline chart starts within the first screen.
    first_chart = browser.find_element(By.CSS_SELECTOR, "#charts svg.perf-chart")
    assert first_chart.location["y"] < 900
    options = browser.find_element(By.CSS_SELECTOR, "#options details")
    assert options.get_attribute("open") is None
    full_page_screenshot(browser, tmp_path / "run-page.png")


def test_endpoint_chooser_switches_charts_without_a_reload(
    browser: WebDriver, live_server_process, runs: tuple[PerfRun, PerfRun]
) -> None:
    browser.get(f"{live_server_process.root}/admin/perf/perfrun/{runs[0].pk}/change/")
    browser.execute_script("window.perfNoReload = true")
    assert not browser.find_element(By.CSS_SELECTOR, ".perf-endpoint-form button").is_displayed()
    Select(browser.find_element(By.CSS_SELECTOR, "select[data-perf-endpoint]")).select_by_value("GET /events/")
    # The script swaps the chart's elements: one read may find the element it was given gone.
    WebDriverWait(browser, 10, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda driver: driver.find_element(By.CSS_SELECTOR, ".perf-endpoint-name").text == "GET /events/")
    assert browser.execute_script("return window.perfNoReload") is True
    assert "endpoint=GET" in browser.current_url
    titles = [svg.get_attribute("aria-label") or svg.find_element(By.TAG_NAME, "title").get_attribute("textContent")
              for svg in browser.find_elements(By.CSS_SELECTOR, "#charts figure.perf-endpoint-figure svg")]
    assert titles and all(title.startswith("GET /events/: ") for title in titles)


def test_a_running_runs_page_updates_itself(browser: WebDriver, live_server_process, orm, tmp_path: Path) -> None:
    run, _ = running_run(unique("browser-live"))
    browser.get(f"{live_server_process.root}/admin/perf/perfrun/{run.pk}/change/")
    browser.execute_script("window.perfNoReload = true")
    requests_figure = "//section[@id='figures']//dt[text()='Requests']/following-sibling::dd"
    before = browser.find_element(By.XPATH, requests_figure).text
    assert browser.find_element(By.CSS_SELECTOR, "#summary .perf-status").text == "running"
    assert browser.find_elements(By.CSS_SELECTOR, "#summary form button.perf-stop-button")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#charts svg.perf-chart")) == 5
    full_page_screenshot(browser, tmp_path / "running-run-page.png")

    # The process writes its next tick: more requests, two more samples.
    registry = load(1.0, steps=10)
    save_progress(run, registry, 50.0)
    after = f"{registry.total.num_requests:,}"
    assert after != before
    # The page swaps its sections in as they come: an element found just before a swap is stale, so look again.
    live = WebDriverWait(browser, 15, ignored_exceptions=[StaleElementReferenceException])
    live.until(lambda driver: driver.find_element(By.XPATH, requests_figure).text == after)

    # The run ends: the page shows it and stops asking.
    finish_run(run, registry, "completed", duration=50.0)
    live.until(
        lambda driver: driver.find_element(By.CSS_SELECTOR, "#summary .perf-status").text == "completed")
    assert browser.execute_script("return window.perfNoReload") is True
    assert not browser.find_elements(By.CSS_SELECTOR, "#summary form button.perf-stop-button")
    assert browser.find_element(By.CSS_SELECTOR, "[data-perf-live-url]").get_attribute("data-perf-status") == \
        "completed"
    assert not browser.find_elements(By.XPATH, "//section[@id='figures']//h2[text()='Now']")


def test_stale_running_run_says_its_process_may_have_died(
    browser: WebDriver, live_server_process, orm
) -> None:
    run, _ = running_run(unique("browser-stale"))
    # Past the page's 30 s warning, short of PERF_LOST_AFTER (60 s), when the run becomes lost.
    PerfRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=40))
    browser.get(f"{live_server_process.root}/admin/perf/perfrun/{run.pk}/change/")
    assert "may have died" in browser.find_element(By.CSS_SELECTOR, "#summary .perf-notes").text


def test_a_dead_run_shows_lost_on_its_live_page_and_on_the_list(
    browser: WebDriver, live_server_process, orm, tmp_path: Path
) -> None:
    run, registry = running_run(unique("browser-lost"))
    browser.get(f"{live_server_process.root}/admin/perf/perfrun/{run.pk}/change/")
    browser.execute_script("window.perfNoReload = true")
    assert browser.find_element(By.CSS_SELECTOR, "#summary .perf-status").text == "running"
    assert browser.find_element(By.CSS_SELECTOR, "form.perf-mark").is_displayed()  # Mark lost / Mark failed

    # Its process dies: the last progress write stays the last, and the page's next poll finds it silent
    # for longer than PERF_LOST_AFTER (the session's server keeps the default, 60 s).
    last = timezone.now() - timedelta(seconds=90)
    PerfRun.objects.filter(pk=run.pk).update(heartbeat_at=last)
    live = WebDriverWait(browser, 15, ignored_exceptions=[StaleElementReferenceException])
    live.until(lambda driver: driver.find_element(By.CSS_SELECTOR, "#summary .perf-status").text == "lost")
    said = f"lost: its process stopped answering at {last:%H:%M:%S} UTC; figures up to then are kept"
    assert said in browser.find_element(By.CSS_SELECTOR, "#summary .perf-notes").text
    assert browser.execute_script("return window.perfNoReload") is True  # the page was not reloaded
    assert browser.find_element(By.CSS_SELECTOR, "[data-perf-live-url]").get_attribute("data-perf-status") == "lost"
    assert not browser.find_elements(By.CSS_SELECTOR, "#summary form button.perf-stop-button")
    assert not browser.find_element(By.CSS_SELECTOR, "form.perf-mark").is_displayed()
    requests_figure = "//section[@id='figures']//dt[text()='Requests']/following-sibling::dd"
    assert browser.find_element(By.XPATH, requests_figure).text == f"{registry.total.num_requests:,}"
    full_page_screenshot(browser, tmp_path / "lost-run-page.png")

    browser.get(f"{live_server_process.root}/admin/perf/perfrun/?status__exact=lost")
    row = browser.find_element(By.XPATH, f"//tr[.//a[contains(@href, '/perfrun/{run.pk}/change/')]]")
    badge = row.find_element(By.CSS_SELECTOR, ".perf-status")
    assert badge.text == "lost" and "perf-status-lost" in badge.get_attribute("class")
    assert badge.value_of_css_property("background-color") != row.find_element(
        By.CSS_SELECTOR, "td, th").value_of_css_property("background-color")


def test_html_report_at_1400_px_fits_and_shows_whole_names(tmp_path: Path) -> None:
    path = write_html(tmp_path / "report.html", load(1.0), 40.0, RunDescription(
        label="browser", status="completed", host="http://127.0.0.1:8000/api", users=8))
    driver, profile = chromium()
    try:
        driver.get(path.as_uri())
        assert_nothing_scrolls_sideways(driver)
        assert_names_whole(driver)
        full_page_screenshot(driver, tmp_path / "html-report.png")
    finally:
        driver.quit()
        profile.cleanup()


def test_compare_page_fits_at_1400_px_p50_to_p99_in_view(
    browser: WebDriver, live_server_process, runs: tuple[PerfRun, PerfRun], tmp_path: Path
) -> None:
    first, second = runs
    browser.get(f"{live_server_process.root}/admin/perf/perfrun/compare/?a={first.pk}&b={second.pk}")
    table = browser.find_element(By.CSS_SELECTOR, "table#compare-table")
    assert all(name in table.text.replace("\n", " ") for name in ENDPOINTS)
    viewport = browser.execute_script("return document.documentElement.clientWidth")
    assert table.location["x"] + table.size["width"] <= viewport, (table.size, viewport)
    for label in ("p50", "p95", "p99"):
        header = table.find_element(By.XPATH, f".//thead//th[normalize-space()='{label}']")
        assert header.location["x"] >= 0 and header.location["x"] + header.size["width"] <= viewport, label
    assert_nothing_scrolls_sideways(browser)
    full_page_screenshot(browser, tmp_path / "compare-page.png")


PHONE = 390


def test_run_list_fits_a_phone(live_server_process, admin_login: str, runs: tuple[PerfRun, PerfRun],
                               tmp_path: Path) -> None:
    """At 390 px the key columns (label, status, p95, error %) fit without sideways scrolling."""
    driver, profile = chromium()
    try:
        log_in(driver, live_server_process.root, admin_login)
        # A desktop window cannot be that narrow: the phone's viewport, as the browser's device mode sets it.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": PHONE, "height": 844, "deviceScaleFactor": 1, "mobile": True})
        driver.get(f"{live_server_process.root}/admin/perf/perfrun/")
        viewport = driver.execute_script("return document.documentElement.clientWidth")
        assert viewport == PHONE
        table = driver.find_element(By.ID, "result_list")
        assert table.location["x"] + table.size["width"] <= viewport, (table.size, viewport)
        results = driver.find_element(By.CSS_SELECTOR, "#changelist .results")
        assert driver.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", results)
        shown = [th.text.lower() for th in table.find_elements(By.CSS_SELECTOR, "thead th") if th.is_displayed()]
        for key in ("label", "status", "p95 (ms)", "error %"):
            assert key in shown, shown
        assert_nothing_scrolls_sideways(driver)
        driver.save_screenshot(str(tmp_path / "run-list-phone.png"))
        shutil.copy(tmp_path / "run-list-phone.png", SHOTS / "perf-run-list-phone.png")
    finally:
        driver.quit()
        profile.cleanup()


def _request_count(driver: WebDriver) -> int:
    """The live page's request count (the "Requests" key figure), as a person reads it; 0 while the page says the
    run is starting (no figures yet); -1 when the page's script swapped the section between finding a figure and
    reading it (the next poll reads the new one)."""
    try:
        for tile in driver.find_elements(By.CSS_SELECTOR, "[data-perf-section=figures] dl.perf-figures > div"):
            if tile.find_element(By.TAG_NAME, "dt").text.strip() == "Requests":
                return int(tile.find_element(By.TAG_NAME, "dd").text.split()[0].replace(",", ""))
        if driver.find_elements(By.CSS_SELECTOR, "[data-perf-section=figures] .perf-starting"):
            return 0
    except StaleElementReferenceException:
        return -1
    raise AssertionError("no Requests figure on the page, and no word that the run is starting")


def _log(driver: WebDriver) -> str:
    """The run's output as its page shows it ("" before it has any)."""
    try:
        return "\n".join(pre.text for pre in driver.find_elements(By.CSS_SELECTOR, "#output pre.perf-log"))
    except StaleElementReferenceException:
        return ""


FIRST_FIGURES_WITHIN = 3.0  # seconds from the click on Start to the first figures on the page, on this machine


@pytest.mark.slow
def test_start_a_run_from_the_new_run_page_watch_it_and_stop_it(
    browser: WebDriver, live_server_process, seeded, quiet, tmp_path: Path
) -> None:
    """The whole loop from the browser alone: New run (its host as offered), first figures within 3 s, the live page
    counting up and showing the run's output, Stop, and a page on which nothing says running or stopping any more."""
    label = unique("browser-new-run")
    browser.get(live_server_process.root + "/admin/perf/perfrun/")
    browser.find_element(By.CSS_SELECTOR, ".object-tools a.addlink").click()
    form = {"id_users": "3", "id_spawn_rate": "10", "id_duration": "3m", "id_wait": "0.05,0.2", "id_label": label}
    for field, value in form.items():
        element = browser.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)
    # The host offered, and used as it is: this page's own server (on a port of its own), not PERF_HOST's :8000.
    assert browser.find_element(By.ID, "id_host").get_attribute("value") == live_server_process.url
    assert "Offered: this page's own server" in browser.find_element(By.CSS_SELECTOR, ".field-host .help").text
    browser.find_element(By.CSS_SELECTOR, "input[value=EventBrowser]").click()
    browser.find_element(By.ID, "id_run_anyway").click()  # what the page says of a running run is tested elsewhere
    full_page_screenshot(browser, tmp_path / "new-run.png")
    start = browser.find_element(By.CSS_SELECTOR, "#new-run input[type=submit]")
    clicked = time.monotonic()
    start.click()

    try:
        first = WebDriverWait(browser, 40, poll_frequency=0.05).until(
            lambda driver: "/change/" in driver.current_url and max(_request_count(driver), 0))
        first_figures = time.monotonic() - clicked
        run = PerfRun.objects.get(label=label)
        assert browser.current_url.endswith(f"/admin/perf/perfrun/{run.pk}/change/")
        assert first_figures < FIRST_FIGURES_WITHIN, f"the first figures came {first_figures:.2f} s after Start"
        browser.execute_script("window.perfNoReload = true")
        live = WebDriverWait(browser, 20)
        live.until(lambda driver: _request_count(driver) > first)  # no reload: the script
        # The run's own output, growing as it goes: its first line, then a progress line.
        live.until(lambda driver: "Running 3 users (EventBrowser 3)" in _log(driver))
        live.until(lambda driver: "s of 3m 00s] users" in _log(driver))
        assert browser.execute_script("return window.perfNoReload") is True
        full_page_screenshot(browser, tmp_path / "live-run-page.png")

        browser.find_element(By.CSS_SELECTOR, "form.perf-stop button").click()
        # The click posts and the page reloads: the message list found may be the old page's, gone a moment later.
        WebDriverWait(browser, 10, ignored_exceptions=[StaleElementReferenceException]).until(
            lambda driver: "Stopping run" in driver.find_element(By.CSS_SELECTOR, "ul.messagelist").text)
        browser.execute_script("window.perfNoReload = true")
        WebDriverWait(browser, 30, ignored_exceptions=[StaleElementReferenceException]).until(
            lambda driver: "aborted" in driver.find_element(By.CSS_SELECTOR, "[data-perf-section=header]").text)
    finally:  # however the test went, the run's process stops within 2 s
        PerfRun.objects.filter(label=label, status=PerfRun.Status.RUNNING, stop_requested_at__isnull=True).update(
            stop_requested_by="test", stop_requested_at=timezone.now())
    run.refresh_from_db()
    assert run.status == PerfRun.Status.ABORTED and run.total_requests > 0
    assert run.stop_reason.startswith("stopped from the admin by ")
    assert str(run.total_requests) in browser.page_source.replace(",", "")
    # Nothing on the page says running or stopping any more: the title, the breadcrumb, the messages.
    assert browser.execute_script("return window.perfNoReload") is True
    assert browser.find_element(By.CSS_SELECTOR, "ul.messagelist").text == \
        f"Run {run.pk} has ended, aborted: {run.stop_reason}."
    crumbs = browser.find_element(By.CSS_SELECTOR, ".breadcrumbs").text
    assert "running" not in browser.title and "running" not in crumbs
    header = browser.find_element(By.CSS_SELECTOR, "[data-perf-section=header]").text
    assert "stopping" not in header.lower() and not browser.find_elements(By.CSS_SELECTOR, "form.perf-stop")
    # The process prints on after storing the run (the tables, its last line): the page reads its output on.
    WebDriverWait(browser, 15).until(lambda driver: f"Run {run.pk} aborted: " in _log(driver))
    assert f"Stopped early: {run.stop_reason}" in _log(browser)
    full_page_screenshot(browser, tmp_path / "stopped-run-page.png")
