from django.apps import AppConfig


class BackendConfig(AppConfig):
    """The events API under test: a compact twin of the platform's HTTP contract."""

    name = "backend"
    default_auto_field = "django.db.models.BigAutoField"
