"""The open model (``run_perf --rate R``): iterations arrive on a fixed schedule, whatever the latency.

In the closed model (:class:`~perf.load.runner.LoadRunner`) each user sends its next request only
after the previous answer, so when the server stalls the users stall with it: load drops exactly
when it matters and a stall is recorded as one slow request instead of the many a real population
would have sent (coordinated omission). Here iteration ``k`` is due at ``t0 + k/R``; each iteration
is one task (no think time) of a free user from a pool of ``plan.users`` pre-created users, and
its first request is timed from the due time rather than from the send, as wrk2 times it, so a
late start (a stalled generator, a busy event loop) counts in the latency. The pool caps
concurrency, like k6's ``preAllocatedVUs``: an arrival that finds every user of its scenario busy
is *dropped* and counted, never queued or silently skipped.

Arrivals go to the scenarios by weight (among those the pool has users for), each scenario to its
own users: a slow scenario cannot hand its arrivals to a fast one's idle users, which would shift
the mix away from the slow endpoints just when they slow down (an omission of its own).
"""

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from itertools import count
from math import sqrt
from typing import Any

import gevent
from gevent.event import Event

from perf.load.context import RunContext
from perf.load.hooks import RunHooks
from perf.load.profile import Profile, plain_profile
from perf.load.runner import LoadRunner, RunPlan, split_counts
from perf.load.session import HttpSession
from perf.load.stats import StatsRegistry
from perf.load.user import StopUser, User

# How long the last users' on_start (logins, look-ups) may take, once all are spawned, before the
# schedule starts anyway; users still starting then join the pool when they are ready.
POOL_READY_TIMEOUT = 30.0
# A rate profile's arrivals are placed by integrating its rate over steps this long, linear within each.
ARRIVAL_STEP_S = 0.01


def arrival_offsets(profile: Profile, step: float = ARRIVAL_STEP_S, start: float = 0.0) -> Iterator[float]:
    """The due times, in seconds from the schedule's start, of the arrivals a rate profile asks for (``--rate-stages``,
    k6's ramping-arrival-rate): arrival k is due when the integral of the rate reaches k. The rate is taken as
    linear over each step, which it is inside a stage, so within a stage the times are exact (a constant rate R
    gives 1/R, 2/R, …) and a ramp's arrivals thicken as it climbs. A shape without stages is taken as linear
    over each step. From ``start`` seconds on, when given: a change of rate from the live page lays the schedule
    to come on the new profile, its first arrival one new interval after the moment it takes effect."""
    elapsed, done, number = start, 0.0, 1
    ends = [span.end for span in profile.spans()]  # a step never straddles a stage's end: rates bend there
    while True:
        start_rate = profile.target(elapsed)
        if start_rate is None:
            return
        while ends and ends[0] <= elapsed + 1e-12:
            ends.pop(0)
        width = min(step, ends[0] - elapsed) if ends else step
        if width <= 0:
            return
        end_rate = profile.target(elapsed + width * (1 - 1e-9))
        end_rate = start_rate if end_rate is None else end_rate
        area = (start_rate + end_rate) / 2 * width
        slope = (end_rate - start_rate) / (2 * width)
        while done + area >= number - 1e-9:
            need = number - done
            if abs(slope) < 1e-12:
                offset = need / start_rate if start_rate > 0 else width
            else:
                offset = (-start_rate + sqrt(max(0.0, start_rate * start_rate + 4 * slope * need))) / (2 * slope)
            yield elapsed + min(max(offset, 0.0), width)
            number += 1
        done += area
        elapsed += width


class ArrivalMix:
    """Which scenario each arrival goes to: smooth weighted round-robin (nginx's).

    Every run of sum(weights) consecutive arrivals holds each scenario exactly its weight, spread
    out (3:1 → A A B A, A A B A, ...), so even a short run gets the weighted mix, reproducibly.
    """

    def __init__(self, weights: dict[str, int]) -> None:
        self._weights = sorted(weights.items())
        self._total = sum(weights.values())
        self._credit = dict.fromkeys(weights, 0)

    def next(self) -> str:
        credit = self._credit
        best = ""
        for name, weight in self._weights:
            credit[name] += weight
            if not best or credit[name] > credit[best]:
                best = name
        credit[best] -= self._total
        return best


