"""A scenario pack with tagged tasks, run against the capacity target (tests/capacitytarget.py) by
tests/perf/test_tags.py: every task asks for ``/work`` under a name of its own, so the stats show which tasks ran.
This module is loaded by run_perf's child process: it imports only the public API.
"""

from perf import User, constant, tag, task


class Shopper(User):
    """Browses, checks out, and looks at its home page (the one task without a tag)."""

    wait_time = staticmethod(constant(0.01))

    @tag("browse")
    @task(3)
    def browse(self) -> None:
        self.client.get("/work", name="browse")

    @task
    @tag("checkout", "money")
    def checkout(self) -> None:
        self.client.get("/work", name="checkout")

    @task
    def home(self) -> None:
        self.client.get("/work", name="home")


class Accountant(User):
    """Only money: left out of a run whose tags select none of its tasks."""

    wait_time = staticmethod(constant(0.01))

    @tag("money")
    @tag("report")
    @task
    def report(self) -> None:
        self.client.get("/work", name="report")


SCENARIOS = [Shopper, Accountant]
