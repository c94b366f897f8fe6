"""``run_perf --distributed celery``: the run's users split into shards that Celery workers run anywhere.

The coordinating command (``CeleryRunner``) writes one ``ShardReport`` row per shard, sends one
``perf.tasks.run_shard`` task per shard through the broker, then only reads the database: each shard
rewrites its row every second with its cumulative figures, and each tick the coordinator rebuilds the
run's registry as the exact merge of the latest rows (histograms merge without loss). Nothing comes
back through the broker, so no result backend is needed and a shard that dies still leaves what it
measured up to its last heartbeat.

A shard marks its own stage boundaries; each mark rides with its heartbeats for ``MARKS_RESENT_FOR``
seconds and with its last report, and the coordinator keeps every mark it reads (``MarksRead``): the
run's marks are the shards' added up (``stage_figures.merge_marks``), so a request counts in the stage
during which its shard recorded it, not in the one under way when its heartbeat was read.

A shard is dead when its heartbeat stops changing for ``PERF_SHARD_TIMEOUT`` seconds (default 10), or when no
worker took it within ``START_TIMEOUT``; liveness is judged by the coordinator's own clock (a
heartbeat is only compared with the previous one), so clock skew between machines cannot kill a shard.
A run with a failed shard never ends as plainly "completed": ``run()`` returns a reason that starts
with ``shard`` and names it, and ``failed_shards`` lists them.
"""

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

import gevent
from django.utils import timezone

from perf.conf import perf_settings
from perf.config import PerfConfig
from perf.load.context import RunContext
from perf.load.hooks import RunHooks
from perf.load.runner import Runner, RunPlan
from perf.load.shares import Share, merge_findings, share_count
from perf.load.stage_figures import merge_marks, share_from_json
from perf.load.stats import StageMark, StatsRegistry
from perf.load.user import User
from perf.models import ShardReport
from perf.store import liveness, persist

HEARTBEAT_INTERVAL = 1.0
# A shard's stage mark rides with its heartbeats this long after it is taken, and with its last report: the
# coordinator reads the rows every tick and keeps each mark it sees, so a heartbeat stays about one snapshot long
# however many stages the run has (a mark is one more snapshot).
MARKS_RESENT_FOR = 30.0
START_TIMEOUT = 30.0
# After the planned end: time for shards to stop their users and write their last report.
END_GRACE = 20.0
POLL_INTERVAL = 0.5
TASK_NAME = "perf.tasks.run_shard"
# A shard not ended yet: waiting for a worker, or running (the coordinator's and the tasks' one test of it).
OPEN_STATUSES = (ShardReport.Status.PENDING, ShardReport.Status.RUNNING)


class BrokerUnreachable(Exception):
    """The Celery broker did not answer before the run started; one line that says what to start or set."""


def check_broker(timeout: float = 3.0) -> None:
    """Fail before the run starts, as an unreachable --host does (run_perf: exit 2), when the broker does not
    answer."""
    from perf.celery import app

    with app.connection_for_write() as conn:
        try:
            conn.ensure_connection(max_retries=1, timeout=timeout)
        except Exception as exc:
            raise BrokerUnreachable(f"cannot reach the Celery broker at {conn.as_uri()} ({exc}); start it (Redis) or "
                                    "set CELERY_BROKER_URL") from None


class MarksRead:
    """Each shard's stage marks read so far, in the order it took them. A heartbeat carries only its recent ones
    (``MARKS_RESENT_FOR``), so this is where a shard's earlier marks stay, those of a shard that dies too."""

    def __init__(self) -> None:
        self._kept: dict[int, list[StageMark]] = {}

    def add(self, shard: int, marks: Iterable[StageMark]) -> list[StageMark]:
        """Keep the marks of ``marks`` not read before (a mark is known by its stage and its moment); every mark of
        shard ``shard`` read so far."""
        kept = self._kept.setdefault(shard, [])
        known = {(mark.index, mark.at) for mark in kept}
        kept += [mark for mark in marks if (mark.index, mark.at) not in known]
        kept.sort(key=lambda mark: mark.at)
        return list(kept)


