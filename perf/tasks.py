"""The Celery task that runs one shard of a ``run_perf --distributed celery`` run on a worker.

The worker must run the gevent pool (``celery -A perf.celery worker -P gevent``): Celery monkey-patches
the standard library at start for that pool, which the engine's sockets and greenlets need, and each
shard then runs as one greenlet of the worker, its users as greenlets beside it. The shard is a plain
LoadRunner over its share of the users (``perf.load.shares.Share``, as a forked worker's is); its tick
(every second here) is the heartbeat that writes its cumulative figures to its ``ShardReport`` row, with
its recent stage marks beside them, and reads the coordinator's stop flag.
"""

import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from django.db import connection
from django.utils import timezone

from perf import packs
from perf.celery import app
from perf.cli.profiles import profile_from_json
from perf.conf import load_config
from perf.config import PerfConfig
from perf.distributed.coordinator import HEARTBEAT_INTERVAL, MARKS_RESENT_FOR, OPEN_STATUSES, TASK_NAME
from perf.load.context import RunContext
from perf.load.hooks import RunHooks, Tick
from perf.load.request_log import RequestLog
from perf.load.runner import LoadRunner, RunPlan, scenario_spawn_order
from perf.load.session import HttpSession
from perf.load.shares import Share
from perf.load.stage_figures import share_json
from perf.load.stats import StatsRegistry
from perf.load.user import User
from perf.models import PerfRun, ShardReport
from perf.store import liveness, persist
from perf.store.thread import DatabaseThread
from perf.web import launch
from perf.web.launch import LAUNCH_TASK


def shard_runner(scenarios: list[type[User]], plan: RunPlan, stats: StatsRegistry,
                 make_session: Callable[[StatsRegistry], HttpSession], context: RunContext, index: int, shards: int,
                 start_at: float, hooks: RunHooks | None = None) -> LoadRunner:
    """A LoadRunner over share ``index`` of ``shards`` of the run that ``plan`` describes whole.

    Each user keeps its position in the whole run, so together the shards spawn the users at the moments
    one process would (position / spawn rate after the common ``start_at``) and, in a seeded run, give
    each user the random stream it would have had in one process. The pack's context deals its pre-seeded
    accounts by the same stride: shard i takes i, i + N, … (one process takes 0, 1, 2, …).
    """
    share = Share.of(scenario_spawn_order(scenarios, plan.users), index, shards)
    share.deal_accounts(context)
    if plan.profile is not None:  # the shard follows its part of the run's profile, on the run's clock
        return LoadRunner(scenarios, share.scaled(plan, HEARTBEAT_INTERVAL), stats, make_session, context=context,
                          hooks=hooks, share=share, clock_start=start_at)
    return LoadRunner(scenarios, share.scaled(plan, HEARTBEAT_INTERVAL), stats, make_session, context=context,
                      hooks=hooks, share=share, first_spawn_at=start_at + share.first_spawn_delay(plan.spawn_rate))


