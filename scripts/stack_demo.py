"""docker-compose-test.yaml's production-like stack, run natively from Debian's packages (there is no
Docker engine here), seeded and load-tested with run_perf, then taken down again.

    python scripts/stack_demo.py [--users 100] [--duration 60] [--spawn-rate 10] [--shards N]
    make stack-demo                               # the same; STACK_USERS / STACK_DURATION also work

The same topology as the compose file: PostgreSQL reached only through PgBouncer in transaction pooling
(its own ini in a temporary folder, in front of a scratch database created and dropped here), Django
with ``DATABASE_POOLING=transaction``; Redis as the broker; a Celery email worker sending the
verification emails (``EMAIL_VIA_CELERY``) and a Celery shard worker for ``--distributed celery`` runs;
gunicorn with the repository's gunicorn.conf.py; the mail catcher (scripts/mail_catcher.py) standing in
for Mailpit; ``SYSTEM_TESTING`` off, so the registration scenario reads each token from its email.

Everything listens on 127.0.0.1, on free ports. At the end it prints the run's figures and what shows the
path was the production one (PgBouncer's counters, the emails the worker sent), and stops everything,
also on Ctrl-C or a failure. Exit code: run_perf's (0 when every request succeeded); 1 when a service did
not start; 2 when a piece is missing (one line says which); 130/143 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository importable, as `scripts.…`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.stack_services import (  # noqa: E402 (after the path fix above)
    HOST,
    ROOT,
    Broker,
    Child,
    MailCatcherService,
    Missing,
    PgBouncer,
    ScratchDatabase,
    StackError,
    celery_worker,
    find_pgbouncer,
    free_port,
    gunicorn,
    stop_all,
    wait_celery_ready,
    wait_http_ok,
)

DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"
EMAIL_TASK = "backend.send_verification_email"
# The endpoints of the registration flow and of logging in (platform_pack/clients/api.py's name templates).
FLOW_ENDPOINTS = (("POST", "/account/register"), ("POST", "/account/verify"), ("POST", "/auth/token/pair"))


class Interrupted(BaseException):
    """SIGINT or SIGTERM while no run_perf was running to pass it on to: unwind to the teardown."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@dataclass
class Options:
    users: int = 100
    duration: int = 60
    spawn_rate: float = 10.0
    shards: int = 0
    postgres_url: str = DEFAULT_POSTGRES_URL
    report: Path | None = None
    keep: bool = False
    pgbouncer: str | None = None


