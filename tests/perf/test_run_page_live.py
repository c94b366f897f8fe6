"""A real ``run_perf`` process watched through the admin: the live view while it runs, then its ``--html``
file beside the report the admin makes of the stored run.

Everything is real: the command runs as a child process against the live gunicorn, the admin is
spoken to over HTTP as a browser without JavaScript would (tests/adminclient.py), and the page's
sections come from what the running process writes every 2 s.
"""

import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from perf.models import PerfRun, StatsSample
from platform_pack.clients import api as names
from tests.adminclient import AdminClient
from tests.factories import PASSWORD, make_user
from tests.liveserver import ROOT


def section_ids(html: str) -> list[str]:
    root = ET.fromstring(html.split("\n", 1)[1])
    return [section.get("id") for section in root.iter("section")]


@pytest.mark.slow
def test_a_running_run_is_watched_live_then_its_html_file_matches_the_admins(
    seeded, live_server_process, orm, tmp_path: Path
) -> None:
    email = f"watcher-{uuid.uuid4().hex[:8]}@example.com"
    make_user(username=email, email=email, is_staff=True, is_superuser=True)
    admin = AdminClient(live_server_process.root).login(email, PASSWORD)
    label, html_path = f"live-{uuid.uuid4().hex[:8]}", tmp_path / "report.html"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "run_perf", "--users", "3", "--spawn-rate", "3", "--duration", "8s",
         "--wait", "0.1,0.3", "--scenario", "EventBrowser", "--host", live_server_process.url, "--label", label,
         "--no-audit", "--html", str(html_path)],
        cwd=ROOT, env=seeded, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline, run = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            run = PerfRun.objects.filter(label=label).first()
            if run and run.status == PerfRun.Status.RUNNING and StatsSample.objects.filter(run=run).count() >= 2:
                break
            time.sleep(0.25)
        assert run is not None, "the run never appeared"
        live = admin.get(f"/admin/perf/perfrun/{run.pk}/live/")
        assert live.status_code == 200 and live.headers["Content-Type"] == "application/json"
        data = live.json()
        assert data["status"] == "running"
        assert "Now" in data["sections"]["figures"] and "of 8.0s" in data["sections"]["figures"]
        assert "Current RPS" in data["sections"]["endpoints"] and names.EVENT_LIST in data["sections"]["endpoints"]
        page = admin.get(f"/admin/perf/perfrun/{run.pk}/change/").text
        assert 'data-perf-status="running"' in page and "/static/perf/run_page.js" in page
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0, stderr[-2000:]

    finished = admin.get(f"/admin/perf/perfrun/{run.pk}/live/").json()
    assert finished["status"] == "completed" and "Now" not in finished["sections"]["figures"]
    written = html_path.read_text(encoding="utf-8")
    downloaded = admin.get(f"/admin/perf/perfrun/{run.pk}/download/html/").text
    # One set of templates: the file run_perf wrote and the one the admin makes have the same sections.
    assert section_ids(written) == section_ids(downloaded)
    assert names.EVENT_LIST in written and names.EVENT_LIST in downloaded
