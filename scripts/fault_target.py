"""A deliberately misbehaving HTTP/1.1 keep-alive server: the target perfkit's reconciliation is tested against.

A load tool is only as trustworthy as its worst day: time-outs, resets, half answers, stale keep-alive
connections, bursts of 503s, a server that stops dead. This server does each of those on purpose, chosen
by path, so one run can mix them, and writes an access log in gunicorn.conf.py's format with one extra
last field, the outcome: ``answered``, ``reset`` (reset mid-body), ``closed`` (closed without answering or
mid-body) or ``gone`` (answered after the client had left). ``perf/analysis/reconcile.py`` pairs it with the
client's request log by the ``X-Perf-Request`` id.

    python scripts/fault_target.py --port 0 --access-log access.log [--seed N] [--close-rate P] ...

prints ``listening on 127.0.0.1:PORT`` once it accepts connections, serves until SIGTERM or SIGINT (then
stops within a second: requests still being answered are abandoned, unlogged), and binds 127.0.0.1 only.
It is one plain process, so SIGSTOP and SIGCONT pause and resume it as they would any server. Paths (the
last segment counts, so ``/api/fast`` is ``/fast``):

- ``/fast``, ``/healthcheck``: 200 at once.
- ``/slow?ms=N``: 200 after N ms.
- ``/random?max_ms=N``: 200 after a delay drawn uniformly from 0 to N ms (set N to twice the client's
  time-out and about half the requests time out).
- ``/chunked?parts=K&ms=N``: 200 with a chunked body of K chunks spread over N ms.
- ``/trickle?bytes=B&parts=K&ms=N``: 200 with a ``Content-Length`` body of B bytes dribbled in K parts over N ms.
- ``/reset?bytes=B``: the head and half the body, then a reset (SO_LINGER 0, then close).
- ``/cut?bytes=B``: the head and half the body, then an orderly close (FIN).
- ``/burst``: 503 while a burst lasts (``--burst-length`` s every ``--burst-every`` s from the start), else 200.
- anything else: 404.

And on any path, whatever it answers, at random (``--close-rate``, ``--drop-rate``, ``--vanish-rate``, or
``close=``, ``drop=``, ``vanish=`` in the query for one request): answer with ``Connection: close`` and
close; answer, then close the kept-alive connection without a word; or, on a connection that has served a
request before, read the request and close without answering (the client sees a stale connection and
may send it again: the same id logged twice).
"""

import argparse
import contextlib
import json
import random
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass
from typing import TextIO
from urllib.parse import parse_qs, urlsplit

import gevent
from gevent.event import Event
from gevent.server import StreamServer

HOST = "127.0.0.1"
MAX_HEAD = 65536
ANSWERED, RESET, CLOSED, GONE = "answered", "reset", "closed", "gone"
REASONS = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}


@dataclass(frozen=True)
class Knobs:
    """The target's settings; the connection rates can be overridden per request in the query."""

    seed: int | None = None
    close_rate: float = 0.0
    drop_rate: float = 0.0
    vanish_rate: float = 0.0
    burst_every: float = 4.0
    burst_length: float = 1.0
    keepalive: float = 75.0  # idle seconds before a kept-alive connection is closed, as gunicorn.conf.py


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]

    @property
    def route(self) -> str:
        path = urlsplit(self.target).path.rstrip("/")
        return path.rsplit("/", 1)[-1]

    def number(self, name: str, default: float) -> float:
        values = parse_qs(urlsplit(self.target).query).get(name)
        try:
            return float(values[0]) if values else default
        except ValueError:
            return default


class Gone(Exception):
    """The client closed or reset the connection while the answer was being written."""


