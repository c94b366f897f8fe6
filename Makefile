# perfkit: `make demo` (seed, serve, load run), `make test` (the suite on SQLite and, at the same time, on
# PostgreSQL when one answers on 127.0.0.1:5432). Targets create .venv when missing.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# gunicorn.conf.py holds the server's settings (worker class, keep-alive, time-outs); these size it.
WORKERS ?= 4
THREADS ?= 2
PG_URL ?= postgres://postgres@127.0.0.1:5432/postgres

.PHONY: install migrate seed serve demo test test-fast test-sqlite test-postgres lint typecheck clean bench-venv bench soak stack-demo

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --no-input -v0

seed: migrate
	$(PY) manage.py bootstrap_perf_tests

# Verification emails are written to var/mail/ unless EMAIL_URL says otherwise.
serve: seed
	EMAIL_URL=$${EMAIL_URL:-filemail:///$(CURDIR)/var/mail} SYSTEM_TESTING=True $(VENV)/bin/gunicorn -c gunicorn.conf.py --bind $(HOST):$(PORT) \
		--workers $(WORKERS) --threads $(THREADS)

demo: migrate
	$(PY) manage.py bootstrap_perf_tests --reset
	HOST=$(HOST) PORT=$(PORT) WORKERS=$(WORKERS) THREADS=$(THREADS) scripts/demo.sh

# docker-compose-test.yaml's production-like stack without Docker (scripts/stack_demo.py): PostgreSQL through
# PgBouncer, Redis, Celery email and shard workers, gunicorn, the mail catcher; 100 users for 60 s by default
# (STACK_USERS, STACK_DURATION). Needs Debian's pgbouncer and a PostgreSQL on 127.0.0.1:5432.
stack-demo: install
	$(PY) scripts/stack_demo.py

lint: install
	$(VENV)/bin/ruff check .

# mypy as configured in pyproject.toml: the default level over perf/, strict over the engine (perf/load).
typecheck: install
	$(VENV)/bin/mypy

test-sqlite: install
	env -u DATABASE_URL $(PY) -m pytest $(PASS_OPTIONS)

test-postgres: install
	@if $(PY) scripts/pg_available.py "$(PG_URL)"; then \
		DATABASE_URL="$(PG_URL)" $(PY) -m pytest $(PASS_OPTIONS); \
	else \
		echo "PostgreSQL not reachable at $(PG_URL): skipping the PostgreSQL run"; \
	fi

# The two passes run at once: the suite mostly waits on servers, timers and child processes, so two passes share
# two cores well, and each has its own database, server, Celery queues and ports. -O prints each pass whole.
# --two-passes shares the tests that need one pass only out between them (tests/conftest.py), so that both end
# together; without a PostgreSQL server the SQLite pass runs alone, and runs them all.
test: lint typecheck
	@if $(PY) scripts/pg_available.py "$(PG_URL)"; then \
		$(MAKE) --no-print-directory -j2 -O test-sqlite test-postgres PASS_OPTIONS="--two-passes --durations=25"; \
	else \
		echo "PostgreSQL not reachable at $(PG_URL): the SQLite pass alone"; \
		$(MAKE) --no-print-directory test-sqlite; \
	fi

# The edit-test loop: ruff, then the suite on SQLite without the load runs marked slow.
test-fast: lint
	env -u DATABASE_URL $(PY) -m pytest -m "not slow"

# Locust in a virtualenv of its own, only to measure against it (benchmarks/generator.py).
benchmarks/.venv-locust/bin/locust:
	$(PYTHON) -m venv benchmarks/.venv-locust
	benchmarks/.venv-locust/bin/pip install -q --disable-pip-version-check locust==2.47.0

bench-venv: benchmarks/.venv-locust/bin/locust

# Speed, memory and query-count figures (never part of `make test`); nginx and wrk from Debian.
bench: install bench-venv
	$(PY) benchmarks/generator.py
	$(PY) benchmarks/mix.py
	$(PY) benchmarks/agreement.py
	$(PY) benchmarks/memory.py
	$(PY) benchmarks/stats.py
	$(PY) benchmarks/seed.py
	$(PY) benchmarks/queries.py

# A 30-minute, 100-user soak against the backend slowed to 100-400 ms an answer: the generator's memory and open
# files over time, and the run reconciled with gunicorn's access log (never part of `make test`).
soak: install
	$(PY) benchmarks/soak.py

clean:
	rm -rf $(VENV) perf.sqlite3 perf.sqlite3-wal perf.sqlite3-shm