class PoolUser:
    """One user of the pool and what wakes it: the due time of the iteration it was handed."""

    __slots__ = ("user", "scenario", "wake", "intended")

    def __init__(self, user: User, scenario: str) -> None:
        self.user = user
        self.scenario = scenario
        self.wake = Event()
        self.intended = 0.0


class OpenModelRunner(LoadRunner):
    """LoadRunner's loop (ticks, CPU watch, stop, stop timeout) over an arrival-rate schedule.

    The pool starts first, at ``plan.spawn_rate`` users per second as LoadRunner ramps up (a
    stampede of logins would measure the stampede); its ``on_start`` requests are recorded like
    any other. The schedule starts when every user is ready and lasts ``plan.duration``; the run's
    time counts from ``run()``, pool start included. ``plan.wait`` does not apply: an iteration is
    a single task. ``scheduled_iterations == started_iterations + dropped_iterations`` always.
    With ``plan.iterations`` (``--iterations N``, in all: a user of the pool has no iterations of its own) the
    schedule ends once N iterations have started, and the run once they have ended.
    """

    def __init__(
        self,
        scenarios: Sequence[type[User]],
        plan: RunPlan,
        stats: StatsRegistry,
        make_session: Callable[[StatsRegistry], HttpSession],
        context: RunContext | None = None,
        hooks: RunHooks | None = None,
        *,
        rate: float | None = None,
    ) -> None:
        """``rate``: iterations a second (``--rate``); or None with a rate profile in the plan (``--rate-stages``),
        whose peak is then the run's ``rate`` in its figures."""
        profile = plan.profile
        if rate is None and profile is not None and profile.kind == "rate":
            rate = profile.peak
        elif profile is not None:
            raise ValueError("the open model follows either --rate or a rate profile, not both nor a users profile")
        if rate is None or not rate > 0:
            raise ValueError(f"the arrival rate must be greater than 0, got {rate}")
        if plan.iterations is not None and plan.iterations_per_user:
            raise ValueError("the open model's iterations are the schedule's, not a user's: no iterations per user")
        super().__init__(scenarios, plan, stats, make_session, context, hooks)
        for name in set(self.spawn_order):
            if not self.scenarios[name].tasks:
                raise TypeError(f"{name} has no @task methods")
        self.rate = rate
        self.scheduled_iterations = 0
        self.started_iterations = 0
        self.dropped_iterations = 0
        pool_split = split_counts(self.spawn_order)
        self.dropped_by_scenario = dict.fromkeys(sorted(pool_split), 0)
        self.busy_users = 0
        self.max_busy_users = 0
        self.schedule_seconds = 0.0
        self._arrivals = ArrivalMix({name: self.scenarios[name].weight for name in pool_split})
        self._free: dict[str, deque[PoolUser]] = {name: deque() for name in pool_split}
        self._pool_ready = Event()
        self._settled = 0
        self._schedule_start: float | None = None  # perf_counter() at t0
        # The due times to come, in seconds from t0; a change of rate from the live page replaces them (and sets
        # _replanned, which wakes the scheduler from its wait for the next one). The latest one handed out.
        self._offsets: Iterator[float] = iter(())
        self._replanned = Event()
        self._last_offset = 0.0

    # --- the pool -----------------------------------------------------------------------------------------------

    def _spawn_user(self, run_index: int, name: str) -> None:
        """A pool user, where LoadRunner's spawner would start a looping one (no think time: an iteration is
        one task)."""
        user = self._new_user(run_index, name, None)
        self.users.append((user, gevent.spawn(self._serve, PoolUser(user, name))))

    def _settle(self) -> None:
        """One more user has finished its on_start (or given up); the last one opens the schedule."""
        self._settled += 1
        if self._settled >= len(self.spawn_order):
            self._pool_ready.set()

    def _serve(self, member: PoolUser) -> None:
        """A pool user's life: on_start, then wait to be handed an iteration, run it, and so on."""
        user = member.user
        try:
            try:
                user.on_start()
            except StopUser:
                return
            except Exception as exc:
                user.report_exception(exc)
                return
            finally:
                self._settle()
            free = self._free[member.scenario]
            while not user.stopping:
                user.waiting = True  # idle: LoadRunner._stop_users kills it at once
                free.append(member)
                member.wake.wait()
                member.wake.clear()
                if not self._iterate(user, member.intended):
                    return
        finally:
            user.client.close()

    def _iterate(self, user: User, intended: float) -> bool:
        """One task, its first request timed from ``intended``; False when the user quits (StopUser)."""
        client = user.client
        client.intended_start = intended
        try:
            user.pick_task()(user)
        except StopUser:
            return False
        except Exception as exc:
            user.report_exception(exc)
        finally:
            client.intended_start = 0.0  # a task that sent nothing leaves no lag to the next request
            self.busy_users -= 1
            if self.iteration_limit is not None:
                self.iteration_limit.task_ended()
        return True

    # --- the schedule -------------------------------------------------------------------------------------------

    def _dispatch(self, intended: float) -> None:
        """The arrival due at ``intended``: hand it to the longest-idle free user of its scenario, or drop it."""
        self.scheduled_iterations += 1
        scenario = self._arrivals.next()
        free = self._free[scenario]
        if not free:
            self.dropped_iterations += 1
            self.dropped_by_scenario[scenario] += 1
            return
        member = free.popleft()
        if self.iteration_limit is not None:
            self.iteration_limit.may_start(member.user)  # the scheduler stops before it would refuse
        member.user.waiting = False  # busy from now: a stop timeout lets it finish
        member.intended = intended
        self.started_iterations += 1
        self.busy_users += 1
        if self.busy_users > self.max_busy_users:
            self.max_busy_users = self.busy_users
        member.wake.set()

    def _schedule(self) -> None:
        """Start the pool, then release iteration k at t0 + k/R until t0 + duration, then end the run.

        A scheduler that wakes late (a blocked event loop) releases every arrival that fell due
        meanwhile at once, each with its own due time: the lateness is measured, not forgotten.
        Even idle, the event loop's timers wake about 0.6 ms late (epoll waits in whole
        milliseconds), which the first requests carry too, as wrk2's do.
        """
        if not self.spawn_order:
            self._pool_ready.set()
        self._spawner()  # LoadRunner's paced spawn (and gc.freeze of the pool once it is built)
        gevent.wait([self._pool_ready, self._stop], timeout=POOL_READY_TIMEOUT, count=1)
        if self._stop.is_set():
            return
        start = self._schedule_start = time.perf_counter()
        end = start + self.plan.duration
        self._begin_profile(time.time())  # a plain run's too: a change of rate counts from it
        profile = self.plan.profile
        self._offsets = arrival_offsets(profile) if profile is not None else (k / self.rate for k in count())
        limit = self.iteration_limit
        while limit is None or not limit.exhausted:
            offset = next(self._offsets, None)
            if offset is None or start + offset >= end:
                break
            intended = start + offset
            delay = intended - time.perf_counter()
            if delay > 0 and self._replanned.wait(timeout=delay):
                self._replanned.clear()  # this arrival was the old rate's: the new schedule decides the next
                continue
            self._last_offset = offset
            self._dispatch(intended)
        over = profile.over_at() if profile is not None else None
        gevent.sleep(max(0.0, min(end, start + over if over is not None else end) - time.perf_counter()))
        self.request_stop("completed")

    # --- a change of rate from the live page ---------------------------------------------------------------------

    def _plain_profile(self, elapsed: float) -> Profile:
        """A plain --rate run held its rate from the schedule's start."""
        return plain_profile(self.rate, elapsed, "rate")

    def change_target(self, target: float, at: float) -> Profile:
        """As ``LoadRunner.change_target``. Asked while the pool is still starting, the new rate holds from the
        schedule's start: the profile's clock starts there, so until then it counts from now."""
        if self._schedule_start is None and self.profile_origin is None:
            self.profile_origin = time.time()
        return super().change_target(target, at)

    def _profile_changed(self, was_plain: bool, at: float) -> None:
        """The schedule to come follows the new profile (``Runner.change_target`` made it): from the moment asked
        for, or from the latest arrival handed out when that is later (the run hears a change up to a second
        after it was asked for, and an arrival already sent is not sent again). Its due times count from t0 as
        before, so a late start is still measured from them."""
        profile = self.plan.profile
        assert profile is not None
        self.rate = max(self.rate, profile.peak)
        if self._schedule_start is None:  # the pool is still starting: the schedule begins on the new profile
            return
        self._offsets = arrival_offsets(profile, start=max(at, self._last_offset))
        self._replanned.set()

    # --- what the open model brings to LoadRunner's loop --------------------------------------------------------

    def _start_driver(self) -> gevent.Greenlet:
        """The schedule (which starts the pool first); a scheduler that fails stops the run, naming why."""
        scheduler = gevent.spawn(self._schedule)
        scheduler.link_exception(lambda dead: self.request_stop(f"scheduler failed: {dead.exception!r}"[:200]))
        return scheduler

    def _time_bound(self) -> float:
        """The pool's ramp, its wait to be ready, the schedule and 10 s: reached only if the scheduler hangs
        (it ends the run itself when the schedule is over)."""
        return len(self.spawn_order) / self.plan.spawn_rate + POOL_READY_TIMEOUT + self.plan.duration + 10.0

    def _out_of_time(self) -> None:
        self.request_stop("the schedule overran its time")

    def _ticks_over(self) -> bool:
        """Once the schedule is over the scheduler ends the run in a moment; the final tick follows."""
        start = self._schedule_start
        return start is not None and time.perf_counter() >= start + self.plan.duration

    def _driver_ended(self) -> None:
        if self._schedule_start is not None:
            self.schedule_seconds = min(time.perf_counter() - self._schedule_start, self.plan.duration)

    # --- what to report -----------------------------------------------------------------------------------------

    def report_tick(self, elapsed: float, users: int, cpu_percent: float, peak_percent: float | None = None) -> None:
        """As ``LoadRunner.report_tick``; each sample also says the iterations started a second, what a rate profile
        asks for, since a task may send several requests and req/s is then another unit than the target's."""
        self.stats.iterations_started = self.started_iterations
        super().report_tick(elapsed, users, cpu_percent, peak_percent)

    def arrival_counts(self) -> tuple[int, int]:
        """(iterations scheduled, iterations dropped) so far: a capacity search's steps tell the pool's part apart
        with them (``perf.load.capacity``)."""
        return self.scheduled_iterations, self.dropped_iterations

    @property
    def dropped_percent(self) -> float:
        return 100.0 * self.dropped_iterations / self.scheduled_iterations if self.scheduled_iterations else 0.0

    def outcome(self) -> dict[str, Any]:
        """The schedule's figures, JSON-ready: for the printed summary, ``--json`` and the stored run."""
        return {
            "rate": self.rate,
            "pool_users": len(self.spawn_order),
            "schedule_seconds": round(self.schedule_seconds, 3),
            "scheduled_iterations": self.scheduled_iterations,
            "started_iterations": self.started_iterations,
            "dropped_iterations": self.dropped_iterations,
            "dropped_percent": round(self.dropped_percent, 2),
            "dropped_by_scenario": {name: count for name, count in self.dropped_by_scenario.items() if count},
            "max_busy_users": self.max_busy_users,
        }

    def summary_lines(self) -> list[str]:
        """What to print after the run; a warning line when arrivals were dropped."""
        pace = f"{self.rate:g}" if self.plan.profile is None else f"up to {self.rate:g} (the rate profile)"
        lines = [
            f"Open model: {pace} iterations/s for {self.schedule_seconds:.1f}s: "
            f"{self.scheduled_iterations} scheduled, {self.started_iterations} started, "
            f"{self.dropped_iterations} dropped ({self.dropped_percent:.1f}%); "
            f"at most {self.max_busy_users} of {len(self.spawn_order)} users busy at once"
        ]
        if self.dropped_iterations:
            worst = ", ".join(f"{name} {count}" for name, count in
                              sorted(self.dropped_by_scenario.items(), key=lambda item: -item[1]) if count)
            lines.append(f"WARNING: {self.dropped_iterations} iterations dropped ({worst}): every user of their "
                         "scenario was busy; the server did not get the load asked for. Raise --users or lower --rate.")
        return lines
