"""One simulated user's keep-alive HTTP/1.1 connection: a gevent socket, a response head read in
Python, the C response parser (llhttp) that geventhttpclient ships for anything unusual, and nothing
else.

Why not geventhttpclient's ``HTTPClient``: per request it builds header objects, takes a
socket from a pool (queue, semaphore, liveness check) and wraps the response in more
objects. With one connection per user none of that is needed, and measured side by side
(``benchmarks/generator.py``, paced 500 req/s) it doubled the latency the generator adds:
p50 0.32 ms through ``HTTPClient`` against 0.17 ms here, wrk 0.15 ms. Plain ``http`` only;
``HttpSession`` falls back to ``HTTPClient`` for ``https``.

The common answer, a head that arrives whole in the first read and a body framed by
``Content-Length`` (every JSON answer of gunicorn and nginx), is read in Python: the head split
once into lines, the body read to its length. llhttp calls back into Python for every header name
and value, some 25 calls a response, and that cost twice what the split does (issue 13,
``benchmarks/mix.py``). Every other answer (chunked, ended by the close, 1xx, 204, 304, a reply to
HEAD, a head over several reads or anything unusual in it) goes to llhttp, as before.

The request's time-out bounds the whole request (send, wait, read), counted from that request's own
start: one event-loop timer per connection, restarted in full for each request (``RequestDeadline``).
``gevent.Timeout`` cannot be reused for that: started again after a cancel, libev's timer goes on from
the time it had left, so a connection's waits added up across requests and, once they reached the
time-out, every later request "timed out" at once (issue 17). Measured side by side with the bare
engine (``benchmarks/mix.py --deadlines``), a fresh ``Timeout`` per request costs about 15 % more a
request, and a socket time-out (a timer and an exception for every wait) about 20 % more.
"""

import socket
import time
from typing import TypeVar, overload

from gevent import get_hub, getcurrent
from gevent.socket import socket as CooperativeSocket
from geventhttpclient._parser import HTTPResponseParser

RECV_SIZE = 65536
_T = TypeVar("_T")


class Headers(dict[str, str]):
    """Response headers with lower-cased keys, looked up in any case, as requests allows."""

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    @overload
    def get(self, key: str, default: None = None, /) -> str | None: ...

    @overload
    def get(self, key: str, default: str, /) -> str: ...

    @overload
    def get(self, key: str, default: _T, /) -> str | _T: ...

    def get(self, key: str, default: object = None, /) -> object:
        return super().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)


# How a request reached the server, as ``Connection.opened`` tells after each one: on the kept-alive
# connection, on one opened for it (the first request, or after the server asked to close), or on one
# reopened because the server had closed the kept-alive connection while it sat idle.
REUSED, NEW, REOPENED = 0, 1, 2


class StaleConnection(ConnectionError):
    """The server closed a kept-alive connection before answering: safe to send again."""


class RequestTimedOut(Exception):
    """Thrown into the waiting greenlet when its request's time is up; never seen outside this module."""


class RequestDeadline:
    """One request's time limit on a gevent socket, counted from ``arm()``: a libev timer restarted with
    its full time for every request (``again``), stopped by ``disarm()``; it throws ``expired`` into the
    greenlet that armed it if the request is still waiting when the time is up."""

    __slots__ = ("_timer", "expired")

    def __init__(self, seconds: float) -> None:
        # The repeat interval is what ``again`` restarts from; the timer never repeats, as disarm() stops it.
        self._timer = get_hub().loop.timer(seconds, seconds)
        self.expired = RequestTimedOut()

    def arm(self) -> None:
        self._timer.again(getcurrent().throw, self.expired)

    def disarm(self) -> None:
        self._timer.stop()


