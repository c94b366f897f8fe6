"""The run's own output on its admin page: the tail of the log file a run started from the admin writes.

A run started from the "New run" page writes everything it prints to ``log_path_for(launch_id)`` (here, beside
the one reader of that file; ``perf.web.launch`` writes it).
The page shows the end of that file and its live view sends it again every 2 s, as for the figures. Only the
last ``TAIL_BYTES`` are ever read (a long run's log can be large, and the page polls it), and the path comes
from the run's own ``launch_id`` as stored, never from the request; one that is not the hex id ``perf.web.launch``
makes is not looked up at all. A run started from a terminal has no such file: the page says where its output went.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from perf.conf import perf_settings
from perf.models import PerfRun

# What the page shows at most: the last 64 KiB, about 600 progress lines.
TAIL_BYTES = 64 * 1024
LAUNCH_ID = re.compile(r"[0-9a-f]{32}")
# A terminal's control sequences (clear the line, colours): nothing a page can show.
TERMINAL_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def log_path_for(launch_id: str) -> Path:
    """Where a run started from the admin writes its output (``PERF_LAUNCH_LOG_DIR``, else ``var/runs``): found
    again from the run's ``launch_id`` alone, so its page can show it."""
    return perf_settings.PERF_LAUNCH_LOG_DIR / f"run-{launch_id}.log"


@dataclass(frozen=True)
class RunLog:
    """``text`` is the tail to show ("" when there is none); ``note`` says why there is none, or that it is cut."""

    text: str
    note: str
    cut: bool = False


def read_tail(path: Path, limit: int = TAIL_BYTES) -> tuple[str, bool]:
    """The last ``limit`` bytes of ``path`` as text, from the first whole line; and whether the start was cut."""
    with path.open("rb") as log:
        size = log.seek(0, 2)
        start = max(size - limit, 0)
        log.seek(start)
        data = log.read(limit)
    if start and b"\n" in data:
        data = data.partition(b"\n")[2]  # the first line is a part of one (unless it is the only one)
    text = TERMINAL_CONTROL.sub("", data.decode("utf-8", errors="replace"))
    # A terminal's progress line rewrites itself with a carriage return: keep what it last said.
    lines = [line.rsplit("\r", 1)[-1] for line in text.split("\n")]
    return "\n".join(lines).rstrip("\n"), bool(start)


def run_log(run: PerfRun) -> RunLog:
    """What the run page's "Output" section shows for ``run``."""
    if not run.launch_id:
        return RunLog("", "This run was started from a terminal (run_perf): its output went there.")
    if not LAUNCH_ID.fullmatch(run.launch_id):
        return RunLog("", "This run's output was not written where this page can read it.")
    path = log_path_for(run.launch_id)
    try:
        text, cut = read_tail(path)
    except FileNotFoundError:
        return RunLog("", "No output here: the run was started on another machine (a Celery worker), or its "
                          "log file has been removed.")
    except OSError as exc:
        return RunLog("", f"The output cannot be read: {exc.strerror or exc}.")
    if not text:
        return RunLog("", "Nothing printed yet.")
    note = f"The last {TAIL_BYTES // 1024} KiB of the output." if cut else ""
    return RunLog(text, note, cut)
