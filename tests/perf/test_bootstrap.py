"""``manage.py bootstrap_perf_tests``, run in a child process against the live database, as users run it.

The live database is shared with every other test module, so assertions look only at perf rows
(and at rows created here). Tests run in file order: the module fixture starts from one
``--reset`` seed, read-only checks come first, then reruns, refusals and resets. The fixture's
teardown leaves a plain seed behind for the modules that follow.
"""

import re
import sqlite3
import stat
import uuid
from contextlib import closing
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.hashers import check_password
from django.utils import timezone

from backend.models import (
    BlacklistedToken,
    Event,
    EventRSVP,
    MultipleChoiceAnswer,
    Organization,
    OrganizationQuestionnaire,
    OutstandingToken,
    Questionnaire,
    QuestionnaireEvaluation,
    QuestionnaireSubmission,
    Ticket,
    TicketTier,
    User,
)
from perf.conf import load_config
from perf.config import PerfConfig
from platform_pack import seed
from platform_pack.config import PlatformConfig, load_platform_config
from tests.adminclient import AdminClient
from tests.factories import make_event, make_member, make_org, make_tier, make_user, unique
from tests.liveserver import manage, server_env

USERS = 30
PASSWORD = "password123"


def bootstrap(live_env: dict[str, str], *args: str, check: bool = True, **env: str):
    return manage("bootstrap_perf_tests", *args, env={**live_env, **env}, check=check)


@pytest.fixture(scope="module")
def seed_run(live_env, django_db_setup):
    """The output of one ``--reset --users 30`` run; a plain seed runs when the module is done.

    Not the shared ``seeded`` (an environment for ``run_perf``): this module checks the seed itself,
    so it needs the command's own output and a user count of its own passed as ``--users``."""
    result = bootstrap(live_env, "--reset", "--users", str(USERS))
    yield result
    bootstrap(live_env)


def perf_users():
    return User.objects.filter(email__regex=seed.PERF_EMAIL_REGEX)


def perf_org() -> Organization:
    return Organization.objects.get(slug=seed.ORG_SLUG)


def perf_events() -> dict[str, Event]:
    return {event.slug: event for event in Event.objects.filter(organization__slug=seed.ORG_SLUG)}


def perf_questionnaire() -> Questionnaire:
    return Questionnaire.objects.get(org_links__organization__slug=seed.ORG_SLUG, name=seed.QUESTIONNAIRE_NAME)


def snapshot() -> dict[str, list]:
    """Ids of every perf row, per kind: equal snapshots mean the same rows."""
    org = perf_org()
    questionnaire = perf_questionnaire()

    def ids(queryset) -> list:
        return sorted(str(pk) for pk in queryset.values_list("pk", flat=True))

    return {
        "users": ids(perf_users()),
        "org": [str(org.pk)],
        "staff": ids(org.staff_members.all()),
        "membership_tiers": ids(org.membership_tiers.all()),
        "members": ids(org.members.all()),
        "events": ids(org.events.all()),
        "tiers": ids(TicketTier.objects.filter(event__organization=org)),
        "questionnaire": [str(questionnaire.pk)],
        "sections": ids(questionnaire.sections.all()),
        "questions": ids(questionnaire.mc_questions.all()),
        "options": ids(questionnaire.mc_questions.get().options.all()),
        "links": ids(org.org_questionnaires.all()),
        "linked_events": ids(org.org_questionnaires.get().events.all()),
    }


# Configuration -----------------------------------------------------------------------------------


def test_config_defaults_are_the_locust_suites(settings):
    settings.PERF_HOST = "http://localhost:8000/api"
    assert load_config({}) == PerfConfig(backend_url="http://localhost:8000/api", request_timeout=30.0)
    assert load_platform_config({}) == PlatformConfig(
        mailpit_url="http://localhost:8025",
        default_password="password123",
        num_preseeded_users=100,
        email_poll_timeout=10.0,
        email_poll_interval=0.5,
        ticket_tier_capacity=10000,
    )


