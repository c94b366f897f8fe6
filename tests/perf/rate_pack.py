"""The scenario pack of tests/perf/test_rate_series.py, run against the capacity target (tests/capacitytarget.py):
``PERF_SCENARIOS`` names ``SCENARIOS`` here.

One scenario whose one task sends two requests, so an open-model run's requests a second are twice its iterations a
second: what a rate profile's target (in iterations) must be compared with is the latter.
This module is loaded by run_perf's child process: it imports only the public API.
"""

from perf import User, constant, task


class Pair(User):
    """Each iteration asks for ``/work`` twice, under two names."""

    wait_time = staticmethod(constant(0))  # as User declares it, for the type checker; the open model has none

    @task
    def twice(self) -> None:
        self.client.get("/work", name="first")
        self.client.get("/work", name="second")


SCENARIOS = [Pair]
