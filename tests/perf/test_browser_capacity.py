"""A capacity search's run page as a person sees it (issue 21): headless Chromium at 1,400 px on the live server,
the Capacity section first with its charts against load, a search under way growing on its page as its process
rewrites the JSON, and the compare page of two searches. Screenshots land in the test's temp dir and in /tmp
(``perf-*.png``).
"""

from pathlib import Path

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.perf import capacity_builders as cb
from tests.perf.browser import (
    BROWSER_MARKS,
    WIDTH,
    assert_nothing_scrolls_sideways,
    full_page_screenshot,
    superuser_browser,
)

pytestmark = BROWSER_MARKS


browser = superuser_browser("capacity-shots")


def fits(browser: WebDriver, element) -> None:
    viewport = browser.execute_script("return document.documentElement.clientWidth")
    assert element.location["x"] + element.size["width"] <= viewport, (element.size, viewport)


def test_a_found_capacity_shows_first_with_its_charts_and_fits(browser: WebDriver, live_server_process, orm,
                                                               tmp_path: Path) -> None:
    run = cb.stored_search(cb.found_search(), label="nightly capacity search")
    browser.get(f"{live_server_process.root}/admin/perf/perfrun/{run.pk}/change/")
    assert browser.execute_script("return window.innerWidth") == WIDTH
    section = browser.find_element(By.CSS_SELECTOR, "section#capacity")
    assert section.is_displayed()
    # First below the header, above the key figures, and its result within the first screen.
    assert section.location["y"] < browser.find_element(By.CSS_SELECTOR, "section#figures").location["y"]
    result = section.find_element(By.CSS_SELECTOR, "dl.perf-capacity-result")
    assert result.location["y"] < 600 and "47 users" in result.text and "50 users" in result.text
    assert "Capacity search" in browser.find_element(By.CSS_SELECTOR, "#summary .perf-kind").text
    charts = section.find_elements(By.CSS_SELECTOR, "svg.perf-chart-load")
    assert len(charts) == 3
    assert all(chart.size["width"] > 300 and chart.size["height"] > 150 for chart in charts)
    # Three charts side by side at this width, on one row.
    assert len({chart.location["y"] for chart in charts}) == 1
    failed = section.find_elements(By.CSS_SELECTOR, "svg.perf-chart-load g.step g.point-failed")
    assert len(failed) == 9 and all(marker.is_displayed() for marker in failed)
    table = section.find_element(By.CSS_SELECTOR, "table.perf-capacity-steps")
    fits(browser, table)
    assert len(table.find_elements(By.CSS_SELECTOR, "tbody tr")) == 8
    model = section.find_element(By.CSS_SELECTOR, ".perf-capacity-model")
    assert "prediction, not measured" in model.text
    assert_nothing_scrolls_sideways(browser)
    browser.execute_script("arguments[0].scrollIntoView()", section)
    section.screenshot(str(tmp_path / "capacity-section.png"))
    full_page_screenshot(browser, tmp_path / "capacity-run-page.png")


def test_a_search_under_way_grows_on_its_page(browser: WebDriver, live_server_process, orm, tmp_path: Path) -> None:
    run = cb.running_search(done=3, elapsed=130.0, label="capacity search under way")
    browser.get(f"{live_server_process.root}/admin/perf/perfrun/{run.pk}/change/")
    browser.execute_script("window.perfNoReload = true")
    steps = "section#capacity table.perf-capacity-steps tbody tr"
    assert len(browser.find_elements(By.CSS_SELECTOR, steps)) == 3
    now = browser.find_element(By.CSS_SELECTOR, "section#capacity .perf-capacity-now").text
    assert "Step now\n4" in now and "80 users" in now
    full_page_screenshot(browser, tmp_path / "capacity-running-page.png")

    cb.advance(run, done=5, elapsed=202.0)  # the process ends steps 4 and 5 and narrows down to 50 users
    live = WebDriverWait(browser, 15, ignored_exceptions=[StaleElementReferenceException])
    live.until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, steps)) == 5)
    live.until(lambda driver: len(driver.find_elements(
        By.CSS_SELECTOR, "section#capacity svg.perf-chart-load g.step")) == 15)
    assert "50 users" in browser.find_element(By.CSS_SELECTOR, "section#capacity .perf-capacity-now").text
    assert browser.execute_script("return window.perfNoReload") is True  # swapped in place, not reloaded
    assert_nothing_scrolls_sideways(browser)
    full_page_screenshot(browser, tmp_path / "capacity-grown-page.png")


def test_the_compare_page_of_two_searches_fits(browser: WebDriver, live_server_process, orm, tmp_path: Path) -> None:
    base, new = cb.stored_search(cb.found_search()), cb.stored_search(cb.found_search(slower=1.25))
    browser.get(f"{live_server_process.root}/admin/perf/perfrun/compare/?a={base.pk}&b={new.pk}")
    table = browser.find_element(By.CSS_SELECTOR, "table#compare-capacity")
    regressed = table.find_elements(By.CSS_SELECTOR, "tbody tr.regression")
    assert [row.find_element(By.CSS_SELECTOR, "th").text for row in regressed] == ["capacity"]
    fits(browser, table)
    assert_nothing_scrolls_sideways(browser)
    full_page_screenshot(browser, tmp_path / "capacity-compare-page.png")
