"""Simulated users: weighted tasks, think time, ``on_start``.

A scenario is a subclass of :class:`User` with methods marked ``@task(weight)``. Each
simulated user runs ``on_start`` once, then repeatedly picks a task at random by weight
(with its own seedable RNG), runs it and waits ``wait_time`` seconds. Tasks may carry tags
(``@tag("checkout")``), which ``run_perf --tags`` and ``--exclude-tags`` select by
(:func:`select_tasks`); a run may be bounded in task iterations (:class:`IterationLimit`).
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


def tag(*names: str) -> Callable[[TaskFunc], TaskFunc]:
    """Tag a task, as Locust's ``@tag``: ``@tag("checkout", "slow")`` above or below ``@task``. Tags stack:
    ``@tag("a")`` over ``@tag("b")`` gives both. ``run_perf --tags`` runs only tasks with one of the tags given,
    ``--exclude-tags`` drops those with any."""
    if not names:
        raise ValueError("@tag needs at least one tag name")
    for name in names:
        if not isinstance(name, str) or not name.strip() or "," in name:
            raise ValueError(f"a tag is a non-empty name without a comma, got {name!r}")

    def mark(func: TaskFunc) -> TaskFunc:
        setattr(func, "task_tags", task_tags(func) | frozenset(names))  # noqa: B010
        return func

    return mark


def task_tags(func: TaskFunc) -> frozenset[str]:
    """A task's tags (none when it has no ``@tag``)."""
    tags: frozenset[str] = getattr(func, "task_tags", frozenset())
    return tags


def tag_selected(func: TaskFunc, tags: frozenset[str] | None, exclude: frozenset[str]) -> bool:
    """Whether a task runs under ``--tags`` (None: no such option, every task) and ``--exclude-tags``: it must
    have one of ``tags`` and none of ``exclude`` (the exclusion wins when a task has both)."""
    own = task_tags(func)
    return (tags is None or bool(own & tags)) and not own & exclude


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


class IterationLimit:
    """``run_perf --iterations N``: the run's bound in task iterations, one task run by a user being one.

    In all (the default), at most ``limit`` tasks start across the users; the run is done when that many have
    ended, so it ends with exactly ``limit`` of them and nothing in flight. Per user (``--iterations-per-user``),
    each user ends after ``limit`` of its own; the run is done when all ``users`` have ended, whatever ended
    them (a :class:`StopUser` too: a user that quits early will never reach its count). ``on_done`` is called
    once, when the run is done; a limit of 0 (a worker's part of a small N) is done from the start.
    """

    def __init__(self, limit: int, per_user: bool, users: int, on_done: Callable[[], None]) -> None:
        if limit < 0:
            raise ValueError(f"an iteration limit must be 0 or more, got {limit}")
        self.limit = limit
        self.per_user = per_user
        self.users = users
        self.started = 0
        self.ended = 0
        self.users_ended = 0
        self._on_done = on_done
        self._told = False

    @property
    def done(self) -> bool:
        if self.per_user:
            return self.users_ended >= self.users
        return self.ended >= self.limit

    @property
    def exhausted(self) -> bool:
        """In all: whether every iteration has started (no user needs to start, no arrival to be scheduled)."""
        return not self.per_user and self.started >= self.limit

    def check(self) -> None:
        """Tell ``on_done`` if the run is already done (once)."""
        if self.done and not self._told:
            self._told = True
            self._on_done()

    def may_start(self, user: "User") -> bool:
        """Whether ``user`` may start one more task; if so it is counted as started."""
        if not self.has_more(user):
            return False
        user.iterations_started += 1
        self.started += 1
        return True

    def has_more(self, user: "User") -> bool:
        """Whether ``user`` may start another task after this one (else it needs no think time first)."""
        return (user.iterations_started if self.per_user else self.started) < self.limit

    def task_ended(self) -> None:
        self.ended += 1
        self.check()

    def user_ended(self) -> None:
        self.users_ended += 1
        self.check()


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
        cls._set_tasks(list(found.values()))

    @classmethod
    def _set_tasks(cls, tasks: list[tuple[TaskFunc, int]]) -> None:
        cls.tasks = tasks
        cls._task_cum_weights = []
        running = 0
        for _, task_weight in tasks:
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
        # Set by the runner of a run bounded in iterations (run_perf --iterations): asked before each task.
        self.iteration_limit: IterationLimit | None = None
        self.iterations_started = 0

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
        limit = self.iteration_limit
        try:
            try:
                self.on_start()
            except StopUser:
                return
            except Exception as exc:
                self.report_exception(exc)
                return
            while not self.stopping:
                if limit is not None and not limit.may_start(self):
                    return
                try:
                    self.pick_task()(self)
                except StopUser:
                    return
                except Exception as exc:
                    self.report_exception(exc)
                finally:
                    if limit is not None:
                        limit.task_ended()
                if self.stopping or (limit is not None and not limit.has_more(self)):
                    break
                self.waiting = True
                try:
                    gevent.sleep(self._wait_time(self))
                finally:
                    self.waiting = False
        finally:
            self.client.close()
            if limit is not None:
                limit.user_ended()


def select_tasks(cls: type[User], tags: frozenset[str] | None, exclude: frozenset[str]) -> type[User] | None:
    """``cls`` with only the tasks ``--tags`` and ``--exclude-tags`` select (:func:`tag_selected`): the class itself
    when it keeps them all, else a subclass of the same name that has only those (weights kept), or None when
    none is left. A subclass, not an edit: the pack's class stays whole for the next run in this process."""
    kept = [(func, weight) for func, weight in cls.tasks if tag_selected(func, tags, exclude)]
    if len(kept) == len(cls.tasks):
        return cls
    if not kept:
        return None
    selected: type[User] = type(cls.__name__, (cls,), {"__module__": cls.__module__, "__qualname__": cls.__qualname__,
                                           "__doc__": cls.__doc__})
    selected._set_tasks(kept)
    return selected
