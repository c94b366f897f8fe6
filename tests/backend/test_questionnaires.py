"""Questionnaires over HTTP: reading one, submitting answers and their rules (docs/api.md, "Questionnaires")."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backend.models import (
    Event,
    MultipleChoiceOption,
    MultipleChoiceQuestion,
    OrganizationQuestionnaire,
    Questionnaire,
    QuestionnaireEvaluation,
    QuestionnaireSection,
    QuestionnaireSubmission,
)
from backend.services.questionnaires import evaluate_manually
from tests.factories import access_token, make_event, make_user, unique


@dataclass
class Gate:
    """A questionnaire linked to an event: one section holding one mandatory single-answer question."""

    event: Event
    questionnaire: Questionnaire
    section: QuestionnaireSection
    question: MultipleChoiceQuestion
    yes: MultipleChoiceOption
    no: MultipleChoiceOption

    def url(self, suffix: str = "") -> str:
        return f"/events/{self.event.id}/questionnaire/{self.questionnaire.id}{suffix}"

    def body(self, status: str = "ready", options: list | None = None, **extra) -> dict:
        chosen = [self.yes.id] if options is None else options
        return {
            "questionnaire_id": str(self.questionnaire.id),
            "status": status,
            "multiple_choice_answers": [{"question_id": str(self.question.id), "options_id": [str(o) for o in chosen]}],
            "free_text_answers": [],
            "file_upload_answers": [],
            **extra,
        }


def make_gate(
    event: Event | None = None,
    mode: str = Questionnaire.EvaluationMode.AUTOMATIC,
    requires_evaluation: bool = True,
    question: dict | None = None,
    **fields,
) -> Gate:
    event = event or make_event()
    questionnaire = Questionnaire.objects.create(
        name=unique("questionnaire"), status=Questionnaire.Status.PUBLISHED, evaluation_mode=mode, **fields
    )
    section = QuestionnaireSection.objects.create(questionnaire=questionnaire, name="Section", order=1)
    mc = MultipleChoiceQuestion.objects.create(
        questionnaire=questionnaire, section=section, question="Do you want to attend?", is_mandatory=True, order=1,
        **(question or {}),
    )
    yes = MultipleChoiceOption.objects.create(question=mc, option="Yes", is_correct=True, order=1)
    no = MultipleChoiceOption.objects.create(question=mc, option="No", order=2)
    link = OrganizationQuestionnaire.objects.create(
        organization=event.organization, questionnaire=questionnaire, requires_evaluation=requires_evaluation
    )
    link.events.add(event)
    return Gate(event, questionnaire, section, mc, yes, no)


def ready_submissions(gate: Gate, user) -> list[QuestionnaireSubmission]:
    return list(
        QuestionnaireSubmission.objects.filter(questionnaire=gate.questionnaire, user=user, status="ready")
        .select_related("evaluation")
        .order_by("-submitted_at")
    )


# --- GET ---------------------------------------------------------------------------------------


def test_questionnaire_is_served_anonymously_in_the_real_shape(api, orm):
    gate = make_gate()
    top = MultipleChoiceQuestion.objects.create(
        questionnaire=gate.questionnaire, question="Pick any", hint="several", order=2, allow_multiple_answers=True
    )
    top_option = MultipleChoiceOption.objects.create(question=top, option="A", order=1, is_correct=True)

    response = api.get(gate.url())

    assert response.status_code == 200
    assert response.json() == {
        "id": str(gate.questionnaire.id),
        "name": gate.questionnaire.name,
        "description": "",
        "evaluation_mode": "automatic",
        "multiple_choice_questions": [
            {
                "id": str(top.id), "question": "Pick any", "hint": "several", "is_mandatory": False, "order": 2,
                "depends_on_option_id": None, "allow_multiple_answers": True,
                "options": [{"id": str(top_option.id), "option": "A", "order": 1}],
            }
        ],
        "free_text_questions": [],
        "file_upload_questions": [],
        "sections": [
            {
                "id": str(gate.section.id), "name": "Section", "description": "", "order": 1,
                "depends_on_option_id": None,
                "multiple_choice_questions": [
                    {
                        "id": str(gate.question.id), "question": "Do you want to attend?", "hint": "",
                        "is_mandatory": True, "order": 1, "depends_on_option_id": None,
                        "allow_multiple_answers": False,
                        "options": [
                            {"id": str(gate.yes.id), "option": "Yes", "order": 1},
                            {"id": str(gate.no.id), "option": "No", "order": 2},
                        ],
                    }
                ],
                "free_text_questions": [],
                "file_upload_questions": [],
            }
        ],
    }


def test_questionnaire_not_linked_to_the_event_is_404(api, orm):
    gate = make_gate()
    other_event = make_event(gate.event.organization)

    response = api.get(f"/events/{other_event.id}/questionnaire/{gate.questionnaire.id}")

    assert response.status_code == 404


def test_questionnaire_of_an_event_the_caller_cannot_see_is_404(api, orm):
    gate = make_gate(make_event(visibility=Event.Visibility.PRIVATE))

    assert api.get(gate.url()).status_code == 404


def test_reading_a_questionnaire_costs_the_same_queries_at_any_size(orm):
    small, large = make_gate(), make_gate()
    for i in range(10):
        question = MultipleChoiceQuestion.objects.create(
            questionnaire=large.questionnaire, section=large.section if i % 2 else None, question=f"Q{i}", order=i
        )
        MultipleChoiceOption.objects.bulk_create(
            MultipleChoiceOption(question=question, option=f"O{j}", order=j) for j in range(4)
        )
    client = Client()

    counts = []
    for gate in (small, large):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/api{gate.url()}")
        assert response.status_code == 200
        counts.append(len(queries))

    assert counts[0] == counts[1]


# --- submit: the happy paths ---------------------------------------------------------------------


def test_ready_submission_is_approved_automatically_by_the_time_the_response_arrives(api, orm):
    gate = make_gate()
    user = make_user()

    response = api.post(gate.url("/submit"), token=access_token(user), json=gate.body())

    assert response.status_code == 200
    body = response.json()
    assert body["questionnaire_id"] == str(gate.questionnaire.id)
    assert body["status"] == "ready"
    assert body["requires_evaluation"] is True
    assert body["submitted_at"]
    [submission] = ready_submissions(gate, user)
    assert submission.event_id == gate.event.id
    assert submission.mc_answers.get().option_id == gate.yes.id
    assert submission.evaluation.status == QuestionnaireEvaluation.Status.APPROVED
    assert submission.evaluation.automatically_evaluated is True
    assert submission.evaluation.score == Decimal("1.00")


def test_second_ready_submission_after_approval_is_400(api, orm):
    gate = make_gate()
    token = access_token(make_user())
    assert api.post(gate.url("/submit"), token=token, json=gate.body()).status_code == 200

    response = api.post(gate.url("/submit"), token=token, json=gate.body())

    assert response.status_code == 400
    assert "detail" in response.json()


def test_draft_submissions_upsert_a_single_draft_with_the_latest_answers(api, orm):
    gate = make_gate()
    user = make_user()
    token = access_token(user)

    first = api.post(gate.url("/submit"), token=token, json=gate.body("draft", [gate.no.id]))
    second = api.post(gate.url("/submit"), token=token, json=gate.body("draft", [gate.yes.id]))

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["status"] == "draft"
    [draft] = QuestionnaireSubmission.objects.filter(questionnaire=gate.questionnaire, user=user)
    assert draft.status == "draft"
    assert [a.option_id for a in draft.mc_answers.all()] == [gate.yes.id]


def test_draft_submission_may_omit_mandatory_answers(api, orm):
    gate = make_gate()

    response = api.post(
        gate.url("/submit"), token=access_token(make_user()), json=gate.body("draft", multiple_choice_answers=[])
    )

    assert response.status_code == 200


def test_draft_after_an_approved_submission_is_still_accepted(api, orm):
    gate = make_gate()
    token = access_token(make_user())
    assert api.post(gate.url("/submit"), token=token, json=gate.body()).status_code == 200

    assert api.post(gate.url("/submit"), token=token, json=gate.body("draft")).status_code == 200


def test_concurrent_drafts_of_one_user_all_succeed_and_leave_one_draft(api, orm):
    gate = make_gate()
    user = make_user()
    token = access_token(user)
    bodies = [gate.body("draft", [gate.yes.id if i % 2 else gate.no.id]) for i in range(8)]

    def post(body: dict) -> int:
        return api.post(gate.url("/submit"), token=token, json=body).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(post, bodies))

    assert statuses == [200] * 8
    [draft] = QuestionnaireSubmission.objects.filter(questionnaire=gate.questionnaire, user=user)
    assert draft.mc_answers.count() == 1


def test_concurrent_ready_submissions_of_one_user_let_exactly_one_through(api, orm):
    gate = make_gate()
    user = make_user()
    token = access_token(user)

    def post(_: int) -> int:
        return api.post(gate.url("/submit"), token=token, json=gate.body()).status_code

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(post, range(6)))

    assert sorted(statuses) == [200] + [400] * 5
    assert len(ready_submissions(gate, user)) == 1


# --- submit: refusals ------------------------------------------------------------------------------


def test_ready_submission_without_a_mandatory_answer_is_400(api, orm):
    gate = make_gate()

    response = api.post(
        gate.url("/submit"), token=access_token(make_user()), json=gate.body(multiple_choice_answers=[])
    )

    assert response.status_code == 400
    assert response.json() == {"detail": "You are missing mandatory answers."}


def test_option_of_another_question_is_400(api, orm):
    gate, other = make_gate(), make_gate()

    response = api.post(gate.url("/submit"), token=access_token(make_user()), json=gate.body(options=[other.yes.id]))

    assert response.status_code == 400


def test_question_of_another_questionnaire_is_400(api, orm):
    gate, other = make_gate(), make_gate()
    answers = [{"question_id": str(other.question.id), "options_id": [str(other.yes.id)]}]

    response = api.post(
        gate.url("/submit"), token=access_token(make_user()), json=gate.body(multiple_choice_answers=answers)
    )

    assert response.status_code == 400


def test_two_options_on_a_single_answer_question_is_409(api, orm):
    gate = make_gate()

    response = api.post(
        gate.url("/submit"), token=access_token(make_user()), json=gate.body(options=[gate.yes.id, gate.no.id])
    )

    assert response.status_code == 409


def test_missing_questionnaire_id_is_422(api, orm):
    gate = make_gate()
    body = gate.body()
    del body["questionnaire_id"]

    response = api.post(gate.url("/submit"), token=access_token(make_user()), json=body)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "questionnaire_id"]


def test_unknown_status_is_422(api, orm):
    gate = make_gate()

    response = api.post(gate.url("/submit"), token=access_token(make_user()), json=gate.body("final"))

    assert response.status_code == 422


def test_question_answered_twice_is_422(api, orm):
    gate = make_gate()
    answer = {"question_id": str(gate.question.id), "options_id": [str(gate.yes.id)]}

    response = api.post(
        gate.url("/submit"), token=access_token(make_user()), json=gate.body(multiple_choice_answers=[answer, answer])
    )

    assert response.status_code == 422


def test_questionnaire_id_differing_from_the_path_is_400(api, orm):
    gate, other = make_gate(), make_gate()

    body = gate.body(questionnaire_id=str(other.questionnaire.id))

    response = api.post(gate.url("/submit"), token=access_token(make_user()), json=body)

    assert response.status_code == 400


def test_submitting_to_an_unlinked_questionnaire_is_404(api, orm):
    gate = make_gate()
    other_event = make_event(gate.event.organization)

    response = api.post(
        f"/events/{other_event.id}/questionnaire/{gate.questionnaire.id}/submit",
        token=access_token(make_user()),
        json=gate.body(),
    )

    assert response.status_code == 404


def test_submission_after_the_application_deadline_is_400(api, orm):
    gate = make_gate(make_event(apply_before=timezone.now() - timedelta(minutes=1)))

    response = api.post(gate.url("/submit"), token=access_token(make_user()), json=gate.body())

    assert response.status_code == 400
    assert "deadline" in response.json()["detail"]


def test_submission_without_a_token_is_401(api, orm):
    gate = make_gate()

    assert api.post(gate.url("/submit"), json=gate.body()).status_code == 401


# --- evaluation modes, attempts and retakes ----------------------------------------------------------


def test_manual_mode_leaves_the_submission_pending_and_blocks_another_ready_one(api, orm):
    gate = make_gate(mode=Questionnaire.EvaluationMode.MANUAL)
    user = make_user()
    token = access_token(user)
    assert api.post(gate.url("/submit"), token=token, json=gate.body()).status_code == 200

    response = api.post(gate.url("/submit"), token=token, json=gate.body())

    [submission] = ready_submissions(gate, user)
    assert not hasattr(submission, "evaluation")
    assert response.status_code == 400
    assert response.json() == {"detail": "You have a submission pending evaluation."}


def test_without_required_evaluation_a_second_ready_submission_is_400(api, orm):
    gate = make_gate(requires_evaluation=False)
    user = make_user()
    token = access_token(user)
    first = api.post(gate.url("/submit"), token=token, json=gate.body())

    second = api.post(gate.url("/submit"), token=token, json=gate.body())

    assert first.json()["requires_evaluation"] is False
    assert not hasattr(ready_submissions(gate, user)[0], "evaluation")
    assert second.status_code == 400


def test_wrong_answer_to_a_fatal_question_is_rejected_and_may_be_retaken(api, orm):
    gate = make_gate(question={"is_fatal": True})
    user = make_user()
    token = access_token(user)
    assert api.post(gate.url("/submit"), token=token, json=gate.body(options=[gate.no.id])).status_code == 200
    assert ready_submissions(gate, user)[0].evaluation.status == QuestionnaireEvaluation.Status.REJECTED

    response = api.post(gate.url("/submit"), token=token, json=gate.body())

    assert response.status_code == 200
    assert ready_submissions(gate, user)[0].evaluation.status == QuestionnaireEvaluation.Status.APPROVED


def test_score_below_the_minimum_is_rejected_in_automatic_mode(api, orm):
    gate = make_gate(min_score=Decimal("1.00"), question={"negative_weight": Decimal("2.00")})
    user = make_user()

    api.post(gate.url("/submit"), token=access_token(user), json=gate.body(options=[gate.no.id]))

    evaluation = ready_submissions(gate, user)[0].evaluation
    assert (evaluation.status, evaluation.score) == (QuestionnaireEvaluation.Status.REJECTED, Decimal("-2.00"))


def test_score_below_the_minimum_goes_to_review_in_hybrid_mode(api, orm):
    gate = make_gate(mode=Questionnaire.EvaluationMode.HYBRID, min_score=Decimal("1.00"))
    user = make_user()

    api.post(gate.url("/submit"), token=access_token(user), json=gate.body(options=[gate.no.id]))

    assert ready_submissions(gate, user)[0].evaluation.status == QuestionnaireEvaluation.Status.PENDING_REVIEW


def test_retake_after_the_last_allowed_attempt_is_400(api, orm):
    gate = make_gate(max_attempts=1, question={"is_fatal": True})
    token = access_token(make_user())
    api.post(gate.url("/submit"), token=token, json=gate.body(options=[gate.no.id]))

    response = api.post(gate.url("/submit"), token=token, json=gate.body())

    assert response.status_code == 400
    assert "attempts" in response.json()["detail"]


def test_retake_inside_the_cooldown_is_400(api, orm):
    gate = make_gate(can_retake_after=timedelta(hours=1), question={"is_fatal": True})
    token = access_token(make_user())
    api.post(gate.url("/submit"), token=token, json=gate.body(options=[gate.no.id]))

    response = api.post(gate.url("/submit"), token=token, json=gate.body())

    assert response.status_code == 400
    assert "retake" in response.json()["detail"]


# --- manual evaluation by staff (used by the admin) ------------------------------------------------


def test_staff_approval_of_a_pending_submission_lets_the_user_pass(api, orm):
    gate = make_gate(mode=Questionnaire.EvaluationMode.MANUAL)
    user, staff = make_user(), make_user()
    api.post(gate.url("/submit"), token=access_token(user), json=gate.body())
    [submission] = ready_submissions(gate, user)

    evaluation = evaluate_manually(submission, QuestionnaireEvaluation.Status.APPROVED, staff)

    evaluation.refresh_from_db()
    assert (evaluation.status, evaluation.evaluator_id, evaluation.automatically_evaluated) == (
        "approved", staff.id, False
    )
    assert api.post(gate.url("/submit"), token=access_token(user), json=gate.body()).json() == {
        "detail": "You have already passed this questionnaire."
    }


def test_staff_rejection_overrides_an_automatic_approval(api, orm):
    gate = make_gate()
    user, staff = make_user(), make_user()
    api.post(gate.url("/submit"), token=access_token(user), json=gate.body())
    [submission] = ready_submissions(gate, user)

    evaluate_manually(submission, QuestionnaireEvaluation.Status.REJECTED, staff)

    assert QuestionnaireEvaluation.objects.get(submission=submission).status == "rejected"


def test_drafts_cannot_be_evaluated(orm):
    gate = make_gate()
    draft = QuestionnaireSubmission.objects.create(questionnaire=gate.questionnaire, user=make_user(), status="draft")

    with pytest.raises(ValueError):
        evaluate_manually(draft, QuestionnaireEvaluation.Status.APPROVED, make_user())