class CeleryRunner(Runner):
    """The runner contract (``perf.load.runner.Runner``) with the users running as Celery shard tasks."""

    merges_shares = True

    def __init__(
        self,
        scenarios: Sequence[type[User]],
        plan: RunPlan,
        stats: StatsRegistry,
        host: str,
        shards: int,
        context: RunContext | None = None,
        hooks: RunHooks | None = None,
        request_timeout: float = PerfConfig.request_timeout,
        request_log: str | None = None,
        profile: dict[str, Any] | None = None,
    ) -> None:
        """``profile``: the run's load profile as stored (``PerfRun.profile``), which each shard rebuilds and
        follows its part of (``perf.cli.profiles.profile_from_json``); ``plan.profile`` is the same one."""
        super().__init__(scenarios, plan, stats, context, hooks)
        self.profile_layout = profile
        self.host = host
        self.request_timeout = request_timeout
        self.request_log = request_log  # run_perf --request-log: shards on this machine append to the same file
        # A shard whose heartbeat stands still this long is given up (PERF_SHARD_TIMEOUT, default 10 s).
        self.heartbeat_timeout = perf_settings.PERF_SHARD_TIMEOUT
        # Shard i of N runs perf.load.shares.Share.of(spawn order, i, N) (perf.tasks); never more shards than users.
        self.shards = share_count(plan.users, shards)
        self.failed_shards: list[int] = []
        self.run_pk: int | None = None
        # Every query goes through the run's store thread once attached (perf.store.thread): never on the event loop.
        self._db: Callable[..., Any] = lambda work, *args: work(*args)
        self._seen: dict[int, tuple[datetime | None, float]] = {}
        self._marks = MarksRead()
        self._running_users = 0  # as the shards' latest heartbeats say, read every half second
        if self.shards < shards:
            self._note(f"--shards {shards} is more than --users {plan.users}: ran {self.shards} shards")
        check_broker()

    @property
    def user_count(self) -> int:
        """Users running, as the shards' latest heartbeats say: read with every poll, so the stats history's
        point a second is as fresh as the heartbeats, not as the last tick."""
        return self._running_users

    def attach_store(self, store: Any) -> None:
        """The stored run the shards report under (run.py calls this before ``run()``)."""
        self.run_pk = store.run.pk
        self._db = store.call

    def run(self) -> str:
        """Send the shards, merge their reports every tick, and return when all have ended or
        are given up; the merged figures are left in ``stats``."""
        if self.run_pk is None:
            raise RuntimeError("CeleryRunner needs attach_store(store): shards report under a stored run")
        started_at = time.time()
        started = time.monotonic()
        self.stats.start_time = started_at
        self._db(self._create_rows, self.run_pk)
        self._send(started_at, started_at + self.plan.duration)
        if self.plan.profile is not None:
            self._begin_profile(started_at)  # the shards' profiles count from the same moment
        give_up_at = started + self.plan.duration + self.plan.end_grace + END_GRACE
        next_tick = started + self.plan.tick_interval
        stopping = False
        while True:
            rows = self._db(self._rows, "stats", "notes", "facts")
            now = time.monotonic()
            for row in rows:
                if row.status in OPEN_STATUSES:
                    self._check_alive(row, now, started)
            self._running_users = _running_users(rows)
            if self._stop.is_set() and not stopping:
                stopping = True
                give_up_at = min(give_up_at, now + self.plan.end_grace + END_GRACE)
                self._db(self._ask_shards_to_stop)
            open_rows = [row for row in rows if row.status in OPEN_STATUSES]
            if not open_rows:
                break
            if now >= give_up_at:
                for row in open_rows:
                    why = "never started (no worker took it)" if row.status == ShardReport.Status.PENDING else (
                        f"did not finish within {END_GRACE:.0f} s of the end and its {self.plan.end_grace:g} s grace")
                    self._give_up(row, why)
                break
            if now >= next_tick:
                self._tick(started_at)
                next_tick += self.plan.tick_interval
            pause = min(POLL_INTERVAL, max(next_tick - time.monotonic(), 0.01))
            # Once stopping, the event stays set: sleep rather than spin while the shards wind down.
            if stopping:
                gevent.sleep(pause)
            else:
                self._stop.wait(timeout=pause)
        if not self._stop.is_set():
            # Shards read Stop from the run's row themselves, and may all end before this process's own watcher
            # has read it: the run was still stopped from the admin, not completed.
            who = self._db(persist.stop_requested_by, self.run_pk)
            if who:
                self.request_stop(persist.admin_stop_reason(who))
        self._end_profile()
        final_rows = self._tick(started_at)
        return self._outcome(final_rows)

    def _create_rows(self, run_pk: int) -> None:
        ShardReport.objects.bulk_create([
            ShardReport(run_id=run_pk, index=share.index, users=len(share))
            for share in Share.split(self.spawn_order, self.shards)
        ])

    def _send(self, start_at: float, end_at: float) -> None:
        """One task per shard; only JSON goes through the broker."""
        from perf.celery import app

        plan = self.plan
        common = {
            "run_id": self.run_pk, "shards": self.shards, "host": self.host,
            "scenarios": list(self.scenarios), "users": plan.users,
            "spawn_rate": plan.spawn_rate, "start_at": start_at, "end_at": end_at,
            "wait": list(plan.wait) if plan.wait else None, "seed": plan.seed, "stop_timeout": plan.stop_timeout,
            "request_log": self.request_log,
            "profile": self.profile_layout,
            # Shards stop by themselves when this process's heartbeat stands still this long (perf.tasks).
            "coordinator_timeout": liveness.lost_after(),
            # The generic settings only: each shard makes its scenario pack's context from its own machine's.
            "config": asdict(PerfConfig(backend_url=self.host, request_timeout=self.request_timeout)),
        }
        sent = time.monotonic()
        try:
            for index in range(self.shards):
                app.send_task(TASK_NAME, kwargs={**common, "index": index}, retry=True,
                              retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 1})
        except Exception as exc:
            # The broker answered check_broker() moments ago: this is rare, and the run is stored as failed.
            error = f"not sent: {exc}"
            self._db(lambda: ShardReport.objects.filter(run_id=self.run_pk, status__in=OPEN_STATUSES).update(
                status=ShardReport.Status.FAILED, error=error, finished_at=timezone.now()))
            raise RuntimeError(f"cannot send shard tasks to the Celery broker ({exc})") from exc
        self._seen = {index: (None, sent) for index in range(self.shards)}

    def _check_alive(self, row: ShardReport, now: float, started: float) -> None:
        """Give a shard up when its heartbeat stops moving, or when no worker ever took it."""
        last_heartbeat, since = self._seen.get(row.index, (None, started))
        if row.heartbeat_at != last_heartbeat:
            self._seen[row.index] = (row.heartbeat_at, now)
            return
        if row.status == ShardReport.Status.PENDING and now - since > START_TIMEOUT:
            self._give_up(row, f"never started (no worker took it within {START_TIMEOUT:.0f} s)")
        elif row.status == ShardReport.Status.RUNNING and now - since > self.heartbeat_timeout:
            self._give_up(row, f"died (no heartbeat for {self.heartbeat_timeout:g} s)")

    def _give_up(self, row: ShardReport, why: str) -> None:
        """Mark a shard failed, unless it finished meanwhile; its last report stays counted."""
        where = f" on {row.hostname}" if row.hostname else ""
        marked = self._db(lambda: ShardReport.objects.filter(pk=row.pk, status__in=OPEN_STATUSES).update(
            status=ShardReport.Status.FAILED, error=f"{why}{where}", finished_at=timezone.now()))
        if marked:
            row.status = ShardReport.Status.FAILED
            message = f"shard {row.index} of {self.shards}{where} {why}; its figures up to its last report are kept"
            self._note(message)
            self.hooks.on_message(message)

    def _rows(self, *deferred: str) -> list[ShardReport]:
        return list(ShardReport.objects.filter(run_id=self.run_pk).defer(*deferred))

    def _ask_shards_to_stop(self) -> None:
        ShardReport.objects.filter(run_id=self.run_pk).update(stop_requested=True)
        # A shard no worker has taken yet will not start now (the task checks the flag): nothing to wait for.
        ShardReport.objects.filter(run_id=self.run_pk, status=ShardReport.Status.PENDING).update(
            status=ShardReport.Status.FAILED, error="stopped before it started", finished_at=timezone.now())

    def _tick(self, started_at: float) -> list[ShardReport]:
        """Rebuild ``stats`` from the shards' latest cumulative reports, take a sample, tell run.py.

        A shard's facts are in its row from its last report on; merging the same notes and facts again at
        every tick changes nothing."""
        rows: list[ShardReport] = self._db(self._rows)
        stats = self.stats
        stats.reset_tables()
        shares = []
        for row in rows:
            if row.stats:
                share = share_from_json(row.stats)
                share.stage_marks = self._marks.add(row.index, share.stage_marks)
                stats.merge(share)
                shares.append(share)
            merge_findings(self.context, row.notes or [], row.facts or {})
        stats.stage_marks = merge_marks(shares)
        cpu_now = max((row.cpu_percent or 0.0 for row in rows), default=0.0)
        peak = max((row.max_cpu_percent or 0.0 for row in rows), default=0.0)
        self._running_users = _running_users(rows)
        self.report_tick(time.time() - started_at, self._running_users, cpu_now, peak_percent=peak)
        return rows

    def _outcome(self, rows: list[ShardReport]) -> str:
        failed = [row for row in rows if row.status == ShardReport.Status.FAILED]
        self.failed_shards = [row.index for row in failed]
        if self._stop.is_set():
            return self._stop_reason
        if not failed:
            return "completed"
        self.broken = True
        first = failed[0]
        why = (first.error.strip().splitlines() or ["failed"])[0]
        head = f"shard {first.index} of {self.shards} {why}" if len(failed) == 1 else (
            f"shards {', '.join(str(row.index) for row in failed)} of {self.shards} failed "
            f"(shard {first.index}: {why})")
        complete = self.shards - len(failed)
        tail = f"results from {complete} complete shard{'' if complete == 1 else 's'} and the failed ones' last reports"
        return f"{head}; {tail}"[:200]


def _running_users(rows: list[ShardReport]) -> int:
    """The users the shards ran at their latest heartbeats; a shard given up runs none the run can count."""
    return sum(row.running_users for row in rows if row.status != ShardReport.Status.FAILED)
