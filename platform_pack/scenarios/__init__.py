"""The eight platform scenarios and their weights (docs/design.md, "Scenarios"): ``PERF_SCENARIOS``
names this module, and perf.packs reads ``SCENARIOS``, each class name to its class; the weights live
on the classes.
"""

from perf import User
from platform_pack.scenarios.auth import ExistingUserLogin, NewUserRegistration
from platform_pack.scenarios.dashboard import DashboardUser
from platform_pack.scenarios.discovery import EventBrowser
from platform_pack.scenarios.questionnaire import QuestionnaireUser
from platform_pack.scenarios.rsvp import RSVPUser
from platform_pack.scenarios.tickets import FreeTicketUser, PWYCTicketUser

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
