"""The contract for every team that adds perfkit: docs/adopting.md, followed word for word.

In a temporary folder: build the generic app's wheel from this checkout, make a fresh virtualenv,
``django-admin startproject`` a project with one JSON view, then do what each step of
docs/adopting.md says: run its shell lines (``pip install perfkit`` installs the wheel just built,
port 8000 becomes a free one) and add its Python blocks to the files they name. Then check that the
run was stored and that its admin page renders. Once with this interpreter, once with the newest
Python on the machine (skipped where there is none newer).

Nothing here imports the backend or the platform pack: the project knows only what the wheel holds.
The adopting project keeps its own SQLite file, so this runs once, in one pass of the suite (tests/conftest.py).
"""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.liveserver import ROOT, free_port

DOC = ROOT / "docs" / "adopting.md"
INSTALL_TIMEOUT = 600

pytestmark = pytest.mark.slow  # the adopting project keeps its own SQLite file: no pass's database

HELLO_VIEW = '''
from django.http import JsonResponse


def hello(request):
    name = request.GET.get("name", "world")
    return JsonResponse({"message": f"hello, {name}"})
'''


@dataclass(frozen=True)
class Block:
    """One fenced block of the doc: its language and lines."""

    language: str
    lines: list[str]


def doc_blocks(text: str) -> list[Block]:
    return [Block(match[1], match[2].splitlines()) for match in re.finditer(r"```(\w+)\n(.*?)```", text, re.S)]


