"""How the tests are laid out: no module under tests/ imports a test module (``test_*.py``).

A test module that imports another runs that module's imports, fixtures and marks where they were not meant to be,
and ties the two together: a helper changed for one module's tests breaks the other's, and pytest may collect the
imported tests' names twice. What several modules share lives in a helper module (tests/perf/builders.py, the
Chromium of tests/perf/browser.py, the Celery workers of tests/perf/celery_workers.py, tests/perf/staged.py, ...).
"""

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def module_name(path: Path) -> str:
    """``tests.perf.test_x`` for tests/perf/test_x.py; a package's ``__init__`` is the package."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> Iterator[tuple[int, str]]:
    """Every module ``path`` imports, with the line: at the top, inside functions or under ``if TYPE_CHECKING``
    alike, relative imports resolved; ``from package import name`` also names ``package.name``, which may be a
    module."""
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            yield from ((node.lineno, f"{base}.{alias.name}") for alias in node.names)


def is_test_module(name: str) -> bool:
    """A test module of this repository, one pytest collects: tests/…/test_*.py (a name imported from a module is
    no file, so it is none)."""
    path = ROOT.joinpath(*name.split(".")).with_suffix(".py")
    return name.split(".")[0] == "tests" and path.name.startswith("test_") and path.is_file()


def imports_of_test_modules() -> list[str]:
    """Each import of a test module by a module under tests/, as one line naming the fix."""
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        for line, name in imported(path):
            if is_test_module(name):
                found.append(f"{path.relative_to(ROOT)}:{line} imports the test module {name}: move what it shares "
                             "to tests/perf/builders.py or a helper module under tests/")
    return sorted(set(found))


def test_no_module_under_tests_imports_a_test_module() -> None:
    assert imports_of_test_modules() == []
