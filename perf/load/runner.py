"""Runs simulated users in gevent greenlets for a bounded time.

One role only: spawn users at the spawn rate, tick every ``tick_interval`` seconds (take a
time-series sample, watch the generator's CPU, tell the caller), and stop everything when
the duration is over or a stop is requested. It knows nothing of Django or of output.
"""

import gc
import os
import random
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from math import log
from typing import Any

import gevent
from gevent.event import Event

from perf.load.context import RunContext
from perf.load.hooks import RunHooks, Tick
from perf.load.profile import HeldProfile, Profile, StageSpan, plain_profile, span_at, whole_users
from perf.load.session import CUT_OFF, HttpSession
from perf.load.shares import Share
from perf.load.stats import StatsRegistry
from perf.load.user import IterationLimit, User, WaitTime, between

CPU_WARNING_PERCENT = 90.0
# How often the end of a run looks whether the requests in flight have been answered.
END_POLL_S = 0.02
# How often a run with a load profile asks it for the target and starts or stops users to match.
PROFILE_STEP_S = 0.2


def cut_off_count(stats: StatsRegistry) -> int:
    """Requests recorded as cut off at the end (``HttpSession.cut_off``), from any process of the run."""
    prefix = CUT_OFF + ":"
    return sum(failure.occurrences for failure in stats.failures.values() if failure.error.startswith(prefix))


def in_flight_lines(in_flight: int, cut_off: int, grace: float) -> list[str]:
    """The summary's line on requests in flight at the end: how many, how many ended within the grace."""
    if not in_flight:
        return []
    line = (f"{in_flight} request{'s' if in_flight != 1 else ''} in flight at the end: "
            f"{in_flight - cut_off} ended within the {grace:g} s grace (answered, or failed on their own)")
    if cut_off:
        line += f", {cut_off} cut off (counted as failures)"
    return [line]


def allocate_users(weights: dict[str, int], count: int) -> list[str]:
    """The spawn order of ``count`` users among weighted classes.

    Classes are taken in name order; each next user goes to the class that brings the
    mix closest to the weights (smallest Kullback-Leibler divergence of the actual mix
    from the weighted one). At 100 users over 30/20/15/15/10/5/5/5 this gives Locust
    2.x's split 28/19/14/14/10/5/5/5 (and from 12 users up for these weights); Locust's own
    heap approximation differs from this exact greedy at a few small counts (10 users: Locust
    3/2/1/1/1/1/0/1, here 2/2/1/1/1/1/1/1). Any prefix of the order is itself a fair mix.
    """
    names = sorted(name for name, weight in weights.items() if weight > 0)
    if not names:
        raise ValueError("no scenario has a positive weight")
    total = sum(weights[name] for name in names)
    target = {name: weights[name] / total for name in names}
    counts = dict.fromkeys(names, 0)
    order: list[str] = []
    for picked in range(1, count + 1):
        best_name, best_divergence = names[0], float("inf")
        for candidate in names:
            divergence = 0.0
            for name in names:
                share = (counts[name] + (name == candidate)) / picked
                if share:
                    divergence += share * log(share / target[name])
            if divergence < best_divergence - 1e-12:
                best_name, best_divergence = candidate, divergence
        counts[best_name] += 1
        order.append(best_name)
    return order


def scenario_spawn_order(scenarios: Sequence[type[User]], users: int) -> list[str]:
    """``allocate_users`` over the scenarios' class weights: the split every runner starts from."""
    return allocate_users({cls.__name__: cls.weight for cls in scenarios}, users)


