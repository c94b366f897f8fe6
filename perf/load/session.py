"""The instrumented HTTP session each simulated user owns.

It offers the face of ``requests`` (``status_code``, ``headers``, ``json()``, ``text``)
over a lean keep-alive connection (``perf.load.transport``: a gevent socket and llhttp),
which costs several times less CPU per request than requests (docs/design.md, "HTTP transport"),
and reports every request to one hook. It knows nothing of how statistics are kept.
Each session holds one keep-alive connection, as a browser tab would.

Response time runs from just before the request is sent to the end of the body read,
in milliseconds; in the open model (``perf.load.open_model``) the first request of an
iteration runs from the iteration's intended start instead (``intended_start``). A request
fails when it raises (status 0) or answers ≥ 400, unless the caller takes charge with
``catch_response=True`` and marks it.

A failure's text is its cause: ``ConnectionRefusedError: [Errno 111] Connection refused``
for a request that got no answer, ``HTTPError(...)`` for an error status, the scenario's
reason otherwise. The text is also the failure's group key (``perf.load.stats``), so it is
bounded and free of per-object details.

When the run ends, a session is *sealed* (``seal``): the request in flight, if any, may still finish
and is recorded as usual, but the next one is not sent (``SessionSealed`` ends the user). A request
still unanswered when the run's grace runs out is recorded by ``cut_off`` as a failure of its own kind
(``CutOff: ...``), so the end of a run never drops a request silently (issue 17).
"""

import json as jsonlib
import re
import time
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

from gevent import GreenletExit
from geventhttpclient import HTTPClient

from perf.load.request_log import HEADER as REQUEST_ID_HEADER
from perf.load.request_log import NO_ID, RequestLog
from perf.load.server_timing import ServerTiming, parse_server_timing
from perf.load.transport import REUSED, Connection, Headers, RequestDeadline, RequestTimedOut, cooperative

RequestHook = Callable[..., None]

REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           409: "Conflict", 422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}

# A failure text is a cell of the failures table and a group key: room for an exception's message
# or the start of a body, never a whole error page.
MAX_ERROR_LENGTH = 300
MAX_BODY_QUOTE = 200
# "<Foo object at 0x7f3a...>" differs per object: left in, one cause would split into many failure kinds.
_OBJECT_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
CUT_OFF = "CutOff"


class SessionSealed(GreenletExit):  # type: ignore[misc]  # gevent publishes no types: its GreenletExit is Any
    """The run has ended: a sealed session sends nothing more, and the user that tried to ends quietly."""


def cut_off_error(grace: float) -> str:
    """The failure text of a request still unanswered when the run's end grace ran out; one text per run."""
    return f"{CUT_OFF}: cut off at the end, waiting {grace:g} s"


class Response:
    """What a request returned; ``status_code`` is 0 when it never got an answer."""

    __slots__ = ("status_code", "headers", "content", "url", "error", "elapsed_ms", "server", "opened",
                 "request_id", "sent_at", "_json")

    def __init__(self, status_code: int, headers: Headers, content: bytes, url: str,
                 error: str | None, elapsed_ms: float, opened: int = REUSED, request_id: str = NO_ID,
                 sent_at: float = 0.0) -> None:
        self.status_code = status_code
        # With a request log: the X-Perf-Request id it was sent with, and when (unix time).
        self.request_id = request_id
        self.sent_at = sent_at
        # REUSED, NEW or REOPENED (perf.load.transport): whether a TCP connection was opened for it.
        self.opened = opened
        self.headers = headers
        self.content = content
        self.url = url
        self.error = error
        self.elapsed_ms = elapsed_ms
        timing = headers.get("server-timing")
        self.server = parse_server_timing(timing) if timing else None
        self._json: Any = None

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status_code < 400

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        if self._json is None:
            self._json = jsonlib.loads(self.content)
        return self._json


def bounded(text: str) -> str:
    """``text`` cut to ``MAX_ERROR_LENGTH``; the same text always gets the same cut, so grouping holds."""
    if len(text) <= MAX_ERROR_LENGTH:
        return text
    return text[: MAX_ERROR_LENGTH - 1] + "…"


def describe_error(exc: BaseException) -> str:
    """``ConnectionRefusedError: [Errno 111] Connection refused``: the class tells refused, reset,
    timed out or unresolved apart, and the message says how, as Locust's failures table shows them."""
    message = _OBJECT_ADDRESS.sub("", str(exc))
    return bounded(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)


