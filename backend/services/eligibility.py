"""Whether a user may attend an event: the gates of docs/api.md, "Eligibility", shared by my-status,
RSVP and checkout.

Unlike the platform, which loads every ticket and RSVP row of the event per call, each gate
here is one small query (an EXISTS or a COUNT), so the cost does not grow with event size.
The result is an :class:`Eligibility`; the API layer writes it as the eligibility object (docs/api.md,
"Eligibility"), and a refusal that ends a request is raised as :class:`NotEligible`.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone

from backend.models import (
    Event,
    EventRSVP,
    OrganizationMember,
    OrganizationQuestionnaire,
    OrganizationStaff,
    Questionnaire,
    QuestionnaireEvaluation,
    QuestionnaireSubmission,
    Ticket,
    TicketTier,
    User,
)
from backend.services.errors import ServiceError


@dataclass(frozen=True)
class Eligibility:
    """Whether a user may attend an event and, when not, the first gate that objected and what to do next.

    A value, not a response body: ``backend.api.serializers.eligibility_data`` writes it in the contract's shape.
    """

    event_id: Any
    allowed: bool
    reason: str | None = None
    reason_code: str | None = None
    next_step: str | None = None
    questionnaires_missing: list[str] | None = None
    questionnaires_pending_review: list[str] | None = None
    questionnaires_failed: list[str] | None = None
    retry_on: datetime | None = None
    missing_profile_fields: list[str] | None = None
    event_remaining: int | None = None


class NotEligible(ServiceError):
    """A request refused by an eligibility gate: answered 400 with the whole eligibility object as its body."""

    def __init__(self, eligibility: Eligibility) -> None:
        super().__init__(400, eligibility.reason or "")
        self.eligibility = eligibility


def is_privileged(user: User, event: Event) -> bool:
    """Owner or staff of the event's organization: exempt from every gate."""
    if event.organization.owner_id == user.id:
        return True
    return OrganizationStaff.objects.filter(organization_id=event.organization_id, user=user).exists()


def is_active_member(user: User, event: Event) -> bool:
    return OrganizationMember.objects.filter(
        organization_id=event.organization_id, user=user, status=OrganizationMember.Status.ACTIVE
    ).exists()


def attendee_count(event: Event) -> int:
    """Seats taken: non-cancelled tickets on ticket events, YES RSVPs otherwise."""
    if event.requires_ticket:
        return Ticket.objects.filter(event=event).exclude(status=Ticket.Status.CANCELLED).count()
    return EventRSVP.objects.filter(event=event, status=EventRSVP.Status.YES).count()


def tiers_on_sale(event: Event) -> bool:
    """At least one tier whose sales window contains now (a missing end means the event start)."""
    now = timezone.now()
    in_window = (Q(sales_start_at__isnull=True) | Q(sales_start_at__lte=now)) & (
        Q(sales_end_at__gte=now) | Q(sales_end_at__isnull=True, event__start__gte=now)
    )
    return TicketTier.objects.filter(in_window, event=event).exists()


@dataclass
class QuestionnaireState:
    """Where the user stands with each admission questionnaire gating the event."""

    missing: list[str] = field(default_factory=list)
    pending_review: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    retry_on: Any = None


def admission_links(event: Event) -> list[OrganizationQuestionnaire]:
    return list(
        OrganizationQuestionnaire.objects.filter(
            events=event,
            questionnaire_type=OrganizationQuestionnaire.Type.ADMISSION,
            questionnaire__status=Questionnaire.Status.PUBLISHED,
        ).select_related("questionnaire")
    )


