from django.apps import AppConfig


class PerfConfig(AppConfig):
    """The load-testing toolkit: seeding, the run_perf engine, stored runs."""

    name = "perf"
    verbose_name = "Performance runs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the checks of the PERF_* settings (perf/checks.py) with Django's system checks framework.
        from perf import checks  # noqa: F401
