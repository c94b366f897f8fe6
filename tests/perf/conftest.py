"""Fixtures shared by the tests that run real load: the perf data, seeded once per module."""

from collections.abc import Callable, Iterator

import pytest

from perf.load import stats as stats_module
from tests.liveserver import manage

PRESEEDED_USERS = 40


@pytest.fixture
def quiet(orm) -> Iterator[None]:
    """No run looks alive to the New run page: rows that earlier modules' killed processes left ``running``
    are dead (they would become lost within PERF_LOST_AFTER anyway), and the page would count them against
    PERF_WEB_MAX_RUNS."""
    from perf.models import Launch, PerfRun

    PerfRun.objects.filter(status=PerfRun.Status.RUNNING).update(status=PerfRun.Status.ABORTED)
    Launch.objects.all().delete()
    yield


@pytest.fixture(scope="module")
def seeded(live_env: dict[str, str], live_server_process) -> dict[str, str]:
    """The perf data freshly reset (so questionnaire users start with READY submissions); the
    environment for ``run_perf`` with as many pre-seeded accounts as were seeded."""
    env = {**live_env, "LOCUST_NUM_PRESEEDED_USERS": str(PRESEEDED_USERS)}
    manage("bootstrap_perf_tests", "--reset", env=env)
    return env


class FakeClock:
    """``time.time`` of perf.load.stats, so that requests land at chosen moments."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], FakeClock]:
    """``fake_clock(start)`` stands a FakeClock at ``start`` in for the statistics' clock."""

    def install(start: float) -> FakeClock:
        fake = FakeClock(start)
        monkeypatch.setattr(stats_module, "time", fake)
        return fake

    return install
