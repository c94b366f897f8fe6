"""One simulated user's keep-alive HTTP/1.1 connection: a gevent socket and the C response
parser (llhttp) that geventhttpclient ships, and nothing else.

Why not geventhttpclient's ``HTTPClient``: per request it builds header objects, takes a
socket from a pool (queue, semaphore, liveness check) and wraps the response in more
objects. With one connection per user none of that is needed, and measured side by side
(``benchmarks/generator.py``, paced 500 req/s) it doubled the latency the generator adds:
p50 0.32 ms through ``HTTPClient`` against 0.17 ms here, wrk 0.15 ms. Plain ``http`` only;
``HttpSession`` falls back to ``HTTPClient`` for ``https``.
"""

import socket
import time

from geventhttpclient._parser import HTTPResponseParser

RECV_SIZE = 65536


class Headers(dict):
    """Response headers with lower-cased keys, looked up in any case, as requests allows."""

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)


# How a request reached the server, as ``Connection.opened`` tells after each one: on the kept-alive
# connection, on one opened for it (the first request, or after the server asked to close), or on one
# reopened because the server had closed the kept-alive connection while it sat idle.
REUSED, NEW, REOPENED = 0, 1, 2


class StaleConnection(ConnectionError):
    """The server closed a kept-alive connection before answering: safe to send again."""


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


class Connection:
    """A lazily opened, kept-alive connection to one host; not shared between greenlets."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.address = (host, port)
        self.host_header = f"{host}:{port}"
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.sent_at = 0.0
        self.opened = REUSED  # how the last request was sent: REUSED, NEW or REOPENED

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=self.timeout)
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
        data = "".join(lines).encode("latin-1") + body
        self.sent_at = time.perf_counter()
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
            sock.sendall(data)
            response = _Response(skip_body=method == "HEAD")
            while not response.complete:
                chunk = sock.recv(RECV_SIZE)
                if not chunk:
                    self.close()
                    if not received:
                        closed = StaleConnection if reused else ConnectionError
                        raise closed("connection closed before the response")
                    response.feed(b"")  # end of a body delimited by the connection's close
                    if not response.complete:
                        raise ConnectionError("connection closed in the middle of the response")
                    break
                received = True
                response.feed(chunk)
        except (ConnectionResetError, BrokenPipeError) as exc:
            self.close()
            if reused and not received:
                raise StaleConnection(str(exc)) from exc
            raise
        except BaseException:
            self.close()
            raise
        if not response.should_keep_alive():
            self.close()
        return response.get_code(), response.headers, bytes(response.body)
