"""The lean keep-alive connection under the session, against real servers.

The live gunicorn covers ordinary keep-alive and its idle time-out; a small threaded server
from the standard library covers framings gunicorn never sends here (chunked bodies, bodies
ended by closing the connection, repeated headers).
"""

import runpy
import select
import socket
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from perf.load.transport import NEW, REOPENED, REUSED, Connection, StaleConnection
from tests.liveserver import ROOT, LiveServer, free_port

pytestmark = pytest.mark.once  # by hand: the transport against the live server; its database is incidental


class Framings(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's naming)
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/until-close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"all of it")
            self.close_connection = True
        else:
            self.send_response(200)
            self.send_header("Set-Cookie", "a=1")
            self.send_header("Set-Cookie", "b=2")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def framings() -> Iterator[Connection]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Framings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Connection("127.0.0.1", server.server_address[1], timeout=5)
    server.shutdown()


def test_a_chunked_body_is_read_whole(framings):
    status, _, body = framings.request("GET", "/chunked", {}, b"")

    assert (status, body) == (200, b"hello world")


def test_a_body_ended_by_close_is_read_and_the_next_request_reconnects(framings):
    assert framings.request("GET", "/until-close", {}, b"")[2] == b"all of it"
    assert framings.sock is None

    assert framings.request("GET", "/", {}, b"")[2] == b"ok"


def test_repeated_headers_are_joined_and_found_in_any_case(framings):
    _, headers, _ = framings.request("GET", "/", {}, b"")

    assert headers["SET-COOKIE"] == "a=1, b=2"
    assert "content-length" in headers and headers.get("Content-Length") == "2"


def test_the_connection_is_kept_alive_between_requests(live_server_process):
    parts = urlsplit(live_server_process.url)
    connection = Connection(parts.hostname, parts.port, timeout=10)

    connection.request("GET", "/api/healthcheck", {}, b"")
    first = connection.sock
    connection.request("GET", "/api/healthcheck", {}, b"")

    assert first is not None and connection.sock is first


def test_a_client_idle_for_3_s_reuses_its_connection(live_server_process):
    """The served keep-alive (gunicorn.conf.py) outlasts the default think time of 1-3 s, so a user
    back from thinking finds its connection open: no handshake, no race with the server's close."""
    parts = urlsplit(live_server_process.url)
    connection = Connection(parts.hostname, parts.port, timeout=10)
    connection.request("GET", "/api/healthcheck", {}, b"")
    first = connection.sock
    assert connection.opened == NEW

    time.sleep(3)
    status, _, _ = connection.request("GET", "/api/healthcheck", {}, b"")

    assert status == 200 and connection.sock is first and connection.opened == REUSED


def test_the_served_keep_alive_outlasts_the_longest_default_think_time():
    from perf.load.user import User

    served = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert served["keepalive"] > User.wait_time.bounds[1]


@pytest.fixture(scope="module")
def short_keep_alive_server(live_env, tmp_path_factory) -> Iterator[LiveServer]:
    """A server that closes idle connections after 1 s, as gunicorn's default of 2 s would mid-think."""
    server = LiveServer(env=live_env, port=free_port(), log_path=tmp_path_factory.mktemp("short") / "gunicorn.log")
    server.start(1, 1, "--keep-alive", "1")
    yield server
    server.stop()


def test_a_connection_the_server_closed_while_idle_is_reopened(short_keep_alive_server):
    parts = urlsplit(short_keep_alive_server.url)
    connection = Connection(parts.hostname, parts.port, timeout=10)
    connection.request("GET", "/api/healthcheck", {}, b"")

    # The server closes the idle connection after its 1 s keep-alive, on its own loop's next turn: a busy machine
    # may be seconds late. Wait until it has (the socket reads as closed), never less than 2 s.
    time.sleep(2)
    assert connection.sock is not None
    readable, _, _ = select.select([connection.sock], [], [], 15)
    assert readable, "the server never closed the idle connection"
    status, _, body = connection.request("POST", "/api/account/verify", {"Content-Type": "application/json"},
                                         b'{"token": "x"}')

    assert status == 400 and b"Invalid token" in body
    assert connection.opened == REOPENED


def test_a_refused_connection_raises(live_server_process):

    with pytest.raises(ConnectionRefusedError):
        Connection("127.0.0.1", free_port(), timeout=2).request("GET", "/", {}, b"")


def _serve_resets(listener: socket.socket) -> None:
    """Accept each connection and reset it (linger 0) before answering, until the listener closes."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()


def test_a_reset_on_a_new_connection_is_raised_as_the_reset_not_as_stale():
    """Stale means "the kept-alive connection timed out, send again": a new connection reset
    by the server is the server's doing, and the failure record should say so."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        threading.Thread(target=_serve_resets, args=(listener,), daemon=True).start()
        connection = Connection("127.0.0.1", listener.getsockname()[1], timeout=5)

        with pytest.raises((ConnectionResetError, BrokenPipeError)) as raised:
            connection.request("GET", "/", {}, b"")

    assert not isinstance(raised.value, StaleConnection)
    assert connection.sock is None
