"""Headless Chromium for the browser tests: the marks every browser test module carries, a Chromium logged into
the admin as a new superuser (for one test, or one per module), and what the tests do with a page (a field typed
into, a full-page screenshot, the check that nothing scrolls sideways).

Driven by Selenium with Debian's chromium and chromedriver, paths given explicitly so Selenium never tries to
download a driver. Screenshots land in the test's temp dir and in /tmp (``perf-*.png``) for a person to look at.
"""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.factories import PASSWORD, make_user, unique

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WIDTH = 1400
SHOTS = Path(tempfile.gettempdir())

# Every browser test module's marks: the browser on the live server (its database is incidental, so the SQLite pass
# only), skipped with the install line where Chromium is missing.
BROWSER_MARKS = [
    pytest.mark.once,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason=f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}): apt-get install chromium "
        "chromium-driver",
    ),
]


def chromium(width: int = WIDTH) -> tuple[WebDriver, tempfile.TemporaryDirectory]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.TemporaryDirectory(prefix="chromium-")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", f"--window-size={width},1000", f"--user-data-dir={profile.name}"):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER))), profile


def log_in(driver: WebDriver, root: str, username: str) -> None:
    driver.get(root + "/admin/login/")
    driver.find_element(By.ID, "id_username").send_keys(username)
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form input[type=submit]").click()
    WebDriverWait(driver, 15).until(expected_conditions.url_to_be(root + "/admin/"))


@contextmanager
def logged_in_chromium(root: str, username: str) -> Iterator[WebDriver]:
    """A Chromium logged into the admin at ``root``; quit, and its profile folder removed, afterwards."""
    driver, profile = chromium()
    try:
        log_in(driver, root, username)
        yield driver
    finally:
        driver.quit()
        profile.cleanup()


def superuser_email(prefix: str) -> str:
    """A new superuser (the factories' password), named by ``prefix``: who a browser test logs in as."""
    email = f"{unique(prefix)}@example.com"
    make_user(username=email, email=email, is_staff=True, is_superuser=True)
    return email


def superuser_browser(prefix: str) -> Any:
    """A module's ``browser`` fixture: one Chromium for the module, logged in as a new superuser named by ``prefix``
    (``browser = superuser_browser("trends-shots")``); starting a browser costs more than a page."""

    @pytest.fixture(scope="module")
    def browser(live_server_process, django_db_setup, django_db_blocker) -> Iterator[WebDriver]:
        with django_db_blocker.unblock():
            email = superuser_email(prefix)
        with logged_in_chromium(live_server_process.root, email) as driver:
            yield driver

    return browser


def full_page_screenshot(driver: WebDriver, path: Path) -> None:
    """The whole page at the window's width, kept in the test's folder and in /tmp for a person."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    size = driver.get_window_size()
    driver.set_window_size(size["width"], min(height + 140, 8000))
    try:
        driver.save_screenshot(str(path))
        shutil.copy(path, SHOTS / f"perf-{path.name}")
    finally:
        driver.set_window_size(size["width"], size["height"])


def assert_nothing_scrolls_sideways(driver: WebDriver) -> None:
    scroll, client = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert scroll <= client, f"the page scrolls sideways: {scroll} px of content in {client} px"


def set_value(driver: WebDriver, selector: str, value: str) -> None:
    """Type ``value`` into the field ``selector`` finds, in place of what it held."""
    element = driver.find_element(By.CSS_SELECTOR, selector)
    element.clear()
    element.send_keys(value)
