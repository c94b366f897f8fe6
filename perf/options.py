"""Parsing and checking single values of ``run_perf``'s options: each bad value gets one line naming the fix.

``perf.cli.invocation`` checks a whole request with these, in one pass.
"""

import ipaddress
import re
import socket
from math import isfinite
from urllib.parse import urlsplit

from django.http.request import validate_host

from perf.load.profile import Stage

# Longer than any soak test, and short enough that deadlines never overflow a timer.
MAX_DURATION = 30 * 24 * 3600.0
# Shorter than this, a time is below what the event loop's timers keep: a typo (1e-300), not a wish.
MIN_SECONDS = 0.001
# Users started or iterations begun per second: beyond this, everything starts at once anyway.
MAX_RATE = 100_000.0
_DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+(?:\.\d+)?)s?)?$")
# Control characters and white space have no place in a URL; a CR or LF would start a header line of its own.
_NOT_IN_URL = re.compile(r"[\x00-\x20\x7f]")


def escaped(text: str) -> str:
    """``text`` as typed, save what a terminal or a log would not show as it is: a control character (a CR or LF
    would end the one-line error and start a forged line, or a header of its own) and every other character that
    is not printable are written as Python escapes them (``\\r``, ``\\n``, ``\\x1b``); a byte that was not UTF-8
    (it reaches Python as a lone surrogate) as that byte (``\\xff``). Every usage error that echoes user text
    unquoted (a path, a tag list, a shape's ``KEY=VALUE``, argparse's own lines) passes it through here; one that
    quotes it whole uses ``{text!r}``, which escapes the same characters."""
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def _escape(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # how surrogateescape carries an undecodable byte
        return f"\\x{code - 0xDC00:02x}"
    return repr(char)[1:-1]


def parse_duration(text: str) -> float:
    """Seconds in ``text``: ``90``, ``90s``, ``5m``, ``1h30m``, ``1h2m3s`` (as Locust's --run-time)."""
    value = text.strip().lower()
    match = _DURATION.match(value)
    if not value or not match or not any(match.groupdict().values()):
        raise ValueError(f"bad duration {text!r}: use seconds or units like 90, 90s, 5m, 1h30m")
    seconds = int(match["h"] or 0) * 3600 + int(match["m"] or 0) * 60 + float(match["s"] or 0)
    if seconds < MIN_SECONDS:
        raise ValueError(f"duration must be at least 1 ms, got {text!r}: use seconds or units like 90, 90s, 5m, 1h30m")
    if seconds > MAX_DURATION:
        raise ValueError(f"duration {text!r} is longer than the most allowed, 30 days (720h)")
    return seconds


def parse_unit_duration(text: str, where: str) -> float:
    """Seconds in a duration that must carry its unit (``30s``, ``2m``, ``1h30m``), as a profile's do: there, ``30``
    alone is more likely a forgotten unit than seconds. The message starts with ``where``."""
    if not text or text[-1].lower() not in "hms":
        raise ValueError(f"{where}: the duration needs a unit, like 30s, 2m or 1h30m")
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def parse_stages(text: str, option: str = "--stages", whole: bool = True, most: float | None = None
                 ) -> tuple[Stage, ...]:
    """``30s:50,2m:50,30s:0`` → one ``Stage`` per DURATION:TARGET (k6's stages). Every duration has a unit
    (``30`` alone is more likely a forgotten unit than seconds); targets are whole users (``whole``) or a rate,
    never negative and at most ``most``; the stages together last at most the longest run."""
    items = [item.strip() for item in text.split(",")] if text.strip() else []
    if not items:
        raise ValueError(f"{option} needs at least one stage, like {option} 30s:50,2m:50,30s:0")
    stages = []
    for number, item in enumerate(items, start=1):
        duration_text, colon, target_text = item.partition(":")
        where = f"{option} stage {number} ({item!r})"
        if not colon or not duration_text.strip() or not target_text.strip():
            raise ValueError(f"{where} must be DURATION:TARGET, like 30s:50")
        duration = parse_unit_duration(duration_text.strip().lower(), where)
        try:
            target = float(target_text)
        except ValueError:
            target = float("nan")
        kind = "a whole number of users" if whole else "a rate a second"
        if not isfinite(target) or target < 0 or (whole and target != int(target)):
            raise ValueError(f"{where}: the target must be {kind}, 0 or more")
        if most is not None and target > most:
            raise ValueError(f"{where}: the target {target:g} is more than the most allowed, {most:,g}")
        stages.append(Stage(duration, float(target)))
    total = sum(stage.duration for stage in stages)
    if total > MAX_DURATION:
        raise ValueError(f"{option} lasts {total:,.0f} s in all, longer than the longest run, 30 days")
    if not any(stage.target > 0 for stage in stages):
        raise ValueError(f"{option} never asks for any load: every target is 0")
    return tuple(stages)


def parse_wait(text: str) -> tuple[float, float]:
    """``MIN,MAX`` think time in seconds."""
    parts = text.split(",")
    try:
        low, high = (float(part) for part in parts)
    except ValueError:
        low = high = float("nan")
    if not (isfinite(low) and isfinite(high)):
        raise ValueError(f"bad --wait {text!r}: use MIN,MAX in seconds, e.g. --wait 0.1,0.5")
    if low < 0 or high < 0:
        raise ValueError(f"--wait values must not be negative, got {text!r}")
    if low > high:
        raise ValueError(f"--wait minimum {low:g} is greater than maximum {high:g}: use MIN,MAX")
    check_seconds("--wait", low)
    check_seconds("--wait", high)
    return low, high


def check_seconds(option: str, seconds: float, zero: bool = True) -> float:
    """``seconds`` unless it is absurd: not finite, negative, below a millisecond (other than ``zero``) or
    longer than the longest run."""
    if not isfinite(seconds) or seconds < 0 or (seconds == 0 and not zero) or 0 < seconds < MIN_SECONDS:
        raise ValueError(f"{option} must be {'0 or ' if zero else ''}at least 0.001 seconds, got {seconds:g}")
    if seconds > MAX_DURATION:
        raise ValueError(f"{option} {seconds:g} s is longer than the longest run, 30 days ({MAX_DURATION:.0f} s)")
    return seconds


def check_rate(option: str, per_second: float) -> float:
    """A rate (users or iterations a second) unless it is absurd: not finite, not positive, so slow that one
    would take longer than the longest run, or beyond MAX_RATE."""
    if not (isfinite(per_second) and per_second > 0):
        raise ValueError(f"{option} must be a finite number greater than 0, got {per_second:g}")
    if 1 / per_second > MAX_DURATION:
        raise ValueError(f"{option} {per_second:g} a second is one every {1 / per_second:.3g} s, longer than the "
                         "longest run (30 days)")
    if per_second > MAX_RATE:
        raise ValueError(f"{option} must be at most {MAX_RATE:,.0f} a second, got {per_second:g}")
    return per_second


def is_loopback_host(url: str) -> bool:
    """True when every address the URL's host resolves to is a loopback address."""
    host = urlsplit(url).hostname
    if not host:
        return False
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    addresses = {str(info[4][0]).split("%")[0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(address).is_loopback for address in addresses)


def allowed_remote_host(url: str, allowed: list[str]) -> bool:
    """True when the URL's host name matches one of ``allowed`` (``PERF_ALLOWED_HOSTS``), with Django's own
    rules for ALLOWED_HOSTS: an exact name, or ``.example.com`` for it and its subdomains."""
    host = urlsplit(url).hostname
    return host is not None and validate_host(host, allowed)


def check_base_url(url: str) -> str:
    """The API root without a trailing slash; a URL with credentials is refused without echoing them, and
    one with a control character or a space (``\\r\\n`` would inject a header into every request) is refused
    with them escaped, so the error stays one line."""
    if _NOT_IN_URL.search(url):
        raise ValueError(f"bad --host {url!r}: it holds a control character or a space (escaped here); "
                         "give a plain URL like http://localhost:8000/api")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port out of range raises here)
    except ValueError:
        parts = None
    if parts is not None and (parts.username is not None or parts.password is not None):
        raise ValueError("--host must not contain credentials (user:password@): they would be stored and "
                         "shown with the run; give the bare URL, e.g. http://localhost:8000/api")
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"bad --host {url!r}: use a URL like http://localhost:8000/api")
    return url.rstrip("/")


def site_root(api_url: str) -> str:
    """``http://host:port`` of an API URL such as ``http://host:port/api``."""
    parts = urlsplit(api_url)
    return f"{parts.scheme}://{parts.netloc}"


def parse_percent(text: str) -> float:
    """``10%`` or ``10`` → 10.0: the tolerance of ``--fail-on-regression``."""
    raw = text.strip()
    number = raw[:-1].strip() if raw.endswith("%") else raw
    try:
        value = float(number)
    except ValueError:
        value = float("nan")
    if not isfinite(value) or value < 0:
        raise ValueError(f"bad percent {text!r}: use a number of percent like 10 or 10%")
    return value
