"""A Mailpit stand-in: a real SMTP server that keeps every message in memory, and the part of
Mailpit's HTTP API v1 that perfkit's client (platform_pack/clients/mailpit.py) and its tests call.

Why it exists: there is no Docker engine on the machines that run the test suite and the native
stack demo (scripts/stack_demo.py), and Mailpit is a Go binary no package registry here ships. So
the registration scenario's Mailpit path is exercised against this catcher instead: the backend
sends over SMTP exactly as it would to Mailpit, and the load test reads the same JSON shapes back.
docker-compose-test.yaml runs the real Mailpit.

    python scripts/mail_catcher.py --smtp-port 1025 --http-port 8025

Both servers bind 127.0.0.1 only. The newest ``--max-messages`` messages are kept (older ones are
dropped first). The API, with Mailpit's field names and order (newest first):

- ``GET /api/v1/messages?start=&limit=`` and ``GET /api/v1/search?query=&start=&limit=``:
  ``{"total", "unread", "count", "messages_count", "messages_unread", "start", "tags", "messages": [summary]}``;
  the query understands ``to:``, ``from:``, ``cc:``, ``bcc:``, ``subject:``, ``message-id:``, ``is:read``,
  ``is:unread``, quoted phrases and plain words, each negated by a leading ``-`` or ``!``, as
  case-insensitive substrings (Mailpit's LIKE).
- ``GET /api/v1/message/ID`` (or ``latest``): the whole message, ``Text`` and ``HTML`` decoded; marks it read.
- ``GET /api/v1/message/ID/raw``: the source as received.
- ``DELETE /api/v1/messages`` (body ``{"IDs": [...]}``, or none for all) and ``DELETE /api/v1/search?query=``.
- ``GET /api/v1/info``, and the probes ``GET /livez`` and ``GET /readyz``.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import email.utils
import json
import re
import secrets
import shlex
import signal
import socket
import string
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

HOST = "127.0.0.1"
DEFAULT_MAX_MESSAGES = 10_000
DEFAULT_LIMIT = 50  # Mailpit's page size when ``limit`` is not given
SNIPPET_LENGTH = 250
_ID_ALPHABET = string.ascii_letters + string.digits


def new_id() -> str:
    """A 22-character base62 id, the shape of Mailpit's database ids."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(22))


