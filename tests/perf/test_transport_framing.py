"""The transport reads an ordinary answer (a whole head, a ``Content-Length`` body) in Python and leaves
every other one to llhttp (issue 13); both must read the same answer the same way.

A raw socket server sends exact bytes, split where a test wants them split, so that the edges of the
Python reading are pinned: a head over two reads, repeated headers, HTTP/1.0, no-body statuses, bytes
beyond the body, a request that outlives its time-out.
"""

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from perf.load import transport
from perf.load.transport import Connection, _plain_head, _Response
from tests.slowtarget import slow_target

HEAD = (b"HTTP/1.1 200 OK\r\nServer: gunicorn\r\nConnection: keep-alive\r\nContent-Type: application/json\r\n"
        b"Content-Length: 11\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
        b'Server-Timing: app;dur=1.5, db;dur=0.2;desc="2 queries"\r\n\r\n')
BODY = b'{"ok":true}'  # 11 bytes, as the head says


class Script:
    """A server answering each request with the next scripted answer: a list of byte pieces, sent with a
    short pause between them so that the client reads them apart."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.answers: list[list[bytes] | None] = []  # None: read the request, then say nothing
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            while self.answers:
                request = b""
                while b"\r\n\r\n" not in request:
                    data = conn.recv(65536)
                    if not data:
                        return
                    request += data
                pieces = self.answers.pop(0)
                if pieces is None:
                    time.sleep(3)
                    return
                for piece in pieces:
                    conn.sendall(piece)
                    time.sleep(0.05)

    def connection(self, timeout: float = 5.0) -> Connection:
        return Connection("127.0.0.1", self.port, timeout)


@pytest.fixture
def script() -> Iterator[Script]:
    server = Script()
    yield server
    server.listener.close()


def _llhttp(data: bytes, method: str = "GET") -> tuple[int, dict, bytes, bool]:
    response = _Response(skip_body=method == "HEAD")
    response.feed(data)
    return response.get_code(), dict(response.headers), bytes(response.body), response.should_keep_alive()


@pytest.mark.parametrize("answer", [
    HEAD + BODY,
    b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nVary: Accept\r\nVary:  Cookie \r\n\r\nok",
    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
])
def test_the_python_reading_agrees_with_llhttp(answer):
    status, headers, length, keep_alive, start = _plain_head(answer, "GET")

    assert (status, dict(headers), answer[start:start + length], keep_alive) == _llhttp(answer)


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the close",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Folded: a\r\n b\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",  # the head is not whole yet
])
def test_anything_unusual_goes_to_llhttp(answer):
    assert _plain_head(answer, "GET") is None


def test_the_answer_to_head_goes_to_llhttp():
    assert _plain_head(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", "HEAD") is None


def test_a_head_split_over_two_reads_is_read_whole(script):
    script.answers.append([HEAD[:40], HEAD[40:] + BODY])
    connection = script.connection()

    status, headers, body = connection.request("GET", "/", {}, b"")

    assert status == 200 and headers["SET-COOKIE"] == "a=1, b=2" and headers["content-type"] == "application/json"
    assert body == BODY and connection.sock is not None


def test_a_body_over_several_reads_is_read_to_its_length_and_the_connection_kept(script):
    script.answers += [[HEAD + BODY[:5], BODY[5:]], [HEAD + b"x" * 11]]
    connection = script.connection()

    assert connection.request("GET", "/", {}, b"")[2] == BODY
    first = connection.sock
    assert connection.request("GET", "/", {}, b"")[2] == b"x" * 11
    assert connection.sock is first


def test_bytes_beyond_the_body_end_the_connection(script):
    script.answers.append([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"])
    connection = script.connection()

    assert connection.request("GET", "/", {}, b"")[2] == b"ok"
    assert connection.sock is None


def test_a_closed_connection_in_the_middle_of_the_body_fails(script):
    script.answers.append([b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nonly ten b"])  # then it closes
    connection = script.connection(timeout=2)

    with pytest.raises(ConnectionError, match="in the middle of the response"):
        connection.request("GET", "/", {}, b"")
    assert connection.sock is None


def test_a_request_that_outlives_its_time_out_fails_as_timed_out(script):
    script.answers.append(None)
    connection = script.connection(timeout=0.3)

    started = time.monotonic()
    with pytest.raises(TimeoutError, match="timed out"):
        connection.request("GET", "/", {}, b"")
    assert time.monotonic() - started < 2 and connection.sock is None


def _cooperative(monkeypatch: pytest.MonkeyPatch) -> None:
    """The transport as gevent's patch leaves it (this test only): gevent's sockets, its timer bounding each request."""
    gevent_socket = pytest.importorskip("gevent.socket")
    monkeypatch.setattr(transport.socket, "create_connection", gevent_socket.create_connection)
    monkeypatch.setattr(transport, "cooperative", lambda: True)


def test_the_time_out_bounds_the_whole_request_under_gevent(script, monkeypatch):
    """On a gevent socket one timer per connection bounds each request; the socket itself has none."""
    _cooperative(monkeypatch)
    script.answers.append(None)
    connection = script.connection(timeout=0.3)

    started = time.monotonic()
    with pytest.raises(TimeoutError, match="timed out"):
        connection.request("GET", "/", {}, b"")
    assert 0.29 <= time.monotonic() - started < 1
    assert isinstance(connection._deadline, transport.RequestDeadline) and not connection._deadline._timer.active


def test_each_request_gets_its_whole_time_out_however_long_the_earlier_ones_waited(monkeypatch):
    """Issue 17: ten answers of 0.1 s on one connection with a 0.3 s time-out. A timer that went on from the
    time it had left would fail the third; each request's time must count from its own start."""
    _cooperative(monkeypatch)
    with slow_target() as served:
        connection = transport.Connection("127.0.0.1", int(served.url.rsplit(":", 1)[1]), timeout=0.3)
        statuses = [connection.request("GET", "/sleep?s=0.1", {}, b"")[0] for _ in range(10)]

    assert statuses == [200] * 10


@pytest.mark.parametrize(("uri", "headers"), [
    ("/", {"Authorization": "Bearer token\r\nX-Evil: 1"}),
    ("/", {"X-Slug": "a\nX-Evil: 1"}),
    ("/", {"X-Slug": "a\rX-Evil: 1"}),
    ("/events/a\r\nX-Evil: 1", {}),
])
def test_a_line_break_in_the_uri_or_a_header_value_is_refused_before_anything_is_sent(uri, headers):
    """A token or a slug taken from an answer, or a scenario's header, must never inject a header line."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        connection = Connection("127.0.0.1", listener.getsockname()[1], timeout=2)

        with pytest.raises(ValueError, match="a line break in the URI or a header value would inject a header"):
            connection.request("GET", uri, headers, b"")
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listener.accept()  # not even a connection was opened
