"""A target that answers as slowly as each request asks, over plain HTTP or TLS: the time-out tests' server.

``GET /sleep?s=0.3`` answers ``{"slept": 0.3}`` after 0.3 s on a kept-alive HTTP/1.1 connection; every
request is served on a thread of its own, so latency is what was asked for, never queueing. It runs in
a thread of the test process (the load comes from a gevent-patched child process), and ``served`` lists
what it answered: (path, seconds it took).
"""

import json
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


@dataclass
class SlowTarget:
    url: str
    served: list[tuple[str, float]] = field(default_factory=list)


def _handler(target: SlowTarget) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (the standard library's naming)
            started = time.monotonic()
            query = parse_qs(urlsplit(self.path).query)
            seconds = float(query.get("s", ["0"])[0])
            time.sleep(seconds)
            body = json.dumps({"slept": seconds}).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up first
            target.served.append((self.path, time.monotonic() - started))

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl, a stock tool); the client trusts it via SSL_CERT_FILE."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@contextmanager
def slow_target(certificate: tuple[Path, Path] | None = None) -> Iterator[SlowTarget]:
    """A running target on a free loopback port; ``certificate`` (cert, key) serves it over TLS."""
    target = SlowTarget(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(target))
    server.daemon_threads = True
    scheme = "http"
    if certificate is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*map(str, certificate))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    target.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield target
    finally:
        server.shutdown()
        server.server_close()
