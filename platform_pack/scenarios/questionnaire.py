"""A logged-in user applying through the questionnaire that gates an event.

The questionnaire's id comes from my-status ``questionnaires_missing``, as the platform's
frontend finds it. A user still to pass submits READY (with the answer that passes; automatic
evaluation approves it right after commit) and DRAFT updates after that, so every submit is a
200 and the submit endpoint stays under load on every run.

Once a user has passed, its my-status no longer lists the questionnaire, and after one run every
pooled user has. So a user who finds nothing asks once per run through the seeded scout account
(``QUESTIONNAIRE_SCOUT_EMAIL``), which never submits READY and so always has the questionnaire
to pass. If even the scout finds none, that is a failure (``questionnaire_lookup``), not a
silent skip.
"""

from typing import Any

from perf import StopUser, task
from platform_pack.clients.api import LOOKUP_METHOD, QUESTIONNAIRE_LOOKUP, ApiClient
from platform_pack.scenarios.base import LoggedInUser
from platform_pack.seeded import QUESTIONNAIRE_EVENT_SLUG, QUESTIONNAIRE_SCOUT_EMAIL

QUESTIONNAIRE_ID = "questionnaire_id"


class QuestionnaireUser(LoggedInUser):
    weight = 5

    def on_start(self) -> None:
        super().on_start()
        self.gated_event = self.event_id(QUESTIONNAIRE_EVENT_SLUG)
        self.missing = False
        self.questionnaire: dict[str, Any] | None = None
        self.check_status()
        if self.context.find_once(QUESTIONNAIRE_ID, self.ask_the_scout) is None:
            self.client.report(
                LOOKUP_METHOD, QUESTIONNAIRE_LOOKUP, 0.0, 0,
                f"no questionnaire gates {QUESTIONNAIRE_EVENT_SLUG!r}, not even for {QUESTIONNAIRE_SCOUT_EMAIL}: "
                "run bootstrap_perf_tests",
            )
            raise StopUser

    def check_status(self) -> None:
        response = self.api.my_status(self.gated_event)
        if response.status_code != 200:
            return
        missing = response.json().get("questionnaires_missing") or []
        self.missing = bool(missing)
        if missing:
            self.context.shared.setdefault(QUESTIONNAIRE_ID, missing[0])

    def ask_the_scout(self) -> str | None:
        """The questionnaire's id from the scout's my-status: it has never passed (platform_pack.seeded)."""
        scout = ApiClient(self.client)
        if not scout.login(QUESTIONNAIRE_SCOUT_EMAIL, self.context.config.default_password):
            return None
        response = scout.my_status(self.gated_event)
        missing = response.json().get("questionnaires_missing") if response.status_code == 200 else None
        return missing[0] if missing else None

    def load_questionnaire(self) -> dict[str, Any] | None:
        response = self.api.questionnaire(self.gated_event, self.context.shared[QUESTIONNAIRE_ID])
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
            return  # the GET failed, and is recorded as a failure
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
