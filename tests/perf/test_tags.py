"""Task tags: ``@tag("checkout")`` on tasks, and ``run_perf --tags`` / ``--exclude-tags`` to run only some of them,
as Locust selects them (a task runs when it has one of --tags, and not when it has any of --exclude-tags)."""

import json
import random
from pathlib import Path

import pytest

import perf
from perf.cli.invocation import RunRequest, UsageError, check_request
from perf.load.session import HttpSession
from perf.load.stats import StatsRegistry
from perf.load.user import User, select_tasks, tag, tag_selected, task_tags
from tests.capacitytarget import capacity_run_env, capacity_target, run_capacity_perf
from tests.perf.tags_pack import Accountant, Shopper

TAGS_PACK = "tests.perf.tags_pack.SCENARIOS"


def names(cls: type[User] | None) -> list[str]:
    """The task names of a scenario, with their weights."""
    assert cls is not None
    return [f"{func.__name__}×{weight}" for func, weight in cls.tasks]


# --- the decorator --------------------------------------------------------------------------------------------------


def test_tag_is_public_and_the_engines_own():
    assert perf.tag is tag and "tag" in perf.__all__


def test_tags_ride_on_the_task_above_or_below_task_and_stack():
    assert task_tags(Shopper.browse) == {"browse"}
    assert task_tags(Shopper.checkout) == {"checkout", "money"}  # @tag below @task
    assert task_tags(Accountant.report) == {"money", "report"}  # two @tag stacked
    assert task_tags(Shopper.home) == frozenset()
    assert names(Shopper) == ["browse×3", "checkout×1", "home×1"]  # tags change no weight


@pytest.mark.parametrize("bad", [(), ("",), (" ",), ("a,b",), (3,)])
def test_a_tag_must_be_a_name_without_a_comma(bad):
    with pytest.raises(ValueError, match="tag"):
        tag(*bad)


# --- the selection --------------------------------------------------------------------------------------------------


def test_tags_select_the_tasks_with_any_of_them_and_exclude_tags_drop_those_with_any():
    assert tag_selected(Shopper.checkout, frozenset({"money", "nothing"}), frozenset())
    assert not tag_selected(Shopper.home, frozenset({"money"}), frozenset())
    assert tag_selected(Shopper.home, None, frozenset({"money"}))  # untagged: only --tags leaves it out
    assert not tag_selected(Shopper.checkout, frozenset({"checkout"}), frozenset({"money"}))  # exclusion wins
    assert names(select_tasks(Shopper, frozenset({"browse", "checkout"}), frozenset())) == ["browse×3", "checkout×1"]
    assert names(select_tasks(Shopper, None, frozenset({"browse"}))) == ["checkout×1", "home×1"]
    assert select_tasks(Accountant, frozenset({"browse"}), frozenset()) is None
    assert select_tasks(Accountant, None, frozenset({"report"})) is None


def test_a_selection_is_a_subclass_of_the_same_name_and_the_pack_keeps_its_class_whole():
    selected = select_tasks(Shopper, frozenset({"checkout"}), frozenset())
    assert selected is not None and selected is not Shopper and issubclass(selected, Shopper)
    assert (selected.__name__, selected.__qualname__, selected.weight) == ("Shopper", "Shopper", Shopper.weight)
    assert names(Shopper) == ["browse×3", "checkout×1", "home×1"]
    assert select_tasks(Shopper, frozenset({"browse", "checkout", "money"}), frozenset({"nothing"})) is not None
    assert select_tasks(Accountant, frozenset({"money"}), frozenset()) is Accountant  # all kept: the class itself


def test_a_selected_user_picks_only_its_selected_tasks():
    selected = select_tasks(Shopper, None, frozenset({"browse", "money"}))
    assert selected is not None
    user = selected(HttpSession("http://127.0.0.1:9", StatsRegistry().record), random.Random(1))
    assert {user.pick_task() for _ in range(50)} == {Shopper.home}


# --- the options ----------------------------------------------------------------------------------------------------


