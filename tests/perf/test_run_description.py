"""A run's own files and the admin's downloads of the same stored run say the same thing (issue 19).

``run_perf --html/--json`` describe a run from what the process knows at its end; the admin's downloads
describe it from the stored row. Both go through one ``RunDescription``, so for a completed run, an
aborted one (SIGTERM mid-run) and one whose threshold fails, the JSON summaries are equal and the HTML
reports are equal, but for what may legitimately differ:

* the HTML footer's "Written by perfkit at ...": each file says when it was rendered;
* in the JSON, moments the database keeps to the microsecond while the process has them to the
  nanosecond (a sample's ``timestamp``, an entry's or a failure's first and last request times): the same
  moment, compared to the millisecond. Durations are not touched: the stored run keeps the very float the
  process measured;
* the summary's ``start_time``: the process's registry starts when the command builds it, the stored
  run's when its row is written, a few milliseconds later (the row keeps no other start): within a second.
"""

import json
import re
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from perf import exit_codes
from perf.models import PerfRun
from tests.adminclient import AdminClient
from tests.liveserver import start_run_perf
from tests.perf.test_run_control import superuser, wait_until_running

pytestmark = pytest.mark.slow

# Keys holding epoch seconds that the database stores to the microsecond.
MOMENTS = {"timestamp", "first_request_at", "last_request_at", "first_seen", "last_seen", "started_at",
           "finished_at", "heartbeat_at"}
FOOTER = re.compile(r"<footer>Written by perfkit at [^<]*</footer>")


def _args(url: str, label: str, tmp_path: Path, duration: str, *extra: str) -> tuple[str, ...]:
    return ("--users", "3", "--spawn-rate", "10", "--duration", duration, "--wait", "0.05,0.2",
            "--scenario", "EventBrowser", "--host", url, "--label", label, "--seed", "3",
            "--json", str(tmp_path / "run.json"), "--html", str(tmp_path / "run.html"), *extra)


def _normalised(value: Any, key: str = "") -> Any:
    """The JSON with every moment rounded to the millisecond (see the module's docstring)."""
    if isinstance(value, dict):
        return {name: _normalised(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [_normalised(item, key) for item in value]
    if key in MOMENTS and isinstance(value, float):
        return round(value, 3)
    return value


def _html(text: str) -> str:
    return FOOTER.sub("<footer/>", text)


@pytest.fixture
def admin(seeded, live_server_process) -> AdminClient:
    return AdminClient(live_server_process.root).login(*superuser())


def _finish(process, stop: bool, label: str) -> tuple[int, str]:
    try:
        if stop:
            wait_until_running(label)
            process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
        process.wait()
    return process.returncode, stdout[-3000:] + stderr[-3000:]


@pytest.mark.parametrize(
    ("case", "duration", "extra", "status", "code"),
    [
        ("completed", "3s", (), PerfRun.Status.COMPLETED, exit_codes.OK),
        ("aborted", "60s", (), PerfRun.Status.ABORTED, exit_codes.for_signal(signal.SIGTERM)),
        ("threshold", "3s", ("--threshold", "rps>100000"), PerfRun.Status.COMPLETED, exit_codes.THRESHOLD),
    ],
)
def test_the_runs_own_files_and_the_admins_downloads_agree(
    seeded, live_server_process, orm, admin: AdminClient, tmp_path: Path, case, duration, extra, status, code
):
    label = f"describe-{case}-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    process = start_run_perf(seeded, *_args(live_server_process.url, label, tmp_path, duration, *extra))
    returncode, output = _finish(process, case == "aborted", label)

    assert returncode == code, output
    assert time.monotonic() - started < 60, "the aborted run was not cut short"
    run = PerfRun.objects.get(label=label)
    assert run.status == status and run.total_requests > 0
    own_json = json.loads((tmp_path / "run.json").read_text())
    own_html = (tmp_path / "run.html").read_text()
    downloaded_json = admin.get(f"/admin/perf/perfrun/{run.pk}/download/json/")
    downloaded_html = admin.get(f"/admin/perf/perfrun/{run.pk}/download/html/")
    assert downloaded_json.status_code == downloaded_html.status_code == 200

    stored_json = downloaded_json.json()
    assert abs(own_json.pop("start_time") - stored_json.pop("start_time")) < 1.0
    assert _normalised(own_json) == _normalised(stored_json)
    assert _html(own_html) == _html(downloaded_html.text)
    # What the old --html lacked and the download had: the run's id, and how it ended.
    meta = own_json["meta"]
    assert meta["run_id"] == run.pk and meta["status"] == status and f"Run {run.pk}: {label}" in own_html
    if case == "aborted":
        assert meta["stop_reason"] == "interrupted by SIGTERM" and "Stopped early: interrupted by SIGTERM" in own_html
    else:
        assert meta["stop_reason"] == "" and "Stopped early" not in own_html
    if case == "threshold":
        assert [(item["expression"], item["ok"]) for item in meta["thresholds"]] == [("rps>100000", False)]
        assert "perf-fail\">FAIL" in own_html
    assert meta["audit"]["ok"] is True and meta["options"]["label"] == label
