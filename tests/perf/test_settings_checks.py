"""perfkit's settings in one place (perf/conf.py) and their checks (perf/checks.py): a wrong PERF_* setting is
named by ``manage.py check`` with its id and a hint, and every perf command refuses to start with one line and
exit 2, before any work. The commands run as child processes, with the repository's settings changed through
the environment or through a settings module of the test's own."""

import ast
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from perf.checks import PACK_LOADERS, check_settings
from perf.conf import SETTINGS, perf_settings
from perf.web import launch
from tests.liveserver import ROOT, manage, run_perf
from tests.perf.builders import settings_module

NOT_A_CALLABLE = 42


def _errors() -> dict[str, str]:
    return {error.id: error.msg for error in check_settings()}


def test_the_repositorys_settings_pass_the_checks():
    assert check_settings() == []


def test_every_setting_left_out_has_its_default_from_the_one_table(settings):
    for setting in SETTINGS:
        if hasattr(settings, setting.name):
            delattr(settings, setting.name)
    assert perf_settings.PERF_LOST_AFTER == 60.0 and perf_settings.PERF_SAVE_PATIENCE == 120.0
    assert perf_settings.PERF_SHARD_TIMEOUT == 10.0 and perf_settings.PERF_WEB_MAX_DURATION == 3600.0
    assert (perf_settings.PERF_WEB_MAX_USERS, perf_settings.PERF_WEB_MAX_RUNS) == (1000, 2)
    assert perf_settings.PERF_LAUNCH_VIA == "process" and perf_settings.PERF_HOST == "http://localhost:8000"
    assert perf_settings.PERF_ALLOWED_HOSTS == [] and perf_settings.PERF_AUDIT_CHECKS == []
    assert perf_settings.PERF_SCENARIOS is None and perf_settings.PERF_HEALTHCHECK_PATH == ""
    assert Path(settings.BASE_DIR) / ".admin_password" == perf_settings.PERF_ADMIN_PASSWORD_FILE
    assert Path(settings.BASE_DIR) / "var" / "runs" == perf_settings.PERF_LAUNCH_LOG_DIR
    assert check_settings() == []  # no PERF_SCENARIOS is no error: run_perf says what to set


def test_a_value_is_read_at_each_access_and_parsed(settings):
    settings.PERF_LOST_AFTER = "2.5"  # as passed through from the environment
    assert perf_settings.PERF_LOST_AFTER == 2.5
    settings.PERF_LOST_AFTER = 7
    assert perf_settings.PERF_LOST_AFTER == 7.0
    settings.PERF_WEB_MAX_DURATION = "90m"
    assert perf_settings.PERF_WEB_MAX_DURATION == 5400.0
    settings.PERF_HOST = "http://127.0.0.1:8000/api/"
    assert perf_settings.PERF_HOST == "http://127.0.0.1:8000/api"
    with pytest.raises(AttributeError, match="PERF_NOPE is not a perfkit setting"):
        perf_settings.PERF_NOPE  # noqa: B018