def test_without_perf_host_the_default_target_is_the_local_server_root(settings):
    del settings.PERF_HOST
    assert load_config({}).backend_url == "http://localhost:8000"


@pytest.mark.parametrize(
    ("name", "value", "load"),
    [
        ("LOCUST_NUM_PRESEEDED_USERS", "many", load_platform_config),
        ("LOCUST_TICKET_TIER_CAPACITY", "0", load_platform_config),
        ("LOCUST_EMAIL_POLL_INTERVAL", "-1", load_platform_config),
        ("LOCUST_REQUEST_TIMEOUT", "nan", load_config),
        ("LOCUST_BACKEND_URL", "localhost:8000", load_config),
        ("LOCUST_DEFAULT_PASSWORD", "", load_platform_config),
    ],
)
def test_config_rejects_a_bad_value_naming_its_variable(name, value, load):
    with pytest.raises(ValueError, match=name):
        load({name: value})


# What one seed run creates -----------------------------------------------------------------------


def test_seed_creates_admin_staff_and_the_requested_users(seed_run, orm):
    expected = {seed.ADMIN_EMAIL, seed.STAFF_EMAIL, seed.QUESTIONNAIRE_SCOUT_EMAIL} | {
        f"perf-user-{i}@test.com" for i in range(USERS)
    }
    users = list(perf_users())
    assert {user.email for user in users} == expected
    assert all(user.username == user.email and user.email_verified and user.is_active for user in users)
    user = next(user for user in users if user.email == "perf-user-7@test.com")
    assert (user.first_name, user.last_name) == ("PerfUser7", "Test")


def test_seeded_users_have_the_default_password(seed_run, orm):
    assert User.objects.get(email="perf-user-3@test.com").check_password(PASSWORD)


def test_no_seeded_account_may_open_the_django_admin(seed_run, orm):
    """Their password is public (the scenarios log in with it), so none is staff, let alone a superuser."""
    admin = User.objects.get(email=seed.ADMIN_EMAIL)
    staff = User.objects.get(email=seed.STAFF_EMAIL)
    assert (admin.first_name, admin.last_name, staff.first_name, staff.last_name) == ("Perf", "Admin", "Perf", "Staff")
    assert perf_users().count() == USERS + 3
    assert not perf_users().filter(is_staff=True).exists() and not perf_users().filter(is_superuser=True).exists()


def test_a_database_seeded_before_loses_its_public_superuser(seed_run, live_env, live_server_process, orm):
    """A server seeded when the perf admin was a superuser with the public password gets the backdoor closed."""
    User.objects.filter(email=seed.ADMIN_EMAIL).update(is_staff=True, is_superuser=True)
    bootstrap(live_env, "--users", str(USERS))
    admin = User.objects.get(email=seed.ADMIN_EMAIL)
    assert not admin.is_staff and not admin.is_superuser and admin.check_password(PASSWORD)
    page = AdminClient(live_server_process.root)
    page.session.get(f"{page.root}/admin/login/", timeout=30)
    refused = page.post("/admin/login/?next=/admin/", {"username": seed.ADMIN_EMAIL, "password": PASSWORD})
    assert "/admin/login/" in refused.url and "enter the correct" in refused.text


def test_seed_creates_the_public_organization_in_vienna(seed_run, orm):
    org = perf_org()
    assert org.name == "Performance Test Organization"
    assert org.visibility == Organization.Visibility.PUBLIC
    assert org.owner.email == org.contact_email == seed.ADMIN_EMAIL
    assert (org.city.name, org.city.country, org.city.timezone) == ("Vienna", "Austria", "Europe/Vienna")
    assert [staff.user.email for staff in org.staff_members.all()] == [seed.STAFF_EMAIL]


def test_first_twenty_users_are_active_members_of_the_general_tier(seed_run, orm):
    org = perf_org()
    members = list(org.members.select_related("user", "tier"))
    assert sorted(m.user.email for m in members) == sorted(f"perf-user-{i}@test.com" for i in range(20))
    assert {(m.status, m.tier.name) for m in members} == {("active", "General membership")}
    assert [tier.name for tier in org.membership_tiers.all()] == ["General membership"]


