"""A logged-in user applying through the questionnaire that gates an event.

Per docs/api.md, "Decisions": the questionnaire id comes from my-status
``questionnaires_missing``; while it is missing the user submits READY (with the
answer that passes; automatic evaluation approves it right after commit) and DRAFT
updates after that, so every submit is a 200 and the submit endpoint stays under load.
"""

from typing import Any

from perf.load.user import task
from perf.scenarios.base import LoggedInUser
from perf.seeded import QUESTIONNAIRE_EVENT_SLUG

QUESTIONNAIRE_ID = "questionnaire_id"


class QuestionnaireUser(LoggedInUser):
    weight = 5

    def on_start(self) -> None:
        super().on_start()
        self.gated_event = self.event_id(QUESTIONNAIRE_EVENT_SLUG)
        self.missing = False
        self.questionnaire: dict[str, Any] | None = None
        self.check_status()
        if not self.missing:
            # Already passed in an earlier run: reported once, not a failure; DRAFTs still exercise submit.
            self.context.note_once(
                "Some users had already passed the questionnaire: they submit DRAFTs only "
                "(run bootstrap_perf_tests --reset for READY submissions)."
            )

    def check_status(self) -> None:
        response = self.api.my_status(self.gated_event)
        if response.status_code != 200:
            return
        missing = response.json().get("questionnaires_missing") or []
        self.missing = bool(missing)
        if missing:
            self.context.shared.setdefault(QUESTIONNAIRE_ID, missing[0])

    def load_questionnaire(self) -> dict[str, Any] | None:
        questionnaire_id = self.context.shared.get(QUESTIONNAIRE_ID)
        if questionnaire_id is None:
            return None
        response = self.api.questionnaire(self.gated_event, questionnaire_id)
        if response.status_code == 200:
            self.questionnaire = response.json()
        return self.questionnaire

    def answers(self, questionnaire: dict[str, Any]) -> list[dict[str, Any]]:
        """One option per multiple-choice question: the first, which is the passing one in the seed."""
        questions = list(questionnaire["multiple_choice_questions"])
        for section in questionnaire["sections"]:
            questions.extend(section["multiple_choice_questions"])
        return [{"question_id": q["id"], "options_id": [q["options"][0]["id"]]} for q in questions if q["options"]]

    def submit(self) -> None:
        questionnaire = self.questionnaire or self.load_questionnaire()
        if questionnaire is None:
            return
        body = {
            "questionnaire_id": questionnaire["id"],
            "status": "ready" if self.missing else "draft",
            "multiple_choice_answers": self.answers(questionnaire),
            "free_text_answers": [],
            "file_upload_answers": [],
        }
        response = self.api.submit_questionnaire(self.gated_event, questionnaire["id"], body)
        if response.status_code == 200 and body["status"] == "ready":
            self.missing = False

    @task(2)
    def my_status(self) -> None:
        self.check_status()

    @task(1)
    def submit_answers(self) -> None:
        self.submit()

    @task(1)
    def full_flow(self) -> None:
        self.check_status()
        self.load_questionnaire()
        self.submit()
        self.check_status()
