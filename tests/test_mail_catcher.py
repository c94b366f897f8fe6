"""The Mailpit stand-in (scripts/mail_catcher.py): real SMTP in, Mailpit's API v1 shapes out.

Messages go in over a real SMTP connection (smtplib, and Django's own SMTP backend for the email the
backend sends) and are read back over HTTP, by requests and by perf's Mailpit client, the way a load
run reads them. The catcher runs in this process for most tests, and as the command a user runs for
the tests of its command line.
"""

import re
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
import requests

from platform_pack.clients.mailpit import MailpitClient
from scripts.mail_catcher import MailCatcher
from tests.liveserver import ROOT, free_port

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJ0eXBlIjoiZW1haWxfdmVyaWZpY2F0aW9uIn0.c2lnbmF0dXJl"


@pytest.fixture
def catcher() -> Iterator[MailCatcher]:
    with MailCatcher(free_port(), free_port(), max_messages=50) as running:
        yield running


def send(catcher: MailCatcher, to: str, subject: str = "Verify your email", text: str = "hello\n",
         html: str | None = None, envelope_to: list[str] | None = None) -> None:
    message = EmailMessage()
    message["From"] = "Perfkit <noreply@perfkit.local>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    with smtplib.SMTP("127.0.0.1", catcher.smtp_port, timeout=10) as smtp:
        smtp.send_message(message, to_addrs=envelope_to or [to])


def get(catcher: MailCatcher, path: str, **params: str) -> requests.Response:
    return requests.get(f"{catcher.api_url}{path}", params=params, timeout=10)


def test_search_by_recipient_answers_in_mailpits_shape_newest_first(catcher):
    send(catcher, "alice@test.com", subject="first")
    send(catcher, "bob@test.com", subject="other")
    send(catcher, "alice@test.com", subject="second")

    answer = get(catcher, "/api/v1/search", query="to:alice@test.com")

    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json"
    body = answer.json()
    assert {key: body[key] for key in ("total", "unread", "count", "messages_count", "start")} == {
        "total": 3, "unread": 3, "count": 2, "messages_count": 2, "start": 0}
    assert [message["Subject"] for message in body["messages"]] == ["second", "first"]
    summary = body["messages"][0]
    assert re.fullmatch(r"[A-Za-z0-9]{22}", summary["ID"])
    assert summary["From"] == {"Name": "Perfkit", "Address": "noreply@perfkit.local"}
    assert summary["To"] == [{"Name": "", "Address": "alice@test.com"}]
    assert summary["Read"] is False and summary["Snippet"] == "hello"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", summary["Created"])
    assert {"MessageID", "Cc", "Bcc", "ReplyTo", "Tags", "Size", "Attachments"} <= set(summary)


def test_a_message_has_its_text_and_html_decoded_and_is_marked_read(catcher):
    send(catcher, "carol@test.com", text="Open http://x/login/confirm-email?token=abc\n",
         html="<p><a href=\"http://x/login/confirm-email?token=abc\">Verify</a></p>\n")
    [summary] = get(catcher, "/api/v1/search", query="to:carol@test.com").json()["messages"]

    detail = get(catcher, f"/api/v1/message/{summary['ID']}").json()

    assert detail["Text"] == "Open http://x/login/confirm-email?token=abc\n"  # plain newlines, not SMTP's CRLF
    assert detail["HTML"] == "<p><a href=\"http://x/login/confirm-email?token=abc\">Verify</a></p>\n"
    assert detail["ID"] == summary["ID"] and detail["Subject"] == "Verify your email"
    assert detail["ReturnPath"] == "noreply@perfkit.local"
    assert get(catcher, "/api/v1/messages").json()["unread"] == 0
    assert get(catcher, "/api/v1/message/latest").json()["ID"] == summary["ID"]
    raw = get(catcher, f"/api/v1/message/{summary['ID']}/raw")
    assert raw.status_code == 200 and "Subject: Verify your email" in raw.text


def test_envelope_recipients_missing_from_the_headers_are_bcc(catcher):
    send(catcher, "dave@test.com", envelope_to=["dave@test.com", "hidden@test.com"])

    [message] = get(catcher, "/api/v1/search", query="bcc:hidden@test.com").json()["messages"]

    assert message["Bcc"] == [{"Name": "", "Address": "hidden@test.com"}]
    assert get(catcher, "/api/v1/search", query="to:hidden@test.com").json()["messages_count"] == 0


def test_search_terms_combine_negate_quote_and_ignore_case(catcher):
    send(catcher, "erin@test.com", subject="Verify your email", text="welcome aboard\n")
    send(catcher, "erin@test.com", subject="Your receipt", text="thanks for the ticket\n")

    def subjects(query: str) -> list[str]:
        return [message["Subject"] for message in get(catcher, "/api/v1/search", query=query).json()["messages"]]

    assert subjects("to:ERIN@test.com subject:verify") == ["Verify your email"]
    assert subjects("to:erin@test.com -subject:verify") == ["Your receipt"]
    assert subjects('"for the ticket"') == ["Your receipt"]
    assert subjects("!aboard to:erin") == ["Your receipt"]
    assert subjects("is:unread to:erin") == ["Your receipt", "Verify your email"]
    assert get(catcher, "/api/v1/search", query="  ").status_code == 400