@pytest.mark.parametrize(
    ("slug", "days", "requires_ticket", "max_attendees", "max_per_user", "waitlist_open"),
    [
        ("perf-rsvp-event", 30, False, 0, 1, False),
        ("perf-rsvp-limited-event", 35, False, 50, 1, True),
        ("perf-ticket-free-event", 40, True, 10000, None, False),
        ("perf-ticket-pwyc-event", 45, True, 10000, None, False),
        ("perf-questionnaire-event", 50, False, 0, 1, False),
    ],
)
def test_seed_creates_the_event_of_the_contract(
    seed_run, orm, slug, days, requires_ticket, max_attendees, max_per_user, waitlist_open
):
    event = Event.objects.select_related("organization", "city").get(organization__slug=seed.ORG_SLUG, slug=slug)
    assert abs(event.start - (timezone.now() + timedelta(days=days))) < timedelta(minutes=10)
    assert event.end - event.start == timedelta(hours=3)
    assert (event.requires_ticket, event.max_attendees, event.max_tickets_per_user, event.waitlist_open) == (
        requires_ticket,
        max_attendees,
        max_per_user,
        waitlist_open,
    )
    assert (event.event_type, event.visibility, event.status) == ("public", "public", "open")
    assert (event.city.name, event.address) == ("Vienna", "Test Venue, Vienna")
    assert event.require_ticket_names and event.can_attend_without_login
    assert event.rsvp_before is None and event.apply_before is None


def test_seed_creates_exactly_five_events(seed_run, orm):
    assert sorted(perf_events()) == sorted(seed.EVENT_SLUGS.values())


def test_free_event_has_one_free_general_admission_tier(seed_run, orm):
    event = perf_events()["perf-ticket-free-event"]
    [tier] = event.ticket_tiers.all()
    assert (tier.name, tier.payment_method, tier.price_type, tier.purchasable_by) == (
        "General Admission",
        "free",
        "fixed",
        "public",
    )
    assert (tier.price, tier.currency, tier.total_quantity, tier.quantity_sold) == (Decimal("0.00"), "EUR", 10000, 0)
    assert tier.max_tickets_per_user is None
    assert abs(tier.sales_start_at - (timezone.now() - timedelta(days=1))) < timedelta(minutes=10)
    assert tier.sales_end_at == event.start - timedelta(days=1)


def test_pwyc_event_has_one_pay_what_you_can_tier_paid_offline(seed_run, orm):
    event = perf_events()["perf-ticket-pwyc-event"]
    [tier] = event.ticket_tiers.all()
    assert (tier.name, tier.payment_method, tier.price_type, tier.purchasable_by) == (
        "PWYC Admission",
        "offline",
        "pwyc",
        "public",
    )
    assert (tier.price, tier.pwyc_min, tier.pwyc_max) == (Decimal("10.00"), Decimal("5.00"), Decimal("50.00"))
    assert (tier.currency, tier.total_quantity, tier.quantity_sold, tier.max_tickets_per_user) == (
        "EUR",
        10000,
        0,
        None,
    )
    assert abs(tier.sales_start_at - (timezone.now() - timedelta(days=1))) < timedelta(minutes=10)
    assert tier.sales_end_at == event.start - timedelta(days=1)


def test_rsvp_events_have_no_tiers(seed_run, orm):
    assert not TicketTier.objects.filter(event__organization__slug=seed.ORG_SLUG, event__requires_ticket=False).exists()


