"""``manage.py bootstrap_perf_tests [--reset] [--users N] [--force]``: seed the load-test data.

The command only parses options and guards against production; platform_pack/seed.py does the work.
"""

from django.core.management.base import CommandParser
from django.db import transaction

from perf.management.base import PerfCommand
from perf.web.admin_login import ensure_admin_login
from platform_pack import seed
from platform_pack.config import load_platform_config


class Command(PerfCommand):
    help = (
        "Create (or restore) the organization, users, events, tiers and questionnaire that the load "
        "scenarios use. Idempotent; --reset deletes the perf data first."
    )

    needs_apps = ("backend",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Delete the perf organization, questionnaire and perf-*/locust-new-* users first, then seed.",
        )
        parser.add_argument(
            "--users",
            type=int,
            metavar="N",
            help="How many perf-user-N@test.com users to seed (default: LOCUST_NUM_PRESEEDED_USERS, else 100).",
        )
        parser.add_argument(
            "--force", action="store_true", help="Seed even when DEBUG is False (the database may be production)."
        )

    def handle(self, *args, reset: bool, users: int | None, force: bool, **options) -> None:
        try:
            seed.check_may_seed(force=force)
            config = load_platform_config()
        except ValueError as error:
            raise self.usage_error(str(error)) from None
        num_users = config.num_preseeded_users if users is None else users
        if not 1 <= num_users <= seed.MAX_USERS:
            raise self.usage_error(f"--users must be between 1 and {seed.MAX_USERS:,}, got {num_users}.")
        self.require_database()

        try:
            with transaction.atomic():
                deleted = seed.reset() if reset else None
                summary = seed.seed(
                    num_users=num_users, password=config.default_password, tier_capacity=config.ticket_tier_capacity
                )
        except seed.SeedError as error:
            raise self.usage_error(str(error)) from None

        if deleted is not None:
            # "backend.Event" -> "Event": every label is one of the backend's models or their M2M tables.
            removed = ", ".join(f"{count} {label.split('.')[-1]}" for label, count in deleted.items()) or "nothing"
            self.stdout.write(f"Reset: deleted {removed}.")
        self.stdout.write(self.style.SUCCESS("Performance test data is ready."))
        for line in summary.lines():
            self.stdout.write(line)
        self.stdout.write(ensure_admin_login())
