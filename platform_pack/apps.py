from django.apps import AppConfig


class PlatformPackConfig(AppConfig):
    """The events platform's scenario pack: an app for its ``bootstrap_perf_tests`` command."""

    name = "platform_pack"
    verbose_name = "Platform scenario pack"