def test_questionnaire_is_automatic_with_one_mandatory_single_answer_question(seed_run, orm):
    questionnaire = perf_questionnaire()
    assert (questionnaire.status, questionnaire.evaluation_mode) == ("published", "automatic")
    assert (questionnaire.max_attempts, questionnaire.min_score, questionnaire.can_retake_after) == (
        999,
        Decimal("0.00"),
        None,
    )
    [section] = questionnaire.sections.all()
    assert (section.name, section.order) == ("Performance Test Section", 1)
    [question] = questionnaire.mc_questions.all()
    assert question.section == section
    assert question.question == "Do you want to attend this performance test event?"
    assert question.is_mandatory and not question.allow_multiple_answers and not question.is_fatal
    assert [(o.option, o.is_correct, o.order) for o in question.options.all()] == [
        ("Yes, I want to attend", True, 1),
        ("No, I do not want to attend", False, 2),
    ]


def test_questionnaire_gates_only_the_questionnaire_event_as_admission(seed_run, orm):
    [link] = OrganizationQuestionnaire.objects.filter(organization__slug=seed.ORG_SLUG)
    assert link.questionnaire.name == "Performance Test Questionnaire"
    assert (link.questionnaire_type, link.requires_evaluation, link.members_exempt) == ("admission", True, False)
    assert [event.slug for event in link.events.all()] == ["perf-questionnaire-event"]


def test_summary_names_slugs_ids_password_and_how_to_run_the_load(seed_run, orm):
    out = seed_run.stdout
    assert seed.ORG_SLUG in out
    assert f"perf-user-0..{USERS - 1}@test.com ({USERS})" in out and PASSWORD in out
    for slug, event in perf_events().items():
        assert re.search(rf"{slug}\s+{event.id}", out)
    assert str(perf_questionnaire().id) in out
    assert "python manage.py run_perf --users 100 --spawn-rate 10 --duration 5m" in out


# Over HTTP -------------------------------------------------------------------------------------


def test_seeded_user_logs_in_with_the_default_password(seed_run, api):
    response = api.post("/auth/token/pair", json={"username": "perf-user-1@test.com", "password": PASSWORD})
    assert response.status_code == 200, response.text
    assert response.json()["access"]


def test_anonymous_event_list_shows_the_five_events(seed_run, api):
    wanted, listed, page = set(seed.EVENT_SLUGS.values()), set(), 1
    while True:
        response = api.get("/events/", params={"page": page, "page_size": 200})
        assert response.status_code == 200, response.text
        body = response.json()
        listed |= {event["slug"] for event in body["results"] if event["organization"]["slug"] == seed.ORG_SLUG}
        if wanted <= listed or not body["next"]:
            break
        page += 1
    assert listed == wanted


# Reruns ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rerun(seed_run, live_env, django_db_blocker) -> dict:
    """One plain rerun after the seed, with drift arranged first: a locked password and a wrong sales counter."""
    with django_db_blocker.unblock():
        before = snapshot()
        User.objects.filter(email="perf-user-2@test.com").update(password="!locked")
        tier = TicketTier.objects.get(event__organization__slug=seed.ORG_SLUG, name="General Admission")
        buyer = User.objects.get(email="perf-user-8@test.com")
        Ticket.objects.create(event=tier.event, tier=tier, user=buyer, guest_name="Perf")
        Ticket.objects.create(event=tier.event, tier=tier, user=buyer, guest_name="Perf", status="cancelled")
        TicketTier.objects.filter(pk=tier.pk).update(quantity_sold=500)
        bootstrap(live_env, "--users", str(USERS))
    return {"before": before, "tier_id": tier.pk}


def test_second_run_keeps_every_row_and_id(rerun, orm):
    assert snapshot() == rerun["before"]


def test_rerun_sets_the_password_again(rerun, orm):
    assert User.objects.get(email="perf-user-2@test.com").check_password(PASSWORD)


def test_rerun_recounts_tier_sales_from_the_live_tickets(rerun, orm):
    assert TicketTier.objects.get(pk=rerun["tier_id"]).quantity_sold == 1


def test_environment_sets_user_count_and_password(seed_run, live_env, orm):
    bootstrap(live_env, LOCUST_NUM_PRESEEDED_USERS="32", LOCUST_DEFAULT_PASSWORD="Another-Secret-42")
    assert User.objects.get(email="perf-user-31@test.com").check_password("Another-Secret-42")