@dataclass
class Stack:
    """The services, in start order. ``down`` stops the load first (so it can store its run), then the
    server, the workers and the catcher together, then the pooler, and drops the database."""

    options: Options
    workdir: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    database: ScratchDatabase | None = None
    pgbouncer: PgBouncer | None = None
    broker: Broker | None = None
    catcher: MailCatcherService | None = None
    email_worker: Child | None = None
    shard_worker: Child | None = None
    web: Child | None = None
    web_port: int = field(default_factory=free_port)
    load: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def email_queue(self) -> str:
        return f"email-stack-{self.tag}"

    @property
    def shard_queue(self) -> str:
        return f"perf-stack-{self.tag}"

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.web_port}/api"

    # --- up ---------------------------------------------------------------------------------

    def up(self) -> None:
        pgbouncer_binary = find_pgbouncer(self.options.pgbouncer)
        self.database = ScratchDatabase(self.options.postgres_url)
        self.database.check()
        self.database.create()
        say(f"PostgreSQL {self.database.host}:{self.database.port}: scratch database {self.database.name} "
            f"(reached only through PgBouncer)")
        self.pgbouncer = PgBouncer(pgbouncer_binary, self.workdir / "pgbouncer", self.database)
        self.pgbouncer.workdir.mkdir()
        self.pgbouncer.start(self.workdir / "pgbouncer.log")
        say(f"{self.pgbouncer.version()} on {HOST}:{self.pgbouncer.port}, pool_mode=transaction, "
            f"pool of {self.pgbouncer.pool_size} server connections")
        self.broker = Broker(self.workdir)
        self.broker.start()
        say(f"Redis {self.broker.url}{' (started here)' if self.broker.child else ''}: queues {self.email_queue} "
            f"(emails), {self.shard_queue} (load shards)")
        self.catcher = MailCatcherService(self.workdir / "mail-catcher.log")
        self.catcher.start()
        say(f"mail catcher (Mailpit stand-in): SMTP {HOST}:{self.catcher.smtp_port}, API {self.catcher.api_url}")
        self.env = self._django_env()
        self._manage("migrate", "--no-input", "-v0")
        say("migrated through PgBouncer (DATABASE_POOLING=transaction)")
        self.email_worker = celery_worker("email-worker", "backend.celery", self.email_queue, "threads", 4, self.env,
                                          self.workdir / "email-worker.log")
        self.shard_worker = celery_worker("shard-worker", "perf.celery", self.shard_queue, "gevent",
                                          max(1, self.options.shards), self.env, self.workdir / "shard-worker.log")
        self.web = gunicorn(self.env, self.web_port, self.workdir / "gunicorn.log")
        wait_celery_ready(self.email_worker)
        say(f"Celery email worker (backend.celery, -P threads -c 4) consuming {self.email_queue}")
        wait_celery_ready(self.shard_worker)
        say(f"Celery shard worker (perf.celery, -P gevent) consuming {self.shard_queue}")
        wait_http_ok(self.web, f"{self.api_url}/healthcheck")
        say(f"gunicorn -c gunicorn.conf.py on {self.api_url} (DEBUG off, SYSTEM_TESTING off)")

    def _django_env(self) -> dict[str, str]:
        assert self.pgbouncer and self.broker and self.catcher
        env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
        env.update({
            "DJANGO_SETTINGS_MODULE": "settings_perf",
            "DATABASE_URL": self.pgbouncer.url,
            "DATABASE_POOLING": "transaction",
            # The seed's admin login belongs to this stack's database, not to the developer's .admin_password.
            "PERF_ADMIN_PASSWORD_FILE": str(self.workdir / "admin_password"),
            "CONN_MAX_AGE": "60",
            "DEBUG": "False",
            "SYSTEM_TESTING": "False",
            "EMAIL_URL": self.catcher.email_url,
            "EMAIL_VIA_CELERY": "True",
            "EMAIL_CELERY_QUEUE": self.email_queue,
            "CELERY_BROKER_URL": self.broker.url,
            "CELERY_TASK_DEFAULT_QUEUE": self.shard_queue,
            "CELERY_TASK_ALWAYS_EAGER": "False",
            "LOCUST_BACKEND_URL": self.api_url,
            "LOCUST_MAILPIT_URL": self.catcher.api_url,
            "PYTHONUNBUFFERED": "1",
        })
        return env

    def _manage(self, *args: str) -> None:
        result = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=self.env,
                                capture_output=True, text=True, timeout=600, start_new_session=True)
        log = self.workdir / "manage.log"
        with log.open("a") as out:
            out.write(f"$ manage.py {' '.join(args)}\n{result.stdout}{result.stderr}\n")
        if result.returncode != 0:
            lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
            raise StackError(f"manage.py {args[0]} failed: {lines[-1] if lines else f'exit {result.returncode}'} "
                             f"(log: {log})")

    def seed(self) -> None:
        self._manage("bootstrap_perf_tests", "--force")
        say("seeded (bootstrap_perf_tests --force: DEBUG is off)")

    # --- the load ---------------------------------------------------------------------------

    def run_load(self) -> int:
        """run_perf against the stack, its output on this terminal; returns its exit code."""
        options = self.options
        label = f"stack demo {self.tag}"
        argv = [sys.executable, str(ROOT / "manage.py"), "run_perf", "--host", self.api_url, "--users",
                str(options.users), "--spawn-rate", f"{options.spawn_rate:g}", "--duration", f"{options.duration}s",
                "--label", label]
        if options.shards:
            argv += ["--distributed", "celery", "--shards", str(options.shards)]
        mode = f"{options.shards} Celery shards" if options.shards else "one process"
        say(f"run_perf: {options.users} users for {options.duration} s ({mode}), label {label!r}")
        sys.stdout.flush()
        # A session of its own: a Ctrl-C reaches it once, forwarded by this script (see main).
        self.load = subprocess.Popen(argv, cwd=ROOT, env=self.env, start_new_session=True)
        code = self.load.wait()
        self.load = None
        return code

    def interrupt_load(self) -> bool:
        """Pass a stop on to run_perf (it then stores what it measured); False when it is not running."""
        if self.load is None or self.load.poll() is not None:
            return False
        self.load.send_signal(signal.SIGINT)
        return True

    # --- what shows the path -----------------------------------------------------------------

    def evidence(self) -> dict[str, Any]:
        """The stored run (read through PgBouncer), PgBouncer's own view, and where the emails came from."""
        assert self.pgbouncer and self.database and self.catcher and self.email_worker
        report: dict[str, Any] = {"database": self.database.name, "pgbouncer_port": self.pgbouncer.port,
                                  "postgres_port": self.database.port, "api": self.api_url}
        report["run"], report["endpoints"], report["verified_accounts"] = self._stored_run()
        stats = [row for row in self.pgbouncer.show("STATS") if row["database"] == self.database.name]
        report["pgbouncer_transactions"] = int(stats[0]["total_xact_count"]) if stats else 0
        report["pgbouncer_queries"] = int(stats[0]["total_query_count"]) if stats else 0
        servers = [row for row in self.pgbouncer.show("SERVERS") if row["database"] == self.database.name]
        report["pgbouncer_server_ports"] = sorted(int(row["local_port"]) for row in servers)
        report["pgbouncer_pool_mode"] = next((row["pool_mode"] for row in self.pgbouncer.show("POOLS")
                                              if row["database"] == self.database.name), "")
        report["postgres_client_ports"] = self.database.client_ports()
        report["emails_received"] = self.catcher.count()
        report["registration_emails"] = self.catcher.count("to:locust-new- subject:verify")
        log = self.email_worker.log.read_text(errors="replace")
        report["worker_emails_sent"] = worker_task_count(log, "succeeded in [0-9.e-]+s: 'sent'")
        report["worker_email_retries_and_failures"] = worker_task_count(
            log, "succeeded in [0-9.e-]+s: 'failed'|raised|retry")
        report["pids"] = {name: child.pid for name, child in self._children() if child.pid}
        return report

    def _stored_run(self) -> tuple[dict[str, Any], dict[str, dict[str, int]], int]:
        import psycopg

        assert self.pgbouncer
        label = f"stack demo {self.tag}"
        with psycopg.connect(self.pgbouncer.url.replace("postgres://", "postgresql://"), prepare_threshold=None,
                             autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT id, status, total_requests, total_failures, requests_per_second, p95, audit FROM perf_perfrun "
                "WHERE label = %s ORDER BY id DESC LIMIT 1", (label,)).fetchone()
            if row is None:
                return {}, {}, 0
            run = dict(zip(("id", "status", "requests", "failures", "rps", "p95", "audit"), row, strict=True))
            endpoints = {
                f"{method} {name}": {"requests": requests, "failures": failures}
                for method, name, requests, failures in conn.execute(
                    "SELECT method, name, num_requests, num_failures FROM perf_endpointstats WHERE run_id = %s "
                    "AND NOT is_aggregated", (run["id"],))
            }
            verified = conn.execute("SELECT count(*) FROM backend_user WHERE email LIKE 'locust-new-%%' AND "
                                    "email_verified").fetchone()[0]
        audit = run.pop("audit") or {}
        run["audit_ok"] = audit.get("ok") if isinstance(audit, dict) else None
        return run, endpoints, int(verified)

    # --- down -------------------------------------------------------------------------------

    def _children(self) -> list[tuple[str, Child]]:
        pairs = [("gunicorn", self.web), ("email-worker", self.email_worker), ("shard-worker", self.shard_worker),
                 ("mail-catcher", self.catcher.child if self.catcher else None),
                 ("pgbouncer", self.pgbouncer.child if self.pgbouncer else None),
                 ("redis-server", self.broker.child if self.broker else None)]
        return [(name, child) for name, child in pairs if child is not None]

    def down(self) -> list[str]:
        """Stop everything in order, whatever fails on the way; the problems, one line each."""
        errors: list[str] = []
        if self.load is not None and self.load.poll() is None:
            self.load.send_signal(signal.SIGINT)
            try:
                self.load.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.load.kill()
                errors.append("run_perf did not stop within 60 s of SIGINT: killed")
        errors += stop_all(child for _, child in self._children() if child.name != "pgbouncer"
                           and child.name != "redis-server")
        if self.broker is not None:
            try:
                self.broker.forget([self.email_queue, self.shard_queue])
            except Exception as exc:
                errors.append(f"cleaning the queues in Redis: {type(exc).__name__}: {exc}")
        errors += stop_all(child for _, child in self._children() if child.name in ("pgbouncer", "redis-server"))
        if self.database is not None:
            try:
                self.database.drop()
            except Exception as exc:
                errors.append(f"dropping database {self.database.name}: {type(exc).__name__}: {exc}")
        return errors


