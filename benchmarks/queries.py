"""Database queries per request at 10 and at 1,000 rows: the same count at both sizes.

Goal (issue: speed): queries per request for my-status, the dashboard lists, checkout and the
event list are equal at 10 and at 1,000 events/tickets, i.e. no endpoint queries once per row.
Run: .venv/bin/python benchmarks/queries.py [--sizes 10 1000]
     [--database-url postgres://postgres@127.0.0.1:5432/postgres]

Without --database-url a fresh SQLite file in a temporary folder is used; with a PostgreSQL URL a
scratch database is created beside it and dropped afterwards. At each size the database is
flushed and refilled with bulk_create: one organization with N public, open, upcoming RSVP events
and one ticket event (a free tier with room to spare); one user, a plain member, who holds N
tickets on the ticket event, has said yes to all N RSVP events and is a member of N organizations
(so that /dashboard/organizations has N rows too). Every request runs in-process through
django.test.Client, once to warm up and once counted with CaptureQueriesContext (the figures in
the table). That count is cross-checked against the Server-Timing header of perf/middleware.py,
which leaves out what Django logs but sends past the execute wrappers: COMMIT, and on PostgreSQL
the BEGIN (SQLite's BEGIN IMMEDIATE goes through a cursor and is in both). Lists are asked at the
default page size (what clients send) and at page_size=200, where the page itself grows from
about 10 rows to 200. Exit code 1 when a count differs between sizes, or the two counters disagree.
"""

import argparse
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scratch_database import database_url_problem, scratch_database  # noqa: E402

BIG = 1_000_000
PAGE = 200


@dataclass
class Data:
    """What one size's requests need: ids, the bench user's token and the expected row counts."""

    size: int
    token: str
    ticket_event: str
    rsvp_event: str
    tier: str
    events_visible: int


@dataclass
class Endpoint:
    label: str
    method: str
    path: Callable[[Data], str]
    auth: bool = True
    # Checks the body, so that "equal" can never come from an empty or failed answer.
    check: Callable[[dict, Data], bool] = lambda body, data: True
    body: dict | None = None


@dataclass
class Measure:
    queries: int
    header: int | None
    sql: list[str] = field(default_factory=list)


def listed(expected: Callable[[Data], int], page_size: int | None = None) -> Callable[[dict, Data], bool]:
    """A page whose ``count`` is the expected total and whose rows fill the page as far as they can."""

    def check(body: dict, data: Data) -> bool:
        total = expected(data)
        return body["count"] == total and len(body["results"]) == min(total, page_size or 20)

    return check


def endpoints() -> list[Endpoint]:
    rows = []
    for suffix, size in (("", None), (f"?page_size={PAGE}", PAGE)):
        rows += [
            Endpoint(f"GET /api/events/{suffix} (anonymous)", "get", lambda d, s=suffix: f"/api/events/{s}",
                     auth=False, check=listed(lambda d: d.events_visible, size)),
            Endpoint(f"GET /api/events/{suffix} (logged in)", "get", lambda d, s=suffix: f"/api/events/{s}",
                     check=listed(lambda d: d.events_visible, size)),
        ]
    rows += [
        Endpoint("GET my-status (ticket event, N tickets)", "get", lambda d: f"/api/events/{d.ticket_event}/my-status",
                 check=lambda body, d: len(body["tickets"]) == d.size),
        Endpoint("GET my-status (RSVP event)", "get", lambda d: f"/api/events/{d.rsvp_event}/my-status",
                 check=lambda body, d: body["rsvp"]["status"] == "yes"),
    ]
    for name, expected in (
        ("events", lambda d: d.events_visible),
        ("organizations", lambda d: d.size),
        ("tickets", lambda d: d.size),
        ("rsvps", lambda d: d.size),
    ):
        for suffix, size in (("", None), (f"?page_size={PAGE}", PAGE)):
            rows.append(Endpoint(f"GET /api/dashboard/{name}{suffix}", "get",
                                 lambda d, n=name, s=suffix: f"/api/dashboard/{n}{s}", check=listed(expected, size)))
    rows.append(
        Endpoint("POST checkout (free tier, 1 ticket)", "post",
                 lambda d: f"/api/events/{d.ticket_event}/tickets/{d.tier}/checkout",
                 check=lambda body, d: len(body["tickets"]) == 1, body={"tickets": [{"guest_name": "Bench"}]})
    )
    return rows


def build(size: int) -> Data:
    """Flush the database and fill it for ``size`` with bulk inserts (see the module docstring)."""
    from django.core.management import call_command
    from django.utils import timezone

    from backend.models import City, Event, EventRSVP, Organization, OrganizationMember, Ticket, TicketTier, User
    from backend.tokens import make_pair

    call_command("flush", interactive=False, verbosity=0)
    now = timezone.now()
    city = City.objects.create(name="Vienna", country="Austria", timezone="Europe/Vienna")
    owner = User.objects.create(username="owner@bench.test", email="owner@bench.test", password="!")
    user = User.objects.create(username="user@bench.test", email="user@bench.test", password="!",
                               first_name="Bench", email_verified=True)
    orgs = Organization.objects.bulk_create(
        Organization(name=f"Org {i:05d}", slug=f"org-{i:05d}", owner=owner, city=city) for i in range(size)
    )
    OrganizationMember.objects.bulk_create(OrganizationMember(organization=org, user=user) for org in orgs)
    org = orgs[0]

    def event(i: int, **fields) -> Event:
        start = now + timedelta(days=30, hours=i)
        return Event(organization=org, name=f"Event {i:05d}", slug=f"event-{i:05d}", city=city,
                     address="Bench Hall", start=start, end=start + timedelta(hours=3), **fields)

    ticket_event = Event.objects.bulk_create(
        [event(0, requires_ticket=True, max_tickets_per_user=None, max_attendees=BIG)]
    )[0]
    rsvp_events = Event.objects.bulk_create(event(i) for i in range(1, size + 1))
    tier = TicketTier.objects.create(
        event=ticket_event, name="Free", payment_method=TicketTier.PaymentMethod.FREE, total_quantity=BIG,
        quantity_sold=size, max_tickets_per_user=BIG, sales_start_at=now - timedelta(days=1),
        sales_end_at=ticket_event.start - timedelta(days=1),
    )
    Ticket.objects.bulk_create(
        Ticket(event=ticket_event, tier=tier, user=user, guest_name=f"Guest {i}") for i in range(size)
    )
    EventRSVP.objects.bulk_create(
        EventRSVP(event=e, user=user, status=EventRSVP.Status.YES) for e in rsvp_events
    )
    return Data(size=size, token=make_pair(user.id).access, ticket_event=str(ticket_event.id),
                rsvp_event=str(rsvp_events[-1].id), tier=str(tier.id), events_visible=size + 1)


