"""The Celery app that carries ``run_perf --distributed celery`` shards to workers on any machine.

Configuration comes from Django settings (``CELERY_*``, read from the environment in settings_perf.py).
No result backend: a shard reports through the database (``perf.models.ShardReport``), which every
machine already shares, so the broker only has to deliver each task once.

Start a worker with ``celery -A perf.celery worker -P gevent``: the gevent pool monkey-patches the
standard library before anything else is imported, which the load engine needs (as manage.py does
for ``run_perf``), and lets one worker run several shards side by side (``-c N``: N shards at once; Celery's
default is one per CPU).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings_perf")

app = Celery("perf")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["perf"])
