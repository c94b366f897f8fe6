"""Runs whose process died (``kill -9``, an exit without its final save, a lost machine) become ``lost``.

A ``running`` row is only a claim made by a process; nothing else can end it. So whoever reads runs (the
admin's list, run page, live view and Stop, and ``run_perf`` as it starts) first asks ``mark_lost``, and
``manage.py perf_mark_lost`` does the same for teams that want it on a schedule: no daemon is needed.

A run is lost when its last sign of life (its last progress write, ``heartbeat_at``, or ``started_at`` when
it never wrote one) is older than ``PERF_LOST_AFTER`` seconds. It keeps the figures of its last progress
write, ``finished_at`` becomes that last sign of life, and ``error`` says what happened in one line.

Being taken for lost is never final: if the process was only held up (a long lock) and writes again, its
writes win: its next progress write makes the run ``running`` again (``revive``, called by
``perf.store.persist``) and its final save gives it its real status.
"""

from datetime import datetime, timedelta

from django.db import OperationalError, transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from perf.conf import perf_settings
from perf.models import PerfRun

MARKABLE = (PerfRun.Status.LOST, PerfRun.Status.FAILED)


def lost_after() -> float:
    """Seconds without progress after which a running run is lost (the PERF_LOST_AFTER setting)."""
    return perf_settings.PERF_LOST_AFTER


def last_sign_of_life(run: PerfRun) -> datetime:
    return run.heartbeat_at or run.started_at


def clock(moment: datetime) -> str:
    """``17:04:09 UTC``: the time of day in the project's time zone, for one-line messages."""
    return timezone.localtime(moment).strftime("%H:%M:%S %Z")


def lost_line(moment: datetime) -> str:
    """What a lost run says about itself (its ``error``), on its page, in the list and on Stop."""
    return f"lost: its process stopped answering at {clock(moment)}; figures up to then are kept"


def _silent_since(cutoff: datetime) -> Q:
    return Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)


def _alive_since(cutoff: datetime) -> Q:
    return Q(heartbeat_at__gte=cutoff) | Q(heartbeat_at__isnull=True, started_at__gte=cutoff)


def mark_lost(now: datetime | None = None, after: float | None = None) -> list[int]:
    """Mark every running run silent for longer than ``after`` seconds (default ``lost_after()``) as lost;
    return their ids. Each row is updated only if its heartbeat is still the one read here, so a progress
    write that lands meanwhile wins."""
    cutoff = (now or timezone.now()) - timedelta(seconds=lost_after() if after is None else after)
    marked = []
    stale = PerfRun.objects.filter(Q(status=PerfRun.Status.RUNNING) & _silent_since(cutoff))
    for pk, heartbeat, started in stale.values_list("pk", "heartbeat_at", "started_at"):
        seen = Q(heartbeat_at=heartbeat) if heartbeat is not None else Q(heartbeat_at__isnull=True)
        moment = heartbeat or started
        updated = PerfRun.objects.filter(Q(pk=pk, status=PerfRun.Status.RUNNING) & seen).update(
            status=PerfRun.Status.LOST, finished_at=moment, error=lost_line(moment),
            # A run that died before its first progress write measured nothing: its duration must not grow.
            actual_duration=Coalesce("actual_duration", 0.0))
        if updated:
            marked.append(pk)
    return marked


def mark_lost_on_read() -> list[int]:
    """``mark_lost`` for pages that only read: a database locked by a run's own writes is no reason to fail
    the page; the next read tries again."""
    try:
        with transaction.atomic():
            return mark_lost()
    except OperationalError:
        return []


def alive_runs() -> QuerySet[PerfRun]:
    """Runs still running with a recent sign of life, once the dead ones are marked lost: what "is another
    run going on?" must ask (the admin's New run page)."""
    mark_lost_on_read()
    cutoff = timezone.now() - timedelta(seconds=lost_after())
    return PerfRun.objects.filter(Q(status=PerfRun.Status.RUNNING) & _alive_since(cutoff))


def mark_by_hand(pk: int, status: str, who: str) -> bool:
    """A person's call on a running run (``lost`` or ``failed``): its figures stay as last written. A stop is
    also asked, so a process that was alive after all ends and stores its real status over this one."""
    if status not in MARKABLE:
        raise ValueError(f"a run can be marked {' or '.join(MARKABLE)}, not {status!r}")
    now = timezone.now()
    with transaction.atomic():
        run = PerfRun.objects.select_for_update().filter(pk=pk, status=PerfRun.Status.RUNNING).first()
        if run is None:
            return False
        moment = last_sign_of_life(run)
        run.status = status
        run.finished_at = moment
        run.error = f"marked {status} by {who} at {clock(now)}; figures up to {clock(moment)} are kept"
        if run.actual_duration is None:
            run.actual_duration = 0.0
        if run.stop_requested_at is None:
            run.stop_requested_at, run.stop_requested_by = now, who[:150]
        run.save(update_fields=["status", "finished_at", "error", "actual_duration", "stop_requested_at",
                                "stop_requested_by"])
    return True


def revive(locked: PerfRun) -> None:
    """A lost run's process wrote again: it was alive after all, so the run is ``running`` again (its caller
    holds the row locked and saves it)."""
    if locked.status == PerfRun.Status.LOST:
        locked.status = PerfRun.Status.RUNNING
        locked.finished_at = None
        locked.error = ""
