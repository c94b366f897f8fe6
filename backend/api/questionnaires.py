"""Questionnaire routes: read one and submit answers (docs/api.md, "Questionnaires").

The request body is checked here, field by field, the way django-ninja's schema would (422 in
pydantic's shape); the submission rules live in ``backend.services.questionnaires``.
"""

import uuid
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.urls import path

from backend.api.base import ApiError, api_view, json_body, validation_error
from backend.models import MultipleChoiceQuestion, Questionnaire, QuestionnaireSection, QuestionnaireSubmission
from backend.services import questionnaires as service
from backend.services.visibility import get_visible_event

# --- reading -------------------------------------------------------------------------------------


def question_data(question: MultipleChoiceQuestion) -> dict[str, Any]:
    """A multiple-choice question as clients see it: options without ``is_correct``."""
    return {
        "id": str(question.id),
        "question": question.question,
        "hint": question.hint,
        "is_mandatory": question.is_mandatory,
        "order": question.order,
        "depends_on_option_id": None,
        "allow_multiple_answers": question.allow_multiple_answers,
        "options": [{"id": str(o.id), "option": o.option, "order": o.order} for o in question.options.all()],
    }


def section_data(section: QuestionnaireSection, questions: list[MultipleChoiceQuestion]) -> dict[str, Any]:
    return {
        "id": str(section.id),
        "name": section.name,
        "description": section.description,
        "order": section.order,
        "depends_on_option_id": None,
        "multiple_choice_questions": [question_data(q) for q in questions],
        "free_text_questions": [],
        "file_upload_questions": [],
    }


def questionnaire_data(questionnaire: Questionnaire) -> dict[str, Any]:
    """The questionnaire object of docs/api.md, "Questionnaires"; needs :func:`service.load_tree` applied first."""
    by_section: dict[Any, list[MultipleChoiceQuestion]] = {}
    for question in questionnaire.mc_questions.all():
        by_section.setdefault(question.section_id, []).append(question)
    return {
        "id": str(questionnaire.id),
        "name": questionnaire.name,
        "description": questionnaire.description,
        "evaluation_mode": questionnaire.evaluation_mode,
        "multiple_choice_questions": [question_data(q) for q in by_section.get(None, [])],
        "free_text_questions": [],
        "file_upload_questions": [],
        "sections": [section_data(s, by_section.get(s.id, [])) for s in questionnaire.sections.all()],
    }


@transaction.non_atomic_requests
@api_view(["GET"], auth="optional")
def questionnaire_detail(request: HttpRequest, event_id: uuid.UUID, questionnaire_id: uuid.UUID) -> dict:
    event = get_visible_event(request.api_user, event_id)
    link = service.linked_questionnaire(event, questionnaire_id)
    return questionnaire_data(service.load_tree(link.questionnaire))


# --- submitting ----------------------------------------------------------------------------------


def _uuid(value: Any, loc: list[str | int]) -> uuid.UUID:
    if value is None:
        raise validation_error(loc, "Field required", "missing")
    try:
        return uuid.UUID(str(value))
    except (ValueError, AttributeError) as exc:
        raise validation_error(loc, "Input should be a valid UUID", "uuid_parsing") from exc


def _list(body: dict, key: str) -> list:
    value = body.get(key, [])
    if not isinstance(value, list):
        raise validation_error(["body", key], "Input should be a valid list", "list_type")
    return value


def _item(value: Any, loc: list[str | int]) -> dict:
    if not isinstance(value, dict):
        raise validation_error(loc, "Input should be a valid dictionary or object", "model_type")
    return value


def _uuid_list(item: dict, key: str, loc: list[str | int], min_length: int = 0) -> list[uuid.UUID]:
    if key not in item:
        raise validation_error([*loc, key], "Field required", "missing")
    values = item[key]
    if not isinstance(values, list):
        raise validation_error([*loc, key], "Input should be a valid list", "list_type")
    if len(values) < min_length:
        raise validation_error([*loc, key], f"List should have at least {min_length} item", "too_short")
    return [_uuid(v, [*loc, key, i]) for i, v in enumerate(values)]


def parse_submission(body: dict) -> tuple[uuid.UUID, str, list[service.MultipleChoiceAnswerInput], list[uuid.UUID]]:
    """(questionnaire_id, status, multiple-choice answers, question ids of the other answer kinds)."""
    questionnaire_id = _uuid(body.get("questionnaire_id"), ["body", "questionnaire_id"])
    status = body.get("status")
    if status not in QuestionnaireSubmission.Status.values:
        kind = "missing" if status is None else "enum"
        raise validation_error(["body", "status"], "Input should be 'draft' or 'ready'", kind)
    answers = []
    for i, raw in enumerate(_list(body, "multiple_choice_answers")):
        loc: list[str | int] = ["body", "multiple_choice_answers", i]
        item = _item(raw, loc)
        question_id = _uuid(item.get("question_id"), [*loc, "question_id"])
        answers.append(service.MultipleChoiceAnswerInput(question_id, _uuid_list(item, "options_id", loc)))
    others = []
    for i, raw in enumerate(_list(body, "free_text_answers")):
        loc = ["body", "free_text_answers", i]
        item = _item(raw, loc)
        others.append(_uuid(item.get("question_id"), [*loc, "question_id"]))
        answer = item.get("answer")
        if not isinstance(answer, str) or not 1 <= len(answer) <= 1000:
            raise validation_error([*loc, "answer"], "Answer should be a string of 1 to 1000 characters")
    for i, raw in enumerate(_list(body, "file_upload_answers")):
        loc = ["body", "file_upload_answers", i]
        item = _item(raw, loc)
        others.append(_uuid(item.get("question_id"), [*loc, "question_id"]))
        _uuid_list(item, "file_ids", loc, min_length=1)
    question_ids = [a.question_id for a in answers] + others
    if len(set(question_ids)) != len(question_ids):
        raise validation_error(["body"], "Value error, Each question may be answered only once")
    return questionnaire_id, status, answers, others


@api_view(["POST"], auth="required")
def submit_questionnaire(request: HttpRequest, event_id: uuid.UUID, questionnaire_id: uuid.UUID) -> dict:
    body_questionnaire_id, status, answers, others = parse_submission(json_body(request))
    if body_questionnaire_id != questionnaire_id:
        raise ApiError(400, "The questionnaire_id in the body does not match the URL.")
    user = request.api_user
    event = get_visible_event(user, event_id)
    link = service.linked_questionnaire(event, questionnaire_id)
    submission = service.submit(user, event, link, status, answers, others)
    return {
        "questionnaire_id": str(questionnaire_id),
        "status": submission.status,
        "submitted_at": submission.submitted_at,
        "requires_evaluation": link.requires_evaluation,
    }


urlpatterns = [
    path(
        "events/<uuid:event_id>/questionnaire/<uuid:questionnaire_id>",
        questionnaire_detail,
        name="questionnaire-detail",
    ),
    path(
        "events/<uuid:event_id>/questionnaire/<uuid:questionnaire_id>/submit",
        submit_questionnaire,
        name="questionnaire-submit",
    ),
]
