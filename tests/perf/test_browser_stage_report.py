"""The Stages section and the compare page's stage block as a person sees them: headless Chromium at 1,400 px on
the live server, a stored staged run whose second stage failed its threshold and a run slower in that stage.
Screenshots land in the test's temp dir and in /tmp (``perf-*.png``).
"""

from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.perf.browser import (
    BROWSER_MARKS,
    WIDTH,
    assert_nothing_scrolls_sideways,
    full_page_screenshot,
    superuser_browser,
)
from tests.perf.staged import stored_staged_run

pytestmark = BROWSER_MARKS


browser = superuser_browser("stage-shots")


def test_the_stages_section_fits_and_marks_the_failed_stage(browser: WebDriver, live_server_process, orm,
                                                            tmp_path: Path) -> None:
    run = stored_staged_run([20, 150, 20], thresholds=("p95<100ms", "error_rate<5%"), failures=[0, 3, 0])
    browser.get(f"{live_server_process.root}/admin/perf/perfrun/{run.pk}/change/")
    assert browser.execute_script("return window.innerWidth") == WIDTH
    section = browser.find_element(By.CSS_SELECTOR, "section#stages")
    assert section.is_displayed()
    rows = section.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [row.find_element(By.CSS_SELECTOR, "td").text for row in rows] == [
        "stage 1 (0 → 4)", "stage 2 (4 → 4)", "stage 3 (4 → 0)"]
    badges = [[badge.text for badge in row.find_elements(By.CSS_SELECTOR, ".perf-badge")] for row in rows]
    assert badges == [["PASS", "PASS"], ["FAIL", "FAIL"], ["PASS", "PASS"]]
    table = section.find_element(By.CSS_SELECTOR, "table")
    viewport = browser.execute_script("return document.documentElement.clientWidth")
    assert table.location["x"] + table.size["width"] <= viewport
    assert_nothing_scrolls_sideways(browser)
    browser.execute_script("arguments[0].scrollIntoView()", section)
    section.screenshot(str(tmp_path / "stages-section.png"))
    full_page_screenshot(browser, tmp_path / "stages-run-page.png")


def test_the_compare_pages_stage_block_fits_and_marks_the_stage(browser: WebDriver, live_server_process, orm,
                                                                tmp_path: Path) -> None:
    base, new = stored_staged_run([20, 30, 200]), stored_staged_run([20, 60, 200])
    browser.get(f"{live_server_process.root}/admin/perf/perfrun/compare/?a={base.pk}&b={new.pk}")
    table = browser.find_element(By.CSS_SELECTOR, "table#compare-stages")
    marked = [row.find_element(By.CSS_SELECTOR, "td:nth-child(2)").text.split(" (")[0]
              for row in table.find_elements(By.CSS_SELECTOR, "tbody tr.regression")]
    assert marked == ["stage 2"]
    viewport = browser.execute_script("return document.documentElement.clientWidth")
    assert table.location["x"] + table.size["width"] <= viewport
    assert_nothing_scrolls_sideways(browser)
    full_page_screenshot(browser, tmp_path / "stages-compare-page.png")
