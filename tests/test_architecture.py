"""The arrows that must never exist (docs/architecture.md), checked on the source itself.

Every module is parsed, not imported, so that an import hidden inside a function counts too, and a relative one
(``from ..models import PerfRun``) is read as the module it names.
"""

import ast
import graphlib
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import perf

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Import:
    """One import statement: ``module`` absolute (a relative import resolved against the file's package), ``names``
    what ``from module import …`` takes (empty for a plain ``import module``)."""

    module: str
    names: tuple[str, ...]
    typing_only: bool  # under ``if TYPE_CHECKING:``: never runs, so it closes no cycle

    def targets(self) -> list[str]:
        """The module, and ``module.name`` for each name, since a name may be a module of its own
        (``from perf import cli``, ``from perf.cli import run``): a rule on ``perf.cli.run`` sees both ways."""
        return [self.module, *(f"{self.module}.{name}" for name in self.names)]


def module_name(path: Path, root: Path = ROOT) -> str:
    """``perf/cli/run.py`` → ``perf.cli.run``; a package's ``__init__.py`` is the package."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(path: Path, root: Path = ROOT) -> list[Import]:
    """Every import of a source file, anywhere in it (inside functions too), relative ones resolved."""
    name = module_name(path, root)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: list[Import] = []

    def visit(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, (), typing_only) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.append(Import(module, tuple(alias.name for alias in node.names), typing_only))
        elif isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, typing_only)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, typing_only)

    visit(ast.parse(path.read_text(), filename=str(path)), False)
    return found


def imported_modules(package: str) -> dict[str, set[str]]:
    """Module path → the top-level names it imports (``from x.y import z`` gives ``x``)."""
    return {str(path.relative_to(ROOT)): {found.module.split(".")[0] for found in imports(path)}
            for path in sorted((ROOT / package).rglob("*.py"))}


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    """``perf.cli.run`` is within ``perf.cli``: a rule names a module or a whole folder by its dotted prefix."""
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def offending_imports(paths: list[Path], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    """Source file → the forbidden modules it imports, for the files that import any."""
    offenders = {}
    for path in paths:
        bad = sorted({target for found in imports(path) for target in found.targets() if within(target, forbidden)})
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    return offenders
@pytest.mark.parametrize(("package", "forbidden"), [
    ("perf", {"backend", "platform_pack"}),
    ("backend", {"perf", "platform_pack"}),
])
def test_no_forbidden_imports(package: str, forbidden: set[str]) -> None:
    offenders = {module: sorted(names & forbidden) for module, names in imported_modules(package).items()
                 if names & forbidden}
    assert offenders == {}


def test_scenarios_speak_http_only() -> None:
    """Scenarios never reach into the backend's models, nor into Django's ORM."""
    forbidden = {"backend", "django"}
    offenders = {module: sorted(names & forbidden)
                 for module, names in imported_modules("platform_pack/scenarios").items() if names & forbidden}
    assert offenders == {}


# The layers of perf/ (docs/architecture.md), from the bottom: what each must never import. A module is named by
# its dotted prefix, so "perf.cli" is the whole folder.
EVERY_UPPER_LAYER = ("perf.cli", "perf.web", "perf.distributed", "perf.tasks", "perf.admin", "perf.management")
LAYER_RULES = {
    # The engine: reports read it, never the other way; it knows neither Django's models nor the store.
    "perf/load": ("perf.conf", "perf.config", "perf.options", "perf.models", "perf.packs", "perf.store",
                  "perf.reports", "perf.analysis", *EVERY_UPPER_LAYER),
    # The foundations every layer may read: the settings, the LOCUST_* configuration, option parsing, the models.
    "perf/conf.py": ("perf.store", "perf.reports", "perf.analysis", "perf.packs", *EVERY_UPPER_LAYER),
    "perf/config.py": ("perf.conf", "perf.store", "perf.reports", "perf.analysis", *EVERY_UPPER_LAYER),
    "perf/options.py": ("perf.conf", "perf.store", "perf.reports", "perf.analysis", *EVERY_UPPER_LAYER),
    "perf/models.py": ("perf.store", "perf.reports", "perf.analysis", "perf.packs", *EVERY_UPPER_LAYER),
    # The store writes what the engine measured; what is shown of it is the reports' business.
    "perf/store": ("perf.reports", "perf.analysis", "perf.packs", *EVERY_UPPER_LAYER),
    # Reports and the checks after a run read the engine and the store, never who asked for them.
    "perf/reports": EVERY_UPPER_LAYER,
    "perf/analysis": ("perf.store", *EVERY_UPPER_LAYER),
    # The distributed runner is a runner: the command line picks it, and it never knows the pages.
    "perf/distributed": ("perf.reports", "perf.analysis", *EVERY_UPPER_LAYER),
    # The command line never reaches into the admin.
    "perf/cli": ("perf.web", "perf.admin", "perf.tasks", "perf.management"),
    # The admin starts a run as a process of its own: it checks the command line it makes (perf.cli.invocation)
    # and never runs one in the web server's process.
    "perf/web": ("perf.cli.run", "perf.cli.progress", "perf.cli.stop_signals", "perf.distributed", "perf.admin",
                 "perf.management"),
}


@pytest.mark.parametrize("layer", sorted(LAYER_RULES))
def test_each_layer_of_perf_imports_only_what_is_below_it(layer: str) -> None:
    target = ROOT / layer
    paths = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    assert paths, f"{layer} is gone: update LAYER_RULES and docs/architecture.md"
    assert offending_imports(paths, LAYER_RULES[layer]) == {}


# The only modules of the command line the admin may read: the parser and checks of the command it will start.
WEB_READS_OF_CLI = ("perf.cli.invocation", "perf.cli.profiles")


def test_the_admin_reads_of_the_command_line_only_what_checks_a_command() -> None:
    """The web side starts a run as a process of its own (docs/architecture.md): of ``perf.cli`` it may read the
    parser and checks of the command line it will start, nothing else. An allow-list, where LAYER_RULES' entry for
    ``perf/web`` names what it must never reach, so a new module of ``perf.cli`` is refused until it is judged."""
    paths = [*sorted((ROOT / "perf" / "web").rglob("*.py")), ROOT / "perf" / "admin.py"]
    read = {f"{path.relative_to(ROOT)}: {found.module}" for path in paths for found in imports(path)
            if within(found.module, ("perf.cli",)) and not within(found.module, WEB_READS_OF_CLI)
            and not (found.module == "perf.cli" and set(found.names) <= {"invocation", "profiles"})}
    assert read == set()


def test_perf_reaches_its_engine_by_module_not_through_the_public_names() -> None:
    """``from perf import Check`` inside perf/ would hide an arrow to ``perf.analysis`` from the rules above (the
    public names are loaded by name, at run time): perf's own modules import each name from where it lives."""
    public = set(perf._PUBLIC)
    offenders = [f"{path.relative_to(ROOT)}: from perf import {', '.join(sorted(set(found.names) & public))}"
                 for path in sorted((ROOT / "perf").rglob("*.py"))
                 for found in imports(path) if found.module == "perf" and set(found.names) & public]
    assert offenders == []