def questionnaire_state(user: User, event: Event, links: list[OrganizationQuestionnaire]) -> QuestionnaireState:
    """Classify every gating questionnaire ("Eligibility", gate 8) with one query for all submissions."""
    state = QuestionnaireState()
    if not links:
        return state
    if any(link.members_exempt for link in links) and is_active_member(user, event):
        links = [link for link in links if not link.members_exempt]
    submissions = (
        QuestionnaireSubmission.objects.filter(
            user=user,
            questionnaire_id__in=[link.questionnaire_id for link in links],
            status=QuestionnaireSubmission.Status.READY,
        )
        .select_related("evaluation")
        .order_by("-submitted_at")
    )
    by_questionnaire: dict[Any, list[QuestionnaireSubmission]] = {}
    for submission in submissions:
        by_questionnaire.setdefault(submission.questionnaire_id, []).append(submission)
    now = timezone.now()
    for link in links:
        questionnaire = link.questionnaire
        qid = str(questionnaire.id)
        ready = by_questionnaire.get(questionnaire.id, [])
        if not ready:
            state.missing.append(qid)
            continue
        if not link.requires_evaluation:
            continue
        evaluation = getattr(ready[0], "evaluation", None)
        status = evaluation.status if evaluation else QuestionnaireEvaluation.Status.PENDING_REVIEW
        if status == QuestionnaireEvaluation.Status.APPROVED:
            continue
        if status == QuestionnaireEvaluation.Status.PENDING_REVIEW:
            state.pending_review.append(qid)
        elif 0 < questionnaire.max_attempts <= len(ready):
            state.failed.append(qid)
        elif questionnaire.can_retake_after and ready[0].submitted_at + questionnaire.can_retake_after > now:
            state.failed.append(qid)
            state.retry_on = ready[0].submitted_at + questionnaire.can_retake_after
        else:
            state.missing.append(qid)
    return state


def refusal(event: Event, reason: str, reason_code: str, next_step: str | None = None, **extra: Any) -> Eligibility:
    return Eligibility(event.id, False, reason, reason_code, next_step, **extra)


def check_eligibility(user: User, event: Event, *, claims_seat: bool = True) -> Eligibility:
    """Run the gates in order; the first objection decides. ``claims_seat`` is False for
    RSVP no/maybe, which never take a seat and so skip the availability gate."""
    if is_privileged(user, event):
        return Eligibility(event.id, True)
    now = timezone.now()
    if event.end < now:
        return refusal(event, "This event has finished.", "event_has_finished")
    if event.status != Event.Status.OPEN:
        return refusal(event, "This event is not open.", "event_is_not_open", "wait_for_event_to_open")
    if not event.requires_ticket and event.rsvp_before and now > event.rsvp_before:
        return refusal(event, "The RSVP deadline has passed.", "rsvp_deadline_passed")
    links = admission_links(event)
    state = questionnaire_state(user, event, links)
    if (state.missing or state.failed) and now > (event.apply_before or event.start):
        return refusal(event, "The application deadline has passed.", "application_deadline_passed")
    if event.event_type == Event.EventType.PRIVATE:
        return refusal(event, "You need an invitation to this event.", "requires_invitation", "request_invitation")
    if event.event_type == Event.EventType.MEMBERS_ONLY and not is_active_member(user, event):
        return refusal(event, "Only members can attend this event.", "members_only", "become_member")
    if event.requires_full_profile:
        missing = ["profile_picture"]
        if not user.pronouns:
            missing.append("pronouns")
        if not (user.first_name or user.preferred_name):
            missing.append("name")
        return refusal(
            event, "Please complete your profile.", "requires_full_profile", "complete_profile",
            missing_profile_fields=missing,
        )
    lists = {
        "questionnaires_missing": state.missing,
        "questionnaires_pending_review": state.pending_review,
        "questionnaires_failed": state.failed,
    }
    if state.failed:
        next_step = "wait_to_retake_questionnaire" if state.retry_on else None
        return refusal(
            event, "You did not pass the questionnaire.", "questionnaire_failed", next_step,
            retry_on=state.retry_on, **lists,
        )
    if state.missing:
        return refusal(
            event, "You need to complete the questionnaire.", "questionnaire_missing", "complete_questionnaire", **lists
        )
    if state.pending_review:
        return refusal(
            event, "Your questionnaire is waiting for evaluation.", "questionnaire_pending_review",
            "wait_for_questionnaire_evaluation", **lists,
        )
    if claims_seat and event.max_attendees and attendee_count(event) >= event.max_attendees:
        return refusal(event, "This event is full.", "event_is_full", "join_waitlist" if event.waitlist_open else None)
    if event.requires_ticket and not tiers_on_sale(event):
        return refusal(event, "No tickets are on sale for this event.", "no_tickets_on_sale")
    return Eligibility(event.id, True)
