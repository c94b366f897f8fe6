"""What ``bootstrap_perf_tests`` creates and deletes (docs/api.md, "Seeded data" and "Decisions").

This is the only toolkit module, beside the integrity audit and the scenarios, that knows the
backend's models. The slugs and email patterns live in ``platform_pack.seeded`` (no Django imports), which
both this module and the scenarios use, so the data they look for and the data seeded cannot drift.

Seeding is idempotent: rows are found by natural keys (users by email, events by organization and
slug, tiers by event, the questionnaire by name through its organization link) and brought back to
the specification, so a second run keeps every id. Users are written in bulk with one password
hash, because hashing at Django's default PBKDF2 cost takes about half a second per call.
"""

import dataclasses
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from backend.models import (
    BlacklistedToken,
    City,
    Event,
    MembershipTier,
    MultipleChoiceOption,
    MultipleChoiceQuestion,
    Organization,
    OrganizationMember,
    OrganizationQuestionnaire,
    OrganizationStaff,
    OutstandingToken,
    Questionnaire,
    QuestionnaireSection,
    Ticket,
    TicketTier,
    User,
)
from platform_pack.config import load_platform_config
from platform_pack.seeded import (  # noqa: F401  (re-exported: tests and callers read them from here)
    ADMIN_EMAIL,
    ORG_SLUG,
    PERF_USER_EMAIL,
    QUESTIONNAIRE_EVENT_SLUG,
    QUESTIONNAIRE_SCOUT_EMAIL,
    REGISTRATION_EMAIL_DOMAIN,
    REGISTRATION_EMAIL_PREFIX,
    RSVP_EVENT_SLUG,
    RSVP_LIMITED_EVENT_SLUG,
    STAFF_EMAIL,
    TICKET_FREE_EVENT_SLUG,
    TICKET_PWYC_EVENT_SLUG,
    perf_user_email,
)

ORG_NAME = "Performance Test Organization"
MEMBERSHIP_TIER_NAME = "General membership"
NUM_MEMBERS = 20

# What --reset deletes. Regexes rather than LIKE: SQLite's LIKE ignores case, so it would also
# match addresses that PostgreSQL (and the contract) consider different.
PERF_EMAIL_REGEX = r"^perf-.*@test\.com$"
REGISTRATION_EMAIL_REGEX = r"^locust-new-.*@test\.com$"

CITY_NAME = "Vienna"
CITY_COUNTRY = "Austria"
CITY_TIMEZONE = "Europe/Vienna"
VENUE_ADDRESS = "Test Venue, Vienna"
EVENT_DURATION = timedelta(hours=3)

FREE_TIER_NAME = "General Admission"
PWYC_TIER_NAME = "PWYC Admission"
PWYC_PRICE = Decimal("10.00")
PWYC_MIN = Decimal("5.00")
PWYC_MAX = Decimal("50.00")
CURRENCY = "EUR"

QUESTIONNAIRE_NAME = "Performance Test Questionnaire"
SECTION_NAME = "Performance Test Section"
QUESTION_TEXT = "Do you want to attend this performance test event?"
YES_OPTION = "Yes, I want to attend"
NO_OPTION = "No, I do not want to attend"

RUN_HINT = "python manage.py run_perf --users 100 --spawn-rate 10 --duration 5m"

# Django's SQLite backend allows 999 parameters per query; PostgreSQL 65535. Chunks stay below both.
_CHUNK = 900
# Seeding is a bulk insert, but a typo of a few zeros would still fill the disk.
MAX_USERS = 1_000_000


@dataclass(frozen=True)
class EventSpec:
    """One seeded event; fields not named here are the model's defaults (docs/api.md, "Seeded data")."""

    key: str
    slug: str
    name: str
    start_in_days: int
    requires_ticket: bool
    max_attendees: int
    max_tickets_per_user: int | None
    waitlist_open: bool