def test_the_engine_never_imports_django_even_inside_a_function() -> None:
    """The hot path stays free of Django: what a run sends and measures needs no settings, models or ORM, and a
    shard or a forked worker runs it the same. perf.models is in LAYER_RULES; Django itself is here."""
    assert offending_imports(sorted((ROOT / "perf" / "load").rglob("*.py")), ("django",)) == {}


def runtime_import_graph(package: str) -> dict[str, set[str]]:
    """Module → the modules of ``package`` it imports when its code runs: at import time or later, inside a
    function; an import under ``if TYPE_CHECKING:`` never runs, so it is left out."""
    modules = {module_name(path): path for path in (ROOT / package).rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {target for found in imports(path) if not found.typing_only
                       for target in found.targets() if target in modules and target != name}
    return graph


def test_no_import_cycle_in_perf() -> None:
    """Two modules that import each other are one knot: neither can be read, tested or moved without the other,
    and a cycle held open by an import inside a function breaks the day someone moves that import to the top.
    A type needed both ways goes under ``if TYPE_CHECKING:``, where it never runs."""
    try:
        graphlib.TopologicalSorter(runtime_import_graph("perf")).prepare()
    except graphlib.CycleError as cycle:
        # graphlib lists each module before the ones that import it: reversed, each arrow reads "imports".
        pytest.fail("import cycle: " + " → ".join(reversed(cycle.args[1])))


def test_relative_imports_are_read_as_the_module_they_name(tmp_path: Path) -> None:
    """``from ..models import PerfRun`` in perf/cli/run.py is an import of perf.models to every rule above."""
    (tmp_path / "perf" / "cli").mkdir(parents=True)
    source = tmp_path / "perf" / "cli" / "run.py"
    source.write_text("from ..models import PerfRun\nfrom . import progress\nfrom .. import conf\n"
                      "def later():\n    from ..store import thread\n")
    package = tmp_path / "perf" / "cli" / "__init__.py"
    package.write_text("from .run import execute\n")
    assert [found.targets() for found in imports(source, tmp_path)] == [
        ["perf.models", "perf.models.PerfRun"], ["perf.cli", "perf.cli.progress"], ["perf", "perf.conf"],
        ["perf.store", "perf.store.thread"]]
    assert [found.targets() for found in imports(package, tmp_path)] == [["perf.cli.run", "perf.cli.run.execute"]]


def test_every_module_of_perf_is_in_a_layer_or_is_an_entry_point() -> None:
    """A new top-level module must be placed on purpose: in a folder, or named here as one of Django's and
    Celery's conventional entry points or a foundation with its own rule above."""
    entry_points = {"__init__.py", "apps.py", "admin.py", "tasks.py", "celery.py", "middleware.py", "checks.py",
                    "packs.py"}
    foundations = {name.removeprefix("perf/") for name in LAYER_RULES if name.endswith(".py")}
    top = {path.name for path in (ROOT / "perf").glob("*.py")}
    assert top - entry_points - foundations == set()


# What the public API (perf/__init__.py) stands in front of: the engine's modules and the checks after a run.
ENGINE = ("perf.load", "perf.analysis")
# The docs a scenario or pack writer reads: they name only the public names, never the modules behind them.
WRITERS_DOCS = ("scenarios.md", "adopting.md")
ENGINE_IMPORT_LINE = re.compile(r"^\s*(?:from|import)\s+perf\.(?:load|analysis)\b")


def test_the_packs_use_the_public_api_only() -> None:
    """Scenario writers import from ``perf`` (``from perf import User, task, Shape, Check``), never the engine's
    modules, which may move: the platform pack and the tests' own packs (named in PERF_* settings as a project's
    would be) show the way."""
    packs = sorted((ROOT / "platform_pack").rglob("*.py")) + sorted((ROOT / "tests").rglob("*_pack.py"))
    assert offending_imports(packs, ENGINE) == {}


def test_the_docs_teach_the_public_api_only() -> None:
    """No code example in the docs imports the engine; the writers' guides do not even name its modules."""
    offenders = []
    for path in [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]:
        for line in path.read_text().splitlines():
            if ENGINE_IMPORT_LINE.match(line) or (path.name in WRITERS_DOCS and re.search(r"perf\.(load|analysis)\.",
                                                                                         line)):
                offenders.append(f"{path.name}: {line.strip()}")
    assert offenders == []


def test_the_backend_services_never_import_the_api_layer() -> None:
    """backend/services holds the events platform's rules; backend/api speaks HTTP about them. Services raise
    :class:`backend.services.errors.ServiceError` and return domain objects, and the API layer turns both into
    the contract's JSON, so the rules never know a status body or a serializer (docs/architecture.md)."""
    assert offending_imports(sorted((ROOT / "backend" / "services").rglob("*.py")), ("backend.api",)) == {}


# In docs/design.md's "Where files are", a line's name stops before this column; its description starts there.
DESCRIPTION_COLUMN = 27


def named_in_where_files_are() -> list[str]:
    """The paths docs/design.md's tree names under perf/, built from each line's indentation (two spaces a level):
    ``perf/``, then ``  load/``, then ``    runner.py`` is ``perf/load/runner.py``."""
    text = (ROOT / "docs" / "design.md").read_text()
    tree = text.split("## Where files are", 1)[1].split("```")[1]
    named: list[str] = []
    folders: list[str] = []
    inside = False
    for line in tree.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        if not line.strip() or indent >= DESCRIPTION_COLUMN:
            continue  # a description's next line
        if indent == 0:
            inside = line.startswith("perf/")
        if inside:
            name = line.split()[0]
            folders[indent // 2:] = [name] if name.endswith("/") else []
            named.append("".join(folders[:indent // 2]) + name)
    return named


def test_where_files_are_names_every_module_of_perf_once() -> None:
    """docs/design.md's map of perf/ has a line for each module (a sub-package's ``__init__.py`` is its folder's
    line, the migrations one line): a module added, moved or removed without its line fails here."""
    named = named_in_where_files_are()
    modules = {str(path.relative_to(ROOT)) for path in (ROOT / "perf").rglob("*.py")
               if "migrations" not in path.parts and (path.name != "__init__.py" or path.parent == ROOT / "perf")}
    assert {
        "modules without a line": sorted(modules - set(named)),
        "lines naming no module or folder": sorted(name for name in named
                                                   if name not in modules and not (ROOT / name).is_dir()),
        "named twice": sorted({name for name in named if named.count(name) > 1}),
    } == {"modules without a line": [], "lines naming no module or folder": [], "named twice": []}