class _Response(HTTPResponseParser):
    """Collects status, headers and body as llhttp calls back; repeated headers are joined."""

    def __init__(self, skip_body: bool) -> None:
        super().__init__()
        self.skip_body = skip_body
        self.headers = Headers()
        self.body = bytearray()
        self.complete = False
        self._field = ""
        self._value: str | None = None

    def _on_message_begin(self) -> None:
        pass

    def _on_status(self, message: str) -> None:
        pass

    def _on_header_field(self, text: str) -> None:
        if self._value is not None:
            self._store_header()
        self._field += text

    def _on_header_value(self, text: str) -> None:
        self._value = text if self._value is None else self._value + text

    def _store_header(self) -> None:
        name, value = self._field.lower(), self._value or ""
        headers = self.headers
        if name in headers:
            value = f"{dict.__getitem__(headers, name)}, {value}"
        dict.__setitem__(headers, name, value)
        self._field, self._value = "", None

    def _on_headers_complete(self) -> bool:
        if self._field:
            self._store_header()
        return self.skip_body

    def _on_body(self, buf: bytearray) -> None:
        self.body += buf

    def _on_message_complete(self) -> None:
        self.complete = True


def _plain_head(chunk: bytes, method: str) -> tuple[int, Headers, int, bool, int] | None:
    """``(status, headers, content length, keep-alive, where the body starts)`` when ``chunk`` starts
    with a whole head of an ordinary answer framed by ``Content-Length``; None sends it to llhttp."""
    end = chunk.find(b"\r\n\r\n")
    if end < 0 or method == "HEAD":
        return None
    lines = chunk[:end].decode("latin-1").split("\r\n")
    status_line = lines[0]
    code = status_line[9:12]
    if (not status_line.startswith(("HTTP/1.1 ", "HTTP/1.0 ")) or not code.isdigit() or code < "200"
            or code in ("204", "304") or status_line[12:13] not in ("", " ")):
        return None
    headers = Headers()
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name[-1] in " \t" or line[0] in " \t":
            return None  # no colon, an empty name, a space before the colon, a folded line: llhttp decides
        name = name.lower()
        value = value.lstrip(" \t")  # as llhttp: leading blanks go, trailing ones stay
        if dict.__contains__(headers, name):
            value = f"{dict.__getitem__(headers, name)}, {value}"
        dict.__setitem__(headers, name, value)
    length = dict.get(headers, "content-length")
    if length is None or not length.isdigit() or dict.__contains__(headers, "transfer-encoding"):
        return None
    tokens = dict.get(headers, "connection", "").lower()
    keep_alive = "close" not in tokens if status_line[7] == "1" else "keep-alive" in tokens
    return int(code), headers, int(length), keep_alive, end + 4


def cooperative() -> bool:
    """Whether sockets are gevent's (``run_perf`` patches the standard library before any user starts)."""
    return socket.socket is CooperativeSocket