# The table in docs/api.md: key, slug, name, starts in days, requires_ticket, max_attendees, max_tickets_per_user,
# waitlist_open. RSVP events keep the model's per-user cap of 1, which is irrelevant without tiers.
EVENTS: tuple[EventSpec, ...] = (
    EventSpec("rsvp", RSVP_EVENT_SLUG, "Perf RSVP Event", 30, False, 0, 1, False),
    EventSpec("rsvp_limited", RSVP_LIMITED_EVENT_SLUG, "Perf Limited RSVP Event", 35, False, 50, 1, True),
    EventSpec("ticket_free", TICKET_FREE_EVENT_SLUG, "Perf Free Ticket Event", 40, True, 10000, None, False),
    EventSpec("ticket_pwyc", TICKET_PWYC_EVENT_SLUG, "Perf PWYC Ticket Event", 45, True, 10000, None, False),
    EventSpec("questionnaire", QUESTIONNAIRE_EVENT_SLUG, "Perf Questionnaire Event", 50, False, 0, 1, False),
)
EVENT_SLUGS: dict[str, str] = {spec.key: spec.slug for spec in EVENTS}


class SeedError(Exception):
    """The perf data cannot be written or removed without touching data that is not ours."""


@dataclass(frozen=True)
class SeededTier:
    event_slug: str
    name: str
    id: uuid.UUID
    price: str


@dataclass(frozen=True)
class SeedSummary:
    """What a seed run left in the database, enough to point a load run (or a person) at it."""

    organization_slug: str
    organization_id: uuid.UUID
    num_users: int
    users_created: int
    users_updated: int
    password: str
    events: tuple[tuple[str, uuid.UUID], ...]
    tiers: tuple[SeededTier, ...]
    questionnaire_id: uuid.UUID
    num_members: int

    def lines(self) -> list[str]:
        last = self.num_users - 1
        width = max(len(slug) for slug, _ in self.events)
        return [
            f"Organization: {self.organization_slug} ({self.organization_id})",
            f"Users: perf-user-0..{last}@test.com ({self.num_users}), password {self.password!r}; "
            f"{self.users_created} accounts created, {self.users_updated} updated",
            f"Admin: {ADMIN_EMAIL} (org owner), staff: {STAFF_EMAIL} (org staff); same password, API only "
            "(no seeded account can log into the Django admin: their password is public)",
            f"Questionnaire scout: {QUESTIONNAIRE_SCOUT_EMAIL} (never applies; same password)",
            f"Members: perf-user-0..{self.num_members - 1}@test.com, active, {MEMBERSHIP_TIER_NAME!r}",
            "Events:",
            *(f"  {slug:<{width}}  {event_id}" for slug, event_id in self.events),
            "Tiers:",
            *(f"  {tier.event_slug:<{width}}  {tier.name} ({tier.price})  {tier.id}" for tier in self.tiers),
            f"Questionnaire: {QUESTIONNAIRE_NAME} ({self.questionnaire_id}), automatic evaluation, "
            f"gates {QUESTIONNAIRE_EVENT_SLUG}",
            f"Run the load: {RUN_HINT}",
        ]


def seed(*, num_users: int, password: str, tier_capacity: int = 10000, now: datetime | None = None) -> SeedSummary:
    """Create or restore the perf data in one transaction; ``now`` anchors event and sales dates."""
    if not 1 <= num_users <= MAX_USERS:
        raise ValueError(f"the number of users to seed must be between 1 and {MAX_USERS:,}, got {num_users}")
    now = now or timezone.now()
    with transaction.atomic():
        city, _ = City.objects.get_or_create(
            name=CITY_NAME, country=CITY_COUNTRY, defaults={"timezone": CITY_TIMEZONE, "admin_name": CITY_NAME}
        )
        user_ids, created, updated = _sync_users(_user_specs(num_users), make_password(password))
        org, _ = Organization.objects.update_or_create(
            slug=ORG_SLUG,
            defaults={
                "name": ORG_NAME,
                "visibility": Organization.Visibility.PUBLIC,
                "owner_id": user_ids[ADMIN_EMAIL],
                "city": city,
                "contact_email": ADMIN_EMAIL,
            },
        )
        OrganizationStaff.objects.get_or_create(organization=org, user_id=user_ids[STAFF_EMAIL])
        members = [user_ids[perf_user_email(i)] for i in range(min(NUM_MEMBERS, num_users))]
        _sync_members(org, members, now)
        events = {spec.key: _sync_event(org, city, spec, now) for spec in EVENTS}
        free, pwyc = events["ticket_free"], events["ticket_pwyc"]
        tiers = (
            _sync_only_tier(free, FREE_TIER_NAME, _free_tier_fields(free, now, tier_capacity)),
            _sync_only_tier(pwyc, PWYC_TIER_NAME, _pwyc_tier_fields(pwyc, now, tier_capacity)),
        )
        questionnaire = _sync_questionnaire(org, events["questionnaire"])
        # The scout must still have the questionnaire to pass (platform_pack.seeded): whatever it submitted goes.
        questionnaire.submissions.filter(user_id=user_ids[QUESTIONNAIRE_SCOUT_EMAIL]).delete()
    return SeedSummary(
        organization_slug=org.slug,
        organization_id=org.id,
        num_users=num_users,
        users_created=created,
        users_updated=updated,
        password=password,
        events=tuple((event.slug, event.id) for event in events.values()),
        tiers=tuple(SeededTier(tier.event.slug, tier.name, tier.id, _price_text(tier)) for tier in tiers),
        questionnaire_id=questionnaire.id,
        num_members=len(members),
    )


