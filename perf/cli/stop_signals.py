"""SIGINT, SIGTERM and SIGHUP for the whole life of a run, from before its row is written until its exit code.

The first signal asks the runner to stop: users end, everything measured is kept and stored as
``aborted``. A later one cannot make things worse: it only says to hurry (cut off the requests still
in flight rather than wait out their grace, give up waiting for a locked database, skip the audit and
the output files), never to lose what was measured. Were the handlers removed when the users stop, a
second signal (``timeout`` signals the whole process group; an impatient Ctrl-C) would kill the process
between the end of the load and the save, and lose the run.

SIGHUP is what a closed terminal or SSH session sends: left at its default it kills the process at
once and the row stays ``running`` forever, so it stops the run like SIGTERM.

A signal that comes once the load is over stops nothing: it only hurries when it is the second, and
the exit code stays the one the run earned unless the ending was cut short (a CI job must never read
a run whose audit was skipped as a pass).
"""

import signal
from collections.abc import Callable
from types import TracebackType

import gevent

from perf.cli import exit_codes

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """Context manager: while inside, the first stop signal calls ``stop(reason)``, the second ``hurry(name)``.

    With ``ignore_after`` (a process that exists for this run only: the command), stop signals are
    ignored once the block ends: the run is stored and printed, and the process exits within
    moments with the code already decided. A default handler there would turn a late signal into a
    KeyboardInterrupt traceback or a plain kill. (Not a Python handler either: the interpreter
    resets those to the default while it shuts down, which still takes a while with threads.)
    """

    def __init__(self, stop: Callable[[str], None], hurry: Callable[[str], None], ignore_after: bool = False) -> None:
        self._stop = stop
        self._hurry = hurry
        self._ignore_after = ignore_after
        self._handlers: list = []
        self._load_over = False
        self.first: signal.Signals | None = None
        self.stopped_load = False  # the first signal came while users ran (or before they started)
        self.hurry = False

    def __enter__(self) -> "StopSignals":
        self._handlers = [gevent.signal_handler(sig, self._received, sig) for sig in STOP_SIGNALS]
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        for handler in self._handlers:
            handler.cancel()
        self._handlers = []
        if self._ignore_after:
            for sig in STOP_SIGNALS:
                signal.signal(sig, signal.SIG_IGN)

    def load_ended(self) -> None:
        """From now on a first signal has no load to stop: the exit code stays the earned one."""
        self._load_over = True

    def hurried(self) -> bool:
        """Whether a second signal came, counting one the kernel delivered that the event loop has not
        handled yet: the steps of the end (audit, files) block the loop, and a signal that came during
        one was heard only after the next had run, or never (the handlers are gone by then)."""
        gevent.idle()  # one turn of the loop: signal watchers whose signal arrived run now
        return self.hurry

    def _received(self, sig: signal.Signals) -> None:
        if self.first is None:
            self.first = sig
            self.stopped_load = not self._load_over
            self._stop(f"interrupted by {sig.name}")
        elif not self.hurry:
            self.hurry = True
            self._hurry(sig.name)

    @property
    def exit_code(self) -> int | None:
        """128 + N when signal N stopped the load or cut the ending short, as shells report it; else None."""
        if self.first is None or not (self.stopped_load or self.hurry):
            return None
        return exit_codes.for_signal(self.first)
