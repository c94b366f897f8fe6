"""A plan's trends page as a person sees it (issue 22): headless Chromium at 1,400 px on the live server, a plan of
40 noisy nights with one real regression, judged by the noise band as run_perf judges them; the regression marked,
a point opening its run, the endpoint chosen with the form (no script needed). The screenshot lands in the test's
temp dir and in /tmp (``perf-trends.png``); docs/trends.png is a copy of it.
"""

import random
import shutil
from datetime import timedelta
from pathlib import Path

from django.utils import timezone
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from perf.analysis import noise
from perf.models import EndpointStats, PerfPlan, PerfRun
from tests.factories import unique
from tests.perf.browser import (
    BROWSER_MARKS,
    SHOTS,
    WIDTH,
    assert_nothing_scrolls_sideways,
    full_page_screenshot,
    superuser_browser,
)

pytestmark = BROWSER_MARKS

NIGHTS = 40
REGRESSED_NIGHT = 33  # a commit that made checkout 35 % slower, fixed three nights later
# Endpoint key → (typical p95 ms, typical p50 ms, share of the requests).
ENDPOINTS = {"GET /events/": (38.0, 14.0, 0.6), "GET /events/{id}/": (55.0, 21.0, 0.3),
             "POST /events/{id}/checkout/": (120.0, 60.0, 0.1)}
SLOW = "POST /events/{id}/checkout/"


def nightly_history(plan: PerfPlan) -> list[PerfRun]:
    """NIGHTS runs of ``plan`` with a few percent of noise (a fixed seed), checkout slower on REGRESSED_NIGHT and the
    two after; each run judged against the plan's earlier runs by perf.analysis.noise, as run_perf judges them."""
    rng = random.Random(22)
    rules = noise.Rules.of(plan)
    start = timezone.now() - timedelta(days=NIGHTS)
    history: list[dict[str, noise.Figures]] = []
    runs = []
    for night in range(NIGHTS):
        slower = 1.35 if REGRESSED_NIGHT <= night < REGRESSED_NIGHT + 3 else 1.0
        rows, figures = [], {}
        total, failed = 0, 0
        for key, (p95, p50, share) in ENDPOINTS.items():
            factor = rng.gauss(1.0, 0.02) * (slower if key == SLOW else 1.0)
            requests = int(6000 * share * rng.gauss(1.0, 0.02))
            failures = rng.choice((0, 0, 1, 2))
            total, failed = total + requests, failed + failures
            method, name = key.split(" ", 1)
            rows.append(dict(method=method, name=name, num_requests=requests, num_failures=failures,
                             p50=p50 * factor, p95=p95 * factor, p99=p95 * 1.6 * factor,
                             requests_per_second=requests / 60))
            figures[key] = {"p95": p95 * factor, "failure_rate": 100 * failures / requests}
        aggregate = rng.gauss(1.0, 0.03) * (1.15 if slower > 1 else 1.0)
        overall = dict(p50=20.0 * aggregate, p95=95.0 * aggregate, p99=150.0 * aggregate,
                       requests_per_second=total / 60 * rng.gauss(1.0, 0.02))
        figures[noise.AGGREGATED] = {"p95": overall["p95"], "failure_rate": 100 * failed / total}
        verdicts = noise.judge(figures, list(reversed(history))[: rules.history_size], rules)
        report = noise.NoiseReport(plan.name, rules, runs=[], verdicts=verdicts)
        history.append(figures)
        run = PerfRun.objects.create(
            label=plan.name, plan=plan, status=PerfRun.Status.COMPLETED, started_at=start + timedelta(days=night),
            host="http://127.0.0.1:8000", options={"users": 20}, git_revision=f"{rng.getrandbits(40):010x}",
            hostname="ci-runner-3", users=20, total_requests=total, total_failures=failed,
            regressions=report.as_json(), **overall)
        EndpointStats.objects.bulk_create([EndpointStats(run=run, **row) for row in rows] + [EndpointStats(
            run=run, method="", name="Aggregated", is_aggregated=True, num_requests=total, num_failures=failed,
            **overall)])
        runs.append(run)
    plan.baseline = runs[8]
    plan.save()
    return runs


browser = superuser_browser("trends-shots")


def test_a_trends_page_with_a_flagged_regression(browser: WebDriver, live_server_process, orm,
                                                 tmp_path: Path) -> None:
    plan = PerfPlan.objects.create(name=unique("nightly"), options={"users": 20})
    runs = nightly_history(plan)
    flagged = [run for run in runs if run.regressions["regressed"]]
    assert runs[REGRESSED_NIGHT] in flagged  # the noise band caught the real regression

    # From the plan's page, its Trends link.
    browser.get(f"{live_server_process.root}/admin/perf/perfplan/{plan.pk}/change/")
    browser.find_element(By.CSS_SELECTOR, "a.perf-trends-link").click()
    WebDriverWait(browser, 10).until(expected_conditions.url_contains(f"/perfplan/{plan.pk}/trends/"))
    assert browser.execute_script("return window.innerWidth") == WIDTH
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.perf-chart-trend")
    assert len(charts) == 3
    assert all(chart.size["width"] > 1100 and chart.size["height"] > 200 for chart in charts)
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg g.baseline")) == 5
    marks = browser.find_elements(By.CSS_SELECTOR, 'svg a.run-point[data-flag="regressed"]')
    assert marks and all(mark.is_displayed() for mark in marks)
    assert_nothing_scrolls_sideways(browser)
    full_page_screenshot(browser, tmp_path / "trends-all.png")

    # The endpoint that regressed, chosen with the form: its own p95 with the regression marked.
    Select(browser.find_element(By.ID, "trends-endpoint")).select_by_value(SLOW)
    browser.find_element(By.CSS_SELECTOR, ".trends-form button").click()
    # The old page's element may go stale between finding it and reading it.
    WebDriverWait(browser, 10, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda driver: driver.find_element(By.CSS_SELECTOR, ".trends-endpoint").text == SLOW)
    p95 = browser.find_element(By.CSS_SELECTOR, 'svg g.series[data-series="p95"]')
    regressed = p95.find_elements(By.CSS_SELECTOR, 'a.run-point[data-flag="regressed"]')
    assert regressed and regressed[0].is_displayed()
    assert f"/perfrun/{runs[REGRESSED_NIGHT].pk}/change/" in regressed[0].get_dom_attribute("href")
    assert_nothing_scrolls_sideways(browser)
    full_page_screenshot(browser, tmp_path / "trends-page.png")
    first_screen(browser, tmp_path / "trends.png")

    # A point is a link: the regressed run's page, which names its plan.
    regressed[0].click()
    WebDriverWait(browser, 10).until(
        expected_conditions.url_contains(f"/perfrun/{runs[REGRESSED_NIGHT].pk}/change/"))
    assert f"of plan {plan.name}" in browser.find_element(By.CSS_SELECTOR, ".perf-head").text
    browser.save_screenshot(str(tmp_path / "trends-run-page.png"))
    shutil.copy(tmp_path / "trends-run-page.png", SHOTS / "perf-trends-run-page.png")


def first_screen(driver: WebDriver, path: Path, height: int = 1300) -> None:
    """The page's first ``height`` px, the charts and the first runs of the table: the picture in the docs."""
    size = driver.get_window_size()
    driver.set_window_size(size["width"], height)
    try:
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(str(path))
        shutil.copy(path, SHOTS / f"perf-{path.name}")
    finally:
        driver.set_window_size(size["width"], size["height"])