def check_may_seed(force: bool = False) -> None:
    """ValueError unless seeding is allowed here: never with ``DEBUG=False`` (the database may be production's)
    unless the person at the command line says ``--force``. Every way in to the seed calls this."""
    if not settings.DEBUG and not force:
        raise ValueError("DEBUG is False: refusing to seed perf data into what may be a production database; "
                         "seed with manage.py bootstrap_perf_tests --force if you mean it")


def seed_for_run() -> list[str]:
    """``PERF_SEED_HOOK``: what ``run_perf --bootstrap`` and the admin's "Seed first" call. The data as
    ``bootstrap_perf_tests`` makes it (idempotent), sized by the ``LOCUST_*`` environment, under the same
    guards. It never makes an admin login: its lines go to a run log that others may read."""
    check_may_seed()
    config = load_platform_config()
    summary = seed(num_users=config.num_preseeded_users, password=config.default_password,
                   tier_capacity=config.ticket_tier_capacity)
    return ["Performance test data is ready.", *summary.lines()]


def reset() -> dict[str, int]:
    """Delete the perf data and nothing else; return deleted rows per model label.

    The organization goes first: it cascades to its events, tiers, tickets, RSVPs, memberships,
    staff and questionnaire links, and it PROTECTs its owner, the perf admin.
    """
    counts: Counter[str] = Counter()
    with transaction.atomic():
        foreign_links = OrganizationQuestionnaire.objects.exclude(organization__slug=ORG_SLUG)
        questionnaire_ids = list(
            Questionnaire.objects.filter(name=QUESTIONNAIRE_NAME)
            .filter(Q(org_links__organization__slug=ORG_SLUG) | Q(org_links__isnull=True))
            .exclude(org_links__in=foreign_links)
            .values_list("pk", flat=True)
            .distinct()
        )
        counts.update(Organization.objects.filter(slug=ORG_SLUG).delete()[1])
        counts.update(Questionnaire.objects.filter(pk__in=questionnaire_ids).delete()[1])
        users = User.objects.filter(Q(email__regex=PERF_EMAIL_REGEX) | Q(email__regex=REGISTRATION_EMAIL_REGEX))
        owned = sorted(Organization.objects.filter(owner__in=users).values_list("slug", flat=True))
        if owned:
            raise SeedError(
                f"perf users own organizations that are not perf data ({', '.join(owned)}); "
                "give them another owner or delete them, then reset again"
            )
        jtis = OutstandingToken.objects.filter(user__in=users).values("jti")
        counts.update(BlacklistedToken.objects.filter(jti__in=jtis).delete()[1])
        counts.update(users.delete()[1])
    return {label: n for label, n in sorted(counts.items()) if n}


@dataclass(frozen=True)
class _UserSpec:
    email: str
    first_name: str
    last_name: str

    def fields(self) -> dict:
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


def _user_specs(num_users: int) -> list[_UserSpec]:
    return [
        _UserSpec(ADMIN_EMAIL, "Perf", "Admin"),
        _UserSpec(STAFF_EMAIL, "Perf", "Staff"),
        _UserSpec(QUESTIONNAIRE_SCOUT_EMAIL, "Perf", "Scout"),
        *(_UserSpec(perf_user_email(i), f"PerfUser{i}", "Test") for i in range(num_users)),
    ]


