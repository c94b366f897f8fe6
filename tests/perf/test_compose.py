"""Specification of the production-like stack (docker-compose-test.yaml, .env.test) and of the
settings that let Django run behind PgBouncer in transaction pooling.

No Docker engine here: Debian's ``docker-compose`` package validates and resolves the file without
one (``.ci/run`` installs it when missing), so the compose tests read what docker-compose itself
makes of the file, env file merged in. They are skipped when docker-compose is not installed.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import environ
import pytest

from settings_perf import database_from_url
from tests.liveserver import LiveServer

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose-test.yaml"
DOCKER_COMPOSE = shutil.which("docker-compose")
SERVICES = {"web", "celery", "email-worker", "seed", "postgres", "pgbouncer", "redis", "mailpit"}
# docker-compose 1.x prints YAML only; the Python it runs on has PyYAML, one of its dependencies.
YAML_TO_JSON = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"

NO_COMPOSE = "docker-compose is not installed (Debian: apt-get install docker-compose; .ci/run does it)"
needs_compose = pytest.mark.skipif(DOCKER_COMPOSE is None, reason=NO_COMPOSE)


def compose(*args: str) -> subprocess.CompletedProcess:
    assert DOCKER_COMPOSE is not None
    return subprocess.run(
        [DOCKER_COMPOSE, "-f", str(COMPOSE_FILE), *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def _shebang_interpreter(path: str) -> str | None:
    first_line = Path(path).read_bytes()[:200].split(b"\n", 1)[0]
    if not first_line.startswith(b"#!"):
        return None  # a binary: docker-compose v2
    return first_line[2:].decode().strip().split()[0]


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """The stack as docker-compose resolves it (env_file merged into each service's environment)."""
    if DOCKER_COMPOSE is None:
        pytest.skip(NO_COMPOSE)
    version = compose("version", "--short").stdout.strip().lstrip("v")
    if not version.startswith("1."):  # v2 speaks JSON (v1 would print its usage for --format, exit 0)
        as_json = compose("config", "--format", "json")
        assert as_json.returncode == 0, as_json.stderr
        return json.loads(as_json.stdout)
    as_yaml = compose("config")
    assert as_yaml.returncode == 0, as_yaml.stderr
    interpreter = _shebang_interpreter(DOCKER_COMPOSE)
    if interpreter is None:
        pytest.skip("this docker-compose prints neither JSON nor runs on a Python with PyYAML")
    converted = subprocess.run(
        [interpreter, "-c", YAML_TO_JSON], input=as_yaml.stdout, capture_output=True, text=True, timeout=60
    )
    assert converted.returncode == 0, converted.stderr
    return json.loads(converted.stdout)


def environment(resolved: dict[str, Any], service: str) -> dict[str, str]:
    env = resolved["services"][service].get("environment", {})
    if isinstance(env, list):  # the KEY=VALUE form
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


@needs_compose
def test_compose_file_is_valid():
    result = compose("config", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


@needs_compose
def test_stack_has_the_eight_services():
    result = compose("config", "--services")
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == SERVICES


def test_web_healthcheck_probes_api_healthcheck_every_30s(resolved):
    check = resolved["services"]["web"]["healthcheck"]
    assert "http://localhost:8000/api/healthcheck" in " ".join(check["test"])
    assert (check["interval"], check["timeout"], check["retries"], check["start_period"]) == ("30s", "10s", 3, "40s")


@pytest.mark.once  # the live server is only the healthcheck's target: its database is incidental
def test_web_healthcheck_command_passes_on_a_live_server_and_fails_on_an_error(
    resolved, live_server_process: LiveServer
):
    """Run the probe's own command, pointed at the test server instead of the container's port."""
    test = resolved["services"]["web"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    probe = test[3].replace("http://localhost:8000/api", live_server_process.url)
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=30).returncode == 0
    missing = probe.replace("/healthcheck", "/no-such-endpoint")
    assert subprocess.run([sys.executable, "-c", missing], capture_output=True, timeout=30).returncode != 0


def test_web_migrates_then_serves_with_the_repositorys_gunicorn_settings(resolved):
    command = resolved["services"]["web"]["command"]
    command = command if isinstance(command, str) else " ".join(command)
    assert command.index("manage.py migrate") < command.index("gunicorn -c gunicorn.conf.py")
    assert "--workers" not in command and "--keep-alive" not in command  # one place: gunicorn.conf.py


def test_web_reaches_postgres_only_through_pgbouncer_in_transaction_pooling(resolved):
    web = environment(resolved, "web")
    assert urlsplit(web["DATABASE_URL"]).hostname == "pgbouncer"
    assert web["DATABASE_POOLING"] == "transaction"
    pgbouncer = environment(resolved, "pgbouncer")
    assert pgbouncer["POOL_MODE"] == "transaction"
    assert urlsplit(pgbouncer["DATABASE_URL"]).hostname == "postgres"
    assert resolved["services"]["postgres"]["image"].startswith("postgres:17")


def test_web_settings_from_the_env_file_disable_what_transaction_pooling_breaks(resolved, monkeypatch):
    web = environment(resolved, "web")
    monkeypatch.setenv("DATABASE_POOLING", web["DATABASE_POOLING"])
    config = database_from_url(web["DATABASE_URL"])
    assert config["HOST"] == "pgbouncer"
    assert config["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert config["OPTIONS"]["prepare_threshold"] is None


def test_env_file_sends_email_to_mailpit(resolved):
    email = environ.Env.email_url_config(environment(resolved, "web")["EMAIL_URL"])
    assert (email["EMAIL_BACKEND"], email["EMAIL_HOST"], email["EMAIL_PORT"]) == (
        "django.core.mail.backends.smtp.EmailBackend", "mailpit", 1025,
    )
    published = {port.split(":")[-1].split("/")[0] for port in map(str, _ports(resolved, "mailpit"))}
    assert {"8025", "1025"} <= published


def _ports(resolved: dict[str, Any], service: str) -> list[Any]:
    ports = resolved["services"][service].get("ports", [])
    # v2 resolves ports to {"target": 8025, "published": "8025", ...}; v1 keeps the short strings.
    return [f"{port.get('published')}:{port['target']}" if isinstance(port, dict) else port for port in ports]


def test_env_file_marks_its_secret_key_not_for_production(resolved):
    web = environment(resolved, "web")
    assert "NOT-FOR-PRODUCTION" in web["SECRET_KEY"]
    assert web["DEBUG"] == "False"
    # Production-like: no tokens in headers, so run_perf's registration reads them from Mailpit.
    assert web["SYSTEM_TESTING"] == "False"
    assert web["LOCUST_MAILPIT_URL"] == "http://mailpit:8025"
    assert "localhost" in web["ALLOWED_HOSTS"].split(",")
    assert web["CELERY_BROKER_URL"] == "redis://redis:6379/0"
    assert web["LOCUST_BACKEND_URL"] == "http://localhost:8000/api"


def test_services_start_only_after_their_dependencies_are_healthy(resolved):
    services = resolved["services"]
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)
            assert "healthcheck" in services[dependency], dependency
    assert {"pgbouncer", "redis", "mailpit"} <= set(services["web"]["depends_on"])
    assert "postgres" in services["pgbouncer"]["depends_on"]


def test_celery_runs_perf_workers_on_gevent_beside_web(resolved):
    celery = resolved["services"]["celery"]
    command = celery["command"] if isinstance(celery["command"], str) else " ".join(celery["command"])
    assert command == "celery -A perf.celery worker -P gevent --loglevel=info"
    assert celery["network_mode"] == "service:web"  # shards reach gunicorn on loopback


def test_emails_are_queued_on_their_own_queue_for_the_email_worker(resolved):
    """web queues each email as a Celery task; only email-worker consumes that queue, with the backend's
    own Celery app, so a load shard (the celery service, queue perf) never waits behind emails."""
    web = environment(resolved, "web")
    assert web["EMAIL_VIA_CELERY"] == "True"
    queue = web["EMAIL_CELERY_QUEUE"]
    assert queue and queue != web.get("CELERY_TASK_DEFAULT_QUEUE", "perf")
    worker = resolved["services"]["email-worker"]
    command = worker["command"] if isinstance(worker["command"], str) else " ".join(worker["command"])
    assert command.startswith("celery -A backend.celery worker ")
    assert f"-Q {queue}" in command
    assert environment(resolved, "email-worker") == web  # one .env.test: same broker, same EMAIL_URL
    assert {"redis", "mailpit"} <= set(worker["depends_on"])
    shards = resolved["services"]["celery"]["command"]
    shards = shards if isinstance(shards, str) else " ".join(shards)
    assert "-Q" not in shards and "backend.celery" not in shards  # shards keep their queue to themselves


def test_the_email_worker_command_starts_a_worker_that_knows_the_email_task():
    """The command's app is importable and registers the task web queues (no broker needed to check)."""
    probe = ("import django; django.setup(); from backend.celery import app; app.loader.import_default_modules(); "
             "from backend.tasks import SEND_VERIFICATION_EMAIL; assert SEND_VERIFICATION_EMAIL in app.tasks")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "DJANGO_SETTINGS_MODULE": "settings_perf"})
    assert result.returncode == 0, result.stderr


