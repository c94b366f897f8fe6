#!/usr/bin/env bash
# Serve the seeded backend with gunicorn, wait for it, run a short load against it with
# run_perf (stored in the database, visible in the admin), and stop the server again.
# Called by `make demo` after migrate + seed.
set -euo pipefail
cd "$(dirname "$0")/.."

HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
WORKERS=${WORKERS:-4}
THREADS=${THREADS:-2}
DEMO_USERS=${DEMO_USERS:-30}
DEMO_DURATION=${DEMO_DURATION:-30s}
URL="http://$HOST:$PORT"

# Emails (registration's verification links) go to files, not into this output.
export EMAIL_URL=${EMAIL_URL:-filemail:///$PWD/var/mail}
SYSTEM_TESTING=True .venv/bin/gunicorn -c gunicorn.conf.py --bind "$HOST:$PORT" \
    --workers "$WORKERS" --threads "$THREADS" --log-level warning &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
    if curl -fsS "$URL/api/healthcheck" >/dev/null 2>&1; then break; fi
    if ! kill -0 $SERVER 2>/dev/null; then echo "server failed to start (is port $PORT taken?)" >&2; exit 1; fi
    sleep 0.2
done
curl -fsS "$URL/api/healthcheck" >/dev/null || { echo "server did not answer $URL/api/healthcheck" >&2; exit 1; }
echo "Server up at $URL (gunicorn, $WORKERS workers x $THREADS threads)"

echo "Events listed by GET $URL/api/events/:"
curl -fsS "$URL/api/events/" | .venv/bin/python -c 'import json,sys; [print("  -", e["slug"]) for e in json.load(sys.stdin)["results"]]'

echo
.venv/bin/python manage.py run_perf --host "$URL/api" --users "$DEMO_USERS" --spawn-rate 10 \
    --duration "$DEMO_DURATION" --label "make demo"
echo "Browse the run: make serve, then $URL/admin/ as perfkit-admin (its password is in .admin_password)"
