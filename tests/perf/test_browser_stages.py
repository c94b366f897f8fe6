"""Load profiles in Chromium: the New run page's stages editor (a preset, rows edited, added and removed, the text
typed by hand), its sketch, the fields the stages set, and the submitted stages; and a staged run's page, with the
stage under way, the target beside the users and the stage boundaries (its screenshot is docs/load-profile.png).

The submitted run is started with ``run_perf --stages``; its live page is watched moving from one stage to the next,
and the run stopped.
"""

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.utils import timezone
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from perf.models import PerfRun
from tests.factories import unique
from tests.perf.browser import (
    BROWSER_MARKS,
    SHOTS,
    full_page_screenshot,
    logged_in_chromium,
    set_value,
    superuser_email,
)
from tests.perf.staged import running_staged_run, stages_profile

pytestmark = BROWSER_MARKS
SCREENSHOT_STAGES = "30s:10,1m:10,30s:30,1m:30,30s:0"


@pytest.fixture
def browser(live_server_process, orm) -> Iterator[WebDriver]:
    with logged_in_chromium(live_server_process.root, superuser_email("stages-admin")) as driver:
        yield driver


def stages_text(driver: WebDriver) -> str:
    return driver.find_element(By.ID, "id_stages").get_attribute("value")


def rows(driver: WebDriver) -> list[tuple[str, str]]:
    return [(row.find_element(By.CSS_SELECTOR, ".perf-stage-duration").get_attribute("value"),
             row.find_element(By.CSS_SELECTOR, ".perf-stage-target").get_attribute("value"))
            for row in driver.find_elements(By.CSS_SELECTOR, ".perf-stage-row")]


def sketch_title(driver: WebDriver) -> str:
    return driver.find_element(By.CSS_SELECTOR, ".perf-stages-sketch svg title").get_attribute("textContent")


def stage_shown(driver: WebDriver) -> str:
    """The live page's "Stage" figure ("2 of 3"), "" while it shows none."""
    found = driver.find_elements(By.XPATH, "//section[@id='figures']//dt[text()='Stage']/following-sibling::dd")
    return found[0].text.split("\n")[0] if found else ""


def set_by_stages(driver: WebDriver) -> list[bool]:
    return [not driver.find_element(By.ID, name).is_enabled() for name in ("id_users", "id_spawn_rate", "id_duration")]