def test_published_ports_listen_on_loopback_only(resolved):
    for name in resolved["services"]:
        for port in _ports(resolved, name):
            assert str(port).startswith("127.0.0.1:"), (name, port)


# --- settings_perf.database_from_url: the DATABASE_POOLING switch (no docker-compose needed) -------


def test_transaction_pooling_turns_off_server_side_cursors_and_prepared_statements(monkeypatch):
    monkeypatch.setenv("DATABASE_POOLING", "transaction")
    config = database_from_url("postgres://perfkit:secret@pgbouncer:5432/perfkit")
    assert config["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert config["OPTIONS"]["prepare_threshold"] is None
    assert config["ATOMIC_REQUESTS"] is True
    assert config["CONN_HEALTH_CHECKS"] is True


def test_without_the_switch_postgres_keeps_server_side_cursors(monkeypatch):
    monkeypatch.delenv("DATABASE_POOLING", raising=False)
    config = database_from_url("postgres://postgres@127.0.0.1:5432/postgres")
    assert not config.get("DISABLE_SERVER_SIDE_CURSORS", False)
    assert "prepare_threshold" not in config.get("OPTIONS", {})


def test_unknown_pooling_mode_is_refused_naming_the_choices(monkeypatch):
    monkeypatch.setenv("DATABASE_POOLING", "statement")
    with pytest.raises(environ.ImproperlyConfigured, match="'session'.*'transaction'.*got 'statement'"):
        database_from_url("postgres://postgres@127.0.0.1:5432/postgres")


def test_transaction_pooling_options_reach_the_driver(monkeypatch):
    """Django's PostgreSQL backend passes them on: no prepared statements on each new connection."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    monkeypatch.setenv("DATABASE_POOLING", "transaction")
    settings_dict = database_from_url("postgres://perfkit:secret@pgbouncer:5432/perfkit")
    for key, default in (("TIME_ZONE", None), ("AUTOCOMMIT", True), ("TEST", {})):
        settings_dict.setdefault(key, default)
    params = DatabaseWrapper(settings_dict, alias="pooled").get_connection_params()
    assert params["prepare_threshold"] is None
    assert params["host"] == "pgbouncer"