def test_paging_follows_start_and_limit(catcher):
    for index in range(5):
        send(catcher, "frank@test.com", subject=f"m{index}")

    body = get(catcher, "/api/v1/search", query="to:frank", start="1", limit="2").json()

    assert [message["Subject"] for message in body["messages"]] == ["m3", "m2"]
    assert (body["start"], body["count"], body["messages_count"]) == (1, 2, 5)


def test_delete_by_ids_by_search_and_all(catcher):
    for address in ("g1@test.com", "g2@test.com", "g3@test.com"):
        send(catcher, address)
    listed = get(catcher, "/api/v1/messages").json()["messages"]
    ids = {message["To"][0]["Address"]: message["ID"] for message in listed}

    assert requests.delete(f"{catcher.api_url}/api/v1/messages", json={"IDs": [ids["g1@test.com"]]},
                           timeout=10).text == "ok"
    assert get(catcher, f"/api/v1/message/{ids['g1@test.com']}").status_code == 404
    requests.delete(f"{catcher.api_url}/api/v1/search", params={"query": "to:g2@test.com"}, timeout=10)
    assert [m["To"][0]["Address"] for m in get(catcher, "/api/v1/messages").json()["messages"]] == ["g3@test.com"]
    requests.delete(f"{catcher.api_url}/api/v1/messages", timeout=10)
    assert get(catcher, "/api/v1/messages").json()["total"] == 0


def test_the_oldest_messages_go_first_beyond_the_cap():
    with MailCatcher(free_port(), free_port(), max_messages=2) as small:
        for index in range(3):
            send(small, "h@test.com", subject=f"m{index}")
        body = get(small, "/api/v1/messages").json()

    assert [message["Subject"] for message in body["messages"]] == ["m2", "m1"]
    assert body["total"] == 2 and small.mailbox.received == 3


def test_probes_answer_and_unknown_paths_are_404(catcher):
    assert get(catcher, "/livez").status_code == 200
    assert get(catcher, "/readyz").status_code == 200
    assert get(catcher, "/api/v1/info").json()["Messages"] == 0
    assert get(catcher, "/api/v1/message/nope").status_code == 404
    assert get(catcher, "/api/v2/anything").status_code == 404


def test_both_servers_listen_on_loopback_only(catcher):
    for port in (catcher.smtp_port, catcher.http_port):
        assert _listening_addresses(port) == {"127.0.0.1"}


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port``, from the kernel's own table."""
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                packed = bytes.fromhex(address)
                # /proc writes each 32-bit word in host (little-endian) order.
                words = b"".join(packed[i:i + 4][::-1] for i in range(0, len(packed), 4))
                found.add(socket.inet_ntop(family, words))
    return found


def test_perfs_mailpit_client_finds_the_token_in_a_verification_email(catcher):
    send(catcher, "ivy@test.com", subject="Welcome", text="no link here\n")
    send(catcher, "ivy@test.com", text=f"Open http://x/login/confirm-email?token={TOKEN}\n",
         html=f'<a href="http://x/login/confirm-email?token={TOKEN}">Verify</a>')
    client = MailpitClient(catcher.api_url)

    assert client.find_verification_token("ivy@test.com") == TOKEN
    assert client.find_verification_token("nobody@test.com") is None
    waited = client.wait_for_verification_token("nobody@test.com", timeout=0.3, interval=0.1)
    assert (waited.token, waited.error) == (None, None)  # answered, only late: a time-out, not an error


def test_the_backends_own_email_over_djangos_smtp_backend_yields_its_token(catcher, settings):
    """backend.emails renders and sends through Django's SMTP backend, as in the stacks; the client
    reads the token back out of what the catcher parsed."""
    from backend.emails import send_verification_email

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", catcher.smtp_port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""

    send_verification_email("judy@test.com", TOKEN)

    assert MailpitClient(catcher.api_url).wait_for_verification_token("judy@test.com", 2, 0.1).token == TOKEN


# --- The command ----------------------------------------------------------------------------------


def start_command(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "scripts" / "mail_catcher.py"), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_command_serves_until_sigterm_and_says_where():
    smtp_port, http_port = free_port(), free_port()
    process = start_command("--smtp-port", str(smtp_port), "--http-port", str(http_port), "--max-messages", "7")
    try:
        line = process.stdout.readline()
        assert line.strip() == (f"mail catcher: SMTP on 127.0.0.1:{smtp_port}, Mailpit API v1 on "
                                f"http://127.0.0.1:{http_port} (keeping the newest 7 messages)")
        assert requests.get(f"http://127.0.0.1:{http_port}/readyz", timeout=5).status_code == 200
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
            smtp.sendmail("a@test.com", ["kim@test.com"], b"Subject: hi\r\nTo: kim@test.com\r\n\r\nbody\r\n")
        assert requests.get(f"http://127.0.0.1:{http_port}/api/v1/messages", timeout=5).json()["total"] == 1
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert err == ""


def test_a_port_in_use_is_one_line_and_exit_1():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        process = start_command("--smtp-port", str(taken.getsockname()[1]), "--http-port", str(free_port()))
        out, err = process.communicate(timeout=30)

    assert process.returncode == 1
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("mail catcher: cannot listen on 127.0.0.1") and "in use" in err


def test_bad_options_are_refused_before_listening():
    process = start_command("--max-messages", "0")
    _, err = process.communicate(timeout=30)

    assert process.returncode == 2 and "--max-messages: must be at least 1" in err


def test_it_stops_promptly():
    started = time.monotonic()
    with MailCatcher(free_port(), free_port()):
        pass
    assert time.monotonic() - started < 5