# Refusals ----------------------------------------------------------------------------------------


def test_debug_false_refuses_in_one_line_and_writes_nothing(seed_run, live_env, orm):
    before = snapshot()
    result = bootstrap(live_env, "--reset", "--users", "37", check=False, DEBUG="False")
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert "DEBUG is False" in line and "--force" in line
    assert snapshot() == before
    assert not User.objects.filter(email="perf-user-36@test.com").exists()


def test_force_seeds_when_debug_is_false(seed_run, live_env, orm):
    bootstrap(live_env, "--force", "--users", "34", DEBUG="False")
    assert User.objects.filter(email="perf-user-33@test.com").exists()


def test_fewer_than_one_user_is_refused(seed_run, live_env, orm):
    result = bootstrap(live_env, "--users", "0", check=False)
    assert result.returncode == 2
    assert "--users must be between 1 and 1,000,000, got 0" in result.stderr


def test_bad_environment_value_is_refused_naming_the_variable(seed_run, live_env, orm):
    result = bootstrap(live_env, check=False, LOCUST_TICKET_TIER_CAPACITY="lots")
    assert result.returncode != 0
    assert "LOCUST_TICKET_TIER_CAPACITY" in result.stderr


# Reset -------------------------------------------------------------------------------------------


def test_reset_refuses_while_a_perf_user_owns_another_organization(seed_run, live_env, orm):
    before = snapshot()
    other = make_org(owner=User.objects.get(email="perf-user-9@test.com"))
    try:
        result = bootstrap(live_env, "--reset", "--users", str(USERS), check=False)
        assert result.returncode != 0
        assert other.slug in result.stderr
        assert snapshot() == before
    finally:
        other.delete()


def test_reset_deletes_every_perf_row(seed_run, live_env, orm):
    events = perf_events()
    questionnaire = perf_questionnaire()
    question = questionnaire.mc_questions.get()
    user = User.objects.get(email="perf-user-3@test.com")
    outsider = make_user()
    submission = QuestionnaireSubmission.objects.create(
        questionnaire=questionnaire,
        user=user,
        event=events["perf-questionnaire-event"],
        status="ready",
        submitted_at=timezone.now(),
    )
    answer = MultipleChoiceAnswer.objects.create(
        submission=submission, question=question, option=question.options.first()
    )
    evaluation = QuestionnaireEvaluation.objects.create(
        submission=submission, status="approved", automatically_evaluated=True
    )
    tier = events["perf-ticket-free-event"].ticket_tiers.get()
    ticket = Ticket.objects.create(event=tier.event, tier=tier, user=outsider, guest_name="Outsider")
    rsvp = EventRSVP.objects.create(event=events["perf-rsvp-event"], user=outsider, status="yes")
    registered = make_user(email=f"locust-new-{uuid.uuid4().hex}@test.com")
    token = OutstandingToken.objects.create(jti=uuid.uuid4().hex, user=user, expires_at=timezone.now())
    blacklisted = BlacklistedToken.objects.create(jti=token.jti, expires_at=timezone.now())
    old = snapshot()

    bootstrap(live_env, "--reset", "--users", str(USERS))

    for row in (submission, answer, evaluation, ticket, rsvp, registered, token, blacklisted, questionnaire):
        assert not type(row).objects.filter(pk=row.pk).exists(), row
    new = snapshot()
    assert not set(old["events"]) & set(new["events"]) and old["org"] != new["org"]
    assert len(new["users"]) == USERS + 3  # the pooled users, the admin, the staff member and the scout


