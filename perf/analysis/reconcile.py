"""Ground truth for a run: its figures checked against what the server itself saw (issue 17).

A load tool's figures can be wrong in two ways no amount of self-testing shows: failures it invents (a
time-out that fired early) and requests it drops (those in flight when a run ends). The server's access
log is the independent witness. ``run_perf --request-log PATH`` writes one line per request the
statistics recorded, with the ``X-Perf-Request`` id the request carried (``perf.load.request_log``);
gunicorn (``gunicorn.conf.py``) logs the same id with the request's status and time. This module pairs
the two by id and checks:

- **requests per endpoint**: the client's count equals the server's, the only difference being requests
  the client recorded as unanswered that the server never logged (cut off at the end, refused, or still
  queued when the server stopped), reported as such so the two sides add up exactly; with the run's
  ``--json`` summary, also that the summary's counts are the request log's (nothing lost or added between
  the log and the reported figures);
- **failure causes**: every request the client counted has an outcome the server agrees with: an error
  status logged as that status, a time-out where the server took longer than the time-out (or answered
  after the client's deadline, or never), a reset or close where the server reset or closed the
  connection (or never answered), a cut-off where the server had not answered when the client gave up;
  and every success logged by the server with the same status;
- **latency**: per endpoint, the client's p50 and p99 are at least the server's over the same requests
  (the client's time contains the server's), within ``AFTER_LAST_BYTE_SHARE`` of the server's (its time includes
  its work after the last byte) or a clock slack of ``CLOCK_SLACK_MS``, whichever is more;
- **nothing counted twice**: no id twice in the request log, and none twice in the server's log unless
  the client resent it on a new connection (``opened`` = 2, a stale kept-alive connection).

Entries without an id (a pack's email wait, a look-up: no HTTP request to the target) and server lines
without one (a health check, other traffic) take no part in the pairing; they are counted and listed.

The access log's time (``%(t)s``) has whole seconds, so when a time-out is judged by when the server
answered, "after the deadline" means "not in a second that ended before it". The request's own time
(``%(D)s``, microseconds) is exact but starts when the server read the request: a request that waited in
the kernel's queue (a paused or saturated server) can time out at the client with a short ``D``. And a
generator's event loop held up at a deadline reads an answer that had just arrived too late: a time-out
is called wrong only when the server's answer was out ``LOOP_LAG_MS`` before the client's deadline.
"""

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tabulate import tabulate

from perf.load.request_log import NO_ID, clean
from perf.load.session import CUT_OFF

# Outcome words of the access log's optional last field (scripts/fault_target.py writes them; gunicorn's
# lines have none and mean "answered"). "gone": the answer was written after the client had left.
ANSWERED, RESET, CLOSED, GONE = "answered", "reset", "closed", "gone"
# How far the client's and the server's clocks may disagree on one request's time (perf_counter against
# the server's own clock, both rounded), in milliseconds.
CLOCK_SLACK_MS = 1.0
# The server's time includes its work after the last byte (closing the response, Django's request_finished
# closing database connections, the log line itself), which a busy machine stretches: on two cores saturated
# by password hashing, gunicorn's p50 of a 300 ms login came out 1.4 ms over the client's. So a percentile
# may be this share of the server's below it (and at least CLOCK_SLACK_MS); a clock started late or stopped
# early shows as far more.
AFTER_LAST_BYTE_SHARE = 0.02
# The p99s are compared over this many paired answers at least: below it the p99 is one of the last few
# answers, and one line the server logged late (by tens of milliseconds on a busy machine) would decide it.
P99_MIN_ANSWERS = 100
# How late the generator's event loop may read an answer that had arrived: libev runs the timers due before the
# sockets that are ready in the same turn, so a loop held up (a busy or starved generator) just before a
# request's deadline records a time-out for an answer already in its socket. A time-out disagrees with the
# server only when the server's log shows the answer out at least this long before the client's deadline.
LOOP_LAG_MS = 50.0
# At most this many examples of each kind of disagreement are listed.
EXAMPLES = 3
# Failure texts start with the exception class (perf.load.session.describe_error); these classes mean
# "no answer in time" and "the connection broke", and are judged against the server's outcome.
TIMEOUT_ERRORS = frozenset({"TimeoutError", "timeout", "socket.timeout"})
CONNECTION_ERRORS = frozenset({
    "ConnectionResetError", "ConnectionError", "ConnectionAbortedError", "BrokenPipeError", "RemoteDisconnected",
    "IncompleteRead", "StaleConnection", "ConnectionRefusedError",
})
_MONTHS = {name: number for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}
# gunicorn's %(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s %({x-perf-request}i)s, then the
# fault target's optional outcome. The quoted fields are matched loosely: they are not used, and gunicorn
# does not escape quotes a client put in its Referer or User-Agent.
_ACCESS_LINE = re.compile(
    r'^(?P<host>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d+|-) (?P<size>\d+|-) '
    r'".*" (?P<micros>\d+) (?P<id>\S+)(?: (?P<outcome>[a-z]+))?$'
)
_LOG_TIME = re.compile(r"^(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-]\d{4})$")
_REQUEST_FIELDS = 9


