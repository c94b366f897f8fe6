"""The platform's data model, reduced to what the contract (docs/api.md) exercises.

Every id a client sees is a UUID (cities excepted, as on the platform). Capacity counters
live on rows that the services lock (`select_for_update`) so that they hold under load.
"""

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q


class TimeStamped(models.Model):
    """UUID primary key plus creation and update times, as every platform model has."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class User(AbstractUser):
    """An account; ``username`` is the lowercased email, as registration sets it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True)
    email_verified = models.BooleanField(default=False)
    preferred_name = models.CharField(max_length=255, blank=True)
    pronouns = models.CharField(max_length=50, blank=True)
    bio = models.TextField(blank=True)
    language = models.CharField(max_length=8, default="en")

    @property
    def display_name(self) -> str:
        full_name = f"{self.first_name} {self.last_name}".strip()
        return self.preferred_name or full_name or self.username


class City(models.Model):
    """A city; the only model with an integer id in the API."""

    name = models.CharField(max_length=255)
    country = models.CharField(max_length=255)
    admin_name = models.CharField(max_length=255, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")

    class Meta:
        verbose_name_plural = "cities"
        constraints = [models.UniqueConstraint(fields=["name", "country"], name="unique_city_country")]

    def __str__(self) -> str:
        return f"{self.name}, {self.country}"


class Organization(TimeStamped):
    class Visibility(models.TextChoices):
        PUBLIC = "public"
        PRIVATE = "private"

    name = models.CharField(max_length=255)
    slug = models.SlugField(max_length=255, unique=True)
    description = models.TextField(blank=True)
    visibility = models.CharField(max_length=20, choices=Visibility.choices, default=Visibility.PUBLIC)
    owner = models.ForeignKey(User, on_delete=models.PROTECT, related_name="owned_organizations")
    city = models.ForeignKey(City, null=True, blank=True, on_delete=models.SET_NULL)
    contact_email = models.EmailField(blank=True)
    accept_membership_requests = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.name


class OrganizationStaff(TimeStamped):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="staff_members")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="staff_of")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="unique_org_staff")]


class MembershipTier(TimeStamped):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="membership_tiers")
    name = models.CharField(max_length=255)

    def __str__(self) -> str:
        return self.name


class OrganizationMember(TimeStamped):
    class Status(models.TextChoices):
        ACTIVE = "active"
        PAUSED = "paused"
        CANCELLED = "cancelled"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    tier = models.ForeignKey(MembershipTier, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="unique_org_member")]


class Event(TimeStamped):
    class EventType(models.TextChoices):
        PUBLIC = "public"
        PRIVATE = "private"
        MEMBERS_ONLY = "members-only"

    class Visibility(models.TextChoices):
        PUBLIC = "public"
        UNLISTED = "unlisted"
        PRIVATE = "private"
        MEMBERS_ONLY = "members-only"
        STAFF_ONLY = "staff-only"

    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"
        DRAFT = "draft"
        CANCELLED = "cancelled"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="events")
    name = models.CharField(max_length=255)
    slug = models.SlugField(max_length=255)
    description = models.TextField(blank=True)
    event_type = models.CharField(max_length=20, choices=EventType.choices, default=EventType.PUBLIC)
    visibility = models.CharField(max_length=20, choices=Visibility.choices, default=Visibility.PUBLIC)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    city = models.ForeignKey(City, null=True, blank=True, on_delete=models.SET_NULL)
    address = models.CharField(max_length=255, blank=True)
    start = models.DateTimeField(db_index=True)
    end = models.DateTimeField()
    requires_ticket = models.BooleanField(default=False)
    # 0 means unlimited, as on the platform.
    max_attendees = models.PositiveIntegerField(default=0)
    # null means no per-user cap.
    max_tickets_per_user = models.PositiveIntegerField(null=True, blank=True, default=1)
    waitlist_open = models.BooleanField(default=False)
    rsvp_before = models.DateTimeField(null=True, blank=True)
    apply_before = models.DateTimeField(null=True, blank=True)
    accept_rsvp_notes = models.BooleanField(default=False)
    can_attend_without_login = models.BooleanField(default=True)
    require_ticket_names = models.BooleanField(default=True)
    requires_full_profile = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "slug"], name="unique_event_slug")]

    def __str__(self) -> str:
        return self.name


class TicketTier(TimeStamped):
    class PaymentMethod(models.TextChoices):
        ONLINE = "online"
        OFFLINE = "offline"
        AT_THE_DOOR = "at_the_door"
        FREE = "free"

    class PriceType(models.TextChoices):
        FIXED = "fixed"
        PWYC = "pwyc"

    class PurchasableBy(models.TextChoices):
        PUBLIC = "public"
        MEMBERS = "members"
        INVITED = "invited"
        INVITED_AND_MEMBERS = "invited_and_members"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="ticket_tiers")
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    price_type = models.CharField(max_length=10, choices=PriceType.choices, default=PriceType.FIXED)
    pwyc_min = models.DecimalField(max_digits=10, decimal_places=2, default=1)
    pwyc_max = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, default="EUR")
    payment_method = models.CharField(max_length=20, choices=PaymentMethod.choices, default=PaymentMethod.FREE)
    purchasable_by = models.CharField(max_length=30, choices=PurchasableBy.choices, default=PurchasableBy.PUBLIC)
    sales_start_at = models.DateTimeField(null=True, blank=True)
    sales_end_at = models.DateTimeField(null=True, blank=True)
    # null means unlimited.
    total_quantity = models.PositiveIntegerField(null=True, blank=True)
    quantity_sold = models.PositiveIntegerField(default=0)
    max_tickets_per_user = models.PositiveIntegerField(null=True, blank=True)
    display_order = models.PositiveIntegerField(default=0)
    manual_payment_instructions = models.TextField(blank=True)

    class Meta:
        ordering = ["display_order", "name"]

    def __str__(self) -> str:
        return f"{self.event.name}: {self.name}"


