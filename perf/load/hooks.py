"""What a runner tells whoever drives it, as it happens: the named hooks of one run.

Every runner (one process, forked workers, Celery shards, the open model) takes one ``RunHooks``
when it is built, so the caller says once, in one place, what it wants to hear; a hook left out is a
no-op, and a runner calls its hooks without asking whether anyone listens.
"""

from collections.abc import Callable
from dataclasses import dataclass

from perf.load.history import HistoryPoint
from perf.load.profile import StageSpan
from perf.load.stats import Sample


@dataclass
class Tick:
    """What the caller hears every tick (and once at the end)."""

    sample: Sample
    elapsed: float
    users: int
    cpu_percent: float
    # With a load profile: what it asks for now (users, or iterations a second) and the stage under way.
    target: float | None = None
    stage: StageSpan | None = None


def _ignore(_: object) -> None:
    """The default of every hook: nobody listens."""


def _nothing() -> None:
    """The default of ``before_fork``: nothing of the caller's to put away."""


@dataclass
class RunHooks:
    """The runner's calls out: ``on_tick`` every tick (progress, the store, thresholds; a worker's report,
    a shard's heartbeat), ``on_cpu_warning`` once when the generator's CPU runs hot, ``on_message`` for a
    line to say at once (a shard that died), ``on_second`` with each point of the stats history, about once
    a second (the live CSV files, ``--print-stats``), and ``before_fork`` just before ``--processes`` forks its
    workers: the caller closes what a child must not share (run_perf: Django's database connections, whose
    sockets a worker would otherwise hold too). The engine itself never imports Django."""

    on_tick: Callable[[Tick], None] = _ignore
    on_cpu_warning: Callable[[float], None] = _ignore
    on_message: Callable[[str], None] = _ignore
    on_second: Callable[[HistoryPoint], None] = _ignore
    before_fork: Callable[[], None] = _nothing