class Connection:
    """A lazily opened, kept-alive connection to one host; not shared between greenlets."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.address = (host, port)
        self.host_header = f"{host}:{port}"
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.sent_at = 0.0
        self.opened = REUSED  # how the last request was sent: REUSED, NEW or REOPENED
        # Under gevent, one timer bounds each whole request (connect, send, wait, read), armed and disarmed per
        # request: with a socket time-out instead, gevent makes a new timer and exception for every wait. The
        # standard library's blocking socket (not patched: some tests) keeps its socket time-out.
        self._deadline = RequestDeadline(timeout) if cooperative() else None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _connect(self) -> socket.socket:
        # Under gevent the request's deadline bounds the connect too; a blocking socket keeps its own time-out.
        sock = socket.create_connection(self.address, timeout=None if self._deadline is not None else self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        return sock

    def request(self, method: str, uri: str, headers: dict[str, str], body: bytes) -> tuple[int, Headers, bytes]:
        """Send one request and read the whole response: (status, headers, body).

        A kept-alive connection the server has meanwhile closed is reopened once; any other
        error propagates as it was raised (the session records it, by class and message, as a
        failed request). ``sent_at`` is set to ``time.perf_counter()`` just before the bytes go
        out, for the caller's timing, and ``opened`` says whether a connection was opened for it.
        """
        lines = [f"{method} {uri} HTTP/1.1\r\nHost: {self.host_header}\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        if body or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            lines.append(f"Content-Length: {len(body)}\r\n")
        lines.append("\r\n")
        head = "".join(lines)
        # Each line above ends in one CRLF; any other CR or LF came in with the URI or a header value (a token or
        # a slug from an answer, a scenario's header) and would start a header line of its own: refused.
        breaks = len(lines) + 1  # the first piece holds the request line and Host
        if head.count("\n") != breaks or head.count("\r") != breaks:
            raise ValueError("refused to send: a line break in the URI or a header value would inject a header")
        data = head.encode("latin-1") + body
        deadline = self._deadline
        self.sent_at = time.perf_counter()
        if deadline is None:
            return self._send(data, method)
        deadline.arm()
        try:
            return self._send(data, method)
        except RequestTimedOut:
            self.close()
            raise TimeoutError("timed out") from None  # what a socket time-out says
        finally:
            deadline.disarm()

    def _send(self, data: bytes, method: str) -> tuple[int, Headers, bytes]:
        if self.sock is None:
            self.opened = NEW
            return self._exchange(self._connect(), data, method, reused=False)
        self.opened = REUSED
        try:
            return self._exchange(self.sock, data, method, reused=True)
        except StaleConnection:
            self.opened = REOPENED
            self.sent_at = time.perf_counter()
            return self._exchange(self._connect(), data, method, reused=False)

    def _exchange(self, sock: socket.socket, data: bytes, method: str, reused: bool) -> tuple[int, Headers, bytes]:
        """One request and its response on ``sock``.

        Only a ``reused`` connection closed before any byte of the answer is stale (safe to send
        again); on a new one the same close or reset is the server's doing, and is raised as such
        so the failure names it rather than a retry signal.
        """
        received = False
        try:
            sent = sock.send(data)  # one call as a rule: gevent's sendall also asks the kernel for the buffer size
            if sent < len(data):
                sock.sendall(memoryview(data)[sent:])
            chunk = sock.recv(RECV_SIZE)
            if not chunk:
                self.close()
                raise (StaleConnection if reused else ConnectionError)("connection closed before the response")
            received = True
            plain = _plain_head(chunk, method)
            if plain is not None:
                status, headers, length, keep_alive, start = plain
                body = self._read_body(sock, chunk[start:], length)
            else:
                status, headers, body, keep_alive = self._parse(sock, chunk, method)
        except (ConnectionResetError, BrokenPipeError) as exc:
            self.close()
            if reused and not received:
                raise StaleConnection(str(exc)) from exc
            raise
        except BaseException:
            self.close()
            raise
        if not keep_alive:
            self.close()
        return status, headers, body

    def _read_body(self, sock: socket.socket, body: bytes, length: int) -> bytes:
        """The rest of a ``Content-Length`` body; bytes beyond it (no answer was asked for) end the connection."""
        if len(body) < length:
            parts, have = [body], len(body)
            while have < length:
                chunk = sock.recv(RECV_SIZE)
                if not chunk:
                    raise ConnectionError("connection closed in the middle of the response")
                parts.append(chunk)
                have += len(chunk)
            body = b"".join(parts)
        if len(body) > length:
            self.close()
            body = body[:length]
        return body

    def _parse(self, sock: socket.socket, chunk: bytes, method: str) -> tuple[int, Headers, bytes, bool]:
        """Any answer, through llhttp, starting with the ``chunk`` already read."""
        response = _Response(skip_body=method == "HEAD")
        while True:
            response.feed(chunk)
            if response.complete:
                break
            chunk = sock.recv(RECV_SIZE)
            if not chunk:
                self.close()
                response.feed(b"")  # end of a body delimited by the connection's close
                if not response.complete:
                    raise ConnectionError("connection closed in the middle of the response")
                break
        return response.get_code(), response.headers, bytes(response.body), response.should_keep_alive()