class Heartbeat:
    """The shard's tick: write the cumulative figures to its row; stop when the coordinator asks
    (``stop_requested``) or has given the shard up (the row is no longer ``running``).

    The shard also reads the run's own row, because the coordinator may be dead (killed -9, its machine
    gone) and then nobody relays anything: Stop pressed in the admin (``stop_requested_at``) reaches the
    shard directly, and a coordinator whose heartbeat (the run's ``heartbeat_at``, written every 2 s)
    stands still for ``coordinator_timeout`` seconds is gone, so the shard stops by itself and keeps its
    figures. As the coordinator judges its shards, that silence is measured on this machine's own clock
    (only the heartbeat's changes count), so clock skew between machines cannot stop a shard.

    The write happens on a thread of its own (``perf.store.thread.DatabaseThread``): a locked database never
    stalls the shard's users. A heartbeat that finds the previous one still writing is skipped, which
    loses nothing since every report is cumulative; what the row says back is acted on once it is read.
    """

    def __init__(self, pk: int, runner: LoadRunner, stats: StatsRegistry, context: RunContext, run_id: int,
                 coordinator_timeout: float) -> None:
        self.pk = pk
        self.runner = runner
        self.stats = stats
        self.context = context
        self.run_id = run_id
        self.coordinator_timeout = coordinator_timeout
        self.db = DatabaseThread()
        self.stop_reason = ""  # set by the thread from what the row says; read on the event loop
        self.on_its_own = False  # nobody asked for that stop: the shard decided it (its run or coordinator gone)
        self._coordinator: tuple[object, float] = (None, time.monotonic())  # (its heartbeat, when it last moved)
        # A change of target from the live page, read with the run's row on the thread; applied on the event loop.
        self.change_asked: dict[str, Any] | None = None
        self._change_at: Any = None  # the "at" of the change applied last

    def _figures(self, last: bool = False, **fields: Any) -> dict[str, Any]:
        """A snapshot of the shard's figures, taken on the event loop where they change: its stage marks of the
        last ``MARKS_RESENT_FOR`` seconds (the coordinator keeps those it read before), all of them in the last."""
        since = None if last else time.time() - MARKS_RESENT_FOR
        return {"stats": share_json(self.stats, since), "requests": self.stats.total.num_requests,
                "heartbeat_at": timezone.now(), "max_cpu_percent": self.runner.max_cpu_percent,
                "notes": list(self.context.notes), **fields}

    def _write(self, figures: dict[str, Any]) -> int:
        return ShardReport.objects.filter(pk=self.pk, status=ShardReport.Status.RUNNING).update(**figures)

    def _beat(self, figures: dict[str, Any]) -> None:
        if not self._write(figures):
            self.stop_reason = "given up by the coordinator"
        elif ShardReport.objects.filter(pk=self.pk, stop_requested=True).exists():
            self.stop_reason = "stop requested by the coordinator"
        else:
            self.stop_reason, self.on_its_own = self._run_says()

    def _run_says(self) -> tuple[str, bool]:
        """Why the run's own row means this shard must stop ("" if it need not), and whether the shard decides
        that on its own rather than because somebody asked (on the thread)."""
        row = PerfRun.objects.filter(pk=self.run_id).values_list("heartbeat_at", "stop_requested_by",
                                                                  "stop_requested_at", "target_change").first()
        if row is None:
            return "its run was deleted", True
        heartbeat, who, asked_at, self.change_asked = row
        if asked_at is not None:
            return persist.admin_stop_reason(who), False
        seen, since = self._coordinator
        now = time.monotonic()
        if heartbeat != seen:
            self._coordinator = (heartbeat, now)
        elif now - since > self.coordinator_timeout:
            return f"its coordinator is gone (no heartbeat for {self.coordinator_timeout:g} s)", True
        return "", False

    def __call__(self, tick: Tick) -> None:
        self.db.submit(self._beat, self._figures(running_users=tick.users, cpu_percent=tick.cpu_percent),
                       done=self._heard)

    def _heard(self, ok: bool) -> None:
        """On the event loop, as soon as a heartbeat's write has ended."""
        if self.stop_reason:
            if self.on_its_own:  # nobody asked: say in the shard's row why it stopped early
                self.context.note_once(f"a shard stopped early by itself: {self.stop_reason}")
            self.runner.request_stop(self.stop_reason)
            return
        asked = self.change_asked
        if asked and asked.get("at") != self._change_at:  # the run's new target: this shard follows its part
            self._change_at = asked.get("at")
            self.runner.change_target(float(asked["target"]), float(asked["at"]))

    def finish(self) -> None:
        """The last report, waited for (and retried while the database is locked)."""
        try:
            self.db.call(self._write, self._figures(last=True, status=ShardReport.Status.DONE,
                                                    finished_at=timezone.now(), facts=self.context.facts_as_lists()))
        finally:
            self.db.close()


