"""``--threshold`` rules: parsing, evaluation over a real StatsRegistry, and the command's exit codes.

The unit tests fill a registry through ``record`` as the HTTP session does; the last three run
``run_perf`` as a child process against the live server, as a CI job would.
"""

import time
import uuid

import pytest

from perf.load.stats import StatsRegistry
from perf.load.thresholds import Verdict, evaluate, parse_threshold
from perf.models import PerfRun
from tests.liveserver import run_perf
from tests.perf.builders import browse_args

MY_STATUS = "/events/{id}/my-status [BOTTLENECK]"


def registry(*requests: tuple[str, str, float, str | None]) -> StatsRegistry:
    """A registry holding (method, name, response ms, error) requests, recorded as the session records them."""
    stats = StatsRegistry()
    for method, name, response_time, error in requests:
        stats.record(method, name, response_time, 100, error)
    return stats


def verdict_of(expression: str, stats: StatsRegistry, duration: float = 10.0) -> Verdict:
    (verdict,) = evaluate([parse_threshold(expression)], stats, duration)
    return verdict


# ------------------------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("expression", "limit"),
    [("p95<500ms", 500.0), ("p99<1s", 1000.0), ("avg<200", 200.0), ("p95 < 1.5 s", 1500.0), ("MAX<=2S", 2000.0)],
)
def test_time_limits_are_milliseconds_whatever_the_unit(expression: str, limit: float):
    assert parse_threshold(expression).limit == limit


@pytest.mark.parametrize(
    ("expression", "metric", "fraction"),
    [("med<1", "p50", 0.5), ("median<1", "p50", 0.5), ("p66<1", "p66", 0.66), ("p99.9<1", "p99.9", 0.999),
     ("p99.99<1", "p99.99", 0.9999), ("p100<1", "p100", 1.0)],
)
def test_percentile_names_map_to_their_fraction(expression: str, metric: str, fraction: float):
    threshold = parse_threshold(expression)

    assert (threshold.metric, threshold.percentile) == (metric, fraction)


def test_error_rate_takes_percent_with_or_without_the_sign():
    assert parse_threshold("error_rate<1%").limit == parse_threshold("error_rate<1").limit == 1.0


def test_scope_may_name_the_method_and_be_quoted():
    plain = parse_threshold(f"{MY_STATUS}:p95<300ms")
    with_method = parse_threshold('"GET /events/ [list]":p95<300ms')

    assert (plain.endpoint, plain.method) == (MY_STATUS, None)
    assert (with_method.endpoint, with_method.method) == ("/events/ [list]", "GET")


def test_scope_splits_at_the_last_colon_before_the_metric():
    threshold = parse_threshold("/a:b:rps>=2")

    assert (threshold.endpoint, threshold.metric, threshold.operator, threshold.limit) == ("/a:b", "rps", ">=", 2.0)


@pytest.mark.parametrize(
    ("expression", "problem"),
    [("p95<<3", "p95 needs a time"), ("p95=3", "no comparison found"), ("latency<3", "unknown metric 'latency'"),
     ("p0<3", "unknown metric 'p0'"), ("rps>5ms", "rps needs a number per second"),
     ("error_rate<1s", "error_rate needs a percentage"), (":p95<3", "empty endpoint"), ("", "no comparison")],
)
def test_bad_expression_is_a_one_line_error_showing_the_accepted_forms(expression: str, problem: str):
    with pytest.raises(ValueError) as caught:
        parse_threshold(expression)

    message = str(caught.value)
    assert "\n" not in message
    assert problem in message
    assert "[ENDPOINT:]METRIC OP VALUE, e.g. p95<500ms" in message


@pytest.mark.parametrize(
    ("expression", "why"),
    [("error_rate<200%", "a rate is at most 100%"), ("error_rate<=100", "a rate is at most 100%"),
     ("/events/ [list]:error_rate<100.5%", "a rate is at most 100%"), ("rps>=0", "no figure is below 0"),
     ("p95>=0ms", "no figure is below 0"), ("failures>=0", "no figure is below 0")],
)
def test_a_rule_that_can_never_fail_is_refused(expression: str, why: str):
    """Issue 18: ``error_rate<200%`` was taken silently, and a release gate that cannot fail passes anything."""
    with pytest.raises(ValueError, match=f"it can never fail \\({why}\\)"):
        parse_threshold(expression)


