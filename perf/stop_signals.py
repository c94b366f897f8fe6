"""SIGINT and SIGTERM for the whole life of a run, from before its row is written until its exit code.

The first signal asks the runner to stop: users end, everything measured is kept and stored as
``aborted``. A later one cannot make things worse: it only says to hurry (cut off the requests still
in flight rather than wait out their grace, skip the audit and the output files), never to skip the
save. Were the handlers removed when the users stop, a second signal (``timeout`` signals the whole
process group; an impatient Ctrl-C) would kill the process between the end of the load and the save,
and lose the run.
"""

import signal
from collections.abc import Callable
from types import TracebackType

import gevent

from perf import exit_codes

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Context manager: while inside, SIGINT/SIGTERM call ``stop`` once, then only set ``hurry``.

    With ``ignore_after`` (a process that exists for this run only: the command), stop signals are
    ignored once the block ends: the run is stored and printed, and the process exits within
    moments with the code already decided. A default handler there would turn a late signal into a
    KeyboardInterrupt traceback or a plain kill. (Not a Python handler either: the interpreter
    resets those to the default while it shuts down, which still takes a while with threads.)
    """

    def __init__(self, stop: Callable[[str], None], say: Callable[[str], None], ignore_after: bool = False,
                 cut: Callable[[], None] | None = None) -> None:
        self._stop = stop
        self._cut = cut  # the runner's: end the grace of the requests in flight now
        self._say = say
        self._ignore_after = ignore_after
        self._handlers: list = []
        self.first: signal.Signals | None = None
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

    def _received(self, sig: signal.Signals) -> None:
        if self.first is None:
            self.first = sig
            self._stop(f"interrupted by {sig.name}")
            return
        if not self.hurry:
            self.hurry = True
            if self._cut is not None:
                self._cut()
            self._say(f"{sig.name} again: stopping as fast as possible; the run is still stored, "
                      "without the audit and output files")

    @property
    def exit_code(self) -> int | None:
        """128 + N when signal N stopped the run, as shells report it; None when no signal came."""
        return None if self.first is None else exit_codes.for_signal(self.first)