def rfc3339(moment: datetime) -> str:
    """Go's JSON form of a UTC time (RFC 3339 with fractional seconds), as Mailpit writes it."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _address(name: str, address: str) -> dict[str, str]:
    return {"Name": name, "Address": address}


def _addresses(message: EmailMessage, header: str) -> list[dict[str, str]]:
    return [_address(name, address) for name, address in email.utils.getaddresses(message.get_all(header, []))
            if address]


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset or a broken transfer encoding
        content = part.get_payload(decode=True).decode("utf-8", "replace")
    return content.replace("\r\n", "\n")  # SMTP's line ends; Mailpit returns plain newlines


@dataclass
class StoredMessage:
    """One received message, parsed once on arrival into what the API returns."""

    id: str
    raw: bytes
    created: datetime
    message_id: str
    sender: dict[str, str]
    to: list[dict[str, str]]
    cc: list[dict[str, str]]
    bcc: list[dict[str, str]]
    reply_to: list[dict[str, str]]
    return_path: str
    subject: str
    date: datetime
    text: str
    html: str
    attachments: int
    read: bool = False
    _search_text: str = field(default="", repr=False)

    @classmethod
    def parse(cls, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> StoredMessage:
        """Parse ``raw`` as received over SMTP; envelope recipients missing from To and Cc are Bcc, as in Mailpit."""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        now = datetime.now(UTC)
        senders = _addresses(message, "From")
        to, cc = _addresses(message, "To"), _addresses(message, "Cc")
        listed = {entry["Address"].lower() for entry in to + cc}
        bcc = [_address("", rcpt) for rcpt in rcpt_tos if rcpt.lower() not in listed]
        try:
            date = email.utils.parsedate_to_datetime(message["Date"]) if message["Date"] else now
        except (TypeError, ValueError):
            date = now
        text, html = _body(message, "plain"), _body(message, "html")
        stored = cls(
            id=new_id(), raw=raw, created=now, message_id=str(message.get("Message-ID", "")).strip("<> "),
            sender=senders[0] if senders else _address("", mail_from), to=to, cc=cc, bcc=bcc,
            reply_to=_addresses(message, "Reply-To"), return_path=mail_from, subject=str(message.get("Subject", "")),
            date=date, text=text, html=html, attachments=sum(1 for _ in message.iter_attachments()),
        )
        addresses = map(_flat, [[stored.sender], to, cc, bcc])
        stored._search_text = " ".join([stored.subject, text, html, *addresses]).lower()
        return stored

    def snippet(self) -> str:
        return " ".join((self.text or re.sub(r"<[^>]+>", " ", self.html)).split())[:SNIPPET_LENGTH]

    def summary(self) -> dict[str, Any]:
        """Mailpit's ``MessageSummary``."""
        return {
            "ID": self.id, "MessageID": self.message_id, "Read": self.read, "From": self.sender, "To": self.to,
            "Cc": self.cc, "Bcc": self.bcc, "ReplyTo": self.reply_to, "Subject": self.subject,
            "Created": rfc3339(self.created), "Username": "", "Tags": [], "Size": len(self.raw),
            "Attachments": self.attachments, "Snippet": self.snippet(),
        }

    def detail(self) -> dict[str, Any]:
        """Mailpit's ``Message``."""
        return {
            "ID": self.id, "MessageID": self.message_id, "From": self.sender, "To": self.to, "Cc": self.cc,
            "Bcc": self.bcc, "ReplyTo": self.reply_to, "ReturnPath": self.return_path, "Subject": self.subject,
            "ListUnsubscribe": {"Header": "", "Links": [], "Errors": "", "HeaderPost": ""},
            "Date": rfc3339(self.date), "Tags": [], "Username": "", "Text": self.text, "HTML": self.html,
            "Size": len(self.raw), "Inline": [], "Attachments": [],
        }


def _flat(addresses: list[dict[str, str]]) -> str:
    return " ".join(f"{entry['Name']} <{entry['Address']}>" for entry in addresses)


_FIELDS = {
    "to:": lambda m: _flat(m.to), "from:": lambda m: _flat([m.sender]), "cc:": lambda m: _flat(m.cc),
    "bcc:": lambda m: _flat(m.bcc), "subject:": lambda m: m.subject, "message-id:": lambda m: m.message_id,
}


def _term_matches(message: StoredMessage, term: str) -> bool | None:
    """Whether ``message`` matches one search term; None for a term that filters nothing (Mailpit skips those)."""
    lowered = term.lower()
    if lowered == "is:read":
        return message.read
    if lowered == "is:unread":
        return not message.read
    for prefix, value in _FIELDS.items():
        if lowered.startswith(prefix):
            wanted = lowered[len(prefix):].strip()
            return None if not wanted else wanted in value(message).lower()
    return lowered in message._search_text


def matches(message: StoredMessage, query: str) -> bool:
    """Every term of a Mailpit search query holds for ``message``."""
    try:
        terms = shlex.split(query)
    except ValueError:  # an unbalanced quote: Mailpit then takes the words as they are
        terms = query.split()
    for term in terms:
        negate = len(term) > 1 and term[0] in "-!"
        term = term[1:] if negate else term
        if not re.search(r"[A-Za-z0-9]", term):
            continue
        hit = _term_matches(message, term)
        if hit is not None and hit == negate:
            return False
    return True


