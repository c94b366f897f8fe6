"""The Celery app that carries ``run_perf --distributed celery`` shards to workers on any machine.

Configuration comes from the host project's Django settings (``CELERY_*``), named by ``DJANGO_SETTINGS_MODULE``
as for ``manage.py``: this module ships in the wheel, so it names no project's settings of its own. No result
backend: a shard reports through the database (``perf.models.ShardReport``), which every machine already
shares, so the broker only has to deliver each task once.

Start a worker with ``DJANGO_SETTINGS_MODULE=mysite.settings celery -A perf.celery worker -P gevent``: the gevent
pool monkey-patches the standard library before anything else is imported, which the load engine needs (as
manage.py does for ``run_perf``), and lets one worker run several shards side by side (``-c N``: N shards at once;
Celery's default is one per CPU).
"""

import os

from celery import Celery

# Django's own message for the same mistake is a traceback from deep inside the first settings read.
if not os.environ.get("DJANGO_SETTINGS_MODULE"):
    from django.conf import settings

    if not settings.configured:
        raise SystemExit("perf.celery: DJANGO_SETTINGS_MODULE is not set; set it to your project's settings module, "
                         "e.g. DJANGO_SETTINGS_MODULE=mysite.settings celery -A perf.celery worker -P gevent")

app = Celery("perf")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["perf"])
