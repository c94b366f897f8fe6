"""Specification of perf.options: run_perf's durations, think times and target checks.

Addresses are only parsed or resolved here, never contacted.
"""

import pytest

from perf.options import check_base_url, is_loopback_host, parse_duration, parse_wait

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