class Ticket(TimeStamped):
    class Status(models.TextChoices):
        PENDING = "pending"
        ACTIVE = "active"
        CHECKED_IN = "checked_in"
        CANCELLED = "cancelled"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="tickets")
    tier = models.ForeignKey(TicketTier, on_delete=models.CASCADE, related_name="tickets")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="tickets")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    guest_name = models.CharField(max_length=255, blank=True)
    price_paid = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    checked_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["event", "user"])]


class EventRSVP(TimeStamped):
    class Status(models.TextChoices):
        YES = "yes"
        NO = "no"
        MAYBE = "maybe"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="rsvps")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="rsvps")
    status = models.CharField(max_length=10, choices=Status.choices)
    note = models.TextField(blank=True)

    class Meta:
        verbose_name = "RSVP"
        constraints = [models.UniqueConstraint(fields=["event", "user"], name="unique_event_rsvp")]


class Questionnaire(TimeStamped):
    class Status(models.TextChoices):
        DRAFT = "draft"
        PUBLISHED = "published"

    class EvaluationMode(models.TextChoices):
        AUTOMATIC = "automatic"
        MANUAL = "manual"
        HYBRID = "hybrid"

    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    evaluation_mode = models.CharField(max_length=20, choices=EvaluationMode.choices, default=EvaluationMode.MANUAL)
    # 0 means unlimited attempts.
    max_attempts = models.PositiveIntegerField(default=0)
    min_score = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    can_retake_after = models.DurationField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class QuestionnaireSection(TimeStamped):
    questionnaire = models.ForeignKey(Questionnaire, on_delete=models.CASCADE, related_name="sections")
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order"]


class MultipleChoiceQuestion(TimeStamped):
    questionnaire = models.ForeignKey(Questionnaire, on_delete=models.CASCADE, related_name="mc_questions")
    section = models.ForeignKey(
        QuestionnaireSection, null=True, blank=True, on_delete=models.CASCADE, related_name="mc_questions"
    )
    question = models.TextField()
    hint = models.TextField(blank=True)
    is_mandatory = models.BooleanField(default=False)
    order = models.PositiveIntegerField(default=0)
    allow_multiple_answers = models.BooleanField(default=False)
    positive_weight = models.DecimalField(max_digits=5, decimal_places=2, default=1)
    negative_weight = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    is_fatal = models.BooleanField(default=False)

    class Meta:
        ordering = ["order"]


class MultipleChoiceOption(TimeStamped):
    question = models.ForeignKey(MultipleChoiceQuestion, on_delete=models.CASCADE, related_name="options")
    option = models.CharField(max_length=500)
    is_correct = models.BooleanField(default=False)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order"]


class OrganizationQuestionnaire(TimeStamped):
    """Links a questionnaire to an organization and the events it gates."""

    class Type(models.TextChoices):
        ADMISSION = "admission"
        FEEDBACK = "feedback"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="org_questionnaires")
    questionnaire = models.ForeignKey(Questionnaire, on_delete=models.CASCADE, related_name="org_links")
    questionnaire_type = models.CharField(max_length=20, choices=Type.choices, default=Type.ADMISSION)
    requires_evaluation = models.BooleanField(default=True)
    members_exempt = models.BooleanField(default=False)
    events = models.ManyToManyField(Event, blank=True, related_name="org_questionnaires")


class QuestionnaireSubmission(TimeStamped):
    class Status(models.TextChoices):
        DRAFT = "draft"
        READY = "ready"

    questionnaire = models.ForeignKey(Questionnaire, on_delete=models.CASCADE, related_name="submissions")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="questionnaire_submissions")
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="submissions")
    status = models.CharField(max_length=10, choices=Status.choices)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One draft per (questionnaire, user): DRAFT submissions upsert on this key.
            models.UniqueConstraint(
                fields=["questionnaire", "user"], condition=Q(status="draft"), name="unique_draft_submission"
            )
        ]
        indexes = [models.Index(fields=["user", "questionnaire", "status"])]


class MultipleChoiceAnswer(models.Model):
    submission = models.ForeignKey(QuestionnaireSubmission, on_delete=models.CASCADE, related_name="mc_answers")
    question = models.ForeignKey(MultipleChoiceQuestion, on_delete=models.CASCADE)
    option = models.ForeignKey(MultipleChoiceOption, on_delete=models.CASCADE)


class QuestionnaireEvaluation(TimeStamped):
    class Status(models.TextChoices):
        APPROVED = "approved"
        REJECTED = "rejected"
        PENDING_REVIEW = "pending review"

    submission = models.OneToOneField(QuestionnaireSubmission, on_delete=models.CASCADE, related_name="evaluation")
    status = models.CharField(max_length=20, choices=Status.choices)
    score = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    automatically_evaluated = models.BooleanField(default=False)
    evaluator = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")


class OutstandingToken(models.Model):
    """Every refresh token issued (one row per login, as ninja-jwt's blacklist app keeps)."""

    jti = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(User, null=True, on_delete=models.CASCADE, related_name="outstanding_tokens")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()


class BlacklistedToken(models.Model):
    """A token id that may not be used again: rotated refresh tokens and used verification links."""

    jti = models.CharField(max_length=64, unique=True)
    blacklisted_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
