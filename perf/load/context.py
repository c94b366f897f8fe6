"""What the simulated users of one run share: the generic half of a scenario pack's context.

``RunContext`` is the one type of it that runners, shares and users take; ``SharedContext`` is the
implementation every pack's context subclasses. One context per process (each forked worker and each
Celery shard has its own); the runners bring the parts that must reach the end of the run (``notes``,
``facts``) back to the process that stores it (``perf.load.shares.merge_findings``). A pack subclasses
it to add what its scenarios need (clients, configuration) and names the subclass in ``PERF_CONTEXT``
(``perf.packs``).
"""

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class RunContext(Protocol):
    """The shared context as the engine sees it, whatever the pack's subclass adds: the end-of-run notes,
    the facts the audit checks, the values users find for all, and a counter dealt out disjointly.

    A protocol rather than the class so that the engine names what it relies on, and a pack may bring
    any context that offers it (``PERF_CONTEXT``)."""

    notes: list[str]
    facts: dict[str, set[str]]
    shared: dict[str, Any]

    def note_once(self, message: str) -> None: ...

    def remember(self, kind: str, value: str) -> None: ...

    def merge_facts(self, facts: Mapping[str, Iterable[str]]) -> None: ...

    def facts_as_lists(self) -> dict[str, list[str]]: ...

    def stride(self, start: int, step: int) -> None: ...

    def next_number(self) -> int: ...

    def find_once(self, key: str, find: Callable[[], Any]) -> Any: ...


@dataclass
class SharedContext:
    """Notes for the end of the run, values one user finds for all, facts for the audit, and a
    counter that deals out pre-seeded accounts (or any numbered resource) without two processes
    ever taking the same one."""

    notes: list[str] = field(default_factory=list)
    shared: dict[str, Any] = field(default_factory=dict)
    # Kind → values the scenarios saw and the audit checks (e.g. "verified_emails"): sets, so that
    # the facts of many processes merge by union.
    facts: dict[str, set[str]] = field(default_factory=dict)
    _counter: Iterator[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _finding: dict[str, threading.Lock] = field(default_factory=dict)

    def note_once(self, message: str) -> None:
        """Remember a remark for the end of the run (once, however many users make it)."""
        with self._lock:
            if message not in self.notes:
                self.notes.append(message)

    def remember(self, kind: str, value: str) -> None:
        """A fact for the audit after the run, e.g. ``remember("verified_emails", email)``."""
        self.facts.setdefault(kind, set()).add(value)

    def merge_facts(self, facts: Mapping[str, Iterable[str]]) -> None:
        """Add the facts another process or shard reported."""
        for kind, values in facts.items():
            self.facts.setdefault(kind, set()).update(values)

    def facts_as_lists(self) -> dict[str, list[str]]:
        """The facts in a form JSON and pickling keep (sorted, so reports diff cleanly)."""
        return {kind: sorted(values) for kind, values in self.facts.items()}

    def stride(self, start: int, step: int) -> None:
        """Deal numbers start, start + step, …: how the processes or shards of one run share
        pre-seeded accounts without two of them ever logging in as the same one."""
        with self._lock:
            self._counter = itertools.count(start, step)

    def next_number(self) -> int:
        """The next number of this process's stride (0, 1, 2, … in a run of one process)."""
        with self._lock:
            return next(self._counter)

    def find_once(self, key: str, find: Callable[[], Any]) -> Any:
        """``shared[key]``, found by the first user who asks while the others wait for it, so a
        lookup costs the server once a run rather than once a user. None is not kept: the next
        user to ask tries again."""
        with self._lock:
            finding = self._finding.setdefault(key, threading.Lock())
        with finding:
            if key not in self.shared:
                value = find()
                if value is not None:
                    self.shared[key] = value
            return self.shared.get(key)
