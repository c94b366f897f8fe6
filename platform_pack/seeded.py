"""Names of what ``bootstrap_perf_tests`` seeds, shared by the seed and the scenarios.

No Django imports here: scenarios speak HTTP only and must not load the backend's models.
"""

ORG_SLUG = "perf-test-org"
ADMIN_EMAIL = "perf-admin@test.com"
STAFF_EMAIL = "perf-staff@test.com"
PERF_USER_EMAIL = "perf-user-{i}@test.com"
# Never submits a READY answer, so its my-status keeps listing the gating questionnaire: how
# QuestionnaireUser finds the questionnaire's id on every run, after the pooled users have passed.
QUESTIONNAIRE_SCOUT_EMAIL = "perf-questionnaire-scout@test.com"
# Users created by the NewUserRegistration scenario register as locust-new-<hex>@test.com.
REGISTRATION_EMAIL_PREFIX = "locust-new-"
REGISTRATION_EMAIL_DOMAIN = "test.com"

RSVP_EVENT_SLUG = "perf-rsvp-event"
RSVP_LIMITED_EVENT_SLUG = "perf-rsvp-limited-event"
TICKET_FREE_EVENT_SLUG = "perf-ticket-free-event"
TICKET_PWYC_EVENT_SLUG = "perf-ticket-pwyc-event"
QUESTIONNAIRE_EVENT_SLUG = "perf-questionnaire-event"


def perf_user_email(i: int) -> str:
    return PERF_USER_EMAIL.format(i=i)
