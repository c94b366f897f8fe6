"""gunicorn's settings for the backend, read from the working directory by every way it is served:
``make serve``, ``make demo``, the test suite's live server, the stack demo and the Docker image.

Command-line flags still win (``--workers``, ``--threads``), so a caller can size the server
without a second copy of the rest.
"""

import os

wsgi_app = "backend.wsgi"

# 2 cores here: 4 workers x 2 threads keeps both busy while requests wait on the database.
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
worker_class = "gthread"

# Keep idle connections longer than any simulated user thinks between requests (1-3 s by default,
# `--wait-time` can say more). gunicorn's default of 2 s closes a connection just as its client
# reuses it: the client then sees ConnectionResetError/RemoteDisconnected (Locust's HttpUser
# counts those as failures), or, as run_perf does, reconnects and pays a TCP handshake that a
# real browser behind a load balancer (60 s idle by default on AWS's) would not. 75 s outlasts
# those balancers, so the server, never the balancer, is the side that closes.
keepalive = 75

# Load tests hold requests in the database for a while on a busy machine: a worker is killed
# only after 120 s without a word, and stopping waits 5 s for requests in flight.
timeout = 120
graceful_timeout = 5

# The access log (written only when asked for: --access-logfile PATH) is the server's side of a run's
# reconciliation (perf/analysis/reconcile.py): gunicorn's default fields, then the time the request took in
# microseconds and the X-Perf-Request id run_perf --request-log sends, so each line pairs with the
# client's record of the same request.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s %({x-perf-request}i)s'
