"""What the platform's simulated users share in one process: the generic context (notes, shared
lookups, audit facts, the account counter) plus the pack's configuration and Mailpit client.
``PERF_CONTEXT`` names ``PlatformContext``; ``perf.packs.make_context`` makes one per process.
"""

from dataclasses import dataclass, field

from perf import SharedContext
from platform_pack.clients.mailpit import MailpitClient
from platform_pack.config import PlatformConfig, load_platform_config
from platform_pack.seeded import perf_user_email

# The audit's fact: accounts the API answered 200 to on verification (platform_pack.integrity).
VERIFIED_EMAILS = "verified_emails"


@dataclass
class PlatformContext(SharedContext):
    config: PlatformConfig = field(default_factory=load_platform_config)
    mailpit: MailpitClient | None = None

    def __post_init__(self) -> None:
        if self.mailpit is None:
            self.mailpit = MailpitClient(self.config.mailpit_url)

    def next_account(self) -> str:
        """Pre-seeded accounts handed out in turn (disjoint across processes and shards), so users share
        one only beyond N users."""
        return perf_user_email(self.next_number() % self.config.num_preseeded_users)
