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


def test_the_engine_imports_nothing_of_output_or_django_models():
    """perf/load is the engine: reports read it, never the other way (docs/architecture.md)."""
    offenders = {}
    for path in sorted((ROOT / "perf" / "load").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):  # a plain ``import perf.models`` counts too
                modules = [alias.name for alias in node.names]
            else:
                continue
            offenders.setdefault(path.name, []).extend(
                module for module in modules
                if module.startswith("perf.reports") or module in ("perf.models", "perf.persist"))
    assert {name: found for name, found in offenders.items() if found} == {}


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
                      if line.lstrip().startswith(("from perf.load.user", "from perf.load.context", "from perf.audit"))]
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
