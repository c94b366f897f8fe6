"""The New run page's Shape and Rate stages in Chromium: the chosen shape's help alone shown, the fields it sets
disabled (and so not sent), the rate stages' editor with its targets in iterations a second, and a shape picked
with parameters submitted and started."""

import time
from collections.abc import Iterator

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from perf.models import PerfRun
from tests.factories import unique
from tests.perf.browser import (
    BROWSER_MARKS,
    logged_in_chromium,
    set_value,
    superuser_email,
)

pytestmark = BROWSER_MARKS
SET_FIELDS = ("id_users", "id_spawn_rate", "id_duration")


@pytest.fixture
def browser(live_server_process, orm) -> Iterator[WebDriver]:
    with logged_in_chromium(live_server_process.root, superuser_email("shape-admin")) as driver:
        yield driver


def disabled(driver: WebDriver) -> list[bool]:
    return [not driver.find_element(By.ID, name).is_enabled() for name in SET_FIELDS]


def notes(driver: WebDriver) -> list[str]:
    return [note.text for note in driver.find_elements(By.CSS_SELECTOR, ".perf-by-stages")]


def shown_help(driver: WebDriver) -> list[str]:
    return [item.get_attribute("data-shape") for item in driver.find_elements(By.CSS_SELECTOR, ".perf-shape-help li")
            if item.is_displayed()]


def test_pick_a_shape_and_rate_stages_see_what_they_set_and_start_a_shaped_run(
    browser: WebDriver, live_server_process, request
) -> None:
    browser.get(live_server_process.root + "/admin/perf/perfrun/add/")
    shape = Select(browser.find_element(By.ID, "id_shape"))
    assert [option.text for option in shape.options] == ["none", "step", "spike", "soak"]
    assert disabled(browser) == [False] * 3 and shown_help(browser) == ["step", "spike", "soak"]

    shape.select_by_value("soak")
    assert disabled(browser) == [True] * 3 and notes(browser) == ["set by the shape"] * 3
    assert shown_help(browser) == ["soak"]
    shape.select_by_value("")
    assert disabled(browser) == [False] * 3 and not notes(browser) and len(shown_help(browser)) == 3

    # Rate stages: the same editor, targets iterations a second; Users stays, as the pool.
    set_value(browser, "#id_rate_stages", "30s:2.5,1m:2.5,30s:0")
    editor = browser.find_element(By.CSS_SELECTOR, ".field-rate_stages .perf-stages-editor")
    assert "Target iterations/s" in editor.find_element(By.CSS_SELECTOR, "thead").get_attribute("textContent")
    assert len(editor.find_elements(By.CSS_SELECTOR, ".perf-stage-row")) == 3
    assert not editor.find_elements(By.CSS_SELECTOR, ".perf-stage-preset")
    assert editor.find_element(By.CSS_SELECTOR, ".perf-stages-sketch svg title").get_attribute("textContent") == \
        "Load profile: 3 stages, 2m in all, up to 2.5 iterations/s"
    assert disabled(browser) == [False, True, True] and notes(browser) == ["set by the rate stages"] * 2
    browser.find_element(By.ID, "id_rate_stages").clear()
    browser.find_element(By.ID, "id_rate_stages").send_keys(" ")
    assert disabled(browser) == [False] * 3
    assert not editor.find_elements(By.CSS_SELECTOR, ".perf-stage-row, .perf-stages-sketch svg")

    shape.select_by_value("step")
    set_value(browser, "#id_shape_parameters", "add=1,every=2s,to=2")
    label = unique("browser-shape")
    set_value(browser, "#id_label", label)
    set_value(browser, "#id_wait", "0.05,0.2")
    browser.find_element(By.CSS_SELECTOR, "input[value=EventBrowser]").click()
    browser.find_element(By.ID, "id_run_anyway").click()
    request.getfixturevalue("seeded")
    request.getfixturevalue("quiet")
    browser.find_element(By.CSS_SELECTOR, "#new-run input[type=submit]").click()
    try:
        WebDriverWait(browser, 40).until(lambda driver: "/change/" in driver.current_url
                                         or driver.find_elements(By.CSS_SELECTOR, ".errornote, .errorlist"))
        assert "/change/" in browser.current_url, browser.find_element(By.ID, "new-run").text
        run = PerfRun.objects.get(label=label)
        # Users, Spawn rate and Duration were disabled, so not sent: the shape alone set the run.
        assert (run.options["shape"], run.options["users"], run.options["duration"]) == (
            "step:add=1,every=2s,to=2", None, None)
    finally:
        PerfRun.objects.filter(label=label, status=PerfRun.Status.RUNNING, stop_requested_at__isnull=True).update(
            stop_requested_by="test", stop_requested_at=timezone.now())
    deadline = time.monotonic() + 30
    while PerfRun.objects.filter(label=label, status=PerfRun.Status.RUNNING).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