HEADER_COUNT = re.compile(r'desc="(\d+) quer')


def request(endpoint: Endpoint, data: Data) -> Measure:
    """Warm up once, then count the second call's queries both ways."""
    import json

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(headers={"Authorization": f"Bearer {data.token}"} if endpoint.auth else {})
    path = endpoint.path(data)
    kwargs = {"data": json.dumps(endpoint.body), "content_type": "application/json"} if endpoint.body else {}
    for _warm_then_count in range(2):
        with CaptureQueriesContext(connection) as captured:
            response = getattr(client, endpoint.method)(path, **kwargs)
        if response.status_code != 200 or not endpoint.check(response.json(), data):
            sys.exit(f"{endpoint.label} at {data.size}: unexpected answer {response.status_code} "
                     f"{response.content[:300]!r}")
    match = HEADER_COUNT.search(response.headers.get("Server-Timing", ""))
    return Measure(len(captured), int(match.group(1)) if match else None, [q["sql"] for q in captured])


# Django logs a plain BEGIN (autocommit switched off, PostgreSQL), COMMIT and ROLLBACK in its query
# log, so CaptureQueriesContext sees them, but they go through the driver's connection, not a cursor,
# so execute wrappers (Server-Timing) never count them. SQLite's BEGIN IMMEDIATE is a cursor statement.
TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK"}


def cursor_statements(measure: Measure) -> int:
    """The captured count as Server-Timing counts it: without the logged transaction control."""
    return sum(1 for sql in measure.sql if sql not in TRANSACTION_CONTROL)


LITERALS = re.compile(r"'[^']*'|\b\d+(\.\d+)?\b")


def repeated(small: Measure, large: Measure) -> str:
    """The query shape that the large run sent more often, with both counts."""
    shapes = [Counter(LITERALS.sub("?", sql) for sql in m.sql) for m in (small, large)]
    grown = [(shape, shapes[1][shape] - shapes[0][shape]) for shape in shapes[1]]
    shape, _ = max(grown, key=lambda item: item[1])
    return f"{shapes[0][shape]}x -> {shapes[1][shape]}x: {shape[:300]}"


def run(sizes: list[int]) -> dict[int, dict[str, Measure]]:
    results: dict[int, dict[str, Measure]] = {}
    for size in sizes:
        data = build(size)
        results[size] = {endpoint.label: request(endpoint, data) for endpoint in endpoints()}
    return results


def report(sizes: list[int], results: dict[int, dict[str, Measure]], vendor: str) -> int:
    import django

    labels = [endpoint.label for endpoint in endpoints()]
    width = max(len(label) for label in labels)
    print(f"queries per request, {vendor}, Django {django.get_version()}, sizes {', '.join(map(str, sizes))}")
    print(f"{'endpoint':<{width}} " + " ".join(f"{f'queries @{s}':>14}" for s in sizes) + "  equal?")
    differ, disagree = [], []
    for label in labels:
        counts = [results[s][label].queries for s in sizes]
        equal = len(set(counts)) == 1
        if not equal:
            differ.append(label)
        for s in sizes:
            measure = results[s][label]
            if measure.header != cursor_statements(measure):
                disagree.append(f"{label} @{s}: captured {measure.queries} ({cursor_statements(measure)} "
                                f"without BEGIN/COMMIT), Server-Timing {measure.header}")
        print(f"{label:<{width}} " + " ".join(f"{c:>14}" for c in counts) + f"  {'yes' if equal else 'NO'}")
    print()
    if disagree:
        print("Server-Timing disagrees with CaptureQueriesContext:")
        print("\n".join(f"  {line}" for line in disagree))
    else:
        print("Server-Timing header agrees with CaptureQueriesContext on every request "
              "(the header leaves out COMMIT, and BEGIN on PostgreSQL, which Django logs and the table counts).")
    if differ:
        print(f"differ ({len(differ)}): " + "; ".join(differ))
        for label in differ:
            print(f"  {label}: {repeated(results[sizes[0]][label], results[sizes[-1]][label])}")
    else:
        print("all equal")
    return 1 if differ or disagree else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1000], help="rows per size (default 10 1000)")
    parser.add_argument("--database-url", help="a PostgreSQL server URL; a scratch database is made beside it")
    args = parser.parse_args()
    if min(args.sizes) < 1:
        parser.error("sizes must be at least 1")

    problem = database_url_problem(args.database_url)
    if problem:
        parser.error(problem)
    with scratch_database(args.database_url, "queries") as vendor:
        results = run(args.sizes)
    sys.exit(report(args.sizes, results, vendor))


if __name__ == "__main__":
    main()