class LogError(ValueError):
    """A log that cannot be read: the message names the file and, for a bad line, its number."""


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """One line of the request log: a request as the statistics recorded it."""

    id: str
    sent_at: float
    method: str
    name: str
    path: str
    status: int
    elapsed_ms: float
    opened: int
    error: str
    line: int = 0

    @property
    def endpoint(self) -> tuple[str, str]:
        return self.method, self.name

    @property
    def cause(self) -> str:
        """The failure's kind: the exception class its text starts with, ``HTTPError``, or ``other``."""
        return error_class(self.error) if self.error else ""

    def describe(self) -> str:
        said = f"{self.status}" if self.status else "no answer"
        if self.error:
            said += f", {self.error[:80]}"
        return f"{self.id} {self.method} {self.name}: client {said} after {self.elapsed_ms:.1f} ms"


@dataclass(frozen=True, slots=True)
class ServerLine:
    """One line of the access log; ``logged_at`` is unix time in whole seconds (the log's resolution)."""

    id: str
    logged_at: float
    method: str
    path: str
    status: int
    duration_ms: float
    outcome: str
    line: int = 0

    def describe(self) -> str:
        status = str(self.status) if self.status else "no status"
        clock = datetime.fromtimestamp(self.logged_at).strftime("%H:%M:%S")
        return f"server {self.outcome} {status} in {self.duration_ms:.1f} ms, logged at {clock}"


def error_class(error: str) -> str:
    """``TimeoutError: timed out`` → ``TimeoutError``; ``HTTPError('503 …')`` → ``HTTPError``; a scenario's
    own text ("verify answered 400: …") → ``other``."""
    head = re.split(r"[:(]", error, maxsplit=1)[0].strip()
    return head if head.isidentifier() or head == "socket.timeout" else "other"


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open(encoding="utf-8", errors="strict", newline="\n") as handle:
            for number, line in enumerate(handle, start=1):
                line = line.rstrip("\n").rstrip("\r")
                if line.strip():
                    yield number, line
    except FileNotFoundError:
        raise LogError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LogError(f"{path}: is a folder, not a log") from None
    except UnicodeDecodeError as exc:
        raise LogError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise LogError(f"{path}: cannot be read ({exc.strerror})") from None


def parse_request_log(path: str | Path) -> list[ClientRecord]:
    """Every line of a request log (``perf.load.request_log``); LogError names the first bad line."""
    path = Path(path)
    records = []
    for number, line in _lines(path):
        fields = line.split("\t", _REQUEST_FIELDS - 1)
        if len(fields) != _REQUEST_FIELDS:
            raise LogError(f"{path}:{number}: {len(fields)} tab-separated fields, expected {_REQUEST_FIELDS} "
                           "(id, sent_at, method, name, path, status, elapsed_ms, opened, error)")
        request_id, sent_at, method, name, uri, status, elapsed, opened, error = fields
        try:
            record = ClientRecord(request_id, _finite(sent_at), method, name, uri, int(status), _finite(elapsed),
                                  int(opened), error, number)
        except ValueError:
            raise LogError(f"{path}:{number}: sent_at, status, elapsed_ms or opened is not a number") from None
        if not request_id or not method or record.opened not in (0, 1, 2) or record.status < 0:
            raise LogError(f"{path}:{number}: empty id or method, or opened not 0, 1 or 2")
        records.append(record)
    return records


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def parse_log_time(text: str) -> float:
    """``10/Oct/2026:13:55:36 +0200`` (Apache's, gunicorn's ``%(t)s``) → unix time; ValueError otherwise."""
    match = _LOG_TIME.match(text)
    if match is None or match.group(2) not in _MONTHS:
        raise ValueError(text)
    day, month, year, hour, minute, second, zone = match.groups()
    stamp = datetime.strptime(f"{year}-{_MONTHS[month]:02d}-{day} {hour}:{minute}:{second} {zone}",
                              "%Y-%m-%d %H:%M:%S %z")
    return stamp.timestamp()


