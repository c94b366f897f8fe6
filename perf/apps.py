from django.apps import AppConfig


class PerfConfig(AppConfig):
    """The load-testing toolkit: seeding, the run_perf engine, stored runs."""

    name = "perf"
    verbose_name = "Performance runs"
    default_auto_field = "django.db.models.BigAutoField"
