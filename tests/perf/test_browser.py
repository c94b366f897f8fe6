"""The admin as a person sees it: headless Chromium logs in, opens a stored run and the compare page.

Driven by Selenium with Debian's chromium and chromedriver, paths given explicitly so Selenium never
tries to download a driver. The pages come from the live gunicorn; the charts carry their own
styles, so they would render even where the admin's static files are not served.
Screenshots land in the test's temp dir for a person to look at.
"""

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from perf.load.stats import StatsRegistry
from perf.models import PerfRun
from perf.persist import add_samples, finish_run, start_run
from tests.factories import PASSWORD, make_user, unique

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ENDPOINTS = ("/events/", "/events/{id}/my-status [BOTTLENECK]")
START = 1_700_000_000.0

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason=f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}): apt-get install chromium "
    "chromium-driver",
)


def stored_run(label: str, slowdown: float) -> PerfRun:
    """A run stored as run_perf stores it: samples while running, then the final figures."""
    registry = StatsRegistry(start_time=START)
    run = start_run(label=label, host="http://127.0.0.1:8000/api", users=8, spawn_rate=2.0,
                    scenarios=["EventBrowser", "RSVPUser"], user_split={"EventBrowser": 5, "RSVPUser": 3})
    for step in range(1, 9):
        for i in range(10 * step):
            registry.record("GET", ENDPOINTS[0], (8 + i % 13) * slowdown, 2_000)
            registry.record("GET", ENDPOINTS[1], (40 + i % 37) * slowdown, 300, "HTTPError('503')" if i == 7 else None)
        registry.take_sample(users=min(2 * step, 8), now=START + 5 * step)
        if step == 4:
            add_samples(run, registry.samples)
    return finish_run(run, registry, "completed", duration=40.0)


@pytest.fixture(scope="module")
def runs(django_db_setup, django_db_blocker) -> tuple[PerfRun, PerfRun]:
    with django_db_blocker.unblock():
        return stored_run(unique("browser-a"), 1.0), stored_run(unique("browser-b"), 1.3)


@pytest.fixture(scope="module")
def admin_login(django_db_setup, django_db_blocker) -> str:
    with django_db_blocker.unblock():
        email = f"{unique('admin')}@example.com"
        make_user(username=email, email=email, is_staff=True, is_superuser=True)
    return email


@pytest.fixture(scope="module")
def browser(live_server_process, admin_login: str) -> Iterator[WebDriver]:
    """One logged-in Chromium for the module: starting a browser costs more than a page."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.TemporaryDirectory(prefix="chromium-")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", "--window-size=1400,1800", f"--user-data-dir={profile.name}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        driver.get(live_server_process.root + "/admin/login/")
        driver.find_element(By.ID, "id_username").send_keys(admin_login)
        driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "form input[type=submit]").click()
        WebDriverWait(driver, 15).until(expected_conditions.url_to_be(live_server_process.root + "/admin/"))
        yield driver
    finally:
        driver.quit()
        profile.cleanup()


def test_run_page_shows_the_charts_and_the_endpoint_table(
    browser: WebDriver, live_server_process, runs: tuple[PerfRun, PerfRun], tmp_path: Path
) -> None:
    browser.get(f"{live_server_process.root}/admin/perf/perfrun/{runs[0].pk}/change/")
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.perf-chart")
    assert len(charts) >= 4
    assert all(chart.size["width"] > 100 and chart.size["height"] > 100 for chart in charts)
    names = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#endpoints-group table td.field-name")]
    assert set(ENDPOINTS) <= set(names)
    browser.save_screenshot(str(tmp_path / "run-page.png"))
    browser.find_element(By.CSS_SELECTOR, ".perf-run-charts").screenshot(str(tmp_path / "run-charts.png"))


def test_compare_page_shows_the_comparison_table(
    browser: WebDriver, live_server_process, runs: tuple[PerfRun, PerfRun], tmp_path: Path
) -> None:
    first, second = runs
    browser.get(f"{live_server_process.root}/admin/perf/perfrun/compare/?a={first.pk}&b={second.pk}")
    table = browser.find_element(By.CSS_SELECTOR, "table#compare-table")
    assert any(name in table.text for name in ENDPOINTS)
    browser.save_screenshot(str(tmp_path / "compare-page.png"))