@pytest.mark.parametrize(("name", "value", "check_id", "message"), [
    ("PERF_LOST_AFTER", -1, "perf.E009", "PERF_LOST_AFTER must be a number of seconds above 0, got -1"),
    ("PERF_LOST_AFTER", 0, "perf.E009", "above 0"),
    ("PERF_LOST_AFTER", math.nan, "perf.E009", "PERF_LOST_AFTER must be a finite number of seconds, got nan"),
    ("PERF_SHARD_TIMEOUT", "inf", "perf.E008", "must be a finite number of seconds, got 'inf'"),
    ("PERF_SHARD_TIMEOUT", True, "perf.E008", "must be a number of seconds, got True"),
    ("PERF_SAVE_PATIENCE", "soon", "perf.E007", "PERF_SAVE_PATIENCE must be a number of seconds, got 'soon'"),
    ("PERF_SAVE_PATIENCE", -0.5, "perf.E007", "0 or more"),
    ("PERF_WEB_MAX_USERS", 0, "perf.E011", "PERF_WEB_MAX_USERS must be at least 1, got 0"),
    ("PERF_WEB_MAX_USERS", 10.5, "perf.E011", "must be a whole number, got 10.5"),
    ("PERF_WEB_MAX_RUNS", "two", "perf.E013", "PERF_WEB_MAX_RUNS must be a whole number, got 'two'"),
    ("PERF_WEB_MAX_DURATION", "an hour", "perf.E012", "PERF_WEB_MAX_DURATION: bad duration 'an hour'"),
    ("PERF_LAUNCH_VIA", "thread", "perf.E015", "PERF_LAUNCH_VIA must be 'process' or 'celery', got 'thread'"),
    ("PERF_ALLOWED_HOSTS", "staging.example.com", "perf.E010", "PERF_ALLOWED_HOSTS must be a list"),
    ("PERF_ALLOWED_HOSTS", [".example.com", 3], "perf.E010", "PERF_ALLOWED_HOSTS must be a list"),
    ("PERF_HOST", "localhost:8000", "perf.E005", "PERF_HOST must be an http:// or https:// URL"),
    ("PERF_HEALTHCHECK_PATH", "healthcheck", "perf.E006", "must be a path starting with '/'"),
    ("PERF_ADMIN_PASSWORD_FILE", 3, "perf.E014", "PERF_ADMIN_PASSWORD_FILE must be a file system path"),
    ("PERF_LAUNCH_LOG_DIR", "", "perf.E016", "PERF_LAUNCH_LOG_DIR must be a file system path"),
    ("PERF_SCENARIOS", "no_such_module", "perf.E001", "PERF_SCENARIOS = 'no_such_module' cannot be imported"),
    ("PERF_SCENARIOS", ["platform_pack.scenarios"], "perf.E001", "PERF_SCENARIOS must be a dotted path"),
    ("PERF_SCENARIOS", "tests.perf", "perf.E001", "that module has no SCENARIOS list"),
    ("PERF_CONTEXT", "platform_pack.context.NoSuchContext", "perf.E002", "cannot be imported"),
    ("PERF_CONTEXT", f"{__name__}.NOT_A_CALLABLE", "perf.E002", "names int 42, not a class or function"),
    ("PERF_AUDIT_CHECKS", "platform_pack.integrity.platform_invariants", "perf.E003",
     "PERF_AUDIT_CHECKS must be a list"),
    ("PERF_AUDIT_CHECKS", ["platform_pack.integrity.nothing_here"], "perf.E003", "cannot be imported"),
    ("PERF_SEED_HOOK", "platform_pack.seed.nothing_here", "perf.E004", "PERF_SEED_HOOK = "),
])
def test_a_wrong_setting_is_one_check_error_with_its_id_and_a_hint(settings, name, value, check_id, message):
    setattr(settings, name, value)
    errors = check_settings()
    assert [error.id for error in errors] == [check_id], errors
    assert message in errors[0].msg and "\n" not in errors[0].msg, errors[0].msg
    assert errors[0].hint.startswith(f"Set {name} to ")
    # Where the value is used, the same function fails with the same line: the read, or perf.packs's import.
    use = PACK_LOADERS.get(name, lambda: getattr(perf_settings, name))
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        use()


def test_a_project_without_base_dir_is_told_to_set_the_file_settings(settings):
    del settings.BASE_DIR
    assert _errors() == {
        "perf.E014": "PERF_ADMIN_PASSWORD_FILE has no default without a BASE_DIR setting: set "
                     "PERF_ADMIN_PASSWORD_FILE or BASE_DIR",
        "perf.E016": "PERF_LAUNCH_LOG_DIR has no default without a BASE_DIR setting: set "
                     "PERF_LAUNCH_LOG_DIR or BASE_DIR",
    }


