"""How the generic app finds a scenario pack: the PERF_* settings (perf.packs), and what a project gets
when one is missing or wrong: one line naming the setting, exit 2, before any load.

The commands run as child processes with a settings module of the test's own, which starts from the
repository's settings and changes only the PERF_* names.
"""


import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import load_command_class
from gevent import monkey

from perf import packs
from perf.analysis import audit
from perf.load.context import SharedContext
from perf.load.user import User
from platform_pack.context import PlatformContext
from tests.liveserver import manage, run_perf
from tests.perf.builders import HealthChecker, settings_module


class Reader(HealthChecker):
    """The scenario of a pack made for the test."""


class Idle(User):
    """A scenario with no task: it could never run."""


READERS = [Reader]
NO_TASKS = [Idle]


def passing(facts: audit.Facts) -> audit.Check:
    return audit.Check("always", True, "")


def test_the_platform_pack_is_what_this_repositorys_settings_name():
    names = list(packs.scenarios())
    assert names[:2] == ["EventBrowser", "ExistingUserLogin"] and len(names) == 8
    assert isinstance(packs.make_context(), PlatformContext)
    assert packs.find_scenario("rsvpuser").__name__ == "RSVPUser"
    assert packs.seed_hook() is not None and len(packs.audit_checks()) == 1


def test_a_module_a_list_or_a_dict_names_the_scenarios(settings):
    settings.PERF_SCENARIOS = "tests.perf.test_packs.READERS"
    assert packs.scenarios() == {"Reader": Reader}
    settings.PERF_SCENARIOS = "platform_pack.scenarios"
    assert len(packs.scenarios()) == 8


@pytest.mark.parametrize(("value", "message"), [
    (None, "no scenarios configured: set PERF_SCENARIOS"),
    ("no_such_module", "PERF_SCENARIOS = 'no_such_module' cannot be imported"),
    ("tests.perf.test_packs.NOWHERE", "cannot be imported"),
    ("tests.perf", "that module has no SCENARIOS list"),
    ("tests.perf.test_packs.passing", "must list perf.load.user.User subclasses"),
])
def test_a_missing_or_wrong_scenario_setting_says_which_and_how(settings, value, message):
    settings.PERF_SCENARIOS = value
    with pytest.raises(ImproperlyConfigured, match=message):
        packs.scenarios()


def test_without_a_context_setting_users_share_the_generic_context(settings):
    del settings.PERF_CONTEXT
    context = packs.make_context()
    assert type(context) is SharedContext
    context.stride(1, 3)
    assert [context.next_number() for _ in range(3)] == [1, 4, 7]


def test_without_audit_checks_the_audit_says_so_and_passes(settings):
    settings.PERF_AUDIT_CHECKS = []
    report = audit.run_checks(packs.audit_checks(), {})
    assert report.ok and report.lines() == ["Integrity audit: no checks configured (PERF_AUDIT_CHECKS)"]


def test_a_check_may_give_one_verdict_or_several():
    report = audit.run_checks([passing, lambda facts: [audit.Check("a", True, ""), audit.Check("b", False, "2")]], {})
    assert [check.name for check in report.checks] == ["always", "a", "b"] and not report.ok


def test_loading_the_command_does_not_patch_the_standard_library():
    """The admin's New run page loads run_perf's command inside the web server, which must stay unpatched."""
    load_command_class("perf", "run_perf")
    assert not monkey.is_module_patched("socket")


@pytest.mark.parametrize(("names", "message"), [
    ({"PERF_SCENARIOS": None}, "no scenarios configured: set PERF_SCENARIOS"),
    ({"PERF_SCENARIOS": "tests.perf.test_packs.NO_TASKS"}, "scenario Idle has no @task methods"),
    ({"PERF_AUDIT_CHECKS": ["tests.perf.test_packs.nothing_here"]}, "PERF_AUDIT_CHECKS = "),
    ({"PERF_SEED_HOOK": None}, "--bootstrap needs a seed hook: set PERF_SEED_HOOK"),
])
def test_run_perf_refuses_a_wrong_pack_in_one_line_before_any_load(live_env, tmp_path, names, message):
    env = {**live_env, **settings_module(tmp_path, **names)}
    result = run_perf(env, "--users", "1", "--duration", "1s", "--host", "http://127.0.0.1:9/api", "--no-save",
                      "--bootstrap")
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_help_lists_the_configured_scenarios(live_env):
    result = manage("run_perf", "--help", env=live_env)
    assert "EventBrowser" in result.stdout and "QuestionnaireUser" in result.stdout