def unexpected_answer(label: str, response: Response) -> str:
    """Why ``label`` did not get the status it wanted: the status and the start of the body, or, when
    no answer came at all, the exception that stopped the request; "answered 0: " would hide it."""
    if response.error is not None:
        return response.error
    return bounded(f"{label} answered {response.status_code}: {response.text[:MAX_BODY_QUOTE]}")


def http_error(status_code: int, name: str) -> str:
    """The failure text of an error status, grouped by name template rather than by URL."""
    kind = "Client" if status_code < 500 else "Server"
    return f"HTTPError('{status_code} {kind} Error: {REASONS.get(status_code, 'Error')} for url: {name}')"


class ResponseContext:
    """``with session.get(..., catch_response=True) as response:`` then ``response.success()``
    or ``response.failure("why")``; reported once, when the block ends."""

    def __init__(self, session: "HttpSession", method: str, name: str, response: Response) -> None:
        self._session = session
        self._method = method
        self._name = name
        self.response = response
        self._error: str | None = response.error
        self._marked = False

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.response, attr)

    def success(self) -> None:
        self._error = None
        self._marked = True

    def failure(self, reason: str) -> None:
        self._error = bounded(reason)
        self._marked = True

    def expect_status(self, *statuses: int, label: str) -> bool:
        """True when the status is one of ``statuses``; otherwise fail with ``unexpected_answer``.

        The one place a scenario's "``label`` answered N: body" is written, so that every
        scenario names the exception when a request got no answer.
        """
        if self.response.status_code in statuses:
            return True
        self.failure(unexpected_answer(label, self.response))
        return False

    def __enter__(self) -> "ResponseContext":
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if isinstance(exc, SessionSealed):
            pass  # this block's request was answered; a later one in it was not sent as the run ended
        elif exc is not None and not isinstance(exc, Exception):
            return False  # the user is being killed: the run is stopping, nothing to report
        elif exc is not None:
            self._error = bounded(f"{exc_type.__name__}({str(exc)!r})")
        elif not self._marked and self._error is None and not self.response.ok:
            self._error = http_error(self.response.status_code, self._name)
        self._session.record(self._method, self._name, self.response, self._error)
        return False


