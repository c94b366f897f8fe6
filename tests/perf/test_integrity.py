"""The post-run data-integrity audit: it passes on consistent data and names what is broken.

Every invariant is broken here on purpose through the ORM, the way a racy backend would break it.
The live database is shared by the whole session (and other tests leave inconsistent rows behind on
purpose), so the audit runs scoped to this module's own events; the broken rows are deleted in
teardown, or they would fail the audit of every later ``run_perf`` in the session (exit code 5).
"""

import json
from collections.abc import Iterator

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F

from backend.models import Event, EventRSVP, Organization, Ticket, TicketTier
from perf.analysis.audit import AuditReport
from perf.models import PerfRun
from platform_pack import integrity
from platform_pack.seeded import ORG_SLUG
from tests import factories
from tests.liveserver import run_perf
from tests.perf.builders import browse_args

CHECKS = {"tier_sales", "rsvp_capacity", "duplicate_rsvps", "ticket_tiers", "verified_emails"}


@pytest.fixture
def events(orm) -> Iterator[list[Event]]:
    """Events this test creates (append to the list); deleted afterwards with everything under them."""
    created: list[Event] = []
    yield created
    Event.objects.filter(pk__in=[event.pk for event in created]).delete()


@pytest.fixture
def consistent_event(events: list[Event]) -> Event:
    """Everything as the API would leave it, including rows that must NOT count: a cancelled ticket
    (not sold) and a NO answer (no seat) on an event whose two seats are both taken."""
    event = factories.make_event(max_attendees=2)
    events.append(event)
    tier = factories.make_tier(event, total_quantity=2, quantity_sold=2)
    for status in (Ticket.Status.ACTIVE, Ticket.Status.CHECKED_IN, Ticket.Status.CANCELLED):
        Ticket.objects.create(event=event, tier=tier, user=factories.make_user(), status=status)
    for status in (EventRSVP.Status.YES, EventRSVP.Status.YES, EventRSVP.Status.NO):
        EventRSVP.objects.create(event=event, user=factories.make_user(), status=status)
    return event


def check(report: integrity.AuditReport | None, name: str) -> integrity.Check:
    assert report is not None
    return report.check(name)


# Consistent data ---------------------------------------------------------------------------------


def test_consistent_data_passes_every_check(consistent_event):
    verified = factories.make_user()

    report = integrity.audit([verified.email], events=[consistent_event])

    assert report is not None and report.ok, report.lines()
    assert {c.name for c in report.checks} == CHECKS
    assert report.lines() == ["Integrity audit: PASS (5 checks)"]


def test_duplicate_rsvp_check_passes_because_the_database_refuses_duplicates(consistent_event):
    """The (event, user) unique constraint makes a duplicate impossible to arrange here, so this
    shows both halves: the database refuses one, and two users' rows on one event are no duplicate.
    The check exists for backends without the constraint."""
    rsvp = EventRSVP.objects.filter(event=consistent_event).first()
    with pytest.raises(IntegrityError), transaction.atomic():
        EventRSVP.objects.create(event=consistent_event, user=rsvp.user, status=EventRSVP.Status.YES)

    assert check(integrity.audit(events=[consistent_event]), "duplicate_rsvps").ok


def test_verified_emails_match_whatever_their_case(orm):
    user = factories.make_user()

    assert check(integrity.audit([user.email.upper()], events=[]), "verified_emails").ok


# Broken invariants -------------------------------------------------------------------------------


def test_sales_counter_ahead_of_the_tickets_is_reported(consistent_event):
    tier = TicketTier.objects.get(event=consistent_event)
    TicketTier.objects.filter(pk=tier.pk).update(quantity_sold=F("quantity_sold") + 1)

    report = integrity.audit(events=[consistent_event])

    assert not report.ok
    found = check(report, "tier_sales")
    assert not found.ok and f"{tier.pk} sold 3 of 2, 2 live tickets" in found.detail
    assert [c.name for c in report.failed()] == ["tier_sales"]


def test_tier_sold_beyond_its_size_is_reported(events):
    """Counter and tickets agree, but there are more of them than the tier holds: an oversell."""
    event = factories.make_event()
    events.append(event)
    tier = factories.make_tier(event, total_quantity=1, quantity_sold=2)
    for _ in range(2):
        Ticket.objects.create(event=event, tier=tier, user=factories.make_user())

    found = check(integrity.audit(events=[event]), "tier_sales")

    assert not found.ok and str(tier.pk) in found.detail


def test_more_yes_rsvps_than_seats_is_reported(events):
    event = factories.make_event(max_attendees=2)
    events.append(event)
    for _ in range(3):
        EventRSVP.objects.create(event=event, user=factories.make_user(), status=EventRSVP.Status.YES)

    found = check(integrity.audit(events=[event]), "rsvp_capacity")

    assert not found.ok and f"{event.pk} has 3 YES for 2 seats" in found.detail