@app.task(name=TASK_NAME, bind=True)
def run_shard(self: Any, *, run_id: int, index: int, shards: int, host: str, scenarios: list[str], users: int,
              spawn_rate: float, start_at: float, end_at: float, wait: list[float] | None, seed: int | None,
              stop_timeout: float, config: dict[str, Any] | None, request_log: str | None = None,
              coordinator_timeout: float | None = None, profile: dict[str, Any] | None = None) -> str:
    """Run shard ``index`` of ``shards`` until ``end_at`` (a wall-clock time common to all shards).

    Returns "skipped" when the row is no longer pending: a task delivered again (acks_late after a
    lost worker) or one the coordinator already gave up or stopped must not count twice; and when the
    run itself is no longer running or was asked to stop.
    """
    hostname = self.request.hostname or ""
    now = timezone.now()
    # A task taken late, once its run is over (lost with its coordinator, stopped from the admin), sends nothing.
    claimed = ShardReport.objects.filter(
        run_id=run_id, index=index, status=ShardReport.Status.PENDING, stop_requested=False,
        run__status=PerfRun.Status.RUNNING, run__stop_requested_at__isnull=True,
    ).update(status=ShardReport.Status.RUNNING, hostname=hostname, started_at=now, heartbeat_at=now)
    if not claimed:
        connection.close()
        return "skipped"
    pk = ShardReport.objects.values_list("pk", flat=True).get(run_id=run_id, index=index)
    stats = StatsRegistry()
    try:
        perf_config = PerfConfig(**config) if config else replace(load_config(), backend_url=host)
        context = packs.make_context()  # the scenario pack's, from this worker's settings and environment
        configured = packs.scenarios()
        plan = RunPlan(users=users, spawn_rate=spawn_rate, duration=max(0.0, end_at - time.time()),
                       stop_timeout=stop_timeout, wait=(wait[0], wait[1]) if wait else None, seed=seed,
                       request_timeout=perf_config.request_timeout,
                       profile=None if profile is None else profile_from_json(profile))
        log = RequestLog(request_log) if request_log else None  # run_perf --request-log, on this machine

        def make_session(registry: StatsRegistry) -> HttpSession:
            return HttpSession(host, registry.record, timeout=perf_config.request_timeout, request_log=log)

        def on_tick(tick: Tick) -> None:  # the heartbeat watches the runner, so it is made once the runner is
            heartbeat(tick)

        runner = shard_runner([configured[name] for name in scenarios], plan, stats, make_session, context,
                              index=index, shards=shards, start_at=start_at, hooks=RunHooks(on_tick=on_tick))
        heartbeat = Heartbeat(pk, runner, stats, context, run_id,
                              liveness.lost_after() if coordinator_timeout is None else coordinator_timeout)
        runner.run()
        heartbeat.finish()
        return "done"
    except Exception as exc:
        ShardReport.objects.filter(pk=pk, status__in=OPEN_STATUSES).update(
            status=ShardReport.Status.FAILED, finished_at=timezone.now(), stats=share_json(stats),
            requests=stats.total.num_requests,
            error=f"failed ({type(exc).__name__}: {exc})\n\n{traceback.format_exc()}")
        raise
    finally:
        connection.close()


@app.task(name=LAUNCH_TASK)
def launch_run(*, args: list[str], launch_id: str) -> str:
    """The admin's "New run" through Celery: start ``run_perf ARGS`` detached on this worker's machine.

    The task waits only until the run is stored (or the command failed first, which it records as a
    ``failed`` run for the page to show); the run itself goes on without the worker.
    """
    process, log_path = launch.spawn(args, launch_id)
    try:
        launch.wait_for_run(launch_id, process, log_path)
        return "started"
    except launch.LaunchError as exc:
        if process.poll() is None:
            return "not stored in time"  # it may still store its run: recording a failure would be wrong
        launch.record_failed_launch(args, launch_id, str(exc))
        return "failed"
    finally:
        connection.close()
