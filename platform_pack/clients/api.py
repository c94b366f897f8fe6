"""The platform's HTTP API (docs/api.md) as calls with stable request names.

Each method sends one request through the user's instrumented session and names it by a
template (``/events/{id}/my-status``), so statistics group by endpoint, not by URL. The
five endpoints where the platform's rules meet contention carry the ``[BOTTLENECK]``
suffix, as in the Locust suite. Methods return the session's response (or its
``catch_response`` context); scenarios decide what counts as success.
"""

from typing import Any

from perf import HttpSession, Response, ResponseContext

BOTTLENECK = " [BOTTLENECK]"

# Request names, one per endpoint of the contract that the scenarios use.
LOGIN = "/auth/token/pair"
REFRESH = "/auth/refresh"
ME = "/account/me"
REGISTER = "/account/register"
VERIFY = "/account/verify"
EVENT_LIST = "/events/ [list]"
EVENT_DETAIL = "/events/{id} [detail]"
EVENT_BY_SLUG = "/events/{org_slug}/event/{event_slug}"
MY_STATUS = "/events/{id}/my-status" + BOTTLENECK
RSVP = "/events/{id}/rsvp/{answer}" + BOTTLENECK
TIERS = "/events/{id}/tickets/tiers"
CHECKOUT = "/events/{id}/tickets/{tier_id}/checkout" + BOTTLENECK
CHECKOUT_PWYC = "/events/{id}/tickets/{tier_id}/checkout/pwyc" + BOTTLENECK
QUESTIONNAIRE = "/events/{id}/questionnaire/{questionnaire_id}"
QUESTIONNAIRE_SUBMIT = "/events/{id}/questionnaire/{questionnaire_id}/submit" + BOTTLENECK
DASHBOARD_EVENTS = "/dashboard/events"
DASHBOARD_ORGANIZATIONS = "/dashboard/organizations"
DASHBOARD_TICKETS = "/dashboard/tickets"
DASHBOARD_RSVPS = "/dashboard/rsvps"
HEALTHCHECK = "/healthcheck"

# A custom failure, not a request: the verification email never arrived in time.
EMAIL_WAIT_METHOD = "WAIT"
EMAIL_WAIT = "email_verification_wait"
# A custom failure, not a request: QuestionnaireUser found no questionnaire to submit.
LOOKUP_METHOD = "LOOKUP"
QUESTIONNAIRE_LOOKUP = "questionnaire_lookup"

DEFAULT_HEADERS = {"Content-Type": "application/json", "Accept": "application/json", "Accept-Language": "en"}


class ApiClient:
    """One simulated user's view of the API: holds its tokens, names every request."""

    def __init__(self, session: HttpSession) -> None:
        self.session = session
        session.headers.update(DEFAULT_HEADERS)
        self.access: str | None = None
        self.refresh_token: str | None = None

    def _auth(self) -> dict[str, str] | None:
        return {"Authorization": f"Bearer {self.access}"} if self.access else None

    def _get(self, path: str, name: str, **kwargs: Any) -> Any:
        return self.session.request("GET", path, name=name, headers=self._auth(), **kwargs)

    def _post(self, path: str, name: str, body: Any = None, **kwargs: Any) -> Any:
        return self.session.request("POST", path, name=name, json=body, headers=self._auth(), **kwargs)

    # Auth and account
    def login(self, email: str, password: str) -> bool:
        """Log in and keep the tokens; True on exactly 200, as the Locust suite requires."""
        self.access = None
        with self._post("/auth/token/pair", LOGIN, {"username": email, "password": password},
                        catch_response=True) as response:
            if response.status_code != 200:
                return False
            data = response.json()
            self.access, self.refresh_token = data["access"], data["refresh"]
            return True

    def me(self) -> Response:
        return self._get("/account/me", ME)

    def register(self, body: dict[str, Any]) -> ResponseContext:
        return self._post("/account/register", REGISTER, body, catch_response=True)

    def verify(self, token: str) -> ResponseContext:
        return self._post("/account/verify", VERIFY, {"token": token}, catch_response=True)

    # Events
    def list_events(self, page: int = 1) -> Response:
        return self._get("/events/", EVENT_LIST, params={"page": page} if page > 1 else None)

    def event_detail(self, event_id: str) -> Response:
        return self._get(f"/events/{event_id}", EVENT_DETAIL)

    def event_by_slug(self, org_slug: str, event_slug: str) -> Response:
        return self._get(f"/events/{org_slug}/event/{event_slug}", EVENT_BY_SLUG)

    def my_status(self, event_id: str) -> Response:
        return self._get(f"/events/{event_id}/my-status", MY_STATUS)

    def rsvp(self, event_id: str, answer: str) -> Response:
        return self._post(f"/events/{event_id}/rsvp/{answer}", RSVP)

    def tiers(self, event_id: str) -> Response:
        return self._get(f"/events/{event_id}/tickets/tiers", TIERS)

    def checkout(self, event_id: str, tier_id: str, guest_name: str) -> Response:
        body = {"tickets": [{"guest_name": guest_name}]}
        return self._post(f"/events/{event_id}/tickets/{tier_id}/checkout", CHECKOUT, body)

    def checkout_pwyc(self, event_id: str, tier_id: str, guest_name: str, price: str) -> Response:
        body = {"tickets": [{"guest_name": guest_name}], "price_per_ticket": price}
        return self._post(f"/events/{event_id}/tickets/{tier_id}/checkout/pwyc", CHECKOUT_PWYC, body)

    def questionnaire(self, event_id: str, questionnaire_id: str) -> Response:
        return self._get(f"/events/{event_id}/questionnaire/{questionnaire_id}", QUESTIONNAIRE)

    def submit_questionnaire(self, event_id: str, questionnaire_id: str, body: dict[str, Any]) -> Response:
        return self._post(f"/events/{event_id}/questionnaire/{questionnaire_id}/submit", QUESTIONNAIRE_SUBMIT, body)

    # Dashboard
    def dashboard_events(self) -> Response:
        return self._get("/dashboard/events", DASHBOARD_EVENTS)

    def dashboard_organizations(self) -> Response:
        return self._get("/dashboard/organizations", DASHBOARD_ORGANIZATIONS)

    def dashboard_tickets(self) -> Response:
        return self._get("/dashboard/tickets", DASHBOARD_TICKETS)

    def dashboard_rsvps(self) -> Response:
        return self._get("/dashboard/rsvps", DASHBOARD_RSVPS)