def parse_access_log(path: str | Path) -> list[ServerLine]:
    """Every line of an access log in gunicorn.conf.py's format, with or without the outcome field."""
    path = Path(path)
    lines = []
    for number, text in _lines(path):
        match = _ACCESS_LINE.match(text)
        if match is None:
            raise LogError(f'{path}:{number}: not an access log line of the format in gunicorn.conf.py '
                           '(... "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s %({x-perf-request}i)s [outcome])')
        try:
            logged_at = parse_log_time(match["time"])
        except ValueError:
            raise LogError(f"{path}:{number}: the time [{match['time']}] is not like [10/Oct/2026:13:55:36 +0000]"
                           ) from None
        request = match["request"].split(" ")
        method, uri = (request[0], request[1]) if len(request) >= 2 else (match["request"], "")
        status = 0 if match["status"] == "-" else int(match["status"])
        lines.append(ServerLine(match["id"], logged_at, method, uri, status, int(match["micros"]) / 1000.0,
                                match["outcome"] or ANSWERED, number))
    return lines


@dataclass
class Check:
    """One verdict: what was checked, whether it held, the figures, and a few examples when it did not."""

    name: str
    ok: bool
    detail: str
    examples: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        head = f"{'ok  ' if self.ok else 'FAIL'}  {self.name}: {self.detail}"
        return [head, *(f"        {example}" for example in self.examples)]


@dataclass
class EndpointFigures:
    """One endpoint's side-by-side figures; percentiles over the requests both sides saw answered."""

    method: str
    name: str
    client: int = 0
    server: int = 0
    never_logged: int = 0
    cut_off: int = 0
    unrecorded: int = 0
    failures: int = 0
    agreed: int = 0
    retries: int = 0
    client_p50: float | None = None
    server_p50: float | None = None
    client_p99: float | None = None
    server_p99: float | None = None


@dataclass
class Reconciliation:
    """The verdicts, each endpoint's figures, and what was counted but left out of the pairing."""

    checks: list[Check]
    endpoints: list[EndpointFigures]
    notes: list[str]
    timeout: float
    clock_slack_ms: float = CLOCK_SLACK_MS

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def lines(self) -> list[str]:
        """The report: a verdict line, one line per check (with examples), the notes, then the endpoints."""
        failed = sum(not check.ok for check in self.checks)
        verdict = "every check holds" if not failed else f"{failed} of {len(self.checks)} checks failed"
        out = [f"Reconciliation with the server's access log: {verdict}"]
        for check in self.checks:
            out += check.lines()
        out += [f"note  {note}" for note in self.notes]
        if self.endpoints:
            out += ["", *self.table().splitlines()]
        return out

    def table(self) -> str:
        rows = [[e.method, e.name, e.client, e.server, e.never_logged, e.cut_off, e.retries,
                 f"{e.agreed}/{e.failures}", _ms_pair(e.client_p50, e.server_p50), _ms_pair(e.client_p99, e.server_p99)]
                for e in self.endpoints]
        headers = ["Type", "Name", "Client", "Server", "Unlogged", "Cut off", "Retried", "Agreed/failed",
                   "p50 client/server ms", "p99 client/server ms"]
        return tabulate(rows, headers=headers, disable_numparse=True, colalign=["left", "left"] + ["right"] * 8)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "timeout": self.timeout,
            "clock_slack_ms": self.clock_slack_ms,
            "checks": [asdict(check) for check in self.checks],
            "endpoints": [asdict(endpoint) for endpoint in self.endpoints],
            "notes": list(self.notes),
        }


def _ms_pair(client: float | None, server: float | None) -> str:
    if client is None or server is None:
        return "-"
    return f"{client:.1f} / {server:.1f}"