@pytest.mark.parametrize("expression", ["error_rate<100%", "error_rate<=99.9%", "rps>=0.5", "requests>0"])
def test_rules_at_the_edge_that_can_fail_are_kept(expression: str):
    assert parse_threshold(expression).text == expression


# ---------------------------------------------------------------------------------------------- evaluation


def test_without_scope_the_aggregated_figures_apply():
    stats = registry(*[("GET", "/a", 10.0, None)] * 19, ("GET", "/b", 900.0, None))

    assert verdict_of("p95<20ms", stats).actual == pytest.approx(10.0, rel=0.01)
    assert verdict_of("max<1s", stats).actual == 900.0
    assert verdict_of("avg<100", stats).actual == pytest.approx(54.5)


@pytest.mark.parametrize(("expression", "ok"), [("requests<=3", True), ("requests<3", False),
                                                ("requests>=3", True), ("requests>3", False)])
def test_operators_treat_the_limit_itself_as_they_say(expression: str, ok: bool):
    stats = registry(*[("GET", "/a", 5.0, None)] * 3)

    assert verdict_of(expression, stats).ok is ok


def test_percentile_limit_in_seconds_compares_with_milliseconds():
    stats = registry(("GET", "/a", 1200.0, None))

    assert verdict_of("p99<1s", stats).ok is False
    assert verdict_of("p99<1.5s", stats).ok is True


def test_error_rate_is_failed_requests_as_a_percentage():
    stats = registry(*[("GET", "/a", 5.0, None)] * 3, ("GET", "/a", 5.0, "HTTPError 500"))

    verdict = verdict_of("error_rate<1%", stats)

    assert (verdict.actual, verdict.ok) == (25.0, False)


def test_rates_divide_by_the_duration_so_far():
    stats = registry(*[("GET", "/a", 5.0, None)] * 18, *[("GET", "/a", 5.0, "boom")] * 2)

    assert verdict_of("rps>3", stats, duration=5.0).actual == 4.0
    assert verdict_of("failures_per_s<0.5", stats, duration=5.0).actual == 0.4


def test_scope_uses_only_that_endpoints_figures():
    stats = registry(("GET", "/fast", 5.0, None), ("GET", MY_STATUS, 400.0, None))

    verdict = verdict_of(f"{MY_STATUS}:p95<300ms", stats)

    assert verdict.ok is False
    assert verdict.actual == pytest.approx(400.0, rel=0.01)


def test_name_without_method_merges_every_method_recorded_under_it():
    stats = registry(("GET", "/x", 5.0, None), ("POST", "/x", 50.0, "HTTPError 409"), ("GET", "/y", 1.0, None))

    assert verdict_of("/x:requests>=2", stats).actual == 2.0
    assert verdict_of("/x:max<10ms", stats).actual == 50.0
    assert verdict_of("/x:error_rate<1", stats).actual == 50.0
    assert verdict_of("GET /x:error_rate<1", stats).actual == 0.0


def test_merging_methods_leaves_the_recorded_entries_untouched():
    stats = registry(("GET", "/x", 5.0, None), ("POST", "/x", 50.0, None))

    verdict_of("/x:requests>0", stats)

    assert [entry.num_requests for entry in stats.sorted_entries()] == [1, 1]


def test_endpoint_with_no_requests_fails_and_says_so():
    stats = registry(("GET", "/events/ [list]", 5.0, None))

    verdict = verdict_of("/events/{id} [detail]:rps<1000", stats)

    assert (verdict.actual, verdict.ok) == (None, False)
    assert verdict.line() == '"/events/{id} [detail]":rps<1000: no requests were recorded for this endpoint'


def test_method_that_was_not_recorded_for_a_name_fails():
    stats = registry(("GET", "/x", 5.0, None))

    assert verdict_of("POST /x:requests<10", stats).ok is False