def _chunks(items: Sequence, size: int = _CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _sync_users(specs: list[_UserSpec], password_hash: str) -> tuple[dict[str, uuid.UUID], int, int]:
    """Insert missing users and restore existing ones with a few set-based queries.

    Returns (email -> id, created, updated). Flags and the password are the same for every seeded user, so
    they are one UPDATE per chunk of ids; names differ per user but only need writing when they drifted,
    which a normal rerun never sees. The password is public, so no seeded account may open the Django admin:
    a database seeded before that rule had its perf admin made a superuser, and this takes it back.
    """
    existing: dict[str, tuple] = {}
    for chunk in _chunks([spec.email for spec in specs]):
        rows = User.objects.filter(email__in=chunk).values_list("email", "id", "username", "first_name", "last_name")
        existing.update({row[0]: row for row in rows})

    flags = {"email_verified": True, "is_active": True, "is_staff": False, "is_superuser": False}
    new = [
        User(id=uuid.uuid4(), username=spec.email, password=password_hash, **spec.fields(), **flags)
        for spec in specs
        if spec.email not in existing
    ]
    User.objects.bulk_create(new)

    drifted = [
        User(id=row[1], username=spec.email, first_name=spec.first_name, last_name=spec.last_name)
        for spec in specs
        if (row := existing.get(spec.email)) is not None and row[2:] != (spec.email, spec.first_name, spec.last_name)
    ]
    for chunk in _chunks([row[1] for row in existing.values()]):
        User.objects.filter(pk__in=chunk).update(password=password_hash, **flags)
    User.objects.bulk_update(drifted, ["username", "first_name", "last_name"])

    ids = {email: row[1] for email, row in existing.items()} | {user.email: user.id for user in new}
    return ids, len(new), len(existing)


def _sync_members(org: Organization, user_ids: list[uuid.UUID], now: datetime) -> None:
    tier, _ = MembershipTier.objects.get_or_create(organization=org, name=MEMBERSHIP_TIER_NAME)
    current = OrganizationMember.objects.filter(organization=org, user_id__in=user_ids)
    present = set(current.values_list("user_id", flat=True))
    OrganizationMember.objects.bulk_create(
        OrganizationMember(organization=org, user_id=user_id, tier=tier, status=OrganizationMember.Status.ACTIVE)
        for user_id in user_ids
        if user_id not in present
    )
    current.exclude(status=OrganizationMember.Status.ACTIVE, tier=tier).update(
        status=OrganizationMember.Status.ACTIVE, tier=tier, updated_at=now
    )


def _sync_event(org: Organization, city: City, spec: EventSpec, now: datetime) -> Event:
    start = now + timedelta(days=spec.start_in_days)
    event, _ = Event.objects.update_or_create(
        organization=org,
        slug=spec.slug,
        defaults={
            "name": spec.name,
            "description": "",
            "event_type": Event.EventType.PUBLIC,
            "visibility": Event.Visibility.PUBLIC,
            "status": Event.Status.OPEN,
            "city": city,
            "address": VENUE_ADDRESS,
            "start": start,
            "end": start + EVENT_DURATION,
            "requires_ticket": spec.requires_ticket,
            "max_attendees": spec.max_attendees,
            "max_tickets_per_user": spec.max_tickets_per_user,
            "waitlist_open": spec.waitlist_open,
            "rsvp_before": None,
            "apply_before": None,
            "accept_rsvp_notes": False,
            "can_attend_without_login": True,
            "require_ticket_names": True,
            "requires_full_profile": False,
        },
    )
    return event


def _common_tier_fields(event: Event, now: datetime, capacity: int) -> dict:
    return {
        "description": "",
        "currency": CURRENCY,
        "purchasable_by": TicketTier.PurchasableBy.PUBLIC,
        "total_quantity": capacity,
        "max_tickets_per_user": None,
        "display_order": 0,
        # Sales close a day before the event starts (now + 39 d and now + 44 d).
        "sales_start_at": now - timedelta(days=1),
        "sales_end_at": event.start - timedelta(days=1),
    }


def _free_tier_fields(event: Event, now: datetime, capacity: int) -> dict:
    return _common_tier_fields(event, now, capacity) | {
        "payment_method": TicketTier.PaymentMethod.FREE,
        "price_type": TicketTier.PriceType.FIXED,
        "price": Decimal("0.00"),
        "pwyc_max": None,
    }


def _pwyc_tier_fields(event: Event, now: datetime, capacity: int) -> dict:
    return _common_tier_fields(event, now, capacity) | {
        # Offline: the organizer confirms payment later, so no payment provider is involved.
        "payment_method": TicketTier.PaymentMethod.OFFLINE,
        "price_type": TicketTier.PriceType.PWYC,
        "price": PWYC_PRICE,
        "pwyc_min": PWYC_MIN,
        "pwyc_max": PWYC_MAX,
    }


def _sync_only_tier(event: Event, name: str, fields: dict) -> TicketTier:
    """Make ``name`` the event's one tier, keeping its id when it already exists.

    ``quantity_sold`` is recounted from the tier's live tickets rather than zeroed, so a rerun
    without --reset keeps the counter consistent with the tickets that remain.
    """
    tier = event.ticket_tiers.filter(name=name).order_by("created_at").first() or TicketTier(event=event, name=name)
    for field, value in fields.items():
        setattr(tier, field, value)
    tier.quantity_sold = Ticket.objects.filter(tier_id=tier.pk).exclude(status=Ticket.Status.CANCELLED).count()
    tier.save()
    event.ticket_tiers.exclude(pk=tier.pk).delete()
    return tier


def _price_text(tier: TicketTier) -> str:
    if tier.price_type == TicketTier.PriceType.PWYC:
        return f"pay what you can {tier.pwyc_min}-{tier.pwyc_max} {tier.currency}, {tier.payment_method}"
    return f"{tier.price} {tier.currency}, {tier.payment_method}"


def _sync_questionnaire(org: Organization, event: Event) -> Questionnaire:
    """The admission questionnaire of "Seeded data", evaluated automatically ("Decisions"), gating ``event`` only."""
    link = (
        OrganizationQuestionnaire.objects.filter(organization=org, questionnaire__name=QUESTIONNAIRE_NAME)
        .select_related("questionnaire")
        .order_by("created_at")
        .first()
    )
    questionnaire = link.questionnaire if link else Questionnaire(name=QUESTIONNAIRE_NAME)
    questionnaire.status = Questionnaire.Status.PUBLISHED
    questionnaire.evaluation_mode = Questionnaire.EvaluationMode.AUTOMATIC
    questionnaire.max_attempts = 999
    questionnaire.min_score = Decimal("0.00")
    questionnaire.can_retake_after = None
    questionnaire.save()

    section, _ = QuestionnaireSection.objects.update_or_create(
        questionnaire=questionnaire, name=SECTION_NAME, defaults={"order": 1}
    )
    question, _ = MultipleChoiceQuestion.objects.update_or_create(
        questionnaire=questionnaire,
        question=QUESTION_TEXT,
        defaults={
            "section": section,
            "is_mandatory": True,
            "order": 1,
            "allow_multiple_answers": False,
            "positive_weight": Decimal("1"),
            "negative_weight": Decimal("0"),
            "is_fatal": False,
        },
    )
    options = [
        MultipleChoiceOption.objects.update_or_create(
            question=question, option=text, defaults={"is_correct": is_correct, "order": order}
        )[0]
        for order, (text, is_correct) in enumerate([(YES_OPTION, True), (NO_OPTION, False)], start=1)
    ]
    # The shape is exact: anything else added to the perf questionnaire goes.
    question.options.exclude(pk__in=[option.pk for option in options]).delete()
    questionnaire.mc_questions.exclude(pk=question.pk).delete()
    questionnaire.sections.exclude(pk=section.pk).delete()

    link = link or OrganizationQuestionnaire(organization=org, questionnaire=questionnaire)
    link.questionnaire_type = OrganizationQuestionnaire.Type.ADMISSION
    link.requires_evaluation = True
    link.members_exempt = False
    link.save()
    link.events.set([event])
    return questionnaire
