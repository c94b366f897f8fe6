"""Which tests need one pass only is derived from their fixtures, and which pass runs them from their module
(tests/conftest.py: ``once_reason``, ``once_pass``, ``skip_reason``)."""

import os

import pytest

from tests import conftest
from tests.conftest import ONCE_IN_THE_POSTGRESQL_PASS, once_pass, once_reason, skip_reason, this_pass

PASSES = ("SQLite", "PostgreSQL")


def test_a_test_without_a_database_fixture_runs_in_the_sqlite_pass_only(request: pytest.FixtureRequest, tmp_path):
    assert once_reason(request.node) == "once (derived): no fixture of it reaches live_database_url, so no database"
    assert skip_reason(request.node, "SQLite", two_passes=False) is None
    assert skip_reason(request.node, "PostgreSQL", two_passes=False) == (
        "once (derived): no fixture of it reaches live_database_url, so no database; run in the SQLite pass")


def test_a_test_that_reaches_the_database_through_a_fixture_runs_in_both_passes(request: pytest.FixtureRequest, orm):
    assert once_reason(request.node) is None
    for two_passes in (False, True):
        assert [skip_reason(request.node, here, two_passes) for here in PASSES] == [None, None]


@pytest.mark.once
def test_a_hand_mark_skips_a_database_test_and_says_so(request: pytest.FixtureRequest, orm):
    assert once_reason(request.node).startswith("once (marked by hand): ")
    assert skip_reason(request.node, "PostgreSQL", two_passes=False).endswith("; run in the SQLite pass")


def test_with_two_passes_a_listed_module_s_once_tests_run_in_the_postgresql_pass(
        request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    assert once_pass(request.node, two_passes=True) == "SQLite"  # this module is not listed
    monkeypatch.setattr(conftest, "ONCE_IN_THE_POSTGRESQL_PASS", frozenset({"tests/test_once_marker.py"}))
    assert once_pass(request.node, two_passes=True) == "PostgreSQL"
    assert skip_reason(request.node, "PostgreSQL", two_passes=True) is None
    assert skip_reason(request.node, "SQLite", two_passes=True).endswith("; run in the PostgreSQL pass")
    # Without the other pass beside it, the SQLite pass runs every once test.
    assert once_pass(request.node, two_passes=False) == "SQLite"
    assert skip_reason(request.node, "SQLite", two_passes=False) is None


def test_every_collected_test_runs_in_exactly_one_pass_or_in_both_when_it_reaches_the_database(
        request: pytest.FixtureRequest):
    for item in request.session.items:
        for two_passes in (False, True):
            running = [here for here in PASSES if skip_reason(item, here, two_passes) is None]
            expected = [once_pass(item, two_passes)] if once_reason(item) else list(PASSES)
            assert running == expected, (item.nodeid, two_passes)


def test_this_pass_skips_what_the_rule_says_and_nothing_else(request: pytest.FixtureRequest):
    here, two_passes = this_pass(request.config), request.config.getoption("--two-passes")
    for item in request.session.items:
        skips = [mark.kwargs["reason"] for mark in item.iter_markers("skip") if "reason" in mark.kwargs]
        reason = skip_reason(item, here, two_passes)
        assert [skip for skip in skips if skip.startswith("once (")] == ([reason] if reason else []), item.nodeid


def test_every_module_listed_for_the_postgresql_pass_exists(request: pytest.FixtureRequest):
    """A module renamed and not listed again would move its once tests back to the SQLite pass unseen."""
    missing = [module for module in ONCE_IN_THE_POSTGRESQL_PASS if not (request.config.rootpath / module).is_file()]
    assert missing == []


def test_no_test_sees_the_database_url_of_the_pass(orm):
    """The PostgreSQL pass's DATABASE_URL names the server's own ``postgres`` database: the session takes it out
    of the environment, so that no test and no child process it starts writes there (the SQLite pass runs with
    none). The pass's tests reach their scratch database through the environment their fixtures build."""
    assert "DATABASE_URL" not in os.environ
