"""Small builders for test data, written through the ORM into the live database.

Names carry a random suffix because the live database is shared by the whole session.
"""

import functools
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.hashers import make_password
from django.utils import timezone

from backend.models import City, Event, Organization, OrganizationMember, TicketTier, User
from backend.tokens import make_pair

PASSWORD = "correct-Horse-battery-9"


@functools.cache
def password_hash() -> str:
    """Hash once per session: PBKDF2 at Django's default cost takes a noticeable fraction of a second."""
    return make_password(PASSWORD)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_user(**fields: Any) -> User:
    email = fields.pop("email", f"{unique('user')}@example.com")
    defaults = {"username": email, "email": email, "password": password_hash(), "email_verified": True}
    defaults.update(fields)
    return User.objects.create(**defaults)


def access_token(user: User) -> str:
    """An access token minted with the server's own code and key (login is tested on its own)."""
    return make_pair(user.id).access


def make_city() -> City:
    city, _ = City.objects.get_or_create(
        name="Vienna", country="Austria", defaults={"timezone": "Europe/Vienna", "admin_name": "Vienna"}
    )
    return city


def make_org(owner: User | None = None, **fields: Any) -> Organization:
    slug = fields.pop("slug", unique("org"))
    return Organization.objects.create(
        name=fields.pop("name", slug), slug=slug, owner=owner or make_user(), city=make_city(), **fields
    )


def make_member(org: Organization, user: User) -> OrganizationMember:
    return OrganizationMember.objects.create(organization=org, user=user)


def make_event(org: Organization | None = None, **fields: Any) -> Event:
    start = fields.pop("start", timezone.now() + timedelta(days=30))
    slug = fields.pop("slug", unique("event"))
    return Event.objects.create(
        organization=org or make_org(),
        name=fields.pop("name", slug),
        slug=slug,
        city=make_city(),
        address="Test Venue, Vienna",
        start=start,
        end=fields.pop("end", start + timedelta(hours=3)),
        **fields,
    )


def make_tier(event: Event, **fields: Any) -> TicketTier:
    defaults: dict[str, Any] = {
        "name": unique("tier"),
        "payment_method": TicketTier.PaymentMethod.FREE,
        "price": Decimal("0.00"),
        "total_quantity": 10000,
        "sales_start_at": timezone.now() - timedelta(days=1),
        "sales_end_at": event.start - timedelta(days=1),
    }
    defaults.update(fields)
    return TicketTier.objects.create(event=event, **defaults)
