"""Stored runs: what persist writes, what load_registry gives back, and what the admin shows of it.

The live database is shared and never rolled back, so each test stores its own run under a
unique label and looks only at that.
"""

import re
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from perf.load.stats import PERCENTILES, StatsRegistry
from perf.models import EndpointStats, FailureStats, PerfRun, StatsSample, percentile_field
from perf.store.persist import add_samples, finish_run, load_registry, start_run
from tests.factories import make_user, unique
from tests.perf.builders import Requests, Sampled, make_registry, stored_run

CHANGELIST = "/admin/perf/perfrun/"
COMPARE = f"{CHANGELIST}compare/"
SLOW_ERROR = "HTTPError('503 Server Error: Service Unavailable')"


# A small run: three endpoints with distinct latencies, two kinds of failure, two samples, an exception.
SMALL_RUN = (
    Requests("/events/", [10 + i % 7 for i in range(40)], size=2_000),
    Requests("/events/{id}/rsvp/{answer} [BOTTLENECK]", [120 + i * 3 for i in range(20)], method="POST", size=150,
             failing=range(0, 20, 5), error=SLOW_ERROR),
    Requests("/auth/token/pair", [300 + i for i in range(10)], method="POST", size=400, failing={9},
             error="AssertionError('no access token')"),
    Sampled(users=5, at=5),
    Requests("/events/", [12], size=2_000),
    Sampled(users=10, at=10),
)
EXCEPTION = ("KeyError: 'id'", "Traceback ...\nKeyError: 'id'")


def small_run() -> StatsRegistry:
    return make_registry(*SMALL_RUN, exceptions=[EXCEPTION])


def store(registry: StatsRegistry, label: str | None = None, status: str = "completed") -> PerfRun:
    """Store a run the way run_perf does: start, one sample during the run, finish (CPU warned, duration 10 s)."""
    return stored_run(
        registry, status=status, duration=10.0, samples_while_running=1, label=label or unique("run"),
        host="http://localhost:8000/api", users=10, spawn_rate=2.0, scenarios=["EventBrowser", "RSVPUser"],
        user_split={"EventBrowser": 6, "RSVPUser": 4}, seed=42, options={"users": 10, "stdout": object()},
        cpu_warning=True, max_cpu_percent=93.5,
    )


@pytest.fixture
def admin_client(orm) -> Client:
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