def split_counts(order: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in order:
        counts[name] = counts.get(name, 0) + 1
    return counts


@dataclass(frozen=True)
class RunPlan:
    """What to run: how many users, how fast they arrive, for how long (ramp included)."""

    users: int
    spawn_rate: float
    duration: float
    stop_timeout: float = 0.0
    wait: tuple[float, float] | None = None
    seed: int | None = None
    tick_interval: float = 2.0
    request_timeout: float = 30.0
    # A load profile (--stages, --rate-stages, --shape): the target over time, for the whole run. ``users`` is
    # then its peak (the spawn order's length) and ``duration`` its length, or -t when shorter.
    profile: Profile | None = None
    # --iterations: the run ends "completed" after this many task iterations in all, or per user with
    # ``iterations_per_user`` (``perf.load.user.IterationLimit``); the duration still bounds it.
    iterations: int | None = None
    iterations_per_user: bool = False

    @property
    def end_grace(self) -> float:
        """How long requests in flight when the run ends may still take: ``--stop-timeout`` when given, else
        the request time-out (which bounds each of them anyway), as k6's ``gracefulStop`` bounds iterations."""
        return self.stop_timeout or self.request_timeout


def iterations_part(iterations: int, share: Share) -> int:
    """A share's part of a run's ``iterations`` in all: the parts add up to them, the first shares taking one
    more when they do not divide evenly (as the first shares take one more user)."""
    whole, left = divmod(iterations, share.count)
    return whole + (share.index < left)


def user_rng(seed: int | None, run_index: int, shared: random.Random) -> random.Random:
    """The random generator of the user at run-wide spawn position ``run_index``, the one rule for every
    runner: a seeded run needs a stream per user to be reproducible (seeded by the position, so the same
    whatever the run is split into); an unseeded one shares one generator, which saves ~2.9 KB per user
    (a Mersenne Twister state is 2.5 KB)."""
    return random.Random(f"{seed}:{run_index}") if seed is not None else shared


class Runner:
    """The one contract of every runner (one process, forked workers, Celery shards, open model).

    ``perf.cli.run`` builds a runner with its ``RunHooks``, calls ``attach_store`` when the run is stored,
    then ``run()``, which blocks until the run ends and returns ``"completed"`` or the reason it stopped
    early. ``request_stop`` may be called at any time, from a signal handler too, and takes effect at the
    runner's next tick or sooner.
    """

    # A runner whose registry is the merge of its shares' (forked workers, Celery shards) marks no stage itself: its
    # shares mark theirs where the requests happen, and it adds their marks up (``stage_figures.merge_marks``).
    merges_shares = False

    def __init__(
        self,
        scenarios: Sequence[type[User]],
        plan: RunPlan,
        stats: StatsRegistry,
        context: RunContext | None = None,
        hooks: RunHooks | None = None,
        share: Share | None = None,
    ) -> None:
        """``share`` is given by runners that run a part of a larger run (a worker, a shard); ``plan`` is
        then already that share's (``Share.scaled``). By default the runner runs the whole run."""
        self.scenarios = {cls.__name__: cls for cls in scenarios}
        self.plan = plan
        self.stats = stats
        self.context = context
        self.hooks = hooks or RunHooks()
        self._reported_users = 0
        self._last_tick_at: float | None = None  # time.time() of the latest tick, for the second clock
        self.share = share if share is not None else Share.whole(scenario_spawn_order(scenarios, plan.users))
        self.spawn_order = list(self.share.scenarios)
        self.cpu_warned = False
        self.max_cpu_percent = 0.0
        self._stop = Event()
        self._stop_reason = "completed"
        # Set by a runner that could not run its whole load (a Celery shard died): the run's figures are short, so
        # it is stored as failed, never completed, whatever reason ``run()`` gives.
        self.broken = False
        self._cut = Event()  # a second stop signal: the requests in flight are cut off without their grace
        # With a load profile: the wall-clock time its elapsed seconds count from, once known (_begin_profile).
        self.profile_origin: float | None = None
        self.clock_start: float | None = None  # where a share's profile counts from, when not its own start
        self._stage_watch: gevent.Greenlet | None = None

    def run(self) -> str:
        raise NotImplementedError

    # --- the load profile ---------------------------------------------------------------------------------------

    def _begin_profile(self, origin: float) -> None:
        """The profile's clock starts at ``origin`` (time.time()). A runner that records requests (the whole run, a
        worker's or a shard's share) marks its registry at each stage boundary (``StatsRegistry.mark_stage``), so
        each request counts in the stage during which it was recorded."""
        self.profile_origin = origin
        profile = self.plan.profile
        if profile is not None and profile.spans() and not self.merges_shares:
            self._stage_watch = gevent.spawn(self._mark_stages, profile, origin)

    def _mark_stages(self, profile: Profile, origin: float) -> None:
        for span in profile.spans():
            delay = origin + span.start - time.time()
            if delay > 0:
                gevent.sleep(delay)
            self.stats.mark_stage(span.index)

    def _end_profile(self) -> None:
        if self._stage_watch is not None:
            self._stage_watch.kill(block=False)

    def change_target(self, target: float, at: float) -> Profile:
        """From ``at`` (Unix seconds: when it was asked for on the live page) hold ``target`` to the end of the run:
        the profile becomes its own past plus one stage from that moment (a run without one gets one). Every
        process of the run computes the same stage from the same stored moment; each that records requests marks
        its start as it hears of it, so the reports show its own figures."""
        origin = self.profile_origin or self.clock_start or self.stats.start_time
        elapsed = max(0.0, at - origin)
        plan = self.plan
        base = plan.profile or self._plain_profile(elapsed)
        profile = HeldProfile(base, elapsed, target, plan.duration)
        if base.kind == "users" and self.share.users_of(target) > len(self.share):
            # Spawn positions past the order the run was sized for: any prefix of the order is a fair mix, so the
            # longer order starts with the one already run.
            order = scenario_spawn_order(list(self.scenarios.values()), whole_users(target))
            self.share = Share.of(order, self.share.index, self.share.count)
            self.spawn_order = list(self.share.scenarios)
        self.plan = replace(plan, profile=profile, users=max(plan.users, len(self.share)))
        if self.profile_origin is None:
            self.profile_origin = origin
        if not self.merges_shares:
            self._end_profile()  # the base's later stages never begin
            self.stats.mark_stage(profile.spans()[-1].index)
        return profile

    def _plain_profile(self, elapsed: float) -> Profile:
        """What a run without a profile did for its first ``elapsed`` seconds (``plain_profile``): here its users;
        the open model says its rate."""
        return plain_profile(self.plan.users * self.share.count, elapsed)

    def profile_now(self) -> tuple[float | None, StageSpan | None]:
        """(the target, the stage under way) of the run's profile now; (None, None) without one or before it began."""
        profile, origin = self.plan.profile, self.profile_origin
        if profile is None or origin is None:
            return None, None
        elapsed = time.time() - origin
        return profile.target(elapsed), span_at(profile, elapsed)

    def request_stop(self, reason: str = "aborted") -> None:
        """Stop early (Ctrl-C, SIGTERM, a threshold); the first reason given is kept."""
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop.set()

    def cut_now(self) -> None:
        """End the grace of the requests in flight at once (an impatient second Ctrl-C); safe from a signal."""
        self._cut.set()

    @property
    def stopping(self) -> bool:
        return bool(self._stop.is_set())

    @property
    def user_count(self) -> int:
        """Users running now; runners that know better (one process, forked workers) say so."""
        return self._reported_users

    def attach_store(self, store: Any) -> None:
        """The run's ``perf.store.thread.RunStore``; only runners that talk through the database need it."""

    def summary_lines(self) -> list[str]:
        """Lines for the end of the run that only this runner can say (how the load was shared)."""
        return []

    def outcome(self) -> dict[str, Any] | None:
        """Figures of this runner's own to store with the run (the open model's iterations), if any."""
        return None

    def end_lines(self) -> list[str]:
        """The summary's word on requests cut off at the end; runners that saw the users end say more."""
        cut_off = cut_off_count(self.stats)
        if not cut_off:
            return []
        return [f"{cut_off} request{'s' if cut_off != 1 else ''} cut off at the end: no answer within the "
                f"{self.plan.end_grace:g} s grace (counted as failures)"]

    def report_tick(self, elapsed: float, users: int, cpu_percent: float, peak_percent: float | None = None) -> None:
        """Take a sample of the figures so far and tell the caller; warn once of a busy generator CPU.

        ``peak_percent`` is the highest CPU seen anywhere since the last tick (default ``cpu_percent``).
        """
        peak = cpu_percent if peak_percent is None else peak_percent
        self.max_cpu_percent = max(self.max_cpu_percent, peak)
        if peak > CPU_WARNING_PERCENT and not self.cpu_warned:
            self.cpu_warned = True
            self.hooks.on_cpu_warning(peak)
        self._reported_users, self._last_tick_at = users, time.time()
        target, stage = self.profile_now()
        sample = self.stats.take_sample(users, target=target)  # with a history point as of now
        self._tell_second()
        self.hooks.on_tick(Tick(sample=sample, elapsed=elapsed, users=users, cpu_percent=cpu_percent, target=target,
                                stage=stage))

    def report_second(self) -> None:
        """A point of the stats history between ticks (Locust writes its history every second)."""
        self.stats.mark_second(self.user_count)
        self._tell_second()

    def _tell_second(self) -> None:
        point = self.stats.last_point
        if point is not None:
            self.hooks.on_second(point)

    @contextmanager
    def second_clock(self) -> Iterator[None]:
        """While the block runs (``run()``), a point of the stats history every second, whatever the
        runner: one second after the newest point, unless a tick (which makes one) is due within half a
        second of it; then the clock waits for the tick, and only a tick that is half a second late is not
        waited for.

        Ticks alone come every 2 s; this is the one place that makes the history a row a second for
        every runner. A forked worker inherits the clock's greenlet: it stops there at once.
        """
        clock = gevent.spawn(self._second_clock, os.getpid())
        try:
            yield
        finally:
            clock.kill()

    def _second_clock(self, pid: int) -> None:
        while True:
            point, start = self.stats.last_point, self.stats.start_time
            due = (point.timestamp if point is not None else start) + 1.0
            tick_due = (self._last_tick_at or start) + self.plan.tick_interval
            if due > tick_due - 0.5:
                due = max(due, tick_due + 0.5)
            delay = due - time.time()
            if delay > 0:
                gevent.sleep(delay)  # then look again: a tick may have made a point, or the run started
                continue
            if os.getpid() != pid:
                return
            self.report_second()

    def _note(self, message: str) -> None:
        """A remark for the end of the run, said once however often it happens."""
        if self.context is not None:
            self.context.note_once(message)


class LoadRunner(Runner):
    """Drives the users of one run (or of one share of it) in this process; ``run()`` blocks until the
    run ends and says how.

    ``run()`` is the one loop of both models: it starts the model's driver (here the spawner, in the open
    model the arrival schedule), ticks every ``tick_interval`` until the run's time bound or a stop, then
    stops the users and takes the final tick. A model supplies only what differs: its driver, its time
    bound and what happens when it is reached, and when periodic ticks are over.
    """

    def __init__(
        self,
        scenarios: Sequence[type[User]],
        plan: RunPlan,
        stats: StatsRegistry,
        make_session: Callable[[StatsRegistry], HttpSession],
        context: RunContext | None = None,
        hooks: RunHooks | None = None,
        share: Share | None = None,
        first_spawn_at: float | None = None,
        clock_start: float | None = None,
    ) -> None:
        """``first_spawn_at``: the wall-clock time of the first spawn (a Celery shard starts where one process
        would have started its first user); by default at once. ``clock_start``: with a load profile, the
        wall-clock time its seconds count from (a worker's or a shard's run began elsewhere); by default the
        start of ``run()``."""
        super().__init__(scenarios, plan, stats, context, hooks, share)
        self.make_session = make_session
        self.first_spawn_at = first_spawn_at
        self.clock_start = clock_start
        self.users: list[tuple[User, gevent.Greenlet]] = []
        # With a load profile: the users running for it, in spawn order (those told to stop are out of it).
        self._active: list[tuple[User, gevent.Greenlet]] = []
        # Requests in flight when the run ended, and how many of them the end grace cut off.
        self.in_flight_at_end = 0
        self.cut_off_at_end = 0
        self._wait_override: WaitTime | None = between(*plan.wait) if plan.wait else None
        self._shared_rng = random.Random()
        self._driver: gevent.Greenlet | None = None  # what brings the load (see _start_driver)
        self.iteration_limit = self._iteration_limit()

    def _iteration_limit(self) -> IterationLimit | None:
        """The run's bound in task iterations (``--iterations``), this share's part of it when in all; reaching
        it ends the run as completed."""
        plan = self.plan
        if plan.iterations is None:
            return None
        per_user = plan.iterations_per_user
        limit = plan.iterations if per_user else iterations_part(plan.iterations, self.share)
        return IterationLimit(limit, per_user, len(self.share), lambda: self.request_stop("completed"))

    @property
    def user_count(self) -> int:
        """Users running, not counting those a ramp-down told to stop that are still ending their task."""
        return sum(1 for user, greenlet in self.users if not greenlet.dead and not user.stopping)

    def _new_user(self, run_index: int, name: str, wait_time: WaitTime | None) -> User:
        """The user at run-wide spawn position ``run_index``: its session, its random stream, the context."""
        rng = user_rng(self.plan.seed, run_index, self._shared_rng)
        user = self.scenarios[name](self.make_session(self.stats), rng, self.context, wait_time,
                                    self._record_exception)
        user.iteration_limit = self.iteration_limit
        return user

    def _spawn_user(self, run_index: int, name: str) -> None:
        user = self._new_user(run_index, name, self._wait_override)
        self.users.append((user, gevent.spawn(user.run)))

    def _record_exception(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}({str(exc)!r})"
        self.stats.record_exception(message, "".join(traceback.format_exception(exc)))

    def _spawner(self) -> None:
        """The share's users, one every 1/spawn rate, each with its run-wide position."""
        if self.first_spawn_at is not None:
            delay = self.first_spawn_at - time.time()
            if delay > 0 and self._stop.wait(timeout=delay):
                return
        users = self.share.users
        interval = 1.0 / self.plan.spawn_rate
        started = time.monotonic()
        limit = self.iteration_limit
        for position, (run_index, name) in enumerate(users):
            if self._stop.is_set() or (limit is not None and limit.exhausted):
                return  # a user started now would have no iteration left to run
            self._spawn_user(run_index, name)
            delay = started + (position + 1) * interval - time.monotonic()
            if delay > 0 and position + 1 < len(users):
                gevent.sleep(delay)
        # Everything built so far lives for the whole run: keep it out of the collector's full
        # passes, whose pauses would otherwise show up as generator latency in the tail.
        gc.freeze()

    def _follow(self) -> None:
        """Follow the load profile: at every step ask it for the target, start or stop this share's users to
        match (``Share.users_of``), until it says the run is over."""
        origin = self.clock_start if self.clock_start is not None else self.stats.start_time
        delay = origin - time.time()
        if delay > 0 and self._stop.wait(timeout=delay):
            return
        if self.profile_origin is None:  # else a plain run that a change of target turned into a profiled one
            self._begin_profile(origin)
        while not self._stop.is_set():
            profile = self.plan.profile  # a change of target from the live page replaces it
            assert profile is not None
            order = self.share.users
            target = profile.target(time.time() - origin)
            if target is None:
                self.request_stop("completed")
                return
            wanted = self.share.users_of(target)
            if wanted > len(order):
                self._note(f"the load profile asked for more users than the {self.plan.users} the run was sized for "
                           "(a shape with no peak: raise --users)")
                wanted = len(order)
            self._match(wanted, order)
            self._stop.wait(timeout=PROFILE_STEP_S)

    def _match(self, wanted: int, order: list[tuple[int, str]]) -> None:
        """Start the next users of the spawn order, or stop the most recently started, until ``wanted`` run.
        Users started in one step are spread over it, as a spawn rate would."""
        active = self._active
        missing = wanted - len(active)
        if self.iteration_limit is not None and self.iteration_limit.exhausted:
            missing = 0  # no iteration left for a new user to run
        for number in range(missing):
            run_index, name = order[len(active)]
            user = self._new_user(run_index, name, self._wait_override)
            greenlet = gevent.spawn(user.run)
            self.users.append((user, greenlet))
            active.append((user, greenlet))
            if number + 1 < missing:
                gevent.sleep(PROFILE_STEP_S / missing)
        while len(active) > wanted:
            self._retire(*active.pop())
        if len(self.users) > len(active):  # retired users that have ended: let them go
            self.users = [(user, greenlet) for user, greenlet in self.users if not greenlet.dead]

    def _retire(self, user: User, greenlet: gevent.Greenlet) -> None:
        """A ramp-down stops this user gracefully: thinking, it stops at once (its task is done); busy, it ends
        its task, bounded by --stop-timeout, and then only the request it waits for (its session is sealed)."""
        user.stopping = True
        if user.waiting:
            greenlet.kill(block=False)
        else:
            gevent.spawn(self._retire_busy, user, greenlet)

    def _retire_busy(self, user: User, greenlet: gevent.Greenlet) -> None:
        greenlet.join(timeout=self.plan.stop_timeout)
        if greenlet.dead:
            return
        # Past the bound: the request in flight still ends and is recorded as usual (never a failure of the
        # ramp-down's making); the next one is not sent (SessionSealed ends the user quietly).
        user.client.seal()
        while not greenlet.dead and not user.waiting and user.client.in_flight is not None:
            gevent.sleep(END_POLL_S)
        greenlet.kill(block=False)

    def change_target(self, target: float, at: float) -> Profile:
        """As ``Runner.change_target``; a run that was spawning its users plainly follows the new profile from
        now on, starting from the users it runs (its spawner ends)."""
        plain = self.plan.profile is None
        profile = super().change_target(target, at)
        if self._driver is not None and not self._stop.is_set():
            self._profile_changed(plain, max(0.0, at - (self.profile_origin or at)))
        return profile

    def _profile_changed(self, was_plain: bool, at: float) -> None:
        """The driver's part of a change of target, ``at`` seconds into the profile: a plain run's spawner gives
        way to the profile's follower (a profiled run's follower reads the new profile at its next step)."""
        if was_plain:
            assert self._driver is not None
            self._driver.kill()
            self._active = [(user, greenlet) for user, greenlet in self.users
                            if not greenlet.dead and not user.stopping]
            self._driver = gevent.spawn(self._follow)

    # --- what a model supplies to the loop ----------------------------------------------------------------------

    def _start_driver(self) -> gevent.Greenlet:
        """The greenlet that brings the load: the spawner, or with a load profile its follower; the users then
        loop on their own."""
        return gevent.spawn(self._spawner if self.plan.profile is None else self._follow)

    def _time_bound(self) -> float:
        """Seconds after the start at which the loop ends whatever happens: the planned duration."""
        return self.plan.duration

    def _out_of_time(self) -> None:
        """The time bound is reached: here the run's planned end, so it completed."""

    def _ticks_over(self) -> bool:
        """Whether periodic ticks are over; the final tick comes after the users have stopped."""
        return False

    def _driver_ended(self) -> None:
        """After the driver is killed, before the users are stopped: what the model wants to note."""

    # --- the loop -----------------------------------------------------------------------------------------------

    def run(self) -> str:
        """Run until the time bound or a stop request; returns ``"completed"`` or the stop reason."""
        self.stats.start_time = time.time()
        started = time.monotonic()
        bound = started + self._time_bound()
        cpu_mark = (started, time.process_time())
        if self.iteration_limit is not None:
            self.iteration_limit.check()  # a share whose part of the iterations is 0 has nothing to do
        self._driver = self._start_driver()
        try:
            while True:
                remaining = bound - time.monotonic()
                if remaining <= 0:
                    self._out_of_time()
                    break
                if self._stop.wait(timeout=min(self.plan.tick_interval, remaining)):
                    break
                if time.monotonic() >= bound or self._ticks_over():
                    continue  # the bound ends the loop at the next turn; the last tick is the final one below
                cpu_mark = self._tick(started, cpu_mark)
        finally:
            self._driver.kill()
            self._end_profile()
            self._driver_ended()
            users_at_end = self.user_count
            self._stop_users()
            gc.unfreeze()
        # The final sample also holds what users finished during --stop-timeout.
        self._tick(started, cpu_mark, users_at_end)
        return self._stop_reason

    def _tick(self, started: float, cpu_mark: tuple[float, float], users: int | None = None) -> tuple[float, float]:
        wall, cpu = time.monotonic(), time.process_time()
        cpu_percent = 100.0 * (cpu - cpu_mark[1]) / max(wall - cpu_mark[0], 1e-9)
        self.report_tick(wall - started, self.user_count if users is None else users, cpu_percent)
        return wall, cpu

    def _stop_users(self) -> None:
        """End every user without dropping a request in flight.

        Users thinking (or idle in the open model's pool) stop at once. With ``--stop-timeout`` the others
        may finish their task within it; without, each may finish the request it is waiting for but sends
        no other (its session is sealed), and users busy with anything else stop at once. Either way the
        wait lasts ``plan.end_grace`` at most; a request unanswered then is recorded as cut off, a failure
        of its own kind, so thresholds see it and the client's count matches the server's.
        """
        alive = [(user, greenlet) for user, greenlet in self.users if not greenlet.dead]
        finish_tasks = self.plan.stop_timeout > 0
        for user, _ in alive:
            user.stopping = True
            if not finish_tasks:
                user.client.seal()
        self.in_flight_at_end = sum(1 for user, _ in alive if user.client.in_flight is not None)
        idle = [greenlet for user, greenlet in alive
                if user.waiting or (not finish_tasks and user.client.in_flight is None)]
        gevent.killall(idle, block=True, timeout=5)
        give_up = time.monotonic() + self.plan.end_grace
        if finish_tasks:
            gevent.joinall([greenlet for _, greenlet in alive], timeout=self.plan.stop_timeout)
        else:
            while any(user.client.in_flight is not None and not greenlet.dead for user, greenlet in alive):
                if time.monotonic() >= give_up or self._cut.wait(timeout=END_POLL_S):
                    break
        # Users first, then what they left in flight: a request that ended (answered or timed out) as the grace
        # ran out is recorded by its user, one killed still waiting is cut off here, and none is counted twice.
        gevent.killall([greenlet for _, greenlet in alive if not greenlet.dead], block=True, timeout=10)
        for user, _ in alive:
            if user.client.cut_off(self.plan.end_grace):
                self.cut_off_at_end += 1

    def end_lines(self) -> list[str]:
        """What became of the requests in flight when the run ended (nothing when there were none), and of the
        task iterations when the run was bounded in them."""
        return self.iteration_lines() + in_flight_lines(self.in_flight_at_end, self.cut_off_at_end,
                                                        self.plan.end_grace)

    def iteration_lines(self) -> list[str]:
        """``--iterations``: how many task iterations ran, and whether the bound was reached before -t."""
        limit = self.iteration_limit
        if limit is None or self.share.count > 1:  # a worker's part: the parent says nothing of it
            return []
        if limit.per_user:
            bound = f"{limit.limit} per user"
            reached = limit.ended >= limit.limit * limit.users
        else:
            bound = f"{limit.limit} in all"
            reached = limit.ended >= limit.limit
        how = "all run" if reached else "not all run before the run ended"
        return [f"Task iterations: {limit.ended} ({bound}: {how})"]
