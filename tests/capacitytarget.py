"""A target whose capacity is known by construction: the capacity search's server.

``GET /api/work`` takes one of ``workers`` slots, holds it ``seconds`` and answers 200, so the target serves
``workers / seconds`` requests a second and no more. A request that finds every slot taken waits its turn, first
come first served, as a request waits in a real server's backlog; with ``queue_limit``, a request that finds that
many already waiting is answered 503 at once (a full queue). Below capacity a request takes ``seconds``; above it,
N clients looping without think time each wait ``N / workers × seconds`` on average (Little's law), and the
throughput stays at the capacity. ``GET /api/healthcheck`` answers at once, as ``run_perf`` asks before a run.

It runs in threads of the test process (one per connection, HTTP/1.1 kept alive); the load comes from a child
process (:func:`run_capacity_perf`, ``manage.py run_perf`` with the pack in tests/perf/capacity_pack.py) or from
the test's own threads. The server's own work (parsing, answering) is outside the slot, so it adds a fraction of
a millisecond to each answer and takes nothing from the capacity.
"""

import json
import os
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.liveserver import run_perf
from tests.perf.builders import command_env

# The scenario pack run_perf loads in the child (PERF_SCENARIOS).
CAPACITY_PACK = "tests.perf.capacity_pack.SCENARIOS"


@dataclass
class CapacityTarget:
    """A running capacity target; ``url`` is its API root (``http://127.0.0.1:PORT/api``).

    The counters are kept under one lock by the server's threads: ``served`` (200s of /api/work), ``refused``
    (503s, the queue full), ``max_in_service`` (never above ``workers``) and ``max_waiting`` (never above
    ``queue_limit``)."""

    url: str
    workers: int
    seconds: float
    queue_limit: int | None = None
    server_timing: bool = False
    served: int = 0
    refused: int = 0
    in_service: int = 0
    max_in_service: int = 0
    max_waiting: int = 0
    _free: int = field(default=0, repr=False)
    _queue: deque[threading.Event] = field(default_factory=deque, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._free = self.workers

    @property
    def capacity(self) -> float:
        """Requests a second the target serves at most: ``workers / seconds``."""
        return self.workers / self.seconds

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot now."""
        with self._lock:
            return len(self._queue)

    def take_slot(self) -> bool:
        """Wait for a slot, first come first served; False (and counted as refused) when the queue is full.

        A freed slot is handed to the first in line by :meth:`free_slot` itself, so a request that arrives as a
        slot frees cannot overtake those already waiting, and the slots never stand idle while a request waits."""
        with self._lock:
            if self._free:
                self._free -= 1
                self._enter_service()
                return True
            if self.queue_limit is not None and len(self._queue) >= self.queue_limit:
                self.refused += 1
                return False
            turn = threading.Event()
            self._queue.append(turn)
            self.max_waiting = max(self.max_waiting, len(self._queue))
        turn.wait()  # free_slot counted it into service when it handed the slot over
        return True

    def free_slot(self) -> None:
        """The end of one request's service: it is served, and its slot goes to the first in line if any."""
        with self._lock:
            self.served += 1
            self.in_service -= 1
            if self._queue:
                self._enter_service()
                self._queue.popleft().set()
            else:
                self._free += 1

    def _enter_service(self) -> None:
        self.in_service += 1
        self.max_in_service = max(self.max_in_service, self.in_service)


def _handler(target: CapacityTarget, connections: set[socket.socket]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as two writes: without TCP_NODELAY the second could wait for the client's
        # delayed acknowledgement (up to 40 ms), as long as a whole service time here.
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            connections.add(self.connection)

        def finish(self) -> None:
            connections.discard(self.connection)
            super().finish()

        def do_GET(self) -> None:  # noqa: N802 (the standard library's naming)
            path = self.path.split("?", 1)[0]
            if path == "/api/healthcheck":
                self._answer(200, {"status": "ok"})
            elif path == "/api/work":
                self._work()
            else:
                self._answer(404, {"detail": "not found"})

        def _work(self) -> None:
            arrived = time.perf_counter()
            if not target.take_slot():
                self._answer(503, {"detail": "queue full"})
                return
            started = time.perf_counter()
            time.sleep(target.seconds)
            service = time.perf_counter() - started
            target.free_slot()
            # What a server that does not count its own backlog says: the service time only, so the client's
            # time minus it is the queue (perfkit's queue_ms).
            headers = {"Server-Timing": f"app;dur={service * 1000:.1f}"} if target.server_timing else {}
            self._answer(200, {"waited_ms": round((started - arrived) * 1000, 3),
                               "service_ms": round(service * 1000, 3)}, headers)

        def _answer(self, status: int, data: dict[str, object], headers: Mapping[str, str] | None = None) -> None:
            body = json.dumps(data).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                self.close_connection = True  # the client gave up first

        def log_message(self, *args: object) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a burst of new connections waits in the listen backlog instead of being refused


@contextmanager
def capacity_target(workers: int, seconds: float, queue_limit: int | None = None,
                    server_timing: bool = False) -> Iterator[CapacityTarget]:
    """A running target on a free loopback port serving ``workers`` requests at a time, each for ``seconds``.

    ``queue_limit``: at most that many wait, the next is answered 503. ``server_timing``: each 200 says its
    service time as ``Server-Timing: app;dur=MS``. On exit the server stops and its kept-alive connections are
    closed, so no thread of it is left reading."""
    if workers < 1 or seconds <= 0 or (queue_limit is not None and queue_limit < 0):
        raise ValueError(f"workers ≥ 1, seconds > 0 and queue_limit ≥ 0 or None, not {workers}, {seconds}, "
                         f"{queue_limit}")
    target = CapacityTarget(url="", workers=workers, seconds=seconds, queue_limit=queue_limit,
                            server_timing=server_timing)
    connections: set[socket.socket] = set()
    server = _Server(("127.0.0.1", 0), _handler(target, connections))
    target.url = f"http://127.0.0.1:{server.server_address[1]}/api"
    thread = threading.Thread(target=server.serve_forever, name="capacity-target", daemon=True)
    thread.start()
    try:
        yield target
    finally:
        server.shutdown()
        server.server_close()
        for connection in list(connections):
            with suppress(OSError):  # already closed by its client
                connection.shutdown(socket.SHUT_RDWR)  # its thread's read ends: the thread ends


def capacity_run_env(folder: Path, base: Mapping[str, str] | None = None, request_timeout: float = 10.0,
                     pack: str = CAPACITY_PACK) -> dict[str, str]:
    """The environment of a ``manage.py`` child whose scenarios are the capacity pack (settings written to
    ``folder``). ``base`` defaults to this process's environment with a database that is never opened, which
    does for ``run_perf --no-save --no-audit``; a test that stores its run passes ``live_env``. ``pack``: another
    scenario pack (a dotted path) than the capacity pack."""
    if base is None:
        base = {**os.environ, "DATABASE_URL": f"sqlite:///{folder / 'unused.sqlite3'}"}
    return command_env(folder, pack, base, request_timeout)


def run_capacity_perf(url: str, folder: Path, *options: str, env: Mapping[str, str] | None = None,
                      timeout: float = 120.0) -> subprocess.CompletedProcess:
    """``manage.py run_perf --host URL OPTIONS`` to its end in a child process (gevent-patched, as a user runs
    it) with the capacity pack; ``env`` defaults to :func:`capacity_run_env` in ``folder``. Its output is
    captured; the caller checks the exit code."""
    return run_perf(dict(env) if env is not None else capacity_run_env(folder), "--host", url, *options,
                    timeout=timeout)
