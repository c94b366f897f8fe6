"""The deliberately slow target of ``benchmarks/agreement.py``: its answers depend on the request, never on timing.

A threaded HTTP/1.1 keep-alive server on 127.0.0.1, one thread per connection, so a request never waits
behind another: its latency is the delay chosen for it plus the server's own ~0.1 ms. Endpoints, for a
request time-out T (``--timeout``) and the iteration number ``i`` the client puts in the query:

- ``/fast`` and ``/warm-up``: 200 at once.
- ``/slow?i=``: 3 % of the i answer after 1.5 T (the client gives up first: a time-out); the others after
  a delay spread log-uniformly from 2 ms to 0.6 T, well clear of T so that no answer is a close call.
  3 %, not 5 %: p95 and p99 then each sit two points of rank away from the edge between the two kinds.
- ``/flaky?i=``: a delay spread log-uniformly from 5 to 80 ms; 5 % of the i answer 503, the rest 200.
- ``/_counts``: the requests seen so far per path, as JSON (not counted itself).

The choice for (path, i) is ``frac(h(path) + i·c)``, ``h`` a hash of the path and ``c`` an irrational step (the
golden ratio's; √2's for the 503s): a deterministic function of the request that spreads any run of
consecutive i over [0, 1) evenly, so that N users × K iterations, numbered 0 … N·K − 1, get 3 % time-outs
and 5 % 503s give or take one or two (a hash alone would give ± √n), and no percentile sits on the edge
between two kinds of answer. ``answer`` is imported by ``agreement.py`` for the delays it expects.

Run: python benchmarks/agreement_target.py --timeout 1.0 [--port 0]; prints ``port N`` once it listens and
serves until it is terminated.
"""

import argparse
import contextlib
import functools
import hashlib
import json
import math
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

GOLDEN = (math.sqrt(5) - 1) / 2
ROOT2 = math.sqrt(2) - 1
SLOW_TIMEOUT_SHARE = 0.03
SLOW_TIMEOUT_FACTOR = 1.5  # × the client's time-out: far enough past it that it is a time-out in both tools
SLOW_MIN_MS, SLOW_MAX_FACTOR = 2.0, 0.6
FLAKY_MIN_MS, FLAKY_MAX_MS = 5.0, 80.0
FLAKY_503_SHARE = 0.05


@functools.cache
def _offset(text: str) -> float:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def fraction(path: str, i: int, step: float = GOLDEN) -> float:
    """The request's place in [0, 1): ``frac(hash(path) + i·step)``."""
    return (_offset(path) + i * step) % 1.0


def _log_spread(u: float, low: float, high: float) -> float:
    return low * (high / low) ** u


def answer(path: str, i: int, timeout: float) -> tuple[int, float]:
    """(status, delay in seconds) for ``path`` and iteration ``i``: the whole behaviour of the target."""
    if path == "/slow":
        u = fraction(path, i)
        if u < SLOW_TIMEOUT_SHARE:
            return 200, SLOW_TIMEOUT_FACTOR * timeout
        u = (u - SLOW_TIMEOUT_SHARE) / (1 - SLOW_TIMEOUT_SHARE)
        return 200, _log_spread(u, SLOW_MIN_MS, SLOW_MAX_FACTOR * timeout * 1000) / 1000
    if path == "/flaky":
        delay = _log_spread(fraction(path, i), FLAKY_MIN_MS, FLAKY_MAX_MS) / 1000
        return (503 if fraction(path, i, ROOT2) < FLAKY_503_SHARE else 200), delay
    return 200, 0.0


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 4096  # the default backlog of 5 would drop the SYNs of users that start together
    allow_reuse_address = True

    def __init__(self, port: int, timeout: float) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.delay_timeout = timeout
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet about clients that closed or reset (every time-out ends so); anything else is printed."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer has a Content-Length
    disable_nagle_algorithm = True
    server: Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass

    def _write(self, status: int, body: bytes) -> None:
        reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + body)  # one write: the head never waits on Nagle or a delayed ACK
        except OSError:
            self.close_connection = True  # the client gave up on this request (a time-out) and closed

    def do_GET(self) -> None:  # noqa: N802 (the base class's name)
        parts = urlsplit(self.path)
        path = parts.path
        if path == "/_counts":
            with self.server.lock:
                counts = dict(self.server.counts)
            self._write(200, json.dumps(counts).encode())
            return
        if path not in ("/fast", "/slow", "/flaky", "/warm-up"):
            self._write(404, b'{"detail": "not found"}')
            return
        with self.server.lock:
            self.server.counts[path] = self.server.counts.get(path, 0) + 1
        try:
            i = int(parse_qs(parts.query).get("i", ["0"])[0])
        except ValueError:
            i = 0
        status, delay = answer(path, i, self.server.delay_timeout)
        if delay:
            time.sleep(delay)
        self._write(status, json.dumps({"path": path, "i": i, "delay_ms": round(delay * 1000, 3)}).encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=1.0, help="the clients' request time-out, seconds")
    args = parser.parse_args()
    if args.timeout <= 0:
        parser.error("--timeout must be > 0")
    server = Server(args.port, args.timeout)
    print(f"port {server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.2)
    sys.exit(0)


if __name__ == "__main__":
    main()
