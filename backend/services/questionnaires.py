"""Questionnaire submissions and their evaluation (docs/api.md, "Questionnaires").

The rules that matter under load live here: the READY resubmission check (serialized per
user, so two concurrent READY submissions of one account cannot both pass), the race-safe
DRAFT upsert on the one-draft-per-(questionnaire, user) key, and the automatic evaluation
that runs right after the request's transaction commits, so a passing READY submission is
already approved when the response reaches the client (docs/api.md, "Decisions").
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Prefetch, prefetch_related_objects
from django.utils import timezone

from backend.models import (
    Event,
    MultipleChoiceAnswer,
    MultipleChoiceOption,
    MultipleChoiceQuestion,
    OrganizationQuestionnaire,
    Questionnaire,
    QuestionnaireEvaluation,
    QuestionnaireSection,
    QuestionnaireSubmission,
    User,
)
from backend.services.errors import ServiceError

logger = logging.getLogger(__name__)

Status = QuestionnaireSubmission.Status
Verdict = QuestionnaireEvaluation.Status

MISSING_MANDATORY = "You are missing mandatory answers."
PENDING_EVALUATION = "You have a submission pending evaluation."


class SubmissionRefused(ServiceError):
    """A business refusal of a submission; ``status`` is the HTTP status the contract gives it."""


@dataclass(frozen=True)
class MultipleChoiceAnswerInput:
    question_id: Any
    option_ids: list[Any] = field(default_factory=list)


def linked_questionnaire(event: Event, questionnaire_id: Any) -> OrganizationQuestionnaire:
    """The link that attaches the questionnaire to the event; raises DoesNotExist (a 404) if none.

    Admission links come first: a questionnaire linked twice is treated as the gate it is.
    """
    return (
        OrganizationQuestionnaire.objects.filter(events=event, questionnaire_id=questionnaire_id)
        .select_related("questionnaire")
        .order_by("questionnaire_type", "created_at")[:1]
        .get()
    )


def questions_with_options() -> Prefetch:
    """Every multiple-choice question of a questionnaire with its options: two queries at any size."""
    options = MultipleChoiceOption.objects.order_by("order", "id")
    return Prefetch(
        "mc_questions",
        queryset=MultipleChoiceQuestion.objects.order_by("order", "id").prefetch_related(
            Prefetch("options", queryset=options)
        ),
    )


def load_tree(questionnaire: Questionnaire) -> Questionnaire:
    """Attach sections and questions with options to ``questionnaire`` in three queries."""
    prefetch_related_objects(
        [questionnaire],
        Prefetch("sections", queryset=QuestionnaireSection.objects.order_by("order", "id")),
        questions_with_options(),
    )
    return questionnaire


def application_deadline(event: Event) -> datetime:
    return event.apply_before or event.start


def check_resubmission(user: User, link: OrganizationQuestionnaire) -> None:
    """May the caller hand in another READY submission of this admission questionnaire? (docs/api.md)"""
    questionnaire = link.questionnaire
    ready = list(
        QuestionnaireSubmission.objects.filter(user=user, questionnaire=questionnaire, status=Status.READY)
        .select_related("evaluation")
        .order_by("-submitted_at", "-created_at")
    )
    if not ready:
        return
    if not link.requires_evaluation:
        raise SubmissionRefused(400, "You have already submitted this questionnaire.")
    evaluation = getattr(ready[0], "evaluation", None)
    if evaluation is None or evaluation.status == Verdict.PENDING_REVIEW:
        raise SubmissionRefused(400, PENDING_EVALUATION)
    if evaluation.status == Verdict.APPROVED:
        raise SubmissionRefused(400, "You have already passed this questionnaire.")
    if 0 < questionnaire.max_attempts <= len(ready):
        raise SubmissionRefused(400, "You have reached the maximum number of attempts for this questionnaire.")
    if questionnaire.can_retake_after:
        retry_on = ready[0].submitted_at + questionnaire.can_retake_after
        if retry_on > timezone.now():
            raise SubmissionRefused(400, f"You can retake this questionnaire after {retry_on.isoformat()}.")


def validate_answers(
    questionnaire: Questionnaire,
    answers: Iterable[MultipleChoiceAnswerInput],
    ready: bool,
    other_question_ids: Iterable[Any] = (),
) -> list[tuple[MultipleChoiceQuestion, list[Any]]]:
    """Check answers against the questionnaire's questions; return (question, option ids) pairs.

    Questions and options are loaded once (two queries), then everything is checked in memory.
    """
    questions = {
        q.id: q
        for q in MultipleChoiceQuestion.objects.filter(questionnaire=questionnaire).prefetch_related("options")
    }
    for question_id in other_question_ids:
        # Free-text and file-upload questions are not modelled, so no such answer can belong here.
        raise SubmissionRefused(400, f"Question {question_id} does not belong to this questionnaire.")
    checked: list[tuple[MultipleChoiceQuestion, list[Any]]] = []
    for answer in answers:
        question = questions.get(answer.question_id)
        if question is None:
            raise SubmissionRefused(400, f"Question {answer.question_id} does not belong to this questionnaire.")
        option_ids = list(dict.fromkeys(answer.option_ids))
        valid = {option.id for option in question.options.all()}
        foreign = [option_id for option_id in option_ids if option_id not in valid]
        if foreign:
            raise SubmissionRefused(400, f"Option {foreign[0]} does not belong to question {question.id}.")
        if len(option_ids) > 1 and not question.allow_multiple_answers:
            raise SubmissionRefused(409, "This question allows only one answer.")
        checked.append((question, option_ids))
    if ready:
        answered = {question.id for question, option_ids in checked if option_ids}
        if any(q.is_mandatory and q.id not in answered for q in questions.values()):
            raise SubmissionRefused(400, MISSING_MANDATORY)
    return checked


def _write_answers(submission: QuestionnaireSubmission, checked: list[tuple[MultipleChoiceQuestion, list]]) -> None:
    MultipleChoiceAnswer.objects.bulk_create(
        MultipleChoiceAnswer(submission=submission, question=question, option_id=option_id)
        for question, option_ids in checked
        for option_id in option_ids
    )


def _save_draft(
    user: User, event: Event, questionnaire: Questionnaire, checked: list[tuple[MultipleChoiceQuestion, list]]
) -> QuestionnaireSubmission:
    """Upsert the one draft of (questionnaire, user) and replace its answers.

    The row is read FOR UPDATE (concurrent drafts of one user queue on it); a lost first-insert
    race is caught by ``get_or_create``'s savepoint and turns into a read of the winner's row.
    """
    now = timezone.now()
    draft, created = QuestionnaireSubmission.objects.select_for_update().get_or_create(
        questionnaire=questionnaire,
        user=user,
        status=Status.DRAFT,
        defaults={"event": event, "submitted_at": now},
    )
    if not created:
        draft.event = event
        draft.submitted_at = now
        draft.save(update_fields=["event", "submitted_at", "updated_at"])
        draft.mc_answers.all().delete()
    _write_answers(draft, checked)
    return draft


@transaction.atomic
def submit(
    user: User,
    event: Event,
    link: OrganizationQuestionnaire,
    status: str,
    answers: Iterable[MultipleChoiceAnswerInput],
    other_question_ids: Iterable[Any] = (),
) -> QuestionnaireSubmission:
    """Validate and store one submission, atomically (a savepoint inside the request's transaction).

    A READY submission that needs evaluation in automatic or hybrid mode is scored right after
    commit, in this process; manual mode leaves it without an evaluation (= pending review).
    """
    questionnaire = link.questionnaire
    admission = link.questionnaire_type == OrganizationQuestionnaire.Type.ADMISSION
    if admission and timezone.now() > application_deadline(event):
        raise SubmissionRefused(400, "The application deadline has passed.")
    ready = status == Status.READY
    if ready and admission:
        # Serialize READY submissions per account: the check below then sees every earlier one.
        list(User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
        check_resubmission(user, link)
    checked = validate_answers(questionnaire, answers, ready, other_question_ids)
    if not ready:
        return _save_draft(user, event, questionnaire, checked)
    submission = QuestionnaireSubmission.objects.create(
        questionnaire=questionnaire, user=user, event=event, status=Status.READY, submitted_at=timezone.now()
    )
    _write_answers(submission, checked)
    if link.requires_evaluation and questionnaire.evaluation_mode != Questionnaire.EvaluationMode.MANUAL:
        submission_id = submission.id
        transaction.on_commit(lambda: evaluate_automatically(submission_id), robust=True)
    return submission


def score_submission(submission: QuestionnaireSubmission) -> tuple[Decimal, bool]:
    """(score, fatal): + positive weight per question answered with only correct options,
    − negative weight per question with a wrong option; ``fatal`` if a fatal question was wrong."""
    rows = MultipleChoiceAnswer.objects.filter(submission=submission).values_list(
        "question_id", "option__is_correct", "question__positive_weight", "question__negative_weight",
        "question__is_fatal",
    )
    questions: dict[Any, dict[str, Any]] = {}
    for question_id, is_correct, positive, negative, is_fatal in rows:
        entry = questions.setdefault(
            question_id, {"correct": True, "positive": positive, "negative": negative, "fatal": is_fatal}
        )
        entry["correct"] = entry["correct"] and is_correct
    score = Decimal("0")
    fatal = False
    for entry in questions.values():
        if entry["correct"]:
            score += entry["positive"]
        else:
            score -= entry["negative"]
            fatal = fatal or entry["fatal"]
    return score, fatal


def automatic_verdict(questionnaire: Questionnaire, score: Decimal, fatal: bool) -> str:
    if fatal:
        return Verdict.REJECTED
    if score >= questionnaire.min_score:
        return Verdict.APPROVED
    if questionnaire.evaluation_mode == Questionnaire.EvaluationMode.HYBRID:
        return Verdict.PENDING_REVIEW
    return Verdict.REJECTED


def evaluate_automatically(submission_id: Any) -> QuestionnaireEvaluation:
    """Score a READY submission and record the verdict; an existing evaluation is kept."""
    submission = QuestionnaireSubmission.objects.select_related("questionnaire").get(pk=submission_id)
    score, fatal = score_submission(submission)
    evaluation, _ = QuestionnaireEvaluation.objects.get_or_create(
        submission=submission,
        defaults={
            "status": automatic_verdict(submission.questionnaire, score, fatal),
            "score": score,
            "automatically_evaluated": True,
        },
    )
    return evaluation


def evaluate_manually(submission: QuestionnaireSubmission, status: str, evaluator: User) -> QuestionnaireEvaluation:
    """A staff decision on a READY submission (the admin's approve/reject); it overrides any
    automatic verdict, and keeps the automatic score when there is one."""
    if submission.status != Status.READY:
        raise ValueError("Only READY submissions can be evaluated.")
    if status not in Verdict.values:
        raise ValueError(f"Unknown evaluation status {status!r}.")
    evaluation, _ = QuestionnaireEvaluation.objects.update_or_create(
        submission=submission,
        defaults={"status": status, "automatically_evaluated": False, "evaluator": evaluator},
    )
    return evaluation
