"""The scenario pack run against the capacity target (tests/capacitytarget.py): ``PERF_SCENARIOS`` names
``SCENARIOS`` here (``tests.capacitytarget.CAPACITY_PACK``).

One scenario, no think time: each user asks for ``/work`` again as soon as it is answered, so N users keep N
requests at the target at every moment (a closed model's load is its users), and the stats show ``GET /work``.
This module is loaded by run_perf's child process: it imports only the public API.
"""

from perf import User, constant, task


class Worker(User):
    """Asks for one slot's work, again and again."""

    wait_time = staticmethod(constant(0))  # as User declares it, for the type checker

    @task
    def work(self) -> None:
        self.client.get("/work", name="/work")


SCENARIOS = [Worker]
