"""A real server process on a real database, for tests that speak HTTP.

The database is a fresh SQLite file, or a scratch database on the PostgreSQL server that
``DATABASE_URL`` points at (created here, dropped afterwards). The server is gunicorn with
several workers and threads, as in production, so concurrency tests meet real contention.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

from scripts.stack_services import die_with_parent

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://", "pgsql://"))


def create_scratch_postgres(server_url: str) -> tuple[str, str]:
    """Create an empty database beside ``server_url``'s; return (its URL, its name)."""
    import environ
    import psycopg

    config = environ.Env.db_url_config(server_url)
    name = f"perfkit_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_admin_dsn(config), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    user = config.get("USER") or "postgres"
    password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
    host = config.get("HOST") or "127.0.0.1"
    port = config.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{name}", name


def drop_scratch_postgres(server_url: str, name: str) -> None:
    import environ
    import psycopg

    config = environ.Env.db_url_config(server_url)
    with psycopg.connect(_admin_dsn(config), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin_dsn(config: dict) -> str:
    parts = {
        "host": config.get("HOST") or "127.0.0.1",
        "port": config.get("PORT") or 5432,
        "user": config.get("USER") or "postgres",
        "dbname": "postgres",
    }
    if config.get("PASSWORD"):
        parts["password"] = config["PASSWORD"]
    return " ".join(f"{key}={value}" for key, value in parts.items())


def manage(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    """Run ``manage.py`` in a child process with ``env``; its output is captured."""
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=check,
        timeout=300,
    )


@dataclass
class LiveServer:
    """A running gunicorn; ``url`` is the API root, e.g. ``http://127.0.0.1:PORT/api``."""

    env: dict[str, str]
    port: int
    log_path: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.root}/api"

    def start(self, workers: int = 4, threads: int = 2, *extra: str) -> None:
        """gunicorn with the repository's gunicorn.conf.py, as ``make serve`` runs it; ``extra`` flags win."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
                "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers), "--threads", str(threads), *extra,
            ],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early; see {self.log_path}:\n{self.log_path.read_text()[-3000:]}")
            try:
                # Workers may take seconds to boot on a busy machine: a slow answer is not a failure yet.
                if requests.get(f"{self.url}/healthcheck", timeout=10).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not answer /api/healthcheck within 90 s; see {self.log_path}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def server_env(database_url: str, mail_dir: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "settings_perf",
            "DATABASE_URL": database_url,
            # django-environ drops one slash after the scheme: four keep the path absolute.
            "EMAIL_URL": f"filemail:///{mail_dir}",
            "SYSTEM_TESTING": "True",
            "DEBUG": "True",
            "PYTHONUNBUFFERED": "1",
            # A child that dies of a fatal signal (SIGSEGV) prints every thread's stack: the test's output says where.
            "PYTHONFAULTHANDLER": "1",
            # Never the repository's own file: the demo admin login a test seed makes is the test's.
            "PERF_ADMIN_PASSWORD_FILE": str(mail_dir.with_name(f"{mail_dir.name}-admin-password")),
        }
    )
    env.update(extra)
    return env


def run_perf(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``manage.py run_perf ARGS`` to the end, as a user runs it (gevent-patched by manage.py)."""
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "run_perf", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


def start_run_perf(env: dict[str, str], *args: str, **popen: object) -> subprocess.Popen:
    """``manage.py run_perf ARGS`` in the background, for tests that signal or disturb it mid-run."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "run_perf", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen,
    )