def test_build_a_three_stage_profile_with_a_preset_and_the_editor_see_its_sketch_and_submit_it(
    browser: WebDriver, live_server_process, seeded, quiet, tmp_path: Path
) -> None:
    browser.get(live_server_process.root + "/admin/perf/perfrun/add/")
    assert set_by_stages(browser) == [False] * 3 and not rows(browser)

    # A preset fills the rows from the Users field's peak (10): the spike, 10 × 3 over a base of 10 / 4.
    browser.find_element(By.CSS_SELECTOR, "button[data-preset=spike]").click()
    assert stages_text(browser) == "1m:3,10s:30,1m:30,10s:3,1m:3,10s:0"
    assert len(rows(browser)) == 6 and set_by_stages(browser) == [True] * 3
    assert sketch_title(browser) == "Load profile: 6 stages, 3m30s in all, up to 30 users"
    assert len(browser.find_elements(By.CSS_SELECTOR, ".perf-stages-sketch .perf-stages-boundary")) == 5

    # Edited down to three stages: the last three removed, the others changed, one added and removed again.
    for _ in range(3):
        browser.find_elements(By.CSS_SELECTOR, ".perf-stage-remove")[-1].click()
    for number, (duration, target) in enumerate([("10s", "2"), ("20s", "2"), ("5s", "0")], start=1):
        set_value(browser, f".perf-stage-row:nth-child({number}) .perf-stage-duration", duration)
        set_value(browser, f".perf-stage-row:nth-child({number}) .perf-stage-target", target)
    browser.find_element(By.CSS_SELECTOR, ".perf-stage-add").click()
    assert rows(browser)[-1] == ("1m", "2") and stages_text(browser) == "10s:2,20s:2,5s:0,1m:2"
    browser.find_elements(By.CSS_SELECTOR, ".perf-stage-remove")[-1].click()
    assert rows(browser) == [("10s", "2"), ("20s", "2"), ("5s", "0")]
    assert stages_text(browser) == "10s:2,20s:2,5s:0"
    assert sketch_title(browser) == "Load profile: 3 stages, 35s in all, up to 2 users"
    points = browser.find_element(By.CSS_SELECTOR, ".perf-stages-line").get_attribute("points").split()
    assert len(points) == 4 and points[1].split(",")[1] == points[2].split(",")[1]  # the hold is flat

    # The text is the editor's other face: typed by hand, the rows follow; emptied, the three fields come back.
    set_value(browser, "#id_stages", "30s:1,1m:1")
    assert rows(browser) == [("30s", "1"), ("1m", "1")]
    browser.find_element(By.ID, "id_stages").clear()
    browser.find_element(By.ID, "id_stages").send_keys(" ")
    assert not rows(browser) and set_by_stages(browser) == [False] * 3
    set_value(browser, "#id_stages", "10s:2,20s:2,5s:0")
    assert len(rows(browser)) == 3 and set_by_stages(browser) == [True] * 3

    label = unique("browser-stages")
    set_value(browser, "#id_label", label)
    set_value(browser, "#id_wait", "0.05,0.2")
    browser.find_element(By.CSS_SELECTOR, "input[value=EventBrowser]").click()
    browser.find_element(By.ID, "id_run_anyway").click()
    full_page_screenshot(browser, tmp_path / "new-run-stages.png")
    browser.find_element(By.CSS_SELECTOR, "#new-run input[type=submit]").click()

    try:
        # The run's page, or the New run page sent back with the refusal (run_perf without --stages says so).
        WebDriverWait(browser, 40).until(lambda driver: "/change/" in driver.current_url
                                         or driver.find_elements(By.CSS_SELECTOR, "p.errornote"))
        assert "/change/" in browser.current_url, browser.find_element(By.CSS_SELECTOR, "p.errornote").text
        live = WebDriverWait(browser, 30, ignored_exceptions=[StaleElementReferenceException])
        first = live.until(stage_shown)  # stage 1 lasts 10 s: the page may first show it or already stage 2
        assert first in ("1 of 3", "2 of 3"), first
        live.until(lambda driver: stage_shown(driver) not in ("", first))  # the page moves on by itself
        full_page_screenshot(browser, tmp_path / "staged-live-run.png")
    finally:
        PerfRun.objects.filter(label=label, status=PerfRun.Status.RUNNING, stop_requested_at__isnull=True).update(
            stop_requested_by="test", stop_requested_at=timezone.now())
    deadline = time.monotonic() + 30
    while PerfRun.objects.filter(label=label, status=PerfRun.Status.RUNNING).exists() and time.monotonic() < deadline:
        time.sleep(0.2)


def test_a_staged_runs_page_shows_its_stage_the_target_and_the_boundaries(
    browser: WebDriver, live_server_process, tmp_path: Path
) -> None:
    run = running_staged_run(unique("staged-page"), 150.0, stages_profile(SCREENSHOT_STAGES), SCREENSHOT_STAGES)
    browser.get(f"{live_server_process.root}/admin/perf/perfrun/{run.pk}/change/")
    figures = browser.find_element(By.CSS_SELECTOR, "#figures").text
    assert "Stage\n4 of 5\nholding 30 users" in figures and "Left in stage\n30s" in figures, figures
    users_chart = browser.find_element(By.XPATH, "//*[local-name()='svg'][*[local-name()='title' and text()='Users']]")
    assert users_chart.find_elements(By.CSS_SELECTOR, "g[data-series='target users'] path")
    assert len(users_chart.find_elements(By.CSS_SELECTOR, "g.stage-mark")) == 3  # stages 2, 3, 4 have begun
    full_page_screenshot(browser, tmp_path / "staged-run-page.png")
    # What docs/load-profile.png shows: the page's first screen, the stage under way and the charts.
    size = browser.get_window_size()
    browser.set_window_size(size["width"], 1240)
    try:
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(str(tmp_path / "load-profile.png"))
        shutil.copy(tmp_path / "load-profile.png", SHOTS / "perf-load-profile.png")
    finally:
        browser.set_window_size(size["width"], size["height"])