def test_reset_keeps_rows_that_are_not_perf_data(seed_run, live_env, orm):
    owner = make_user()
    lookalikes = [
        make_user(email=f"perf-{unique('x')}@example.com"),
        make_user(email=f"x-perf-{unique('y')}@test.com"),
        make_user(email=f"locust-old-{unique('z')}@test.com"),
        make_user(email=f"PERF-{unique('C')}@TEST.COM"),
    ]
    org = make_org(owner=owner)
    member = make_member(org, lookalikes[0])
    # Same slug and same questionnaire name as perf data, but another organization's.
    event = make_event(org, slug=seed.RSVP_EVENT_SLUG)
    tier = make_tier(event)
    rsvp = EventRSVP.objects.create(event=event, user=User.objects.get(email="perf-user-4@test.com"), status="yes")
    namesake = Questionnaire.objects.create(name=seed.QUESTIONNAIRE_NAME)
    link = OrganizationQuestionnaire.objects.create(organization=org, questionnaire=namesake)
    try:
        bootstrap(live_env, "--reset", "--users", str(USERS))

        for row in (owner, *lookalikes, org, member, event, tier, namesake, link):
            assert type(row).objects.filter(pk=row.pk).exists(), row
        # The perf user was deleted with all that was theirs, even on other organizations' events.
        assert not EventRSVP.objects.filter(pk=rsvp.pk).exists()
    finally:
        # Namesakes of perf rows would confuse later lookups by slug or name.
        org.delete()
        namesake.delete()


# The demo's admin login ------------------------------------------------------------------------------


def test_the_first_seed_makes_an_admin_login_with_a_private_password_and_never_resets_it(tmp_path):
    """On a database without a superuser, the first seed makes ``perfkit-admin`` with a random password: printed
    once, kept in a 0600 file, never reset by a later seed or ``--reset``. A database of its own: the shared one
    has the tests' superusers, and then no demo login is made at all (the next test)."""
    env = server_env(f"sqlite:///{tmp_path / 'fresh.sqlite3'}", tmp_path / "mail")
    manage("migrate", "--no-input", "-v0", env=env)
    password_file = Path(env["PERF_ADMIN_PASSWORD_FILE"])

    first = bootstrap(env, "--users", "3").stdout
    [line] = [line for line in first.splitlines() if line.startswith("Admin login")]
    password = password_file.read_text().strip()
    assert line.startswith(f"Admin login made: perfkit-admin, password {password} (shown once")
    assert len(password) >= 16 and stat.S_IMODE(password_file.stat().st_mode) == 0o600
    stored = _stored_password(tmp_path / "fresh.sqlite3", "perfkit-admin")
    assert check_password(password, stored)

    for args in (("--users", "3"), ("--reset", "--users", "3")):
        again = bootstrap(env, *args).stdout
        assert f"Admin login: perfkit-admin, password in {password_file} (seeding never resets it)" in again
        assert password not in again
        assert _stored_password(tmp_path / "fresh.sqlite3", "perfkit-admin") == stored
    assert password_file.read_text().strip() == password


def test_a_database_with_its_own_superuser_gets_no_demo_login(seed_run, live_env, orm):
    User.objects.filter(username="perfkit-admin").delete()  # made by an earlier module's seed, if any
    make_user(is_staff=True, is_superuser=True)
    out = bootstrap(live_env, "--users", str(USERS)).stdout
    assert "Admin login: your own superuser (seeding makes none while one exists)" in out
    assert not User.objects.filter(username="perfkit-admin").exists()


def test_run_perf_bootstrap_keeps_the_seeds_guard_against_debug_false(seed_run, live_env, orm):
    """``run_perf --bootstrap`` under DEBUG=False refuses as ``bootstrap_perf_tests`` does, before anything."""
    before = snapshot()
    result = manage("run_perf", "--bootstrap", "-u", "1", "-t", "1s", "--no-save", "--no-audit",
                    env={**live_env, "DEBUG": "False"}, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "--bootstrap could not write the data: DEBUG is False: refusing to seed" in line
    assert snapshot() == before


def _stored_password(database: Path, username: str) -> str:
    with closing(sqlite3.connect(database)) as connection:
        [(encoded,)] = connection.execute("SELECT password FROM backend_user WHERE username = ?", (username,))
    return encoded
