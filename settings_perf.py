"""The only settings module: everything comes from the environment (django-environ).

Defaults make a fresh clone work with nothing configured: SQLite in the project folder,
DEBUG on, emails written to the console. See README.md for the table of variables.
"""

import contextlib
import os
from pathlib import Path

import environ

from backend.artificial_delay import parse_delay_ms
from backend.secret_key import read_or_create

BASE_DIR = Path(__file__).resolve().parent

env = environ.Env(
    DEBUG=(bool, True),
    SYSTEM_TESTING=(bool, False),
    ALLOWED_HOSTS=(list, ["localhost", "127.0.0.1", "[::1]", "testserver"]),
)
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env("DEBUG")
# No key is ever written in the code (anyone could sign tokens with it): without SECRET_KEY, this install's own
# random key, made once in SECRET_KEY_FILE and read by every process (backend/secret_key.py).
SECRET_KEY = env.str("SECRET_KEY", default="") or read_or_create(
    Path(env.str("SECRET_KEY_FILE", default=str(BASE_DIR / ".secret_key")))
)
ALLOWED_HOSTS = env("ALLOWED_HOSTS")
# Return verification tokens in X-Test-* response headers so load tests need no mailbox.
SYSTEM_TESTING = env("SYSTEM_TESTING")
# Fault injection for soaks and fault probes of this real backend (backend/artificial_delay.py): "100-400" makes each
# /api/ request wait a uniform random 100-400 ms before it is handled. Unset or empty: off.
try:
    BACKEND_ARTIFICIAL_DELAY_MS = parse_delay_ms(env.str("BACKEND_ARTIFICIAL_DELAY_MS", default=""))
except ValueError as exc:
    raise environ.ImproperlyConfigured(str(exc)) from None

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "backend",
    "perf",
    "platform_pack",
]

MIDDLEWARE = [
    # Outermost, so the app time it reports covers every other middleware and the view.
    "perf.middleware.ServerTimingMiddleware",
    # Next, so it sees every error the others answer: those under /api/ become JSON, DEBUG or not.
    "backend.middleware.JsonApiErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Only with BACKEND_ARTIFICIAL_DELAY_MS: after WhiteNoise (static files never wait), inside Server-Timing.
    "backend.artificial_delay.ArtificialDelayMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "backend.urls"
WSGI_APPLICATION = "backend.wsgi.application"
AUTH_USER_MODEL = "backend.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]



def _create_private(name: str) -> None:
    """Create a new SQLite file readable by its owner only (0600, as ``.secret_key``): it will hold password
    hashes and live admin sessions, and SQLite would make it 0644. An existing file keeps its mode."""
    if not name or name == ":memory:" or name.startswith("file:") or not os.path.isdir(os.path.dirname(name) or "."):
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def database_from_url(url: str) -> dict:
    """Django's DATABASES entry for ``url``, with the settings this project needs on each vendor."""
    config = environ.Env.db_url_config(url)
    # Every request is one transaction, as on the platform (docs/api.md, "Decisions").
    config["ATOMIC_REQUESTS"] = True
    if config["ENGINE"] == "django.db.backends.sqlite3":
        _create_private(str(config.get("NAME") or ""))
        # A multi-worker server on SQLite: WAL lets readers run beside the one writer, IMMEDIATE
        # takes the write lock at BEGIN (no lock-upgrade deadlocks, so capacity checks serialize),
        # and the busy timeout makes writers queue instead of failing with "database is locked".
        config.setdefault("OPTIONS", {}).update(
            {
                "transaction_mode": "IMMEDIATE",
                # Seconds a writer waits for the lock (SQLITE_BUSY_TIMEOUT); run_perf retries beyond it.
                "timeout": env.int("SQLITE_BUSY_TIMEOUT", default=30),
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            }
        )
    else:
        config["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
        config["CONN_HEALTH_CHECKS"] = True
        pooling = env("DATABASE_POOLING", default="session")
        if pooling == "transaction":
            # Behind PgBouncer in transaction pooling each transaction may get another server
            # connection, so nothing may outlive one: no server-side cursors (iterator() would
            # DECLARE on one connection and FETCH on another) and no prepared statements
            # (psycopg would PREPARE on one and EXECUTE on another). Persistent client
            # connections stay: connecting to the pooler costs a SCRAM handshake per request,
            # and the health checks notice a pooler that restarted or dropped an idle client.
            config["DISABLE_SERVER_SIDE_CURSORS"] = True
            config.setdefault("OPTIONS", {})["prepare_threshold"] = None
        elif pooling != "session":
            raise environ.ImproperlyConfigured(
                f"DATABASE_POOLING must be 'session' (the default: a direct connection or a session pooler) "
                f"or 'transaction' (PgBouncer's pool_mode=transaction), got {pooling!r}"
            )
    return config


DATABASES = {"default": database_from_url(env("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'perf.sqlite3'}"))}

vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="noreply@perfkit.local")
# Send emails as the platform does, from a Celery task (backend/tasks.py) queued on commit, instead of in
# the request's process: needs the broker (CELERY_BROKER_URL) and an email worker consuming EMAIL_CELERY_QUEUE,
# `celery -A backend.celery worker -Q email` (backend/celery.py).
EMAIL_VIA_CELERY = env.bool("EMAIL_VIA_CELERY", default=False)
# Emails' own queue, so they never wait behind a load shard (CELERY_TASK_DEFAULT_QUEUE) nor a shard behind them.
EMAIL_CELERY_QUEUE = env("EMAIL_CELERY_QUEUE", default="email")
FRONTEND_BASE_URL = env("FRONTEND_BASE_URL", default="http://localhost:5173")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# JWTs (docs/api.md, "Authentication"): HS256 with SECRET_KEY, audience letsrevel.io.
JWT_AUDIENCE = env("JWT_AUDIENCE", default="letsrevel.io")
ACCESS_TOKEN_LIFETIME_HOURS = env.int("ACCESS_TOKEN_LIFETIME_HOURS", default=1)
REFRESH_TOKEN_LIFETIME_DAYS = env.int("REFRESH_TOKEN_LIFETIME_DAYS", default=30)
VERIFY_TOKEN_LIFETIME_MINUTES = env.int("VERIFY_TOKEN_LIFETIME_MINUTES", default=15)

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# WhiteNoise finds the admin's files in the apps, so gunicorn serves them without collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="WARNING")},
}

