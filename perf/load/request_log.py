"""Every recorded request, one line each, for reconciling a run with the server's own access log.

``run_perf --request-log PATH`` turns it on. Each HTTP request then carries an ``X-Perf-Request`` id
(the process id and a counter: unique across the processes and shards of a run on one machine), and
its line holds that id beside what the statistics recorded, so ``perf/analysis/reconcile.py`` can pair it with
the server's log line of the same request (gunicorn.conf.py logs the header). Entries that are no
HTTP request to the target (a pack's email wait, a look-up) are written with the id ``-``.

Lines are tab-separated, UTF-8, without a header::

    id  sent_at  method  name  path  status  elapsed_ms  opened  error

``sent_at`` is unix time; ``status`` 0 means no answer came; ``opened`` is the transport's REUSED (0),
NEW (1) or REOPENED (2: the kept-alive connection was stale and the same request, same id, was sent
again); ``error`` is empty for a success, else the failure's text. Each line goes to the file in one
``write`` on a file opened for appending, so the forked workers and shards sharing the file never
interleave, and a process killed mid-run leaves every line it wrote whole. It costs a system call a
request, which is why it is off unless asked for.
"""

import itertools
import os

HEADER = "X-Perf-Request"
NO_ID = "-"


def clean(text: str) -> str:
    """A text as a field of the log: tabs and line breaks as spaces."""
    return text.replace("\t", " ").replace("\n", " ").replace("\r", " ")


class RequestLog:
    """An append-only request log shared by every session of a process (and, through fork, its workers)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._counter = itertools.count(1)

    def next_id(self) -> str:
        """An id no other request of the run has: the pid tells apart processes that forked the same counter."""
        return f"{os.getpid():x}-{next(self._counter)}"

    def write(self, request_id: str, sent_at: float, method: str, name: str, path: str, status: int,
              elapsed_ms: float, opened: int, error: str | None) -> None:
        line = (f"{request_id}\t{sent_at:.6f}\t{method}\t{clean(name)}\t{clean(path)}\t{status}\t"
                f"{elapsed_ms:.3f}\t{opened}\t{clean(error or '')}\n")
        os.write(self._fd, line.encode("utf-8", "replace"))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