def test_ticket_with_another_events_tier_is_reported(events):
    event, other = factories.make_event(), factories.make_event()
    events += [event, other]
    foreign_tier = factories.make_tier(other)
    ticket = Ticket.objects.create(event=event, tier=foreign_tier, user=factories.make_user())

    found = check(integrity.audit(events=[event]), "ticket_tiers")

    assert not found.ok
    assert f"ticket {ticket.pk} of event {event.pk} has tier {foreign_tier.pk} (of event {other.pk})" in found.detail


def test_unverified_account_the_flow_saw_verified_is_reported(orm):
    user = factories.make_user(email_verified=False)

    found = check(integrity.audit([user.email], events=[]), "verified_emails")

    assert not found.ok and f"1 not verified: {user.email}" in found.detail


def test_account_missing_for_a_verified_email_is_reported(orm):
    email = f"{factories.unique('ghost')}@example.com"

    found = check(integrity.audit([email], events=[]), "verified_emails")

    assert not found.ok and f"1 missing: {email}" in found.detail


def test_detail_names_five_examples_and_counts_the_rest(events):
    event = factories.make_event()
    events.append(event)
    tiers = [factories.make_tier(event) for _ in range(7)]
    TicketTier.objects.filter(event=event).update(quantity_sold=1)

    detail = check(integrity.audit(events=[event]), "tier_sales").detail

    assert detail.startswith("7 ") and detail.endswith("; and 2 more")
    assert sum(str(tier.pk) in detail for tier in tiers) == 5


def test_failed_report_prints_a_headline_and_each_failure_and_is_json(events):
    event = factories.make_event(max_attendees=1)
    events.append(event)
    for _ in range(2):
        EventRSVP.objects.create(event=event, user=factories.make_user(), status=EventRSVP.Status.YES)

    report = integrity.audit(events=[event])

    headline, *failures = report.lines()
    assert headline == "Integrity audit: FAIL (1 of 5 checks failed)"
    assert failures == [f"  FAIL rsvp_capacity: 1 more YES RSVPs than seats: {event.pk} has 2 YES for 1 seats"]
    stored = json.loads(json.dumps(report.as_dict()))
    assert stored["ok"] is False
    assert {c["name"]: c["ok"] for c in stored["checks"]} == {name: name != "rsvp_capacity" for name in CHECKS}


# Through the command -----------------------------------------------------------------------------


@pytest.fixture
def broken_tier(events: list[Event]) -> TicketTier:
    """A tier that claims a sale with no ticket behind it, on an event of the perf organization, which
    is what a run audits (deleted with its event afterwards)."""
    event = factories.make_event(Organization.objects.get(slug=ORG_SLUG))
    events.append(event)
    return factories.make_tier(event, quantity_sold=1)


def _browse(host: str, label: str, *extra: str) -> tuple[str, ...]:
    """A short read-only load (EventBrowser): enough for a run to finish and audit."""
    return browse_args(host, label, "3s", *extra, users=2, spawn_rate=2, wait="0.1,0.2", audit=True)


@pytest.mark.slow
def test_run_after_a_broken_invariant_exits_5_and_stores_the_failed_audit(seeded, live_server_process,
                                                                          broken_tier):
    label = factories.unique("audit")

    result = run_perf(seeded, *_browse(live_server_process.url, label))

    assert result.returncode == 5, result.stdout[-3000:] + result.stderr[-3000:]
    # Not the tier's id: the run audits the whole shared database, where other tests' broken tiers
    # may fill the five examples.
    assert "Integrity audit: FAIL" in result.stdout and "  FAIL tier_sales: " in result.stdout
    audit = PerfRun.objects.get(label=label).audit
    assert audit["ok"] is False
    assert {c["name"]: c["ok"] for c in audit["checks"]}["tier_sales"] is False


@pytest.mark.slow
def test_no_audit_skips_the_audit_and_stores_none(seeded, live_server_process, broken_tier):
    label = factories.unique("no-audit")

    result = run_perf(seeded, *_browse(live_server_process.url, label, "--no-audit"))

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Integrity audit" not in result.stdout
    assert PerfRun.objects.get(label=label).audit is None




def test_a_run_audits_only_the_perf_organizations_events(events, orm):
    """Inconsistent rows elsewhere (another organization's history) are not the run's doing."""
    elsewhere = factories.make_event()
    events.append(elsewhere)
    factories.make_tier(elsewhere, quantity_sold=3)

    report = AuditReport(integrity.platform_invariants({}))

    assert str(elsewhere.pk) not in json.dumps(report.as_dict())
