"""Fixtures shared by the tests that run real load: the perf data, seeded once per module."""

import pytest

from tests.liveserver import manage

PRESEEDED_USERS = 40


@pytest.fixture(scope="module")
def seeded(live_env: dict[str, str], live_server_process) -> dict[str, str]:
    """The perf data freshly reset (so questionnaire users start with READY submissions); the
    environment for ``run_perf`` with as many pre-seeded accounts as were seeded."""
    env = {**live_env, "LOCUST_NUM_PRESEEDED_USERS": str(PRESEEDED_USERS)}
    manage("bootstrap_perf_tests", "--reset", env=env)
    return env
