"""The eight platform scenarios and their weights (docs/design.md, "Scenarios").

``SCENARIOS`` maps each class name to its class; the weights live on the classes.
"""

from perf.load.user import User
from perf.scenarios.auth import ExistingUserLogin, NewUserRegistration
from perf.scenarios.dashboard import DashboardUser
from perf.scenarios.discovery import EventBrowser
from perf.scenarios.questionnaire import QuestionnaireUser
from perf.scenarios.rsvp import RSVPUser
from perf.scenarios.tickets import FreeTicketUser, PWYCTicketUser

SCENARIOS: dict[str, type[User]] = {
    cls.__name__: cls
    for cls in (
        EventBrowser,
        ExistingUserLogin,
        DashboardUser,
        RSVPUser,
        FreeTicketUser,
        PWYCTicketUser,
        QuestionnaireUser,
        NewUserRegistration,
    )
}


def find_scenario(name: str) -> type[User] | None:
    """Case-insensitive lookup: ``rsvpuser`` finds ``RSVPUser``."""
    lowered = name.lower()
    return next((cls for key, cls in SCENARIOS.items() if key.lower() == lowered), None)
