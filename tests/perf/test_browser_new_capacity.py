"""The New run page's "Find capacity" mode in Chromium: ticking it shows the search's settings with the contract's
defaults and hides the fields a search does not take (Users too, unless the steps are iterations a second, when it
is their pool); the command line below the fields follows them, first saying that a search needs a threshold; a
search refused by run_perf comes back still in its mode; and the search submitted is stored as a capacity run.
"""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from perf.models import PerfRun
from perf.web.capacity_fields import SETTINGS
from tests.factories import unique
from tests.perf.browser import BROWSER_MARKS, full_page_screenshot, logged_in_chromium, set_value, superuser_email

pytestmark = BROWSER_MARKS
NOT_IN_A_SEARCH = ("spawn_rate", "duration", "stages", "rate_stages", "shape", "shape_parameters")
DEFAULTS = "--find-capacity --start-load=10 --max-users=1000 --step-factor=2 --settle=10s --hold=30s " \
           "--resolution=10% --budget=30m"


@pytest.fixture
def browser(live_server_process, orm) -> Iterator[WebDriver]:
    with logged_in_chromium(live_server_process.root, superuser_email("capacity-admin")) as driver:
        yield driver


def shown(driver: WebDriver) -> set[str]:
    """The fields whose rows a person sees."""
    return {row.get_attribute("class").split("field-")[1].split()[0]
            for row in driver.find_elements(By.CSS_SELECTOR, "#new-run .form-row") if row.is_displayed()}


def command_line(driver: WebDriver, containing: str) -> str:
    """The command line shown below the fields, once it holds ``containing`` (it is asked for after each change)."""
    def shown_line(driver: WebDriver) -> str:
        code = driver.find_element(By.CSS_SELECTOR, ".perf-command-line .perf-command")
        return code.text if code.is_displayed() and containing in code.text else ""
    return WebDriverWait(driver, 10).until(shown_line)


def problems(driver: WebDriver) -> list[str]:
    def listed(driver: WebDriver) -> list[str]:
        return [item.text for item in driver.find_elements(By.CSS_SELECTOR, ".perf-command-problems li")]
    return WebDriverWait(driver, 10).until(listed)


def note(driver: WebDriver, name: str) -> str:
    found = driver.find_elements(By.CSS_SELECTOR, f".field-{name} .perf-by-stages")
    return found[0].text if found else ""


def test_find_capacity_shows_its_settings_hides_what_a_search_sets_and_builds_its_command_line(
    browser: WebDriver, live_server_process, request, tmp_path: Path
) -> None:
    browser.get(live_server_process.root + "/admin/perf/perfrun/add/")
    plain = shown(browser)
    assert {"users", "spawn_rate", "duration", "stages", "find_capacity", "thresholds"} <= plain
    assert not plain & set(SETTINGS)
    assert "--users=10 --spawn-rate=2 --duration=1m" in command_line(browser, "--users=10")

    browser.find_element(By.ID, "id_find_capacity").click()
    search = shown(browser)
    assert set(SETTINGS) <= search and not search & {"users", *NOT_IN_A_SEARCH}, search
    assert {"wait", "thresholds", "host", "scenarios"} <= search
    assert [browser.find_element(By.ID, f"id_{name}").get_attribute("value")
            for name in ("start_load", "max_load", "step_factor", "settle", "hold", "resolution", "budget")] == [
        "10", "1000", "2", "10s", "30s", "10%", "30m"]
    assert note(browser, "thresholds") == "needed: each step passes while they all hold"
    # No threshold yet: the page says so before anything is submitted.
    assert problems(browser) == ["Thresholds: Find capacity needs at least one threshold: each step passes while "
                                 "they all hold, e.g. p95<500ms."]
    set_value(browser, "#id_thresholds", "p95<500ms")
    assert DEFAULTS + f" --host={live_server_process.url}" in command_line(browser, "--find-capacity")

    # Steps of iterations a second: Users comes back as their pool, Think time goes; the units follow.
    browser.find_element(By.CSS_SELECTOR, "input[name=capacity_model][value=rate]").click()
    search = shown(browser)
    assert "users" in search and "wait" not in search and note(browser, "users") == "the pool the iterations run on"
    assert [unit.text for unit in browser.find_elements(By.CSS_SELECTOR, ".perf-capacity-unit")] == [
        "iterations/s"] * 3
    set_value(browser, "#id_step_increment", "5")
    assert not browser.find_element(By.ID, "id_step_factor").is_enabled()
    assert note(browser, "step_factor") == "not with a Step increment"
    line = command_line(browser, "--step-increment=5")
    assert "--find-capacity --rate=10 --max-rate=1000 --users=10 --step-increment=5 --settle=10s" in line, line
    assert "--step-factor" not in line and "--wait" not in line
    full_page_screenshot(browser, tmp_path / "new-run-capacity.png")

    # Unticked: the plain fields are back, the search's hidden; ticked again, it is as it was left.
    browser.find_element(By.ID, "id_find_capacity").click()
    assert shown(browser) == plain
    browser.find_element(By.ID, "id_find_capacity").click()
    browser.find_element(By.CSS_SELECTOR, "input[name=capacity_model][value=users]").click()
    browser.find_element(By.ID, "id_step_increment").clear()
    set_value(browser, "#id_max_load", "2")
    set_value(browser, "#id_start_load", "1")
    set_value(browser, "#id_settle", "1s")
    set_value(browser, "#id_hold", "2s")
    set_value(browser, "#id_budget", "2s")  # shorter than a step: run_perf's own check refuses it
    set_value(browser, "#id_thresholds", "p95<5s")
    set_value(browser, "#id_wait", "0.05,0.2")
    label = unique("browser-capacity")
    set_value(browser, "#id_label", label)
    browser.find_element(By.CSS_SELECTOR, "input[value=EventBrowser]").click()
    browser.find_element(By.ID, "id_run_anyway").click()
    assert "--find-capacity --start-load=1 --max-users=2 --step-factor=2 --settle=1s --hold=2s --resolution=10% " \
           "--budget=2s" in command_line(browser, "--budget=2s")
    browser.find_element(By.CSS_SELECTOR, "#new-run input[type=submit]").click()
    refusal = WebDriverWait(browser, 40).until(lambda driver: driver.find_element(By.CSS_SELECTOR, "p.errornote"))
    assert refusal.text == "Budget 2 s is shorter than one step (Settle 1 s + Hold 2 s): give the search more time"
    # The page as sent back: still in its capacity mode, the settings as they were given.
    assert set(SETTINGS) <= shown(browser) and "users" not in shown(browser)
    assert browser.find_element(By.ID, "id_max_load").get_attribute("value") == "2"
    assert not PerfRun.objects.filter(label=label).exists()

    request.getfixturevalue("seeded")
    request.getfixturevalue("quiet")
    set_value(browser, "#id_budget", "30s")
    assert browser.find_element(By.ID, "id_run_anyway").is_selected()  # as it was sent
    browser.find_element(By.CSS_SELECTOR, "#new-run input[type=submit]").click()
    try:
        WebDriverWait(browser, 40).until(lambda driver: "/change/" in driver.current_url)
        run = PerfRun.objects.get(label=label)
        assert run.kind == "capacity" and run.capacity["settings"]["budget"] == 30, (run.kind, run.capacity)
    finally:
        PerfRun.objects.filter(label=label, status=PerfRun.Status.RUNNING, stop_requested_at__isnull=True).update(
            stop_requested_by="test", stop_requested_at=timezone.now())
    deadline = time.monotonic() + 30
    while PerfRun.objects.filter(label=label, status=PerfRun.Status.RUNNING).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
