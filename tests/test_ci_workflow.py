"""docs/ci/perf-nightly.yml, the GitHub Actions workflow docs/ci.md shows: valid YAML in the shape GitHub needs, and
every command in it exists.

GitHub only finds out that a command is wrong when the job runs at night, so this checks what a shell would run
without running it: every ``python manage.py X`` names a management command of this project and its words pass that
command's own parser (as the admin's New run page checks a command line: perf/web/launch.py), every ``make T`` is a
Makefile target, and every file a command reads is in the repository.
"""

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import get_commands, load_command_class
from django.core.management.base import CommandError

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "docs" / "ci" / "perf-nightly.yml"
# What ends one simple command in a shell line (shlex's punctuation_chars gives these as words of their own).
OPERATORS = {";", "&", "&&", "|", "||", ">", ">>", "<", "2>&1", "(", ")"}
PYTHONS = {"python", "python3", ".venv/bin/python"}
# Words that open a compound command: the simple command starts after them (``then python manage.py …``).
KEYWORDS = {"if", "then", "else", "elif", "do", "while", "until", "!", "{"}


def load_workflow(text: str) -> dict[Any, Any]:
    return yaml.safe_load(text)


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    """The ``on:`` mapping. YAML 1.1, which PyYAML reads, takes a bare ``on`` for the boolean true; GitHub does not."""
    return workflow.get("on", workflow.get(True)) or {}


def steps(workflow: dict[Any, Any]) -> Iterator[dict[str, Any]]:
    for job in workflow["jobs"].values():
        yield from job["steps"]


def simple_commands(script: str) -> Iterator[list[str]]:
    """Each simple command of a ``run:`` script as its words, less leading keywords and ``NAME=value`` assignments."""
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        for word in [*lexer, ";"]:
            if word not in OPERATORS:
                words.append(word)
                continue
            while words and (words[0] in KEYWORDS or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0])):
                words.pop(0)
            if words:
                yield words
            words = []


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return {match for match in re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, flags=re.MULTILINE)}


def check_manage(words: list[str]) -> str | None:
    """Why ``python manage.py WORDS`` would fail before doing anything, or None."""
    if not words:
        return "manage.py without a command"
    name, args = words[0], words[1:]
    app = get_commands().get(name)
    if app is None:
        return f"manage.py {name}: no such management command"
    parser = load_command_class(app, name).create_parser("manage.py", name)
    try:
        parser.parse_args(args)
    except CommandError as exc:  # the parser's error when not called from a terminal
        return f"manage.py {' '.join(words)}: {exc}"
    return None


def reads(words: list[str]) -> list[str]:
    """The repository files a command reads by name: a script Python runs, pip's ``-r`` files, gunicorn's ``-c``."""
    files = []
    if words[0] in PYTHONS and len(words) > 1 and words[1].endswith(".py"):
        files.append(words[1])
    if words[0] == "gunicorn" or "pip" in words:
        files += [words[i + 1] for i, word in enumerate(words[:-1]) if word in {"-r", "--requirement", "-c"}]
    return files


def problems(workflow: dict[Any, Any]) -> list[str]:
    """Every command of the workflow that would fail for a name that does not exist."""
    found = []
    targets = makefile_targets()
    for step in steps(workflow):
        setup_python = step.get("with", {}).get("cache-dependency-path")
        if setup_python and not (ROOT / setup_python).is_file():
            found.append(f"cache-dependency-path {setup_python}: no such file")
        for words in simple_commands(step.get("run", "")):
            found += [f"{' '.join(words)}: reads {path}, not in the repository"
                      for path in reads(words) if not (ROOT / path).is_file()]
            if words[0] in PYTHONS and words[1:2] == ["manage.py"]:
                found.append(check_manage(words[2:]) or "")
            if words[0] == "make":
                found += [f"make {target}: no such Makefile target" for target in words[1:]
                          if not target.startswith("-") and "=" not in target and target not in targets]
    return [problem for problem in found if problem]


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    return load_workflow(WORKFLOW.read_text())


def test_the_workflow_has_the_shape_github_needs(workflow):
    on = triggers(workflow)
    assert {"schedule", "workflow_dispatch"} <= set(on)
    assert all(len(entry["cron"].split()) == 5 for entry in on["schedule"])
    assert workflow["jobs"]
    for job_id, job in workflow["jobs"].items():
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", job_id)
        assert job["runs-on"]
        assert job["steps"]
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), step
            if "uses" in step:  # an action by a version, never a moving branch
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@v\d+(\.\d+)*", step["uses"]), step["uses"]


def test_postgresql_is_a_health_checked_service(workflow):
    (job,) = workflow["jobs"].values()
    postgres = job["services"]["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert "--health-cmd" in postgres["options"]
    assert job["env"]["DATABASE_URL"].startswith("postgres://")


def test_every_command_exists(workflow):
    assert problems(workflow) == []


def test_the_files_the_run_writes_are_the_ones_uploaded_and_published(workflow):
    (run_perf,) = [words for step in steps(workflow) for words in simple_commands(step.get("run", ""))
                   if words[1:3] == ["manage.py", "run_perf"]]
    written = {option: run_perf[run_perf.index(option) + 1] for option in ("--html", "--junit", "--summary-md")}
    by_action = {step["uses"].split("@")[0]: step for step in steps(workflow) if "uses" in step}
    uploaded = by_action["actions/upload-artifact"]
    assert uploaded["if"] == "always()"
    assert set(written.values()) <= set(uploaded["with"]["path"].split())
    reporter = by_action["mikepenz/action-junit-report"]
    assert reporter["if"] == "always()"
    assert reporter["with"]["report_paths"] == written["--junit"]


def test_the_checks_catch_a_wrong_name():
    """The checker itself: each kind of mistake in a workflow is reported, and only those."""
    wrong = load_workflow("""
on: {workflow_dispatch: {}}
jobs:
  perf:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/setup-python@v5
        with: {cache-dependency-path: requirements-nowhere.txt}
      - run: python -m pip install -r requirements.txt -r requirements-missing.txt
      - run: |
          python manage.py migrate --no-input && python manage.py no_such_command
          python manage.py run_perf --users 5 \\
            --no-such-option 3   # a comment
          make install no-such-target
          FOO=bar gunicorn -c missing.conf.py > log 2>&1 &
          python scripts/missing.py
          if [ -f perf-history.json.gz ]; then python manage.py loaddata --no-such-flag x.json; fi
    """)
    assert problems(wrong) == [
        "cache-dependency-path requirements-nowhere.txt: no such file",
        "python -m pip install -r requirements.txt -r requirements-missing.txt: reads requirements-missing.txt, "
        "not in the repository",
        "manage.py no_such_command: no such management command",
        "manage.py run_perf --users 5 --no-such-option 3: Error: unrecognized arguments: --no-such-option 3",
        "make no-such-target: no such Makefile target",
        "gunicorn -c missing.conf.py: reads missing.conf.py, not in the repository",
        "python scripts/missing.py: reads scripts/missing.py, not in the repository",
        "manage.py loaddata --no-such-flag x.json: Error: unrecognized arguments: --no-such-flag",
    ]


def test_docs_ci_shows_the_workflow_as_it_is():
    """docs/ci.md names the file and shows it whole, so a reader copies what the test checked."""
    doc = (ROOT / "docs" / "ci.md").read_text()
    assert "(ci/perf-nightly.yml)" in doc
    assert f"```yaml\n{WORKFLOW.read_text()}```" in doc
