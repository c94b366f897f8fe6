"""The backend's own Celery app: the platform sends its emails from a Celery task, so this one does too.

It is separate from ``perf.celery`` (the load generator's shard workers) because the backend must not
depend on the load-testing toolkit, and because the two kinds of worker have different jobs: a shard
holds its worker slot for a whole run, an email takes milliseconds. Both apps read the same Django
settings (``CELERY_*``, so the same broker); emails go to their own queue, ``EMAIL_CELERY_QUEUE``
(default ``email``), which only the email worker consumes, so a load shard never waits behind emails
and an email never waits behind a shard:

    celery -A backend.celery worker -Q email -P threads -c 4

Only used when ``EMAIL_VIA_CELERY`` is on (backend/emails.py); otherwise emails are sent in the
request's process and nothing here is imported.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings_perf")

app = Celery("backend")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["backend"])
