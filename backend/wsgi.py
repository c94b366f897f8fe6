"""WSGI entry point for gunicorn: ``gunicorn backend.wsgi``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings_perf")

application = get_wsgi_application()