class Exchange:
    """One request's answer and what is logged of it: status, body bytes sent, outcome, and how long it took.

    The time runs from the request read to the last byte written (or the connection ended), so that
    nothing the server does afterwards counts in it: the client cannot have its answer any sooner.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.status = 0
        self.sent = 0
        self.outcome = ANSWERED
        self.started = time.monotonic()
        self.ended: float | None = None

    def write(self, data: bytes, body: int = 0) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise Gone(str(exc)) from exc
        finally:
            self.ended = time.monotonic()
        self.sent += body

    def end(self) -> None:
        """The connection ended here without (the rest of) an answer."""
        self.ended = time.monotonic()

    @property
    def micros(self) -> int:
        return int(((self.ended or time.monotonic()) - self.started) * 1_000_000)

    def head(self, status: int, headers: dict[str, str], close: bool) -> None:
        self.status = status
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in headers.items()]
        if close:
            lines.append("Connection: close\r\n")
        self.write(("".join(lines) + "\r\n").encode("latin-1"))


class FaultTarget:
    """The server's behaviour: ``handle`` serves one connection, request after request, as told by the path."""

    def __init__(self, knobs: Knobs, log: TextIO) -> None:
        self.knobs = knobs
        self.log = log
        self.rng = random.Random(knobs.seed)
        self.started = time.monotonic()

    def handle(self, sock: socket.socket, address: tuple[str, int]) -> None:
        buffer = b""
        served = 0
        try:
            while True:
                request, buffer = self._read_request(sock, buffer)
                if request is None:
                    return
                exchange = Exchange(sock)
                keep = self._serve(request, exchange, first=served == 0)
                self._log(address[0], request, exchange)
                served += 1
                if not keep:
                    return
        finally:
            sock.close()

    def _read_request(self, sock: socket.socket, buffer: bytes) -> tuple[Request | None, bytes]:
        """The next request on the connection (its body read and dropped); None when the client is done."""
        while b"\r\n\r\n" not in buffer:
            chunk = self._recv(sock) if len(buffer) <= MAX_HEAD else b""
            if not chunk:
                return None, b""  # closed by the client, idle past the keep-alive, or no client of ours
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            return None, b""
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = headers.get("content-length", "0") or "0"
        if not length.isdigit():
            return None, b""
        length = int(length)
        while len(buffer) < length:
            chunk = self._recv(sock)
            if not chunk:
                return None, b""
            buffer += chunk
        return Request(parts[0], parts[1], parts[2], headers), buffer[length:]

    def _recv(self, sock: socket.socket) -> bytes:
        """The next bytes from the client; empty when it closed, reset or sat idle past the keep-alive."""
        chunk = b""
        with gevent.Timeout(self.knobs.keepalive, False):
            try:
                chunk = sock.recv(MAX_HEAD)
            except OSError:
                chunk = b""
        return chunk

    def _chance(self, request: Request, name: str, default: float) -> bool:
        rate = request.number(name, default)
        return rate > 0 and self.rng.random() < rate

    def _serve(self, request: Request, exchange: Exchange, first: bool) -> bool:
        """Answer (or not) as the path says; True when the connection stays open for another request."""
        knobs = self.knobs
        if not first and self._chance(request, "vanish", knobs.vanish_rate):
            exchange.outcome = CLOSED
            exchange.end()
            return False
        close = request.version == "HTTP/1.0" or request.headers.get("connection", "").lower() == "close"
        close = close or self._chance(request, "close", knobs.close_rate)
        try:
            if not self._answer(request, exchange, close):
                return False
        except Gone:
            exchange.outcome = GONE
            return False
        return not close and not self._chance(request, "drop", knobs.drop_rate)

    def _answer(self, request: Request, exchange: Exchange, close: bool) -> bool:
        """Write the answer; False when it ended the connection itself (reset, cut)."""
        route = request.route
        if route == "slow":
            gevent.sleep(request.number("ms", 100) / 1000)
        elif route == "random":
            gevent.sleep(self.rng.uniform(0, request.number("max_ms", 1000)) / 1000)
        if route in ("fast", "healthcheck", "slow", "random"):
            self._plain(exchange, 200, json.dumps({"path": request.target}).encode(), close)
        elif route == "burst":
            in_burst = (time.monotonic() - self.started) % self.knobs.burst_every < self.knobs.burst_length
            status = 503 if in_burst else 200
            self._plain(exchange, status, json.dumps({"detail": REASONS[status]}).encode(), close)
        elif route == "chunked":
            self._chunked(exchange, int(request.number("parts", 4)), request.number("ms", 40) / 1000, close)
        elif route == "trickle":
            self._trickle(exchange, int(request.number("bytes", 2000)), int(request.number("parts", 8)),
                          request.number("ms", 200) / 1000, close)
        elif route in ("reset", "cut"):
            self._half(exchange, int(request.number("bytes", 4000)), reset=route == "reset")
            return False
        else:
            self._plain(exchange, 404, b'{"detail": "Not found."}', close)
        return True

    def _plain(self, exchange: Exchange, status: int, body: bytes, close: bool) -> None:
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        exchange.head(status, headers, close)
        exchange.write(body, len(body))

    def _chunked(self, exchange: Exchange, parts: int, spread: float, close: bool) -> None:
        exchange.head(200, {"Content-Type": "text/plain", "Transfer-Encoding": "chunked"}, close)
        for index in range(max(parts, 1)):
            piece = f"chunk {index}\n".encode()
            exchange.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n", len(piece))
            gevent.sleep(spread / max(parts, 1))
        exchange.write(b"0\r\n\r\n")

    def _trickle(self, exchange: Exchange, size: int, parts: int, spread: float, close: bool) -> None:
        exchange.head(200, {"Content-Type": "text/plain", "Content-Length": str(size)}, close)
        parts = max(min(parts, size), 1)
        body = b"x" * size
        step = -(-size // parts)
        for start in range(0, size, step):
            gevent.sleep(spread / parts)
            exchange.write(body[start:start + step], len(body[start:start + step]))

    def _half(self, exchange: Exchange, size: int, reset: bool) -> None:
        """Half the body, then a reset or an orderly close: a server dying mid-answer, or a proxy cutting it."""
        exchange.head(200, {"Content-Type": "text/plain", "Content-Length": str(size)}, close=False)
        exchange.write(b"y" * (size // 2), size // 2)
        gevent.sleep(0.02)  # let the head and the half body arrive before the end does
        sock = exchange.sock
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            exchange.outcome = RESET
        else:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            exchange.outcome = CLOSED
        sock.close()
        exchange.end()

    def _log(self, peer: str, request: Request, exchange: Exchange) -> None:
        """gunicorn.conf.py's access log format plus the outcome; flushed per line, as the line is the evidence."""
        micros = exchange.micros
        stamp = time.strftime("[%d/%b/%Y:%H:%M:%S %z]")
        status = exchange.status or "-"
        request_id = request.headers.get("x-perf-request", "-") or "-"
        agent = request.headers.get("user-agent", "-").replace('"', "'")
        self.log.write(f'{peer} - - {stamp} "{request.method} {request.target} {request.version}" {status} '
                       f'{exchange.sent} "-" "{agent}" {micros} {request_id} {exchange.outcome}\n')
        self.log.flush()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one; printed)")
    parser.add_argument("--access-log", required=True, metavar="PATH", help="where to append the access log")
    parser.add_argument("--seed", type=int, help="seed of the random choices (delays, closes)")
    parser.add_argument("--close-rate", type=float, default=0.0, metavar="P",
                        help="share of answers sent with Connection: close")
    parser.add_argument("--drop-rate", type=float, default=0.0, metavar="P",
                        help="share of answers after which the kept-alive connection is closed without a word")
    parser.add_argument("--vanish-rate", type=float, default=0.0, metavar="P",
                        help="share of requests on a reused connection closed without an answer")
    parser.add_argument("--burst-every", type=float, default=4.0, metavar="S", help="a 503 burst starts every S s")
    parser.add_argument("--burst-length", type=float, default=1.0, metavar="S", help="and lasts S s")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    knobs = Knobs(seed=args.seed, close_rate=args.close_rate, drop_rate=args.drop_rate, vanish_rate=args.vanish_rate,
                  burst_every=args.burst_every, burst_length=args.burst_length)
    with open(args.access_log, "a", encoding="utf-8") as log:
        target = FaultTarget(knobs, log)
        server = StreamServer((HOST, args.port), target.handle, backlog=1024)
        server.start()
        stop = Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(signum, stop.set)
        print(f"listening on {HOST}:{server.server_port}", flush=True)
        stop.wait()
        server.stop(timeout=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