class FormFields(HTMLParser):
    """The name → value pairs a browser would submit from a page's forms (inputs and textareas)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        name = attributes.get("name")
        if tag == "input" and name and attributes.get("type") not in ("submit", "checkbox"):
            self.fields[name] = attributes.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.fields[name] = ""

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.fields[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None


def form_fields(html: str) -> dict[str, str]:
    parser = FormFields()
    parser.feed(html)
    return parser.fields


# persist


def test_every_engine_percentile_has_a_column() -> None:
    columns = {field.name for field in EndpointStats._meta.get_fields()}
    assert {percentile_field(fraction) for fraction in PERCENTILES} <= columns


def test_start_run_writes_a_running_row(orm) -> None:
    run = start_run(label=unique("run"), host="http://h/api", users=3, options={"stdout": object()})
    stored = PerfRun.objects.get(pk=run.pk)
    assert stored.status == PerfRun.Status.RUNNING
    assert stored.finished_at is None
    assert stored.database_vendor == connection.vendor
    assert stored.options["stdout"].startswith("<object")


def test_start_run_stores_a_missing_label_as_blank(orm) -> None:
    run = start_run(label=None, host="http://h/api", git_revision=None)
    assert PerfRun.objects.get(pk=run.pk).label == ""


def test_finish_run_stores_endpoints_aggregated_row_failures_and_totals(orm) -> None:
    registry = small_run()
    run = store(registry)
    assert run.status == PerfRun.Status.COMPLETED
    assert run.finished_at is not None
    assert run.actual_duration == 10.0
    assert (run.total_requests, run.total_failures) == (71, 5)
    assert run.requests_per_second == pytest.approx(7.1)
    assert run.p95 == pytest.approx(registry.total.percentile(0.95))
    assert run.cpu_warning and run.max_cpu_percent == 93.5
    assert run.exceptions == [{"message": "KeyError: 'id'", "traceback": "Traceback ...\nKeyError: 'id'", "count": 1}]
    rows = {(row.method, row.name): row for row in run.endpoints.all()}
    assert set(rows) == set(registry.entries) | {("", "Aggregated")}
    assert rows[("", "Aggregated")].is_aggregated
    assert rows[("GET", "/events/")].num_requests == 41
    assert rows[("GET", "/events/")].p99 == pytest.approx(registry.entries[("GET", "/events/")].percentile(0.99))
    assert {(f.error, f.occurrences) for f in run.failures.all()} == {
        (SLOW_ERROR, 4), ("AssertionError('no access token')", 1)
    }
    assert run.samples.count() == 2


def test_finish_run_twice_replaces_rows(orm) -> None:
    registry = small_run()
    run = store(registry)
    registry.record("GET", "/events/", 15, 2_000)
    finish_run(run, registry, "aborted", duration=12.0)
    assert run.status == PerfRun.Status.ABORTED
    assert run.total_requests == 72
    assert EndpointStats.objects.filter(run=run).count() == len(registry.entries) + 1
    assert FailureStats.objects.filter(run=run).count() == 2
    assert StatsSample.objects.filter(run=run).count() == 2


def test_finish_run_rejects_a_non_final_status_and_measured_fields(orm) -> None:
    run = start_run(label=unique("run"), host="http://h/api")
    with pytest.raises(ValueError):
        finish_run(run, StatsRegistry(), "running", duration=1.0)
    with pytest.raises(TypeError):
        finish_run(run, StatsRegistry(), "completed", duration=1.0, total_requests=5)


def test_add_samples_twice_stores_each_sample_once(orm) -> None:
    registry = small_run()
    run = start_run(label=unique("run"), host="http://h/api")
    add_samples(run, registry.samples)
    add_samples(run, registry.samples)
    assert run.samples.count() == 2


def test_load_registry_gives_back_the_stored_figures(orm) -> None:
    original = small_run()
    loaded = load_registry(store(original))
    assert set(loaded.entries) == set(original.entries)
    for key, entry in original.entries.items():
        again = loaded.entries[key]
        assert (again.num_requests, again.num_failures) == (entry.num_requests, entry.num_failures)
        assert again.histogram.counts == entry.histogram.counts
        assert [again.percentile(f) for f in PERCENTILES] == [entry.percentile(f) for f in PERCENTILES]
        assert again.avg_response_time == pytest.approx(entry.avg_response_time)
        assert again.first_request_at == pytest.approx(entry.first_request_at, abs=1e-5)
    assert loaded.total.num_requests == original.total.num_requests
    assert [loaded.total.percentile(f) for f in PERCENTILES] == [original.total.percentile(f) for f in PERCENTILES]
    assert {k: v.occurrences for k, v in loaded.failures.items()} == {
        k: v.occurrences for k, v in original.failures.items()
    }
    assert loaded.exceptions["KeyError: 'id'"].count == 1
    assert [(s.users, s.total_requests) for s in loaded.samples] == [(5, 70), (10, 71)]


def test_loaded_registries_merge_like_the_originals(orm) -> None:
    first, second = small_run(), small_run()
    merged = load_registry(store(first))
    merged.merge(load_registry(store(second)))
    first.merge(second)
    assert merged.total.num_requests == first.total.num_requests
    assert [merged.total.percentile(f) for f in PERCENTILES] == [first.total.percentile(f) for f in PERCENTILES]


# admin


def test_changelist_lists_the_run(admin_client: Client) -> None:
    label = unique("list")
    store(small_run(), label)
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    assert label in response.content.decode()


def test_changelist_filters_by_status(admin_client: Client) -> None:
    completed, aborted = unique("completed"), unique("aborted")
    store(small_run(), completed)
    store(small_run(), aborted, status="aborted")
    page = admin_client.get(CHANGELIST, {"status__exact": "completed"}).content.decode()
    assert completed in page
    assert aborted not in page


def test_changelist_searches_label(admin_client: Client) -> None:
    wanted, other = unique("needle"), unique("hay")
    store(small_run(), wanted)
    store(small_run(), other)
    page = admin_client.get(CHANGELIST, {"q": wanted}).content.decode()
    assert wanted in page
    assert other not in page


def test_changelist_sorts_by_each_column(admin_client: Client) -> None:
    store(small_run())
    for column in range(1, 9):
        for order in (str(column), f"-{column}"):
            assert admin_client.get(CHANGELIST, {"o": order}).status_code == 200, order


def test_changelist_query_count_does_not_grow_with_runs(admin_client: Client) -> None:
    store(small_run())
    with CaptureQueriesContext(connection) as before:
        admin_client.get(CHANGELIST)
    store(small_run())
    store(small_run())
    with CaptureQueriesContext(connection) as after:
        admin_client.get(CHANGELIST)
    assert len(after) == len(before)


def test_changelist_add_button_reads_new_run(admin_client: Client) -> None:
    page = admin_client.get(CHANGELIST).content.decode()
    assert f'<a href="{CHANGELIST}add/" class="addlink">New run</a>' in page


def test_change_page_shows_endpoints_failures_and_read_only_figures(admin_client: Client) -> None:
    run = store(small_run())
    response = admin_client.get(f"{CHANGELIST}{run.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/events/{id}/rsvp/{answer} [BOTTLENECK]" in page
    assert "/auth/token/pair" in page
    assert "HTTPError(&#x27;503 Server Error: Service Unavailable&#x27;)" in page
    fields = form_fields(page)
    assert fields["label"] == run.label
    assert "notes" in fields
    assert not {"total_requests", "p95", "status", "host"} & set(fields)


def request_rows(page: str) -> dict[str, str]:
    """Endpoint name → its row in the page's request statistics table (markup)."""
    table = page.split('class="perf-table perf-requests"', 1)[1].split("</table>", 1)[0]
    rows = {}
    for row in table.split("<tr")[2:]:
        name = re.search(r'<td class="perf-name">(.*?)(?:<span|</td>)', row, re.DOTALL)
        if name:
            rows[name.group(1).strip()] = row
    return rows