@pytest.fixture
def tags_pack(settings):
    settings.PERF_SCENARIOS = TAGS_PACK
    settings.PERF_CONTEXT = "perf.load.context.SharedContext"
    settings.PERF_AUDIT_CHECKS = []


def test_check_request_leaves_out_a_scenario_without_a_selected_task_with_a_note(tags_pack):
    setup = check_request(RunRequest(tags="checkout, browse", save=False, audit=False))
    assert [cls.__name__ for cls in setup.scenarios] == ["Shopper"]
    assert names(setup.scenarios[0]) == ["browse×3", "checkout×1"]
    assert setup.context.notes == ["scenario Accountant left out: none of its tasks is selected by "
                                   "--tags browse,checkout"]
    both = check_request(RunRequest(exclude_tags="browse", save=False, audit=False))
    assert [names(cls) for cls in both.scenarios] == [["checkout×1", "home×1"], ["report×1"]] and not both.context.notes


@pytest.mark.parametrize(("options", "message"), [
    ({"tags": "nothing"}, "no task to run: none is selected by --tags nothing; tags in these scenarios: browse, "
                          "checkout, money, report"),
    ({"tags": "money", "exclude_tags": "checkout,report"},
     "no task to run: none is selected by --tags money and --exclude-tags checkout,report"),
    ({"tags": "browse,,money"},
     "--tags takes tag names separated by commas, like checkout,browse; got 'browse,,money'"),
    ({"exclude_tags": ""}, "--exclude-tags takes tag names separated by commas"),
    ({"tags": "money", "distributed": "celery", "save": True},
     "--tags and --exclude-tags cannot be combined with --distributed"),
])
def test_bad_tag_options_are_one_line(tags_pack, options, message):
    options = {"save": False, "audit": False, **options}
    with pytest.raises(UsageError) as raised:
        check_request(RunRequest(**options))
    assert message in str(raised.value) and "\n" not in str(raised.value)


# --- real runs ------------------------------------------------------------------------------------------------------


def run_tagged(tmp_path: Path, *options: str) -> tuple[dict[str, int], str]:
    """run_perf with the tags pack against the capacity target: the requests of each task's name, and stdout."""
    summary = tmp_path / "summary.json"
    with capacity_target(8, 0.002) as target:
        run = run_capacity_perf(target.url, tmp_path, "--no-save", "--no-audit", "-u", "4", "-r", "100", "-t", "1s",
                                "--json", str(summary), *options,
                                env=capacity_run_env(tmp_path, pack=TAGS_PACK))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    entries = json.loads(summary.read_text())["entries"]
    counts = {entry["name"]: entry["num_requests"] for entry in entries if not entry["aggregated"]}
    assert sum(counts.values()) == target.served
    return counts, run.stdout


def test_a_run_with_tags_runs_only_the_tagged_tasks(tmp_path):
    counts, stdout = run_tagged(tmp_path, "--tags", "checkout,browse")
    assert set(counts) == {"browse", "checkout"} and all(counts.values())
    assert "scenario Accountant left out: none of its tasks is selected by --tags browse,checkout" in stdout
    assert "Shopper 4" in stdout  # the run's users all go to the scenario left


def test_a_run_with_exclude_tags_runs_every_other_task(tmp_path):
    counts, _ = run_tagged(tmp_path, "--exclude-tags", "money")
    assert set(counts) == {"browse", "home"} and all(counts.values())


def test_a_run_whose_tags_select_nothing_exits_2_in_one_line(tmp_path):
    run = run_capacity_perf("http://127.0.0.1:9/api", tmp_path, "--no-save", "--no-audit", "--tags", "nothing",
                            env=capacity_run_env(tmp_path, pack=TAGS_PACK))
    assert run.returncode == 2
    assert [line for line in run.stderr.splitlines() if line.strip()] == [
        "CommandError: no task to run: none is selected by --tags nothing; tags in these scenarios: browse, checkout, "
        "money, report"]
