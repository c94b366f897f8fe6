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
            if isinstance(node, ast.ImportFrom) and node.module and (
                node.module.startswith("perf.reports") or node.module in ("perf.models", "perf.persist")
            ):
                offenders.setdefault(path.name, []).append(node.module)
    assert offenders == {}