def test_change_page_explains_bottleneck_names_once_and_never_shows_a_cross(admin_client: Client) -> None:
    registry = small_run()
    page = admin_client.get(f"{CHANGELIST}{store(registry).pk}/change/").content.decode()
    rows = request_rows(page)
    # The scenario's mark is in the name, said once: no badge repeats it, or marks the merely slow.
    assert "[BOTTLENECK]" in next(name for name in rows if "rsvp" in name)
    assert "perf-bottleneck" not in page
    requests_section = page[page.index('id="requests"'):page.index('id="response-times"')]
    assert "in a name: its scenario marks it as an endpoint where contention is expected" in requests_section
    # A boolean column would show Django's red cross for "not a bottleneck".
    assert "icon-no.svg" not in page and 'alt="False"' not in page


def test_change_page_saves_a_new_label_and_leaves_figures_alone(admin_client: Client) -> None:
    run = store(small_run())
    url = f"{CHANGELIST}{run.pk}/change/"
    fields = form_fields(admin_client.get(url).content.decode())
    new_label = unique("renamed")
    response = admin_client.post(url, {**fields, "label": new_label, "notes": "warm cache", "_save": "Save"})
    assert response.status_code == 302, response.content.decode()[-2000:]
    stored = PerfRun.objects.get(pk=run.pk)
    assert (stored.label, stored.notes) == (new_label, "warm cache")
    assert (stored.total_requests, stored.p95, stored.status) == (run.total_requests, run.p95, run.status)
    assert stored.endpoints.count() == run.endpoints.count()


def test_compare_page_refuses_a_run_compared_with_itself(admin_client: Client) -> None:
    run = store(small_run())
    response = admin_client.get(COMPARE, {"a": run.pk, "b": run.pk}, follow=True)
    assert response.redirect_chain == [(CHANGELIST, 302)]
    page = response.content.decode()
    assert f"Cannot compare: A and B are both run {run.pk}: name two different runs" in page
    assert 'id="compare-table"' not in page