class Mailbox:
    """The newest ``capacity`` messages, safe to use from the SMTP loop and the HTTP threads at once."""

    def __init__(self, capacity: int = DEFAULT_MAX_MESSAGES) -> None:
        if capacity < 1:
            raise ValueError("the mailbox must hold at least one message")
        self.capacity = capacity
        self._messages: OrderedDict[str, StoredMessage] = OrderedDict()  # oldest first
        self._lock = threading.Lock()
        self.received = 0  # ever, including the ones dropped to stay within capacity

    def add(self, message: StoredMessage) -> None:
        with self._lock:
            self._messages[message.id] = message
            self.received += 1
            while len(self._messages) > self.capacity:
                self._messages.popitem(last=False)

    def newest_first(self, query: str = "") -> list[StoredMessage]:
        with self._lock:
            messages = list(reversed(self._messages.values()))
        return [message for message in messages if matches(message, query)] if query else messages

    def get(self, message_id: str, mark_read: bool = True) -> StoredMessage | None:
        with self._lock:
            if message_id == "latest":
                message = next(reversed(self._messages.values()), None)
            else:
                message = self._messages.get(message_id)
            if message is not None and mark_read:
                message.read = True
            return message

    def delete(self, ids: list[str] | None = None) -> int:
        """Delete these messages, or all of them when ``ids`` is None; returns how many went."""
        with self._lock:
            if ids is None:
                count = len(self._messages)
                self._messages.clear()
                return count
            return sum(self._messages.pop(message_id, None) is not None for message_id in ids)

    def counts(self) -> tuple[int, int]:
        """(total, unread)."""
        with self._lock:
            return len(self._messages), sum(not message.read for message in self._messages.values())


def page(mailbox: Mailbox, found: list[StoredMessage], start: int, limit: int) -> dict[str, Any]:
    """Mailpit's ``MessagesSummary`` for one page of ``found``."""
    total, unread = mailbox.counts()
    shown = found[start:start + limit]
    return {
        "total": total, "unread": unread, "count": len(shown), "messages_count": len(found),
        "messages_unread": sum(not message.read for message in found), "start": start, "tags": [],
        "messages": [message.summary() for message in shown],
    }