def test_a_run_without_requests_passes_no_threshold():
    verdict = verdict_of("error_rate<1%", StatsRegistry())

    assert (verdict.actual, verdict.ok) == (None, False)
    assert verdict.line() == "error_rate<1%: no requests were recorded"


def test_line_shows_the_rule_and_the_measured_value_with_its_unit():
    stats = registry(("GET", MY_STATUS, 412.0, None), ("GET", "/b", 0.42, None))

    scoped, aggregated, rate, minimum = evaluate(
        [parse_threshold(text) for text in (f"{MY_STATUS} : p95 < 300ms", "max<1s", "error_rate<1", "min<1")],
        stats, 2.0)

    assert scoped.line() == f'"{MY_STATUS}":p95<300ms: {scoped.actual:.0f} ms'
    assert aggregated.line() == "max<1s: 412 ms"
    assert rate.line() == "error_rate<1%: 0%"
    assert minimum.line() == "min<1ms: 0.42 ms"


def test_as_dict_records_the_verdict_for_storage():
    stats = registry(("GET", "/x", 5.0, None), ("GET", "/x", 5.0, "boom"))

    stored = verdict_of("GET /x:error_rate < 10%", stats).as_dict()

    assert {key: stored[key] for key in ("expression", "endpoint", "metric", "operator", "limit", "actual", "ok")} == {
        "expression": "GET /x:error_rate < 10%", "endpoint": "/x", "metric": "error_rate", "operator": "<",
        "limit": 10.0, "actual": 50.0, "ok": False,
    }


def test_the_same_rule_written_differently_parses_to_the_same_threshold_but_keeps_its_text():
    spaced, tight = parse_threshold(" p95 < 500 ms "), parse_threshold("p95<500ms")

    assert (spaced.metric, spaced.operator, spaced.limit, spaced.display) == (
        tight.metric, tight.operator, tight.limit, tight.display)
    assert spaced.text == "p95 < 500 ms"


# ----------------------------------------------------------------------------------------------- the command


def _browse(host: str, *extra: str) -> tuple[str, ...]:
    """A short EventBrowser run; the audit is skipped so another test's broken invariant cannot mask exit 3."""
    return browse_args(host, None, None, *extra, users=2, spawn_rate=2, wait="0.1,0.2")


@pytest.mark.slow
def test_breached_threshold_exits_3_and_every_verdict_is_printed_and_stored(seeded, live_server_process, orm):
    label = f"thresholds-{uuid.uuid4().hex[:8]}"

    result = run_perf(seeded, *_browse(live_server_process.url, "--duration", "3s", "--label", label,
                                       "--threshold", "p95<1ms", "--threshold", "rps>0"))

    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert any(line.startswith("FAIL p95<1ms: ") and line.endswith(" ms") for line in lines), result.stdout
    assert any(line.startswith("PASS rps>0: ") for line in lines), result.stdout
    stored = PerfRun.objects.get(label=label).thresholds
    assert [(v["expression"], v["ok"]) for v in stored] == [("p95<1ms", False), ("rps>0", True)]
    assert all(v["actual"] > 0 for v in stored)


@pytest.mark.slow
def test_abort_on_threshold_stops_the_run_after_the_warmup(seeded, live_server_process, orm):
    label = f"abort-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()

    result = run_perf(seeded, *_browse(live_server_process.url, "--duration", "60s", "--label", label,
                                       "--threshold", "p95<1ms", "--abort-on-threshold", "--threshold-warmup", "2s"))

    assert time.monotonic() - started < 30, result.stdout[-3000:]
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-3000:]
    run = PerfRun.objects.get(label=label)
    assert run.status == PerfRun.Status.ABORTED
    assert run.stop_reason.startswith("threshold breached: p95<1ms: ")
    assert 2 <= run.actual_duration < 20


def test_unparsable_threshold_is_a_one_line_usage_error(seeded, live_server_process):
    result = run_perf(seeded, *_browse(live_server_process.url, "--duration", "3s", "--no-save", "--threshold",
                                       "p95<<3"))

    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(error_lines) == 1, result.stderr
    assert "bad --threshold 'p95<<3'" in error_lines[0] and "p95<500ms" in error_lines[0]
