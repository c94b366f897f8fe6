"""One way to cut a run into parts that run side by side: forked workers (``--processes``) and Celery
shards (``--distributed celery``) are both a :class:`Share` of the run's spawn order.

Share *i* of *N* takes the users at spawn positions *i*, *i* + *N*, … of the whole run's order
(``runner.allocate_users``). Striding, not cutting into blocks, because the order interleaves the
scenarios: every share gets a mix close to the weights, and its users spread over the whole ramp. Each
user keeps its run-wide position, which seeds its random stream (``runner.user_rng``), so a seeded run
draws the same streams whatever *N* is; each share spawns at 1/*N* of the run's rate, so together the
shares start as many users a second as one process would.

What a share brings back for the end of the run (the scenarios' notes, the facts the audit checks) is
folded into the run's context in one place too, :func:`merge_findings`, however it travelled (a pipe,
a database row).
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from perf.load.context import RunContext
from perf.load.profile import whole_users

if TYPE_CHECKING:  # runner.py builds its runners from shares: only the type is needed here
    from perf.load.runner import RunPlan


def share_count(users: int, wanted: int) -> int:
    """How many shares a run of ``users`` gets when ``wanted`` are asked for: a share without users
    would only report zeros, so never more than the users, and at least one."""
    return max(1, min(wanted, users))


@dataclass(frozen=True)
class Share:
    """Share ``index`` of ``count``: the scenarios of its users, in its own spawn order."""

    index: int
    count: int
    scenarios: tuple[str, ...]

    @classmethod
    def whole(cls, order: Sequence[str]) -> "Share":
        """The whole run as one share (a run in one process)."""
        return cls(0, 1, tuple(order))

    @classmethod
    def of(cls, order: Sequence[str], index: int, count: int) -> "Share":
        """Share ``index`` of ``count`` of the run whose spawn order is ``order``."""
        if not 0 <= index < count:
            raise ValueError(f"share {index} of {count} does not exist")
        return cls(index, count, tuple(order[index::count]))

    @classmethod
    def split(cls, order: Sequence[str], wanted: int) -> list["Share"]:
        """The run cut into ``share_count(len(order), wanted)`` shares."""
        count = share_count(len(order), wanted)
        return [cls.of(order, index, count) for index in range(count)]

    def __len__(self) -> int:
        return len(self.scenarios)

    def run_index(self, position: int) -> int:
        """The run-wide spawn position of this share's ``position``-th user."""
        return self.index + position * self.count

    @property
    def users(self) -> list[tuple[int, str]]:
        """Each user as (run-wide spawn position, scenario), in this share's spawn order."""
        return [(self.run_index(position), name) for position, name in enumerate(self.scenarios)]

    def part(self, rate: float) -> float:
        """This share's part of a run-wide rate (users spawned a second, iterations a second)."""
        return rate / self.count

    def users_of(self, target: float) -> int:
        """This share's part of a run-wide target of users: the run runs the spawn positions below the target
        (``whole_users``), and this share those of them that are its own (i, i + N, …). The parts add up to the
        target exactly, each within one user of target / N, and going down the most recent positions stop
        first everywhere: the merged users are always a prefix of the spawn order, a fair mix at every count."""
        return max(0, -(-(whole_users(target) - self.index) // self.count))

    def first_spawn_delay(self, spawn_rate: float) -> float:
        """When one process would spawn this share's first user, in seconds after the start."""
        return self.index / spawn_rate

    def scaled(self, plan: "RunPlan", tick_interval: float | None = None) -> "RunPlan":
        """The run's plan cut to this share: its users, its part of the spawn rate (and its own tick
        interval when given: a share reports more often than the run samples)."""
        scaled = replace(plan, users=len(self), spawn_rate=self.part(plan.spawn_rate))
        return scaled if tick_interval is None else replace(scaled, tick_interval=tick_interval)

    def deal_accounts(self, context: RunContext | None) -> None:
        """Pre-seeded accounts (the context's numbers) dealt by the same stride, so two shares never log
        in as one user; a run of one share takes 0, 1, 2, …"""
        if context is not None:
            context.stride(self.index, self.count)


def findings(context: RunContext | None) -> tuple[list[str], dict[str, list[str]]]:
    """What a share's users learned for the end of the run, in a form pickling and JSON keep."""
    if context is None:
        return [], {}
    return list(context.notes), context.facts_as_lists()


def merge_findings(context: RunContext | None, notes: Iterable[str], facts: Mapping[str, Iterable[str]]) -> None:
    """Fold a share's notes (each said once) and facts (merged by union) into the run's context; reading
    the same report twice changes nothing, so a coordinator may merge its shards' latest rows every tick."""
    if context is None:
        return
    for note in notes:
        context.note_once(note)
    context.merge_facts(facts)
