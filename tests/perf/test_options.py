"""Specification of perf.options: run_perf's durations, think times and target checks.

Addresses are only parsed or resolved here, never contacted.
"""

import pytest

from perf.load.profile import StagedProfile
from perf.options import check_base_url, is_loopback_host, parse_duration, parse_stages, parse_wait

ACCEPTED_FORMS = "90, 90s, 5m, 1h30m"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90), ("90", 90), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("1h2m3s", 3723), ("1.5s", 1.5),
     (" 2M ", 120)],
)
def test_duration_accepts_seconds_and_locust_units(text, seconds):
    assert parse_duration(str(text)) == seconds


@pytest.mark.parametrize("text", ["", "abc", "0", "0s", "-5", "5x", "m", "1h30x", "5m10h"])
def test_bad_duration_is_refused_naming_the_accepted_forms(text):
    with pytest.raises(ValueError, match=ACCEPTED_FORMS):
        parse_duration(text)


def test_wait_is_min_and_max_seconds():
    assert parse_wait("0.1,0.5") == (0.1, 0.5)
    assert parse_wait("2,2") == (2.0, 2.0)


def test_wait_with_min_greater_than_max_is_refused():
    with pytest.raises(ValueError, match="minimum 2 is greater than maximum 1"):
        parse_wait("2,1")


@pytest.mark.parametrize("text", ["a,b", "1", "1,2,3", "", "nan,1", "0,inf"])
def test_wait_that_is_not_two_numbers_is_refused(text):
    with pytest.raises(ValueError, match="use MIN,MAX"):
        parse_wait(text)


def test_negative_wait_is_refused():
    with pytest.raises(ValueError, match="negative"):
        parse_wait("-1,2")


@pytest.mark.parametrize(
    "url", ["http://localhost:8000/api", "http://127.0.0.1:8000", "http://127.5.6.7/", "http://[::1]:8000/api"]
)
def test_loopback_hosts_are_recognised(url):
    assert is_loopback_host(url)


@pytest.mark.parametrize("url", ["http://10.1.2.3/", "http://192.168.0.1/", "http://8.8.8.8/", "http:///api", ""])
def test_other_hosts_are_not_loopback(url):
    assert not is_loopback_host(url)


def test_base_url_loses_its_trailing_slash():
    assert check_base_url("http://localhost:8000/api/") == "http://localhost:8000/api"


@pytest.mark.parametrize("url", ["ftp://x", "localhost:8000", "http://", "/api"])
def test_base_url_must_be_http_with_a_host(url):
    with pytest.raises(ValueError, match="use a URL like http://localhost:8000/api"):
        check_base_url(url)


# ------------------------------------------------------------------------------------------------- stages


def test_stages_are_k6s_linear_ramps_from_zero():
    stages = parse_stages("30s:50,2m:50,30s:200,1m:200,30s:0")
    profile = StagedProfile(stages)
    assert [profile.target(t) for t in (0, 15, 30, 100, 165, 180, 255)] == [0, 25, 50, 50, 125, 200, 100]
    assert profile.target(270) is None and profile.duration == 270 and profile.peak == 200
    assert [span.name for span in profile.spans()][2] == "stage 3 (50 → 200)"


@pytest.mark.parametrize(("text", "message"), [
    ("", "--stages needs at least one stage, like --stages 30s:50,2m:50,30s:0"),
    ("30:50", "--stages stage 1 ('30:50'): the duration needs a unit, like 30s, 2m or 1h30m"),
    ("30s:-1", "--stages stage 1 ('30s:-1'): the target must be a whole number of users, 0 or more"),
    ("30s:1.5", "--stages stage 1 ('30s:1.5'): the target must be a whole number of users, 0 or more"),
    ("30s", "--stages stage 1 ('30s') must be DURATION:TARGET, like 30s:50"),
    ("10s:5,30s:0,x", "--stages stage 3 ('x') must be DURATION:TARGET, like 30s:50"),
    ("30s:0", "--stages never asks for any load: every target is 0"),
    ("400h:5,400h:5", "--stages lasts 2,880,000 s in all, longer than the longest run, 30 days"),
])
def test_bad_stages_are_one_line_naming_the_stage(text: str, message: str):
    with pytest.raises(ValueError) as caught:
        parse_stages(text)
    assert str(caught.value) == message


def test_rate_stages_take_fractions_and_a_ceiling():
    assert parse_stages("1m:0.5,1m:10", option="--rate-stages", whole=False)[0].target == 0.5
    with pytest.raises(ValueError, match=r"^--users stage 1 .*: the target 11 is more than the most allowed, 10$"):
        parse_stages("1m:11", option="--users", most=10)