def test_manage_py_check_lists_every_wrong_setting_with_its_id(live_env):
    env = {**live_env, "PERF_LOST_AFTER": "-1", "PERF_LAUNCH_VIA": "thread", "PERF_WEB_MAX_USERS": "lots"}
    result = manage("check", env=env, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "(perf.E009) PERF_LOST_AFTER must be a number of seconds above 0, got '-1'" in result.stderr
    assert "(perf.E015) PERF_LAUNCH_VIA must be 'process' or 'celery', got 'thread'" in result.stderr
    assert "(perf.E011) PERF_WEB_MAX_USERS must be a whole number, got 'lots'" in result.stderr
    assert "HINT: Set PERF_LOST_AFTER to a number of seconds above 0" in result.stderr
    assert "Traceback" not in result.stderr
    assert manage("check", env=live_env, check=False).returncode == 0


@pytest.mark.parametrize(("env_names", "module_names", "line"), [
    ({"PERF_SHARD_TIMEOUT": "nan"}, {},
     "CommandError: PERF_SHARD_TIMEOUT must be a finite number of seconds, got 'nan' (perf.E008)"),
    ({"PERF_LOST_AFTER": "-1", "PERF_LAUNCH_VIA": "thread"}, {},
     "CommandError: PERF_LOST_AFTER must be a number of seconds above 0, got '-1' (perf.E009); "
     "1 more: manage.py check lists them"),
    ({}, {"PERF_ALLOWED_HOSTS": "staging.example.com"},
     "CommandError: PERF_ALLOWED_HOSTS must be a list of non-empty strings, got 'staging.example.com' (perf.E010)"),
    ({}, {"PERF_CONTEXT": "platform_pack.context.Nothing"},
     "CommandError: PERF_CONTEXT = 'platform_pack.context.Nothing' cannot be imported: "
     "Module \"platform_pack.context\" does not define a \"Nothing\" attribute/class (perf.E002)"),
])
def test_run_perf_with_a_wrong_setting_is_one_line_and_exit_2(live_env, tmp_path, env_names, module_names, line):
    env = {**live_env, **env_names, **(settings_module(tmp_path, **module_names) if module_names else {})}
    result = run_perf(env, "--users", "1", "--duration", "1s", "--host", "http://127.0.0.1:9/api", "--no-save")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [line] and result.stdout == ""


def test_the_other_perf_commands_refuse_a_wrong_setting_the_same_way(live_env):
    result = manage("perf_mark_lost", env={**live_env, "PERF_LOST_AFTER": "0"}, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        "CommandError: PERF_LOST_AFTER must be a number of seconds above 0, got '0' (perf.E009)"]


def test_the_adoption_guide_lists_every_setting_with_its_default_and_check_id():
    text = (ROOT / "docs" / "adopting.md").read_text()
    rows = {match[1]: match[0] for match in re.finditer(r"^\| `(PERF_[A-Z_]+)` \|.*$", text, re.MULTILINE)}
    assert sorted(rows) == sorted(setting.name for setting in SETTINGS)
    for setting in SETTINGS:
        assert f"`{setting.check_id}`" in rows[setting.name], rows[setting.name]


def test_perf_celery_names_no_settings_module_of_its_own(live_env):
    """It ships in the wheel: without DJANGO_SETTINGS_MODULE it says what to set, in one line."""
    env = {key: value for key, value in live_env.items() if key != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-m", "celery", "-A", "perf.celery", "worker", "-P", "gevent"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "perf.celery: DJANGO_SETTINGS_MODULE is not set; set it to your project's settings module, e.g. "
        "DJANGO_SETTINGS_MODULE=mysite.settings celery -A perf.celery worker -P gevent"]
    assert "settings_perf" not in (ROOT / "perf" / "celery.py").read_text()
    # This repository's compose stack names its settings for every service, the Celery worker's included.
    assert "DJANGO_SETTINGS_MODULE=settings_perf" in (ROOT / ".env.test").read_text().splitlines()


def test_the_new_run_page_tells_a_wrong_launch_via_as_a_run_that_could_not_start(settings):
    settings.PERF_LAUNCH_VIA = "thread"
    with pytest.raises(launch.LaunchError, match=r"^PERF_LAUNCH_VIA must be 'process' or 'celery', got 'thread'$"):
        launch._start(["--users", "1"], "settings-check")


def _direct_reads(path: Path) -> list[str]:
    """Where ``path`` reads a PERF_* setting off Django's settings object (``settings.PERF_X``,
    ``getattr(settings, "PERF_X", default)``), under whatever name the module imported it. A ``getattr`` whose name
    is computed counts too: only perf/conf.py may read settings by a name it does not spell out."""
    tree = ast.parse(path.read_text(), filename=str(path))
    aliases = {alias.asname or alias.name for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and node.module == "django.conf"
               for alias in node.names if alias.name == "settings"}

    def is_settings(node: ast.expr) -> bool:
        return (isinstance(node, ast.Name) and node.id in aliases) or ast.unparse(node) == "django.conf.settings"

    def names_other_setting(node: ast.expr) -> bool:
        return isinstance(node, ast.Constant) and isinstance(node.value, str) and not node.value.startswith("PERF_")

    found = []
    for node in ast.walk(tree):
        direct = isinstance(node, ast.Attribute) and node.attr.startswith("PERF_") and is_settings(node.value)
        by_name = (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr",
                   "hasattr") and len(node.args) >= 2 and is_settings(node.args[0])
                   and not names_other_setting(node.args[1]))
        if direct or by_name:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_only_perf_conf_reads_a_perf_setting_off_djangos_settings():
    """Every PERF_* read goes through ``perf_settings`` (perf/conf.py), where its default and its check live: a
    ``getattr(settings, "PERF_X", 60)`` elsewhere would be a second default, and would take a wrong value unchecked."""
    sources = [path for folder in ("perf", "platform_pack", "backend") for path in sorted((ROOT / folder).rglob("*.py"))
               if path != ROOT / "perf" / "conf.py"]
    assert [read for path in sources for read in _direct_reads(path)] == []
    # The guard sees what it must: conf.py itself reads them by name.
    assert any("getattr(settings, name, None)" in read for read in _direct_reads(ROOT / "perf" / "conf.py"))
