"""A logged-in user answering an RSVP event: status checks and answers cycling no→yes→maybe→yes."""

from perf import task
from platform_pack.scenarios.base import LoggedInUser
from platform_pack.seeded import RSVP_EVENT_SLUG

ANSWER_CYCLE = ("no", "yes", "maybe", "yes")


class RSVPUser(LoggedInUser):
    weight = 15

    def on_start(self) -> None:
        super().on_start()
        self.rsvp_event = self.event_id(RSVP_EVENT_SLUG)
        self.answers = 0

    def next_answer(self) -> str:
        answer = ANSWER_CYCLE[self.answers % len(ANSWER_CYCLE)]
        self.answers += 1
        return answer

    @task(3)
    def my_status(self) -> None:
        self.api.my_status(self.rsvp_event)

    @task(2)
    def rsvp(self) -> None:
        self.api.rsvp(self.rsvp_event, self.next_answer())

    @task(1)
    def status_rsvp_status(self) -> None:
        self.api.my_status(self.rsvp_event)
        self.api.rsvp(self.rsvp_event, self.next_answer())
        self.api.my_status(self.rsvp_event)