def worker_task_count(log: str, outcome: str) -> int:
    """How many times a Celery worker's INFO log says the email task ended in ``outcome`` (a regex)."""
    return len(re.findall(rf"Task {re.escape(EMAIL_TASK)}\[[^\]]+\] (?:{outcome})", log))


def say(message: str) -> None:
    print(f"stack: {message}", flush=True)


def print_summary(report: dict[str, Any], options: Options) -> None:
    run = report["run"]
    if not run:
        say("no run was stored")
        return
    say(f"run {run['id']} stored through PgBouncer: {run['status']}, {run['requests']} requests, "
        f"{run['failures']} failures, {run['rps']:.1f} req/s, p95 {run['p95']:.0f} ms")
    for method, name in FLOW_ENDPOINTS:
        figures = report["endpoints"].get(f"{method} {name}")
        if figures:
            say(f"  {method} {name}: {figures['requests']} requests, {figures['failures']} failures")
    say(f"emails: {report['worker_emails_sent']} sent by the Celery email worker, {report['emails_received']} "
        f"received by the catcher, {report['verified_accounts']} new accounts verified from them")
    direct = sorted(set(report["postgres_client_ports"]) - set(report["pgbouncer_server_ports"]))
    say(f"PgBouncer served {report['pgbouncer_transactions']} transactions ({report['pgbouncer_queries']} queries) "
        f"to {report['database']}; PostgreSQL saw {len(report['postgres_client_ports'])} connections to it, "
        f"{'all' if not direct else 'NOT all'} from PgBouncer")


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0], allow_abbrev=False)
    # String defaults go through ``type`` too, so a bad STACK_USERS is the same one-line error as a bad --users.
    parser.add_argument("--users", type=_positive_int, default=os.environ.get("STACK_USERS", "100"),
                        help="simulated users (default 100, or STACK_USERS)")
    parser.add_argument("--duration", type=_positive_int, default=os.environ.get("STACK_DURATION", "60"),
                        help="seconds of load (default 60, or STACK_DURATION)")
    parser.add_argument("--spawn-rate", type=float, default=10.0, help="users started per second (default 10)")
    parser.add_argument("--shards", type=int, default=0,
                        help="run the users as N Celery shards on the stack's shard worker (default 0: one process)")
    parser.add_argument("--postgres-url", default=os.environ.get("STACK_POSTGRES_URL", DEFAULT_POSTGRES_URL),
                        help=f"PostgreSQL server for the scratch database (default {DEFAULT_POSTGRES_URL})")
    parser.add_argument("--report", type=Path, help="also write the figures and the evidence as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, pgbouncer.ini)")
    parser.add_argument("--pgbouncer", help="the pgbouncer binary (default: on PATH, else /usr/sbin/pgbouncer)")
    args = parser.parse_args(argv)
    if not (args.spawn_rate > 0) or args.spawn_rate == float("inf"):
        parser.error("--spawn-rate must be a positive number")
    if args.shards < 0:
        parser.error("--shards must be 0 or more")
    return Options(users=args.users, duration=args.duration, spawn_rate=args.spawn_rate, shards=args.shards,
                   postgres_url=args.postgres_url, report=args.report, keep=args.keep, pgbouncer=args.pgbouncer)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="perfkit-stack-"))
    stack = Stack(options, workdir)
    signals: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signals.append(signum)
        if not stack.interrupt_load():  # run_perf stores its run and ends; elsewhere, unwind to the teardown
            raise Interrupted(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 1
    try:
        say(f"logs in {workdir}")
        stack.up()
        stack.seed()
        started = time.monotonic()
        code = stack.run_load()
        report = stack.evidence()
        report["seconds"] = round(time.monotonic() - started, 1)
        report["run_perf_exit_code"] = code
        print_summary(report, options)
        if options.report:
            options.report.write_text(json.dumps(report, indent=2, default=str))
    except Missing as exc:
        print(f"stack: {exc}", file=sys.stderr)
        code = 2
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        code = 1
    except Interrupted:
        pass
    except Exception as exc:  # psycopg, redis, requests: still one line, and the teardown below
        print(f"stack: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
              file=sys.stderr)
        code = 1
    finally:
        # A second Ctrl-C must not cut the teardown short.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        for problem in stack.down():
            print(f"stack: {problem}", file=sys.stderr)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        done = []
        if stack.database is not None and stack.database.dropped:
            done.append(f"scratch database {stack.database.name} dropped")
        # Logs are worth keeping when a service or the run went wrong (not for a missing piece or a Ctrl-C).
        if options.keep or (code not in (0, 2) and not signals):
            done.append(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
            done.append("temporary folder removed")
        say(f"stopped; {', '.join(done)}")
    if signals:
        return 128 + signals[0]
    return code


if __name__ == "__main__":
    sys.exit(main())