class HttpSession:
    """One user's connection to the target; ``base_url`` may carry a path prefix (``/api``)."""

    def __init__(self, base_url: str, on_request: RequestHook, timeout: float = 30.0,
                 headers: dict[str, str] | None = None, request_log: RequestLog | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.prefix = parts.path.rstrip("/")
        self.on_request = on_request
        self.headers = dict(headers or {})
        # perf_counter() time at which the next request should have been sent, or 0.0. The open model
        # sets it per iteration so a late start counts in the latency, as wrk2 measures (coordinated
        # omission); the next send consumes it.
        self.intended_start = 0.0
        self.request_log = request_log
        # The request being sent (method, name, perf_counter() at its start) while it waits; None between.
        self.in_flight: tuple[str, str, float] | None = None
        self._flight_uri, self._flight_id = "", NO_ID  # with a request log: its URI and id, for cut_off's line
        self.sealed = False
        # Plain http (every loopback target) takes the lean connection; https goes through HTTPClient.
        self._connection: Connection | None = None
        self._client: HTTPClient | None = None
        # HTTPClient bounds each socket operation; this bounds the whole https request, as the transport does http's.
        self._https_deadline: RequestDeadline | None = None
        if parts.scheme == "http":
            self._connection = Connection(parts.hostname, parts.port or 80, timeout)
        else:
            self._https_root, self._timeout = f"{parts.scheme}://{parts.netloc}/", timeout
            self._client = self._https_client()
            self._https_deadline = RequestDeadline(timeout) if cooperative() else None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        if self._client is not None:
            self._client.close()

    def _https_client(self) -> HTTPClient:
        return HTTPClient.from_url(self._https_root, concurrency=1, connection_timeout=self._timeout,
                                   network_timeout=self._timeout)

    def _send_https(self, method: str, uri: str, body: bytes, headers: dict[str, str]) -> tuple[int, Headers, bytes]:
        deadline, client = self._https_deadline, self._client
        if client is None:
            raise RuntimeError("a plain http session has no https client")
        if deadline is not None:
            deadline.arm()
        try:
            raw = client.request(method, uri, body=body, headers=headers)
            try:
                content = raw.read()
                return raw.status_code, Headers((key.lower(), value) for key, value in raw.items()), content
            finally:
                raw.release()
        except RequestTimedOut:
            # Its connection is left mid-answer: a new client (and connection) for the next request.
            client.close()
            self._client = self._https_client()
            raise TimeoutError("timed out") from None
        finally:
            if deadline is not None:
                deadline.disarm()

    def report(self, method: str, name: str, elapsed_ms: float, size: int, error: str | None,
               server: ServerTiming | None = None, opened: int = REUSED) -> None:
        """Record something that is no HTTP request to the target (a scenario's email wait, a look-up).

        The hook gets ``(method, name, elapsed_ms, size, error, server, opened)``, always all seven.
        """
        if self.request_log is not None:
            self.request_log.write(NO_ID, time.time() - elapsed_ms / 1000.0, method, name, "", 0, elapsed_ms,
                                   opened, error)
        self.on_request(method, name, elapsed_ms, size, error, server, opened)

    def record(self, method: str, name: str, response: Response, error: str | None) -> None:
        """Record an HTTP request's outcome: the hook, and the request log's line paired by its id."""
        if self.request_log is not None:
            self.request_log.write(response.request_id, response.sent_at, method, name, response.url,
                                   response.status_code, response.elapsed_ms, response.opened, error)
        self.on_request(method, name, response.elapsed_ms, len(response.content), error, response.server,
                        response.opened)

    def seal(self) -> None:
        """The run is over: let the request in flight finish, send no other (``SessionSealed``)."""
        self.sealed = True

    def cut_off(self, grace: float) -> bool:
        """Record the request still in flight, if any, as cut off at the end after ``grace`` s; True if one was."""
        flight = self.in_flight
        if flight is None:
            return False
        method, name, started = flight
        self.in_flight = None
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        opened = self._connection.opened if self._connection is not None else REUSED  # resent, or a new connection
        response = Response(0, Headers(), b"", self._flight_uri, cut_off_error(grace), elapsed_ms, opened,
                            self._flight_id, time.time() - elapsed_ms / 1000.0)
        self.record(method, name, response, response.error)
        return True

    def send(self, method: str, path: str, json: Any = None, params: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> Response:
        """Send without reporting: the raw measurement."""
        if self.sealed:
            self.in_flight = None
            raise SessionSealed()
        uri = self.prefix + path
        if params:
            uri += "?" + urlencode(params)
        body = b"" if json is None else jsonlib.dumps(json).encode()
        merged = {**self.headers, **headers} if headers else self.headers
        request_id, wall = NO_ID, 0.0  # only the request log needs them: the hot path stays as it was
        if self.request_log is not None:
            request_id = self._flight_id = self.request_log.next_id()
            self._flight_uri, wall = uri, time.time()
            merged = {**merged, REQUEST_ID_HEADER: request_id}
        connection = self._connection
        start = time.perf_counter()
        try:
            if connection is not None:
                status, response_headers, content = connection.request(method, uri, merged, body)
                start = connection.sent_at  # send to body read, as Locust and wrk time it
            else:
                status, response_headers, content = self._send_https(method, uri, body, merged)
            error = None
        except Exception as exc:  # connection refused, reset, timeout: the request failed
            status, response_headers, content = 0, Headers(), b""
            error = describe_error(exc)
        end = time.perf_counter()
        self.in_flight = None
        # https's pool does not say when it connects, so only plain http's connections are counted.
        opened = connection.opened if connection is not None else REUSED
        intended = self.intended_start
        if intended:
            self.intended_start = 0.0
            start = min(start, intended)
        elapsed_ms = (end - start) * 1000.0
        return Response(status, response_headers, content, uri, error, elapsed_ms, opened, request_id, wall)

    def request(self, method: str, path: str, name: str | None = None, catch_response: bool = False,
                **kwargs: Any) -> Response | ResponseContext:
        name = name or path
        self.in_flight = (method, name, time.perf_counter())  # what cut_off records if the run ends first
        response = self.send(method, path, **kwargs)
        if catch_response:
            return ResponseContext(self, method, name, response)
        error = response.error
        if error is None and response.status_code >= 400:
            error = http_error(response.status_code, name)
        self.record(method, name, response, error)
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)