def nearest_rank(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (sorted): the smallest value with ``fraction`` at or below."""
    index = max(math.ceil(fraction * len(values)) - 1, 0)
    return values[min(index, len(values) - 1)]


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else plural or word + 's'}"


def _examples(items: Iterable[str]) -> list[str]:
    return list(items)[:EXAMPLES]


class _Pairing:
    """The two logs side by side: the client's records by id, the server's lines by id, each endpoint's figures."""

    def __init__(self, records: list[ClientRecord], lines: list[ServerLine]) -> None:
        self.http = [record for record in records if record.id != NO_ID]
        self.without_id = [record for record in records if record.id == NO_ID]
        self.by_id: dict[str, list[ClientRecord]] = defaultdict(list)
        for record in self.http:
            self.by_id[record.id].append(record)
        first_sent = min((record.sent_at for record in self.http), default=None)
        self.anonymous = [line for line in lines if line.id == NO_ID]
        # A line with an id logged in a second that ended before the run's first request was sent is an
        # earlier run's: it cannot be any request of this one.
        self.earlier = [line for line in lines if line.id != NO_ID and first_sent is not None
                        and line.logged_at + 1 < first_sent]
        self.lines_by_id: dict[str, list[ServerLine]] = defaultdict(list)
        for line in lines:
            if line.id != NO_ID and (first_sent is None or line.logged_at + 1 >= first_sent):
                self.lines_by_id[line.id].append(line)
        self.unrecorded = {request_id: found for request_id, found in self.lines_by_id.items()
                           if request_id not in self.by_id}
        # The name the client gave each URI, to place server lines the client never recorded.
        self._names = {(record.method, record.path): record.name for record in self.http}
        self.endpoints: dict[tuple[str, str], EndpointFigures] = {}

    def endpoint(self, key: tuple[str, str]) -> EndpointFigures:
        figures = self.endpoints.get(key)
        if figures is None:
            figures = self.endpoints[key] = EndpointFigures(*key)
        return figures

    def endpoint_of_unrecorded(self, line: ServerLine) -> tuple[str, str]:
        return line.method, self._names.get((line.method, line.path), line.path.split("?", 1)[0])

    def final_line(self, record: ClientRecord) -> ServerLine | None:
        """The server's line of the attempt the client's record describes: the last for its id.

        A resent request (``opened`` 2) with one unanswered line has only its first attempt logged (the
        server closed the kept-alive connection on it): the attempt the record describes never was.
        """
        found = self.lines_by_id.get(record.id)
        if not found or (record.opened == 2 and len(found) == 1 and found[0].outcome != ANSWERED):
            return None
        return found[-1]

    def sorted_endpoints(self) -> list[EndpointFigures]:
        return [self.endpoints[key] for key in sorted(self.endpoints, key=lambda key: (key[1], key[0]))]


def reconcile(request_log: Path, access_log: Path, *, timeout: float, summary: dict | None = None) -> Reconciliation:
    """Check a run's request log (and ``--json`` summary) against the server's access log.

    ``timeout`` is the run's request time-out in seconds (``LOCUST_REQUEST_TIMEOUT``): a client time-out
    agrees with the server when the server took at least that long, answered after the client's deadline,
    or never answered. Raises LogError for a file that cannot be read or parsed.
    """
    return reconcile_records(parse_request_log(request_log), parse_access_log(access_log), timeout=timeout,
                             summary=summary)


def reconcile_records(records: list[ClientRecord], lines: list[ServerLine], *, timeout: float,
                      summary: dict | None = None) -> Reconciliation:
    """``reconcile`` over logs already parsed."""
    pairing = _Pairing(records, lines)
    checks = [_check_counts(pairing)]
    if summary is not None:
        checks.append(_check_summary(records, summary))
    checks += [_check_causes(pairing, timeout), _check_latency(pairing), _check_twice(pairing)]
    return Reconciliation(checks, pairing.sorted_endpoints(), _notes(pairing), timeout)


def _check_counts(pairing: _Pairing) -> Check:
    """Client count = server count + the unanswered requests the server never logged, per endpoint."""
    missing: list[str] = []  # answered at the client, absent from the server's log
    never_cut = 0  # cut off at the end, and never logged by the server
    for request_id, records in pairing.by_id.items():
        record = records[-1]
        figures = pairing.endpoint(record.endpoint)
        figures.client += len(records)
        figures.cut_off += record.cause == CUT_OFF
        if request_id in pairing.lines_by_id:
            figures.server += 1
        elif record.status == 0 and record.error:
            figures.never_logged += 1
            never_cut += record.cause == CUT_OFF
        else:
            missing.append(f"{record.describe()}; the server never logged it")
    unrecorded: list[str] = []
    for found in pairing.unrecorded.values():
        line = found[-1]
        figures = pairing.endpoint(pairing.endpoint_of_unrecorded(line))
        figures.server += 1
        figures.unrecorded += 1
        unrecorded.append(f"{line.id} {line.method} {line.path}: {line.describe()}; the client never recorded it")
    client = len(pairing.http)
    server = sum(figures.server for figures in pairing.endpoints.values())
    never = sum(figures.never_logged for figures in pairing.endpoints.values())
    cut = sum(figures.cut_off for figures in pairing.endpoints.values())
    detail = (f"client {client:,} = server {server:,} + {never:,} never logged ({never_cut:,} cut off at the end, "
              f"{never - never_cut:,} without an answer) over {_plural(len(pairing.endpoints), 'endpoint')}; "
              f"{_plural(cut, 'request')} cut off at the end in all")
    ok = not missing and not unrecorded and client == server + never
    if not ok:
        detail = (f"client {client:,}, server {server:,}, {never:,} unanswered and never logged: "
                  f"{_plural(len(missing), 'answered request')} the server never logged, "
                  f"{_plural(len(unrecorded), 'server request')} the client never recorded")
        if client != len(pairing.by_id):
            detail += f", {client - len(pairing.by_id):,} recorded twice"
    return Check("requests per endpoint", ok, detail, _examples(missing) + _examples(unrecorded))


def _check_summary(records: list[ClientRecord], summary: dict) -> Check:
    """The summary's requests, failures and failure kinds per endpoint are exactly the request log's."""
    logged: Counter[tuple[str, str]] = Counter(record.endpoint for record in records)
    failed: Counter[tuple[str, str]] = Counter(record.endpoint for record in records if record.error)
    kinds: Counter[tuple[str, str, str]] = Counter((*record.endpoint, record.error) for record in records
                                                   if record.error)
    try:
        entries = [entry for entry in summary["entries"] if not entry.get("aggregated")]
        reported = {(entry["method"], entry["name"]): (entry["num_requests"], entry["num_failures"])
                    for entry in entries}
        reported_kinds = Counter({(failure["method"], failure["name"], clean(failure["error"])): failure["occurrences"]
                                  for failure in summary.get("failures", [])})
    except (KeyError, TypeError) as exc:
        return Check("summary = request log", False, f"the summary has no entries in --json's shape ({exc!r})")
    differences = []
    for key in sorted(set(reported) | set(logged), key=lambda key: (key[1], key[0])):
        requests, failures = reported.get(key, (0, 0))
        if (requests, failures) != (logged[key], failed[key]):
            differences.append(f"{key[0]} {key[1]}: summary {requests:,} requests, {failures:,} failed; "
                               f"request log {logged[key]:,}, {failed[key]:,}")
    for kind in sorted(set(reported_kinds) | set(kinds)):
        if reported_kinds[kind] != kinds[kind]:
            differences.append(f"{kind[0]} {kind[1]} {kind[2][:80]!r}: summary {reported_kinds[kind]:,}, "
                               f"request log {kinds[kind]:,}")
    total = sum(requests for requests, _ in reported.values())
    detail = (f"{total:,} requests and {sum(kinds.values()):,} failures in {_plural(len(reported), 'endpoint')}, "
              "the same per endpoint and per failure kind")
    if differences:
        detail = (f"summary {total:,} requests, request log {len(records):,}: "
                  f"{_plural(len(differences), 'difference')}")
    return Check("summary = request log", not differences, detail, _examples(differences))


def _judge(record: ClientRecord, line: ServerLine | None, timeout: float) -> tuple[str, str] | None:
    """(kind, why) when the server's log disagrees with the client's record of one request; None when it agrees."""
    if record.status > 0:  # an answer came: the server must have logged it, whole, with this status
        if line is None:
            return "answered, never logged", "answered, but the server never logged it"
        if line.outcome != ANSWERED:
            return f"answered, server {line.outcome}", f"answered, but the {line.describe()}"
        if line.status != record.status:
            return "another status", f"answered {record.status}, but the {line.describe()}"
        return None
    cause = record.cause
    if cause in TIMEOUT_ERRORS and record.elapsed_ms < timeout * 1000.0 - CLOCK_SLACK_MS:
        return "timed out early", f"timed out before its {timeout:g} s time-out"
    if line is None:
        return None  # no answer, and the server logged none: nothing reached it, or it never finished
    if cause in TIMEOUT_ERRORS or cause == CUT_OFF:
        gave_up = record.sent_at + (timeout if cause in TIMEOUT_ERRORS else record.elapsed_ms / 1000.0)
        # The server answered no sooner than it took (D), and within the second it logged in: either may show
        # that the answer came (nearly) when the client gave up; the second alone shows when the request sat
        # queued. Only an answer out LOOP_LAG_MS before the deadline proves the client wrong.
        lag = LOOP_LAG_MS / 1000.0
        took_long = line.duration_ms >= (gave_up - record.sent_at - lag) * 1000.0
        if took_long or line.logged_at + 1 > gave_up - lag:
            return None
        return "answered in time", (f"gave up, but the {line.describe()}, at least {LOOP_LAG_MS:g} ms before the "
                                    "client's deadline")
    if cause in CONNECTION_ERRORS:
        if line.outcome in (RESET, CLOSED):
            return None
        return f"server {line.outcome}", f"lost the connection, but the {line.describe()}"
    return f"server {line.outcome}", f"got no answer ({cause}), but the {line.describe()}"


def _check_causes(pairing: _Pairing, timeout: float) -> Check:
    """Each failure's cause, and each success, as the server's log tells it."""
    disagreements: dict[str, list[str]] = defaultdict(list)
    causes: Counter[str] = Counter()
    for records in pairing.by_id.values():
        record = records[-1]
        figures = pairing.endpoint(record.endpoint)
        verdict = _judge(record, pairing.final_line(record), timeout)
        if record.error:
            figures.failures += 1
            causes[record.cause] += 1
            figures.agreed += verdict is None
        if verdict is not None:
            kind, why = verdict
            disagreements[f"{record.cause or 'success'}, {kind}"].append(f"{record.describe()}; {why}")
    failures = sum(causes.values())
    by_cause = ", ".join(f"{count:,} {cause}" for cause, count in causes.most_common()) or "none"
    unpaired = sum(1 for record in pairing.without_id if record.error)
    if not disagreements:
        detail = (f"the server agrees with all {failures:,} failures ({by_cause}) and every success (time-out "
                  f"{timeout:g} s, generator lag {LOOP_LAG_MS:g} ms; the access log's time has whole seconds)")
        if unpaired:
            detail += f"; {_plural(unpaired, 'failure')} of entries without an id not judged"
        return Check("failure causes", True, detail)
    count = sum(len(found) for found in disagreements.values())
    kinds = "; ".join(f"{len(found):,} {kind}" for kind, found in sorted(disagreements.items()))
    examples = [example for found in disagreements.values() for example in _examples(found)]
    return Check("failure causes", False, f"{_plural(count, 'disagreement')} ({kinds}) among {failures:,} failures "
                 f"({by_cause})", examples)


def _check_latency(pairing: _Pairing) -> Check:
    """p50 and p99 of the client's times ≥ those of the server's, per endpoint, over the paired answers."""
    pairs: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for records in pairing.by_id.values():
        record = records[-1]
        line = pairing.final_line(record)
        if record.status > 0 and line is not None and line.outcome == ANSWERED:
            pairs[record.endpoint].append((record.elapsed_ms, line.duration_ms))
    below = []
    lower_pairs = 0
    for key, found in pairs.items():
        figures = pairing.endpoint(key)
        client = sorted(elapsed for elapsed, _ in found)
        server = sorted(duration for _, duration in found)
        lower_pairs += sum(elapsed < duration - CLOCK_SLACK_MS for elapsed, duration in found)
        for label, fraction in (("p50", 0.5), ("p99", 0.99)):
            mine, theirs = nearest_rank(client, fraction), nearest_rank(server, fraction)
            setattr(figures, f"client_{label}", mine)
            setattr(figures, f"server_{label}", theirs)
            if label == "p99" and len(found) < P99_MIN_ANSWERS:
                continue
            slack = max(CLOCK_SLACK_MS, AFTER_LAST_BYTE_SHARE * theirs)
            if mine < theirs - slack:
                below.append(f"{key[0]} {key[1]}: client {label} {mine:.1f} ms < server {label} {theirs:.1f} ms "
                             f"over {len(found):,} requests")
    paired = sum(len(found) for found in pairs.values())
    detail = (f"client ≥ server at p50 and p99 on {_plural(len(pairs), 'endpoint')} ({paired:,} paired answers, "
              f"within {AFTER_LAST_BYTE_SHARE:.0%} or a clock slack of {CLOCK_SLACK_MS:g} ms; p99s compared from "
              f"{P99_MIN_ANSWERS} answers up)")
    if lower_pairs:
        detail += (f"; {lower_pairs:,} single answers timed lower at the client than at the server (the server's "
                   "time may include work after its last byte)")
    if below:
        detail = f"{_plural(len(below), 'percentile')} of the client below the server's ({paired:,} paired answers, " \
                 f"clock slack {CLOCK_SLACK_MS:g} ms)"
    return Check("client latency ≥ server time", not below, detail, _examples(below))


def _check_twice(pairing: _Pairing) -> Check:
    """No request counted twice by the client; none twice by the server unless the client resent it."""
    twice_client = [f"{request_id}: {len(records)} lines in the request log ({records[0].method} {records[0].name})"
                    for request_id, records in pairing.by_id.items() if len(records) > 1]
    twice_server = []
    retries = 0
    for request_id, found in pairing.lines_by_id.items():
        records = pairing.by_id.get(request_id)
        if records is not None:
            pairing.endpoint(records[-1].endpoint).retries += records[-1].opened == 2
        if len(found) == 1:
            continue
        reopened = records is not None and records[-1].opened == 2
        if reopened and len(found) == 2 and found[0].outcome != ANSWERED:
            retries += 1
            continue
        why = "the first attempt was answered too" if reopened else "the client sent it once"
        twice_server.append(f"{request_id} {found[0].method} {found[0].path}: logged {len(found)} times "
                            f"({', '.join(line.outcome for line in found)}); {why}")
    reopened_total = sum(records[-1].opened == 2 for records in pairing.by_id.values())
    ok = not twice_client and not twice_server
    detail = (f"no id twice in the request log; {_plural(reopened_total, 'request')} resent on a new connection "
              f"(stale keep-alive), {retries:,} of them logged twice by the server as retries")
    if not ok:
        detail = (f"{len(twice_client):,} ids twice in the request log, {len(twice_server):,} logged more than once "
                  "by the server without a retry to explain it")
    return Check("nothing counted twice", ok, detail, _examples(twice_client) + _examples(twice_server))


def _notes(pairing: _Pairing) -> list[str]:
    """What took no part in the pairing, counted so nothing goes unmentioned."""
    notes = []
    if pairing.without_id:
        kinds = Counter(record.endpoint for record in pairing.without_id)
        listed = ", ".join(f"{count:,} {method} {name}" for (method, name), count in sorted(kinds.items()))
        notes.append(f"{_plural(len(pairing.without_id), 'recorded entry', 'recorded entries')} without an id (no "
                     "HTTP request to the "
                     f"target), left out of the pairing: {listed}")
    if pairing.anonymous:
        paths = Counter(f"{line.method} {line.path}" for line in pairing.anonymous)
        listed = ", ".join(f"{count:,} {path}" for path, count in paths.most_common(EXAMPLES))
        notes.append(f"{_plural(len(pairing.anonymous), 'server line')} without an id (not the run's traffic), "
                     f"ignored: {listed}")
    if pairing.earlier:
        notes.append(f"{_plural(len(pairing.earlier), 'server line')} logged before the run's first request, ignored")
    return notes


def load_summary(path: str | Path) -> dict:
    """A run's ``--json`` summary; LogError when it is missing or not JSON."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LogError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LogError(f"{path}: cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise LogError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise LogError(f"{path}: not a run_perf --json summary (no entries list)")
    return data
