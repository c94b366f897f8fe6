"""A run's own files and the admin's downloads of the same stored run say the same thing (issue 19).

``run_perf --html/--json`` describe a run from what the process knows at its end; the admin's downloads
describe it from the stored row. Both go through one ``RunDescription``, so for a completed run, an
aborted one (SIGTERM mid-run), one whose threshold fails and one whose runner broke (stored ``failed``, its
files written all the same), the JSON summaries are equal and the HTML reports are equal, but for what may
legitimately differ:

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

from perf.cli import exit_codes
from perf.models import PerfRun
from perf.reports.description import (
    AuditCheckResult,
    AuditResult,
    ComparisonResult,
    OpenModelResult,
    RunDescription,
    ShardResult,
    ThresholdResult,
)
from perf.store.persist import start_run
from tests.adminclient import AdminClient
from tests.liveserver import manage, start_run_perf
from tests.perf import capacity_builders as cb
from tests.perf.builders import settings_module, superuser, wait_until_running

# Keys holding epoch seconds that the database stores to the microsecond.
MOMENTS = {"timestamp", "first_request_at", "last_request_at", "first_seen", "last_seen", "started_at",
           "finished_at", "heartbeat_at"}
FOOTER = re.compile(r"<footer>Written by perfkit at [^<]*</footer>")


USERS = ("--users", "3", "--spawn-rate", "10")
# A project's shape whose code fails 3 s into the run (tests/perf/shapes_pack.py): its runner breaks mid-run.
BREAKS = ("--shape", "breaks:users=3,after=3s")


def _args(url: str, label: str, tmp_path: Path, duration: str, *extra: str) -> tuple[str, ...]:
    """``extra`` starts with the load: ``USERS`` or a shape."""
    return ("--duration", duration, "--wait", "0.05,0.2",
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


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "duration", "extra", "status", "code"),
    [
        ("completed", "3s", USERS, PerfRun.Status.COMPLETED, exit_codes.OK),
        ("aborted", "60s", USERS, PerfRun.Status.ABORTED, exit_codes.for_signal(signal.SIGTERM)),
        ("threshold", "3s", (*USERS, "--threshold", "rps>100000"), PerfRun.Status.COMPLETED, exit_codes.THRESHOLD),
        # A crash is an error of the process: Python's exit code 1 and its traceback.
        ("failed", "30s", BREAKS, PerfRun.Status.FAILED, 1),
    ],
)
def test_the_runs_own_files_and_the_admins_downloads_agree(
    seeded, live_server_process, orm, admin: AdminClient, tmp_path: Path, case, duration, extra, status, code
):
    label = f"describe-{case}-{uuid.uuid4().hex[:8]}"
    env = {**seeded, **settings_module(tmp_path, PERF_SHAPES={"breaks": "tests.perf.shapes_pack.Breaks"})}
    started = time.monotonic()
    process = start_run_perf(env, *_args(live_server_process.url, label, tmp_path, duration, *extra))
    returncode, output = _finish(process, case == "aborted", label)

    assert returncode == code, output
    assert time.monotonic() - started < 60, "the aborted or failed run was not cut short"
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
    if case == "failed":
        assert "RuntimeError: the shape broke 3 s in" in output
        assert meta["error"] == run.error == "RuntimeError('the shape broke 3 s in')"
        assert "Failed: RuntimeError(&#x27;the shape broke 3 s in&#x27;)" in own_html
    else:
        assert meta["error"] == ""
    if case == "threshold":
        assert [(item["expression"], item["ok"]) for item in meta["thresholds"]] == [("rps>100000", False)]
        assert "perf-fail\">FAIL" in own_html
    # A broken run is not audited: what its users did was cut short by the crash, not by a plan.
    assert (meta["audit"] is None) if case == "failed" else (meta["audit"]["ok"] is True)
    assert meta["options"]["label"] == label


# ---------------------------------------------------------------------------------------------- the JSON form

FULL = RunDescription(
    run_id=7, label="nightly", host="http://127.0.0.1:8000/api", status="aborted", users=4, spawn_rate=2.0,
    planned_duration=60.0, scenarios=("EventBrowser",), user_split={"EventBrowser": 4}, seed=3, wait="0.1,0.5",
    started_at=1.5, finished_at=9.25, heartbeat_at=9.0, git_revision="abc1234", database_vendor="sqlite",
    cpu_warning=True, max_cpu_percent=97.5, stop_reason="interrupted by SIGTERM", stop_requested_by="ann",
    thresholds=(ThresholdResult("p95<500ms", None, None, "p95", "<", 500.0, "ms", 312.0, True, "p95<500ms: 312 ms"),),
    audit=AuditResult(False, (AuditCheckResult("tier_sales", False, "tier 9: 3 ≠ 2"),)),
    open_model=OpenModelResult(rate=5.0, scheduled_iterations=10, started_iterations=8, dropped_iterations=2,
                               dropped_by_scenario={"EventBrowser": 2}),
    comparison=ComparisonResult(3, "base", 10.0, True, ("GET /events/ p95 +20%",), ()),
    options={"users": 4, "label": "nightly"}, shards=(ShardResult(0, "done", "w1", 4, 120, 40.0, 9.0, ""),),
)


def test_the_json_form_reads_back_as_the_same_description() -> None:
    assert RunDescription.from_json(json.loads(json.dumps(FULL.as_json()))) == FULL
    assert RunDescription.from_json({}) == RunDescription()


def test_a_summary_written_before_the_description_is_read_with_its_unsaved_row_and_fields() -> None:
    """The old layout: ``unsaved`` an object naming the row and the three fields the final save could not store;
    a label given as null."""
    old = {"label": None, "host": "http://h/api", "users": 3, "status": "aborted", "scenarios": ["EventBrowser"],
           "user_split": {"EventBrowser": 3}, "seed": None, "audit": None, "open_model": None,
           "thresholds": [{"expression": "rps>5", "limit": 5, "actual": 2, "ok": False, "unit": "rps"}],
           "unsaved": {"run_id": 12, "fields": {"cpu_warning": True, "max_cpu_percent": 95.0,
                                                "stop_reason": "interrupted by SIGINT"}}}
    read = RunDescription.from_json(old)
    assert (read.run_id, read.unsaved, read.label, read.cpu_warning, read.max_cpu_percent, read.stop_reason) == (
        12, True, "", True, 95.0, "interrupted by SIGINT")
    assert read.thresholds == (ThresholdResult(expression="rps>5", limit=5.0, actual=2.0, unit="rps"),)


@pytest.mark.parametrize(("meta", "message"), [
    ({"users": "three"}, "meta.users is 'three', not int"),
    ({"cpu_warning": 1}, "meta.cpu_warning is 1, not bool"),
    ({"thresholds": [{"ok": "yes"}]}, "meta.thresholds[0].ok is 'yes', not bool"),
    ({"scenarios": "EventBrowser"}, "meta.scenarios is 'EventBrowser', not list"),
    ([], "meta is [], not an object"),
    # The stored layouts the reports read (typed, leniently) are checked where a summary comes in.
    ({"stages": [{"name": "stage 1", "requests": "many"}]}, "meta.stages[0].requests is 'many', not int or float"),
    ({"stages": [{"thresholds": [{"ok": "yes"}]}]}, "meta.stages[0].thresholds[0].ok is 'yes', not bool"),
    ({"capacity": {"steps": [{"load": 10, "p95": "slow"}]}}, "meta.capacity.steps[0].p95 is 'slow', not int or float"),
    ({"capacity": {"usl": {"shown": "yes"}}}, "meta.capacity.usl.shown is 'yes', not bool"),
    ({"noise": {"verdicts": [3]}}, "meta.noise.verdicts[0] is 3, not an object"),
])
def test_a_meta_of_the_wrong_shape_is_one_line_naming_the_key(meta: Any, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        RunDescription.from_json(meta)
    assert str(raised.value) == message


def test_the_reports_read_the_stored_layouts_typed_and_a_row_edited_by_hand_as_missing_figures() -> None:
    """``stage_results``, ``capacity_result`` and ``noise_result``: what the reports read, never the JSON; a value
    that is not what the run stores reads as missing (the page shows a dash and opens), an item that is not an
    object is left out."""
    search = cb.found_search()
    run = RunDescription(
        kind="capacity", capacity=search,
        stages=({"index": 1, "name": "stage 2 (4 → 4)", "requests": 30, "p95": "slow",
                 "thresholds": [{"expression": "p95<100ms", "ok": True}, {"ok": "yes"}, 7]},),
        noise={"plan": "nightly", "fail_on_regression": False, "verdicts": [
            {"endpoint": "GET /x/", "metric": "p95", "verdict": "regressed", "value": 640.0, "history": 5}, 3]})
    (stage,) = run.stage_results
    assert (stage.index, stage.name, stage.requests, stage.p95) == (1, "stage 2 (4 → 4)", 30, None)
    assert [verdict.expression for verdict in stage.thresholds] == ["p95<100ms"]
    found = run.capacity_result
    assert found is not None and (found.status, found.unit, len(found.steps)) == ("found", "users", 8)
    assert (found.capacity.load, found.first_failing.load) == (47, 50)
    assert found.usl.shown and found.usl.lam == 10.0 and found.broke_first.breakdown.queue_ms == 467.0
    assert found.steps[4].verdicts[0].line == search["steps"][4]["verdicts"][0]["line"]
    noise = run.noise_result
    assert noise is not None and not noise.fail_on_regression and len(noise.verdicts) == 1
    assert (noise.verdicts[0].verdict, noise.verdicts[0].value, noise.verdicts[0].history) == ("regressed", 640.0, 5)
    # The JSON itself goes to the files whole, keys the reports never read included.
    assert run.as_json()["capacity"] == search and "endpoints" in run.as_json()["capacity"]["steps"][0]
    assert RunDescription(kind="capacity", capacity={"steps": "many"}).capacity_result.steps == ()


@pytest.mark.slow
def test_perf_import_finishes_the_row_an_old_layout_summary_names(live_env, orm, tmp_path: Path) -> None:
    label = f"old-layout-{uuid.uuid4().hex[:8]}"
    run = start_run(label=label, host="http://127.0.0.1:1/api", users=2)
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({
        "meta": {"label": label, "host": "http://127.0.0.1:1/api", "users": 2, "status": "aborted",
                 "unsaved": {"run_id": run.pk, "fields": {"cpu_warning": True, "max_cpu_percent": 96.0,
                                                          "stop_reason": "interrupted by SIGINT"}}},
        "duration": 1.5, "start_time": time.time(), "entries": []}))
    result = manage("perf_import", str(path), env=live_env, check=False)

    assert result.returncode == 0, result.stderr
    run.refresh_from_db()
    assert (run.status, run.actual_duration, run.cpu_warning, run.stop_reason) == (
        "aborted", 1.5, True, "interrupted by SIGINT")


@pytest.mark.slow
@pytest.mark.once
def test_perf_import_refuses_a_meta_of_the_wrong_shape_in_one_line(live_env, tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"meta": {"users": "two", "status": "completed"}, "duration": 1.0,
                                "start_time": 0.0, "entries": []}))
    result = manage("perf_import", str(path), env=live_env, check=False)
    assert result.returncode == 2 and result.stdout == "", result.stderr
    assert result.stderr.strip().splitlines() == [f"CommandError: {path}: meta.users is 'two', not int"]