def newest_python() -> str | None:
    """The newest CPython above this one: on PATH (python3.12, python3.13, …) or in pyenv."""
    found: dict[tuple[int, int], str] = {}
    for minor in range(sys.version_info.minor + 1, 20):
        path = shutil.which(f"python3.{minor}")
        if path and subprocess.run([path, "-c", "pass"], capture_output=True).returncode == 0:
            found[(3, minor)] = path
    for folder in (Path.home() / ".pyenv" / "versions").glob("3.*"):
        parts = folder.name.split(".")
        version = (int(parts[0]), int(parts[1])) if len(parts) >= 2 and parts[1].isdigit() else None
        python = folder / "bin" / "python3"
        if version and version > sys.version_info[:2] and python.exists():
            found.setdefault(version, str(python))
    return found[max(found)] if found else None


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip wheel .`` of this checkout: the generic app alone."""
    folder = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build-src")
    # Build from a copy of the tracked files: setuptools writes build/ and *.egg-info beside the sources.
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    for name in files:
        source = ROOT / name
        if source.is_file():
            (build / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, build / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(folder), str(build)],
                   check=True, timeout=INSTALL_TIMEOUT, capture_output=True)
    (built,) = folder.glob("perfkit-*.whl")
    return built


def test_the_wheel_holds_the_generic_app_and_nothing_else(wheel: Path) -> None:
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"perf"}
    assert "perf/migrations/0001_initial.py" in names
    assert "perf/templates/admin/perf/perfrun/change_form.html" in names
    assert "perf/static/perf/run_page.js" in names
    assert not [name for name in names if "/tests/" in name or name.startswith(("backend/", "platform_pack/"))]


class Adopter:
    """A fresh virtualenv and project in ``folder``, doing what the doc says."""

    def __init__(self, folder: Path, python: str, wheel: Path) -> None:
        self.folder, self.wheel = folder, wheel
        self.venv = folder / "venv"
        self.project = folder / "mysite"
        self.port = free_port()
        self.python = python
        self.background: list[subprocess.Popen] = []
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith(("PYTEST", "DJANGO", "DATABASE", "LOCUST", "VIRTUAL_ENV"))}
        self.env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{self.env['PATH']}"
        self.env["PYTHONDONTWRITEBYTECODE"] = "1"

    def run(self, command: str, timeout: float = INSTALL_TIMEOUT, cwd: Path | None = None) -> str:
        done = subprocess.run(command, shell=True, cwd=cwd or self.project, env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        assert done.returncode == 0, f"$ {command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    def start_project(self) -> None:
        """What the doc assumes: a fresh virtualenv, and a project that serves JSON, here one view at /hello/."""
        subprocess.run([self.python, "-m", "venv", str(self.venv)], check=True, timeout=120)
        self.run("pip install -q 'Django>=5.2,<5.3' gunicorn", cwd=self.folder)
        self.run("django-admin startproject mysite", cwd=self.folder)
        (self.project / "mysite" / "views.py").write_text(HELLO_VIEW)
        urls = self.project / "mysite" / "urls.py"
        urls.write_text(urls.read_text().replace(
            "from django.urls import path", "from django.urls import path\n\nfrom mysite.views import hello"
        ).replace("path('admin/', admin.site.urls),", "path('admin/', admin.site.urls),\n    path('hello/', hello),"))

    def follow(self, block: Block) -> None:
        """Apply one block of the doc: a file edit when its first line names a file, else shell lines."""
        first = block.lines[0]
        edit = re.fullmatch(r"# (\S+): (add at the end|a new file)", first)
        if edit:
            path = self.project / edit[1]
            body = "\n".join(block.lines[1:]) + "\n"
            if edit[2] == "add at the end":
                path.write_text(path.read_text() + "\n" + body)
            else:
                path.write_text(body)
            return
        assert block.language == "sh", f"a block of the doc this test cannot follow: {first!r}"
        for line in block.lines:
            command = line.split("  #")[0].strip()
            if not command or command.startswith("#"):
                continue
            command = command.replace("8000", str(self.port))
            if command == "pip install perfkit":
                command = f"pip install -q {shlex.quote(str(self.wheel))}"
            if command.endswith("&"):
                self.start(command.rstrip("&").strip())
            else:
                self.output = self.run(command)

    def start(self, command: str) -> None:
        log = (self.folder / "server.log").open("wb")
        process = subprocess.Popen(shlex.split(command), cwd=self.project, env=self.env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.background.append(process)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, (self.folder / "server.log").read_text()[-3000:]
            try:
                requests.get(f"http://127.0.0.1:{self.port}/hello/", timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise AssertionError("the server the doc starts did not answer within 60 s")

    def stop(self) -> None:
        for process in self.background:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=15)


def _adopt_and_check(adopter: Adopter) -> None:
    adopter.start_project()
    for block in doc_blocks(DOC.read_text()):
        adopter.follow(block)

    printed = adopter.output
    assert "Reader" in printed and "/hello/?name" in printed, printed[-3000:]
    run_id = re.search(r"Run (\d+) completed", printed)
    assert run_id, printed[-3000:]
    adopter.run("DJANGO_SUPERUSER_PASSWORD=adopted python manage.py createsuperuser --noinput "
                "--username admin --email admin@example.com")
    session = requests.Session()
    root = f"http://127.0.0.1:{adopter.port}"
    login = session.get(f"{root}/admin/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)[1]
    session.post(f"{root}/admin/login/", data={"username": "admin", "password": "adopted",
                                               "csrfmiddlewaretoken": token, "next": "/admin/"},
                 headers={"Referer": f"{root}/admin/login/"}, timeout=30)
    page = session.get(f"{root}/admin/perf/perfrun/{run_id[1]}/change/", timeout=30)
    assert page.status_code == 200, page.text[-2000:]
    assert "completed" in page.text and "GET" in page.text and "/hello/?name" in page.text
    assert "Server-side breakdown" in page.text  # the middleware of step 3 is on


@pytest.fixture(scope="module")
def adoptions(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future]]:
    """Both adoptions at once, each in a thread of its own: they wait on pip, gunicorn and a 10 s run far
    more than they compute, so together they take little longer than one. Each test reads its own."""
    pythons = {"this": sys.executable, "newest": newest_python()}
    adopters = {key: Adopter(tmp_path_factory.mktemp(f"adopt-{key}"), python, wheel)
                for key, python in pythons.items() if python}
    with ThreadPoolExecutor(max_workers=len(adopters)) as pool:
        yield {key: pool.submit(_adopt_and_check, adopter) for key, adopter in adopters.items()}
        for adopter in adopters.values():
            adopter.stop()


def test_a_fresh_project_follows_the_doc_and_stores_a_run(adoptions: dict[str, Future]) -> None:
    adoptions["this"].result(timeout=INSTALL_TIMEOUT)


def test_the_same_on_the_newest_python_here(adoptions: dict[str, Future]) -> None:
    if "newest" not in adoptions:
        pytest.skip(f"no Python newer than {sys.version_info.major}.{sys.version_info.minor} on this machine")
    adoptions["newest"].result(timeout=INSTALL_TIMEOUT)
