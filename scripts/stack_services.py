"""The services of the native production-like stack (scripts/stack_demo.py), each a child process
that is started, awaited until it answers, and stopped: PgBouncer in front of a scratch PostgreSQL
database, Redis, the mail catcher, Celery workers and gunicorn.

Why child processes in sessions of their own: a Ctrl-C in the terminal then reaches only the script,
which stops everything in order (the load run first, so it can still store its run through PgBouncer,
then the server, the workers and the pooler). Linux ends every child if the script itself dies
(``PR_SET_PDEATHSIG``), so nothing outlives it. Each service's output goes to its own log file; a
service that does not come up is one line naming it and its log's last line.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PGBOUNCER_PATHS = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


class StackError(Exception):
    """Something the user must hear about in one line: a missing piece, a service that did not start."""


class Missing(StackError):
    """A piece the stack needs is not installed or does not answer."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def die_with_parent() -> None:
    """In a child before exec: ask Linux to SIGTERM it when its parent (the script, a test) dies, so an
    interrupted run leaves no process behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class Child:
    """One service process, its output in ``log``."""

    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> Child:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=die_with_parent,
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def last_line(self) -> str:
        try:
            lines = [line for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return ""
        return lines[-1].strip() if lines else ""

    def wait_until(self, ready: Callable[[], bool], timeout: float) -> None:
        """Poll ``ready`` until it holds; a child that exits or stays silent is a StackError naming its log."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                code = self.process.returncode if self.process else None
                raise StackError(f"{self.name} exited during start (code {code}): {self.last_line() or 'no output'} "
                                 f"(log: {self.log})")
            try:
                if ready():
                    return
            except Exception:  # not answering yet, in whatever way it says so
                pass
            if time.monotonic() > deadline:
                raise StackError(f"{self.name} did not become ready within {timeout:.0f} s (log: {self.log})")
            time.sleep(0.1)

    def log_contains(self, text: str) -> bool:
        try:
            return text in self.log.read_text(errors="replace")
        except OSError:
            return False

    def ask_to_stop(self, sig: int = signal.SIGTERM) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(sig)

    def reap(self, timeout: float = 15.0) -> None:
        """Wait for the end asked for; kill it after ``timeout`` seconds."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        """Signal, wait, then kill what is left; safe to call twice."""
        if self.alive():
            self.ask_to_stop(sig)
            self.reap(timeout)


def stop_all(children: Iterable[Child]) -> list[str]:
    """Stop them together (each takes seconds to shut down cleanly), whatever the others do; the
    errors, one line each."""
    errors = []
    running = [child for child in children if child.alive()]
    for child in running:
        try:
            child.ask_to_stop()
        except Exception as exc:  # a teardown step must never stop the next one
            errors.append(f"stopping {child.name}: {type(exc).__name__}: {exc}")
    for child in running:
        try:
            child.reap()
        except Exception as exc:
            errors.append(f"stopping {child.name}: {type(exc).__name__}: {exc}")
    return errors


# --- PostgreSQL and PgBouncer ------------------------------------------------------------------


@dataclass
class ScratchDatabase:
    """An empty database created on the PostgreSQL server of ``server_url`` and dropped afterwards."""

    server_url: str
    name: str = field(default_factory=lambda: f"perfkit_stack_{uuid.uuid4().hex[:10]}")
    created: bool = False
    dropped: bool = False

    @property
    def _parts(self) -> Any:
        return urlsplit(self.server_url)

    @property
    def host(self) -> str:
        return self._parts.hostname or HOST

    @property
    def port(self) -> int:
        return self._parts.port or 5432

    @property
    def user(self) -> str:
        return self._parts.username or "postgres"

    @property
    def password(self) -> str:
        return self._parts.password or ""

    def _connect(self, dbname: str) -> Any:
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, user=self.user, password=self.password or None,
                               dbname=dbname, connect_timeout=5, autocommit=True)

    def check(self) -> None:
        import psycopg

        try:
            self._connect(self._parts.path.lstrip("/") or "postgres").close()
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise Missing(f"PostgreSQL does not answer at {self.host}:{self.port} as {self.user} ({reason}); "
                             f"start it or pass --postgres-url") from None

    def create(self) -> None:
        with self._connect(self._parts.path.lstrip("/") or "postgres") as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        self.created = True

    def drop(self) -> None:
        if self.created:
            with self._connect(self._parts.path.lstrip("/") or "postgres") as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.created, self.dropped = False, True

    def exists(self) -> bool:
        with self._connect(self._parts.path.lstrip("/") or "postgres") as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.name,)).fetchone() is not None

    def client_ports(self) -> list[int]:
        """The client port of every server process connected to this database, seen from PostgreSQL's side
        (asked over a connection to another database, so the question does not count itself)."""
        with self._connect(self._parts.path.lstrip("/") or "postgres") as conn:
            rows = conn.execute("SELECT client_port FROM pg_stat_activity WHERE datname = %s AND client_port IS NOT "
                                "NULL", (self.name,)).fetchall()
        return sorted(port for (port,) in rows)


def find_pgbouncer(path: str | None = None) -> str:
    """The pgbouncer binary: ``path``, else on PATH, else where Debian installs it (/usr/sbin is not on
    every user's PATH)."""
    if path is not None:
        if not os.access(path, os.X_OK):
            raise Missing(f"pgbouncer is not installed at {path} (Debian: apt-get install pgbouncer)")
        return path
    found = shutil.which("pgbouncer") or next((path for path in PGBOUNCER_PATHS if os.access(path, os.X_OK)), None)
    if found is None:
        raise Missing("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    return found


@dataclass
class PgBouncer:
    """PgBouncer in transaction pooling on 127.0.0.1, with its own ini in ``workdir``, in front of ``database``."""

    binary: str
    workdir: Path
    database: ScratchDatabase
    port: int = field(default_factory=free_port)
    pool_size: int = 20
    child: Child | None = None

    @property
    def url(self) -> str:
        """What Django is given: the pooler, never PostgreSQL itself."""
        return f"postgres://{quote(self.database.user)}@{HOST}:{self.port}/{self.database.name}"

    def version(self) -> str:
        result = subprocess.run([self.binary, "--version"], capture_output=True, text=True, timeout=10)
        return result.stdout.split("\n", 1)[0].strip() or "PgBouncer"

    def write_config(self) -> Path:
        db = self.database
        password = f" password={db.password}" if db.password else ""
        ini = self.workdir / "pgbouncer.ini"
        userlist = self.workdir / "userlist.txt"
        userlist.write_text(f'"{db.user}" "{db.password}"\n')
        ini.write_text(
            "[databases]\n"
            f"{db.name} = host={db.host} port={db.port} dbname={db.name} user={db.user}{password}\n"
            "\n[pgbouncer]\n"
            f"listen_addr = {HOST}\nlisten_port = {self.port}\n"
            # No Unix socket: nothing but the TCP port to reach it by.
            "unix_socket_dir =\n"
            # Clients on loopback only; the pooler logs in to PostgreSQL as the user above.
            f"auth_type = trust\nauth_file = {userlist}\n"
            # A server connection per transaction: Django runs with DATABASE_POOLING=transaction.
            f"pool_mode = transaction\nmax_client_conn = 200\ndefault_pool_size = {self.pool_size}\n"
            f"admin_users = {db.user}\nstats_users = {db.user}\n"
            "ignore_startup_parameters = extra_float_digits\n"
            # Fresh totals in SHOW STATS, and a log that is not one line per connection.
            "stats_period = 1\nlog_connections = 0\nlog_disconnections = 0\n"
        )
        # pgbouncer refuses to run as root: it drops to the database's owner account, which must read these.
        for path in (self.workdir, ini, userlist):
            path.chmod(0o755 if path.is_dir() else 0o644)
        return ini

    def start(self, log: Path) -> None:
        ini = self.write_config()
        argv = [self.binary, str(ini)]
        if os.geteuid() == 0:
            argv[1:1] = ["-u", _unprivileged_user()]
        self.child = Child("pgbouncer", argv, log).start()
        self.child.wait_until(self._answers, timeout=20)

    def _answers(self) -> bool:
        import psycopg

        with psycopg.connect(host=HOST, port=self.port, user=self.database.user, dbname=self.database.name,
                             connect_timeout=2, prepare_threshold=None, autocommit=True) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)

    def show(self, what: str) -> list[dict[str, Any]]:
        """``SHOW <what>`` on the admin console (the virtual ``pgbouncer`` database), as dicts."""
        import psycopg

        with psycopg.connect(host=HOST, port=self.port, user=self.database.user, dbname="pgbouncer",
                             connect_timeout=5, autocommit=True) as conn:
            cursor = psycopg.ClientCursor(conn)  # the console speaks the simple query protocol only
            cursor.execute(f"SHOW {what}")
            names = [column.name for column in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _unprivileged_user() -> str:
    import pwd

    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise StackError("pgbouncer will not run as root and neither the postgres nor the nobody account exists")


# --- Redis ---------------------------------------------------------------------------------------


@dataclass
class Broker:
    """The machine's Redis on 127.0.0.1:6379 when it answers, else a redis-server of our own."""

    workdir: Path
    db: int = 12
    url: str = ""
    child: Child | None = None

    def start(self) -> None:
        import redis

        try:
            redis.Redis(host=HOST, port=6379, socket_timeout=2).ping()
            self.url = f"redis://{HOST}:6379/{self.db}"
            return
        except redis.RedisError:
            pass
        binary = shutil.which("redis-server")
        if binary is None:
            raise Missing("no Redis answers on 127.0.0.1:6379 and redis-server is not installed "
                             "(Debian: apt-get install redis-server)")
        port = free_port()
        self.child = Child("redis-server", [binary, "--bind", HOST, "--port", str(port), "--save", "",
                                            "--appendonly", "no", "--dir", str(self.workdir)],
                           self.workdir / "redis.log").start()
        self.child.wait_until(lambda: redis.Redis(host=HOST, port=port, socket_timeout=1).ping(), timeout=15)
        self.url = f"redis://{HOST}:{port}/{self.db}"

    def forget(self, queues: Iterable[str]) -> None:
        """Remove what these queues left in Redis (a shared server outlives the stack)."""
        import redis

        if not self.url or self.child is not None:
            return  # our own server goes away with everything in it
        client = redis.Redis.from_url(self.url, socket_timeout=5)
        for queue in queues:
            for key in list(client.scan_iter(match=f"*{queue}*")):
                client.delete(key)
        for tag, raw in client.hscan_iter("unacked"):
            if any(queue.encode() in raw for queue in queues):
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)


# --- The mail catcher, Celery workers, gunicorn ------------------------------------------------------


@dataclass
class MailCatcherService:
    """scripts/mail_catcher.py as a service, as Mailpit is one in docker-compose-test.yaml."""

    log: Path
    smtp_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    child: Child | None = None

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    @property
    def email_url(self) -> str:
        return f"smtp://{HOST}:{self.smtp_port}"

    def start(self) -> None:
        import requests

        self.child = Child("mail catcher", [sys.executable, str(ROOT / "scripts" / "mail_catcher.py"), "--smtp-port",
                                            str(self.smtp_port), "--http-port", str(self.http_port)], self.log).start()
        self.child.wait_until(lambda: requests.get(f"{self.api_url}/readyz", timeout=2).status_code == 200,
                              timeout=20)

    def count(self, query: str = "") -> int:
        """How many messages it holds (matching a Mailpit search ``query``, if given)."""
        import requests

        if query:
            answer = requests.get(f"{self.api_url}/api/v1/search", params={"query": query, "limit": 1}, timeout=10)
            answer.raise_for_status()
            return int(answer.json()["messages_count"])
        answer = requests.get(f"{self.api_url}/api/v1/messages", params={"limit": 1}, timeout=10)
        answer.raise_for_status()
        return int(answer.json()["total"])


def celery_worker(name: str, app: str, queue: str, pool: str, concurrency: int, env: dict[str, str],
                  log: Path) -> Child:
    """A started Celery worker of ``app`` consuming ``queue`` only; wait for it with ``wait_celery_ready``."""
    node = f"{name}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
    argv = [sys.executable, "-m", "celery", "-A", app, "worker", "-Q", queue, "-P", pool, "-c", str(concurrency),
            "-n", node, "--loglevel=info", "--without-mingle", "--without-gossip"]
    return Child(name, argv, log, env).start()


def wait_celery_ready(worker: Child, timeout: float = 60) -> None:
    """Celery logs "<node> ready." once it consumes its queues."""
    worker.wait_until(lambda: worker.log_contains(" ready."), timeout=timeout)


def gunicorn(env: dict[str, str], port: int, log: Path) -> Child:
    """gunicorn with the repository's gunicorn.conf.py (workers, threads, keep-alive), as in the compose file."""
    argv = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "--bind", f"{HOST}:{port}"]
    return Child("gunicorn", argv, log, env).start()


def wait_http_ok(child: Child, url: str, timeout: float = 90) -> None:
    import requests

    child.wait_until(lambda: requests.get(url, timeout=10).status_code == 200, timeout=timeout)
