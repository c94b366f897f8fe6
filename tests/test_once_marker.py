"""Which tests the PostgreSQL pass skips is derived from their fixtures (tests/conftest.py, ``once_reason``)."""

import pytest

from tests.conftest import once_reason


def test_a_test_without_a_database_fixture_runs_in_the_sqlite_pass_only(request: pytest.FixtureRequest, tmp_path):
    assert once_reason(request.node) == (
        "once (derived): no fixture of it reaches live_database_url, so no database; run in the SQLite pass")


def test_a_test_that_reaches_the_database_through_a_fixture_runs_in_both_passes(request: pytest.FixtureRequest, orm):
    assert once_reason(request.node) is None


@pytest.mark.once
def test_a_hand_mark_skips_a_database_test_and_says_so(request: pytest.FixtureRequest, orm):
    assert once_reason(request.node).startswith("once (marked by hand): ")
