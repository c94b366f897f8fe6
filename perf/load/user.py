"""Simulated users: weighted tasks, think time, ``on_start``.

A scenario is a subclass of :class:`User` with methods marked ``@task(weight)``. Each
simulated user runs ``on_start`` once, then repeatedly picks a task at random by weight
(with its own seedable RNG), runs it and waits ``wait_time`` seconds.
"""

import random
from bisect import bisect
from collections.abc import Callable
from typing import Any

import gevent

from perf.load.context import RunContext
from perf.load.session import HttpSession

TaskFunc = Callable[["User"], Any]


def task(weight: int | TaskFunc = 1) -> Any:
    """Mark a method as a task; ``@task`` alone means weight 1, ``@task(3)`` weight 3."""
    # The weight rides on the function as an attribute (setattr: a function type declares none).
    if callable(weight):
        setattr(weight, "task_weight", 1)  # noqa: B010
        return weight

    def mark(func: TaskFunc) -> TaskFunc:
        if weight < 1:
            raise ValueError(f"task weight must be ≥ 1, got {weight}")
        setattr(func, "task_weight", weight)  # noqa: B010
        return func

    return mark


WaitTime = Callable[["User"], float]


def between(low: float, high: float) -> WaitTime:
    """Think time drawn uniformly from [low, high] seconds with the user's own RNG."""

    def wait(user: "User") -> float:
        return low + user.rng.random() * (high - low)

    setattr(wait, "bounds", (low, high))  # noqa: B010  # read by tests and reports, declared by no function type
    return wait


def constant(seconds: float) -> WaitTime:
    def wait(user: "User") -> float:
        return seconds

    setattr(wait, "bounds", (seconds, seconds))  # noqa: B010
    return wait


class StopUser(Exception):
    """Raised inside a task or ``on_start`` to end this simulated user (e.g. it cannot log in)."""


class User:
    """Base class of every scenario; ``weight`` sets its share of the simulated users."""

    weight: int = 1
    wait_time: WaitTime = staticmethod(between(1, 3))
    tasks: list[tuple[TaskFunc, int]] = []
    _task_cum_weights: list[int] = []  # each class's own, made by __init_subclass__ (pick_task bisects it)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[str, tuple[TaskFunc, int]] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if callable(value) and hasattr(value, "task_weight"):
                    found[attr] = (value, value.task_weight)
        cls.tasks = list(found.values())
        cls._task_cum_weights = []
        running = 0
        for _, task_weight in cls.tasks:
            running += task_weight
            cls._task_cum_weights.append(running)

    def __init__(
        self,
        client: HttpSession,
        rng: random.Random,
        context: RunContext | None = None,
        wait_time: WaitTime | None = None,
        on_exception: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.client = client
        self.rng = rng
        # Any, not RunContext: a pack's scenarios read their own context's additions through it (its API client,
        # its configuration), which no engine type can name; what the engine passes is a RunContext.
        self.context: Any = context
        self._wait_time = wait_time or type(self).wait_time
        self._on_exception = on_exception
        self.stopping = False
        self.waiting = False

    def on_start(self) -> None:
        """Runs once before the first task (log in, look up ids)."""

    def pick_task(self) -> TaskFunc:
        """A task at random by weight (one bisect on the cumulative weights, no allocation)."""
        tasks = self.tasks
        if len(tasks) == 1:
            return tasks[0][0]
        cumulative = self._task_cum_weights
        return tasks[bisect(cumulative, self.rng.random() * cumulative[-1])][0]

    def report_exception(self, exc: BaseException) -> None:
        """A bug or a surprise in scenario code: counted apart from failed requests."""
        if self._on_exception is None:
            raise exc
        self._on_exception(exc)

    def run(self) -> None:
        """The user's life: on_start, then task and think time until stopped.

        An exception in a task is reported and the user goes on, as in Locust; one in
        ``on_start`` or a :class:`StopUser` ends this user.
        """
        if not self.tasks:
            raise TypeError(f"{type(self).__name__} has no @task methods")
        try:
            try:
                self.on_start()
            except StopUser:
                return
            except Exception as exc:
                self.report_exception(exc)
                return
            while not self.stopping:
                try:
                    self.pick_task()(self)
                except StopUser:
                    return
                except Exception as exc:
                    self.report_exception(exc)
                if self.stopping:
                    break
                self.waiting = True
                try:
                    gevent.sleep(self._wait_time(self))
                finally:
                    self.waiting = False
        finally:
            self.client.close()