class SmtpHandler:
    """aiosmtpd's handler: store whatever arrives (any sender, any recipient, as Mailpit does)."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        raw = envelope.original_content or envelope.content
        self.mailbox.add(StoredMessage.parse(raw, envelope.mail_from or "", list(envelope.rcpt_tos)))
        return "250 2.0.0 Ok: queued"


class ApiHandler(BaseHTTPRequestHandler):
    """Mailpit's API v1 subset over HTTP/1.1 with keep-alive (the load test's client reuses connections)."""

    protocol_version = "HTTP/1.1"
    server_version = "mail-catcher"
    mailbox: Mailbox  # set on a subclass per server
    verbose = False

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        if self.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, payload: Any) -> None:
        self._send(HTTPStatus.OK, json.dumps(payload).encode(), "application/json")

    def _text(self, status: int, text: str) -> None:
        self._send(status, text.encode(), "text/plain; charset=utf-8")

    def _query(self) -> dict[str, str]:
        return {key: values[-1] for key, values in parse_qs(urlsplit(self.path).query).items()}

    def _paging(self, query: dict[str, str]) -> tuple[int, int]:
        def number(name: str, default: int) -> int:
            try:
                return max(0, int(query.get(name, default)))
            except ValueError:
                return default

        return number("start", 0), number("limit", DEFAULT_LIMIT) or DEFAULT_LIMIT

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path, query = unquote(urlsplit(self.path).path), self._query()
        if path in ("/livez", "/readyz"):
            self._text(HTTPStatus.OK, "ok")
        elif path == "/api/v1/info":
            total, unread = self.mailbox.counts()
            self._json({"Version": "mail-catcher (Mailpit API v1 subset)", "Messages": total, "Unread": unread,
                        "Tags": {}})
        elif path == "/api/v1/messages":
            self._json(page(self.mailbox, self.mailbox.newest_first(), *self._paging(query)))
        elif path == "/api/v1/search":
            search = query.get("query", "").strip()
            if not search:
                self._text(HTTPStatus.BAD_REQUEST, "Error: no search query")
                return
            self._json(page(self.mailbox, self.mailbox.newest_first(search), *self._paging(query)))
        elif match := re.fullmatch(r"/api/v1/message/([^/]+)(/raw)?", path):
            message = self.mailbox.get(match.group(1), mark_read=not match.group(2))
            if message is None:
                self._text(HTTPStatus.NOT_FOUND, "Message not found")
            elif match.group(2):
                self._send(HTTPStatus.OK, message.raw, "text/plain; charset=utf-8")
            else:
                self._json(message.detail())
        else:
            self._text(HTTPStatus.NOT_FOUND, "404 page not found")

    def do_DELETE(self) -> None:  # noqa: N802 (http.server's name)
        path, body = unquote(urlsplit(self.path).path), self._read_body()
        if path == "/api/v1/messages":
            try:
                ids = json.loads(body).get("IDs") if body.strip() else None
            except (ValueError, AttributeError):
                ids = None  # Mailpit deletes everything when the body says nothing usable
            self.mailbox.delete(list(ids) if ids else None)
            self._text(HTTPStatus.OK, "ok")
        elif path == "/api/v1/search":
            search = self._query().get("query", "").strip()
            if not search:
                self._text(HTTPStatus.BAD_REQUEST, "Error: no search query")
                return
            self.mailbox.delete([message.id for message in self.mailbox.newest_first(search)])
            self._text(HTTPStatus.OK, "ok")
        else:
            self._text(HTTPStatus.NOT_FOUND, "404 page not found")


class MailCatcher:
    """Both servers around one mailbox; ``start()`` returns once both accept connections."""

    def __init__(self, smtp_port: int, http_port: int, max_messages: int = DEFAULT_MAX_MESSAGES,
                 verbose: bool = False) -> None:
        self.smtp_port = smtp_port
        self.http_port = http_port
        self.mailbox = Mailbox(max_messages)
        self.verbose = verbose
        self._smtp: Any = None
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        handler_class = type("BoundApiHandler", (ApiHandler,), {"mailbox": self.mailbox, "verbose": self.verbose})
        _check_free(self.smtp_port)  # aiosmtpd would only say so after its whole ready time-out
        self._http = ThreadingHTTPServer((HOST, self.http_port), handler_class)
        self._http.daemon_threads = True
        self._smtp = Controller(SmtpHandler(self.mailbox), hostname=HOST, port=self.smtp_port,
                                server_hostname="mail-catcher", ready_timeout=10)
        try:
            self._smtp.start()
        except BaseException:
            self._http.server_close()
            raise
        self._http_thread = threading.Thread(target=self._http.serve_forever, name="mail-catcher-http", daemon=True)
        self._http_thread.start()

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._smtp is not None:
            self._smtp.stop()
            self._smtp = None

    def __enter__(self) -> MailCatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _check_free(port: int) -> None:
    """Raise OSError (EADDRINUSE) now if ``port`` cannot be bound on HOST, as asyncio would bind it."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((HOST, port))


def _port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1-65535, got {port}")
    return port


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="A Mailpit stand-in: SMTP and Mailpit's API v1 subset on 127.0.0.1, messages in memory.",
        allow_abbrev=False)
    parser.add_argument("--smtp-port", type=_port, default=1025, help="SMTP port (default 1025, as Mailpit)")
    parser.add_argument("--http-port", type=_port, default=8025, help="API port (default 8025, as Mailpit)")
    parser.add_argument("--max-messages", type=_positive, default=DEFAULT_MAX_MESSAGES,
                        help=f"keep at most this many, dropping the oldest (default {DEFAULT_MAX_MESSAGES})")
    parser.add_argument("--verbose", action="store_true", help="log every API request to stderr")
    args = parser.parse_args(argv)

    catcher = MailCatcher(args.smtp_port, args.http_port, args.max_messages, args.verbose)
    try:
        catcher.start()
    except OSError as exc:
        print(f"mail catcher: cannot listen on {HOST} (SMTP {args.smtp_port}, HTTP {args.http_port}): "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # aiosmtpd reports a port in use as its own error after its ready check
        print(f"mail catcher: SMTP server did not start on {HOST}:{args.smtp_port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print(f"mail catcher: SMTP on {HOST}:{args.smtp_port}, Mailpit API v1 on {catcher.api_url} "
          f"(keeping the newest {args.max_messages} messages)", flush=True)
    while not stop.wait(0.5):
        pass
    catcher.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