# perfkit's scenario pack for this backend (docs/architecture.md): the generic app `perf` finds the platform's
# scenarios, shared context, integrity checks and seed hook through these names, never by importing the pack.
PERF_SCENARIOS = "platform_pack.scenarios"
PERF_CONTEXT = "platform_pack.context.PlatformContext"
PERF_AUDIT_CHECKS = ["platform_pack.integrity.platform_invariants"]
PERF_SEED_HOOK = "platform_pack.seed.seed_for_run"
# run_perf's target without --host or LOCUST_BACKEND_URL, and the path that must answer 200 before a run.
PERF_HOST = "http://localhost:8000/api"
PERF_HEALTHCHECK_PATH = "/healthcheck"

# perfkit's settings the environment may set, passed on as written: their defaults, what each takes and who reads it
# are in perf/conf.py, one table (docs/adopting.md, "Settings"), which parses them, so a wrong value is a one-line
# error of `manage.py check` and of every perf command, naming the setting (perf/checks.py).
# Save patience, shard time-out, lost-after, the New run page's limits, the admin password file, where runs start:
for _name in ("PERF_SAVE_PATIENCE", "PERF_SHARD_TIMEOUT", "PERF_LOST_AFTER", "PERF_WEB_MAX_USERS",
              "PERF_WEB_MAX_DURATION", "PERF_WEB_MAX_RUNS", "PERF_ADMIN_PASSWORD_FILE", "PERF_LAUNCH_VIA"):
    if _name in os.environ:
        vars()[_name] = os.environ[_name]
# Remote targets (not a loopback address): run_perf sends load to one only with --allow-remote AND when its host name
# matches this list, comma-separated (Django's ALLOWED_HOSTS patterns: "staging.example.com", ".example.com").
if "PERF_ALLOWED_HOSTS" in os.environ:
    PERF_ALLOWED_HOSTS = env.list("PERF_ALLOWED_HOSTS")

# run_perf --distributed celery: shard tasks go through this broker (Redis) to `celery -A perf.celery worker -P gevent`
# workers; their figures come back through the database, so no result backend is configured.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
# Its own queue, so shard tasks never land on the platform's workers that share the broker.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="perf")
# A shard is acknowledged when it ends, and a worker holds no more shards than it has slots for.
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Run tasks in the caller's process instead of sending them (tests; a one-process setup without a worker).
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
