"""The arrows that must never exist (docs/architecture.md), checked on the source itself.

Every module is parsed, not imported, so that an import hidden inside a function counts too.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(package: str) -> dict[str, set[str]]:
    """Module path → the top-level names it imports (``from x.y import z`` gives ``x``)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


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


def perf_imports(path: Path) -> list[str]:
    """Every ``perf.…`` module a source file imports, anywhere in it: ``from perf.x import y`` gives ``perf.x``,
    ``from perf import x`` gives ``perf.x``, and a plain ``import perf.x`` counts too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "perf":
                found += [f"perf.{alias.name}" for alias in node.names]
            else:
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return [module for module in found if module == "perf" or module.startswith("perf.")]


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
    forbidden = LAYER_RULES[layer]
    target = ROOT / layer
    paths = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    assert paths, f"{layer} is gone: update LAYER_RULES and docs/architecture.md"
    offenders = {}
    for path in paths:
        bad = [module for module in perf_imports(path)
               if any(module == rule or module.startswith(rule + ".") for rule in forbidden)]
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(set(bad))
    assert offenders == {}


def test_every_module_of_perf_is_in_a_layer_or_is_an_entry_point() -> None:
    """A new top-level module must be placed on purpose: in a folder, or named here as one of Django's and
    Celery's conventional entry points or a foundation with its own rule above."""
    entry_points = {"__init__.py", "apps.py", "admin.py", "tasks.py", "celery.py", "middleware.py", "checks.py",
                    "packs.py"}
    foundations = {name.removeprefix("perf/") for name in LAYER_RULES if name.endswith(".py")}
    top = {path.name for path in (ROOT / "perf").glob("*.py")}
    assert top - entry_points - foundations == set()


def test_the_scenarios_and_the_docs_use_the_public_api_only():
    """Scenario writers import from ``perf`` (``from perf import User, task``), never the engine's modules, which
    may move: the platform pack and every code example in the docs show the way."""
    engine = ("perf.load.user", "perf.load.context")
    offenders = []
    for path in sorted((ROOT / "platform_pack").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in engine:
                offenders.append(f"{path.relative_to(ROOT)}: from {node.module}")
    for path in sorted((ROOT / "docs").glob("*.md")):
        offenders += [f"{path.name}: {line.strip()}" for line in path.read_text().splitlines()
                      if line.lstrip().startswith(("from perf.load.user", "from perf.load.context",
                                                   "from perf.analysis.audit"))]
    assert offenders == []


def test_the_backend_services_never_import_the_api_layer():
    """backend/services holds the events platform's rules; backend/api speaks HTTP about them. Services raise
    :class:`backend.services.errors.ServiceError` and return domain objects, and the API layer turns both into
    the contract's JSON, so the rules never know a status body or a serializer (docs/architecture.md)."""
    offenders = []
    for path in sorted((ROOT / "backend" / "services").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            offenders += [f"{path.name}: {module}" for module in modules
                          if module == "backend.api" or module.startswith("backend.api.")]
    assert offenders == []
