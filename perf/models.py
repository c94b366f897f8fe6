"""Stored load-test runs: one PerfRun per run_perf invocation, with its per-endpoint rows.

The rows keep everything a StatsRegistry holds (histograms, totals, first/last request times),
not only what the tables print, so that a stored run can be rebuilt exactly and compared with
or merged into another one later (see perf.store.persist.load_registry).
"""

from django.db import models
from django.utils import timezone

from perf.load.stats import percentile_label


def percentile_field(fraction: float) -> str:
    """The column holding a percentile: 0.5 → ``p50``, 0.999 → ``p999``, 1.0 → ``p100``."""
    return "p" + percentile_label(fraction).rstrip("%").replace(".", "")


class PerfRun(models.Model):
    """One load-test run: what was asked for, where it ran, and its headline figures."""

    class Status(models.TextChoices):
        RUNNING = "running"
        COMPLETED = "completed"
        ABORTED = "aborted"
        FAILED = "failed"
        # Its process stopped answering while it ran (killed -9, the machine gone): perf.store.liveness.
        LOST = "lost"

    label = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    # What was asked for.
    host = models.CharField(max_length=500)
    options = models.JSONField(default=dict, blank=True, help_text="The run_perf options, as given.")
    users = models.PositiveIntegerField(default=0)
    spawn_rate = models.FloatField(default=0.0)
    planned_duration = models.FloatField(null=True, blank=True, help_text="Seconds; empty for open-ended runs.")
    scenarios = models.JSONField(default=list, blank=True)
    user_split = models.JSONField(default=dict, blank=True, help_text="Scenario name → number of users.")
    seed = models.BigIntegerField(null=True, blank=True)
    git_revision = models.CharField(max_length=64, blank=True)
    database_vendor = models.CharField(max_length=32, blank=True)

    # What was measured.
    actual_duration = models.FloatField(null=True, blank=True, help_text="Seconds.")
    total_requests = models.PositiveBigIntegerField(default=0)
    total_failures = models.PositiveBigIntegerField(default=0)
    requests_per_second = models.FloatField(null=True, blank=True)
    failures_per_second = models.FloatField(null=True, blank=True)
    avg_response_time = models.FloatField(null=True, blank=True, help_text="Milliseconds.")
    p50 = models.FloatField(null=True, blank=True)
    p95 = models.FloatField(null=True, blank=True)
    p99 = models.FloatField(null=True, blank=True)
    max_response_time = models.FloatField(null=True, blank=True)
    # A load generator that saturates its CPU inflates every latency it reports.
    cpu_warning = models.BooleanField(default=False)
    max_cpu_percent = models.FloatField(null=True, blank=True)
    exceptions = models.JSONField(
        default=list, blank=True, help_text="Exceptions raised by scenario code: message, traceback, count."
    )
    error = models.TextField(blank=True, help_text="Why the run failed.")
    stop_reason = models.CharField(max_length=200, blank=True, help_text="Why the run stopped before its time.")
    # Stopping from the admin: the running process reads this flag within a second or two.
    stop_requested_by = models.CharField(max_length=150, blank=True, help_text="Who pressed Stop in the admin.")
    stop_requested_at = models.DateTimeField(null=True, blank=True)
    # Set by the admin's "New run" page on the process it starts, so that the page can find the run it made.
    launch_id = models.CharField(max_length=64, blank=True, db_index=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="The running process's last progress write (every 2 s while it runs)."
    )
    # Verdicts that only exist because the load runs inside the backend it tests.
    audit = models.JSONField(
        null=True, blank=True, help_text="Data-integrity audit after the run: {ok, checks: [{name, ok, detail}]}."
    )
    thresholds = models.JSONField(
        default=list, blank=True, help_text="--threshold verdicts: [{expression, actual, ok}]."
    )
    open_model = models.JSONField(
        null=True, blank=True, help_text="--rate runs: scheduled, started and dropped iterations, pool use."
    )
    # A run with a load profile (--stages, --rate-stages, --shape; docs/design.md, "Load profiles"):
    # {"kind": "users"|"rate", "source": "stages"|"shape", "text": the option as given, "shape": name or null,
    #  "params": {…}, "spans": [{"index", "start", "end", "start_target", "target"}, …] (seconds since the start;
    #  a change of target from the live page is a span that starts at that moment)}.
    profile = models.JSONField(null=True, blank=True, help_text="The load profile: its kind, source and stages.")
    # A change of target asked for from the live page (perf.web.run_control): {"target": users or iterations a
    # second, "at": the moment asked (Unix seconds), "by": who}. The running process (and every worker and shard)
    # reads it with the stop flag and from then on holds that target to the end; the latest one asked wins.
    target_change = models.JSONField(null=True, blank=True, help_text="The target last asked for from the live page.")
    # Per stage reached: its span ("index", "name", "start", "end", "start_target", "target"), "seconds" run in it,
    # the Aggregated figures of its own requests and each threshold's verdict (perf.load.stage_figures.as_json).
    stages = models.JSONField(default=list, blank=True, help_text="Each stage's own figures and verdicts.")
    # What the run was: a load test ("load"), or a capacity search (run_perf --find-capacity, "capacity") whose
    # steps, result, USL fit and verdict are in ``capacity`` (perf.load.capacity, CapacitySearch.as_json; kept
    # current step by step while it runs, for the live page).
    class Kind(models.TextChoices):
        LOAD = "load", "Load test"
        CAPACITY = "capacity", "Capacity search"

    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.LOAD)
    capacity = models.JSONField(null=True, blank=True, help_text="A capacity search's steps, result and verdict.")
    # A run of a saved plan (run_perf --plan NAME): the plan, the machine the load came from, and the verdicts of
    # its endpoints against the plan's own history (perf.analysis.noise, NoiseReport.as_json).
    plan = models.ForeignKey("PerfPlan", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    hostname = models.CharField(max_length=255, blank=True, help_text="The machine run_perf ran on.")
    regressions = models.JSONField(
        null=True, blank=True, help_text="Each endpoint judged against the plan's last comparable runs."
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["-started_at"], name="perfrun_started_idx"),
            models.Index(fields=["status", "-started_at"], name="perfrun_status_idx"),
            # A plan's history, newest first: the noise band's last N runs, and a trends page's points.
            models.Index(fields=["plan", "-started_at"], name="perfrun_plan_idx"),
        ]
        # Beyond Django's add/change/delete/view: what the New run page may do besides starting a run. Both are
        # worth more than a run (seeding writes accounts; a remote host receives the load), so neither comes
        # with "add": superusers have them, anyone else is given them by name (README, "Running perfkit for a team").
        permissions = [
            ("seed_data", "Can seed the scenarios' data before a run (Seed first)"),
            ("run_remote", "Can start runs against a remote host listed in PERF_ALLOWED_HOSTS"),
        ]

    def __str__(self) -> str:
        when = self.started_at.strftime("%Y-%m-%d %H:%M") if self.started_at else "?"
        return f"{self.label or f'Run #{self.pk}'} ({when}, {self.status})"

    @property
    def error_percent(self) -> float | None:
        """Failed requests as a percentage of all requests; None before any request."""
        if not self.total_requests:
            return None
        return 100.0 * self.total_failures / self.total_requests

    @property
    def duration(self) -> float | None:
        """Measured seconds once finished, else the planned ones."""
        return self.actual_duration if self.actual_duration is not None else self.planned_duration


class PerfPlan(models.Model):
    """A saved run: run_perf's options under a name (``run_perf --plan NAME``), its thresholds, and the rules that
    judge each of its runs against its own history (docs/continuous.md).

    ``options`` maps RunRequest field names (the command's option dests: users, stages, scenarios, …) to values, as
    the admin's form checked them with run_perf's own parser and checks (perf.web.plans); the model itself stays
    below the command line and cannot check them.
    """

    name = models.SlugField(max_length=100, unique=True, help_text="run_perf --plan NAME; letters, digits, - and _.")
    description = models.TextField(blank=True)
    options = models.JSONField(
        default=dict, blank=True,
        help_text='run_perf options by name, e.g. {"users": 20, "duration": "2m", "scenarios": ["EventBrowser"]}.')
    thresholds = models.JSONField(default=list, blank=True, help_text='--threshold rules, e.g. ["p95<500ms"].')
    # The regression rules (perf.analysis.noise.Rules).
    noise_k = models.FloatField(default=3.0, help_text="k: the band is the median ± k × the scaled MAD.")
    history_size = models.PositiveIntegerField(default=20, help_text="N: judge against the last N comparable runs.")
    min_history = models.PositiveIntegerField(
        default=5, help_text="Fewer comparable runs than this: \"not enough history\", no verdict.")
    min_band_percent = models.FloatField(
        default=5.0, help_text="The band is at least this percentage of the median, so a quiet history does not "
                               "flag small jitter.")
    metrics = models.JSONField(default=list, blank=True,
                               help_text='What is judged: "p95", "failure_rate" (empty: both).')
    fail_on_regression = models.BooleanField(
        default=True, help_text="run_perf exits 4 when an endpoint regressed beyond the noise.")
    baseline = models.ForeignKey(PerfRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                 help_text="A run to compare with (run_perf --compare-to) when none is given.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class EndpointStats(models.Model):
    """One row of the final table: an endpoint (method + name template), or the Aggregated row."""

    run = models.ForeignKey(PerfRun, on_delete=models.CASCADE, related_name="endpoints")
    method = models.CharField(max_length=16, blank=True)
    name = models.CharField(max_length=1000)
    is_aggregated = models.BooleanField(default=False)
    num_requests = models.PositiveBigIntegerField(default=0)
    num_failures = models.PositiveBigIntegerField(default=0)
    avg_response_time = models.FloatField(default=0.0)
    min_response_time = models.FloatField(null=True, blank=True)
    max_response_time = models.FloatField(default=0.0)
    median_response_time = models.FloatField(null=True, blank=True)
    p50 = models.FloatField(null=True, blank=True)
    p66 = models.FloatField(null=True, blank=True)
    p75 = models.FloatField(null=True, blank=True)
    p80 = models.FloatField(null=True, blank=True)
    p90 = models.FloatField(null=True, blank=True)
    p95 = models.FloatField(null=True, blank=True)
    p98 = models.FloatField(null=True, blank=True)
    p99 = models.FloatField(null=True, blank=True)
    p999 = models.FloatField(null=True, blank=True)
    p9999 = models.FloatField(null=True, blank=True)
    p100 = models.FloatField(null=True, blank=True)
    avg_content_length = models.FloatField(default=0.0)
    requests_per_second = models.FloatField(default=0.0)
    failures_per_second = models.FloatField(default=0.0)
    # Exact sums and the histogram, so the entry can be rebuilt and merged without drift.
    total_response_time = models.FloatField(default=0.0)
    total_content_length = models.PositiveBigIntegerField(default=0)
    first_request_at = models.DateTimeField(null=True, blank=True)
    last_request_at = models.DateTimeField(null=True, blank=True)
    histogram = models.JSONField(default=dict, blank=True, help_text="Bucket key → count (see perf.load.histogram).")
    # From the backend's Server-Timing header (perf.middleware), when it sends one.
    server_timed_requests = models.PositiveBigIntegerField(default=0)
    avg_app_time = models.FloatField(null=True, blank=True, help_text="Milliseconds inside the Django app.")
    p95_app_time = models.FloatField(null=True, blank=True)
    avg_db_time = models.FloatField(null=True, blank=True, help_text="Milliseconds in database queries.")
    avg_queries = models.FloatField(null=True, blank=True, help_text="SQL queries per request.")
    avg_network_time = models.FloatField(
        null=True, blank=True, help_text="Client time minus app time: network, queueing, server overhead (ms)."
    )
    server_timing = models.JSONField(
        default=dict, blank=True, help_text="Exact sums and the app-time histogram, to rebuild and merge."
    )
    new_connections = models.PositiveBigIntegerField(
        default=0, help_text="TCP connections opened for these requests (plain http targets)."
    )
    reopened_connections = models.PositiveBigIntegerField(
        default=0, help_text="Of those, how many replaced a kept-alive connection the server had closed while idle."
    )


    class Meta:
        verbose_name_plural = "endpoint stats"
        ordering = ["run", "is_aggregated", "name", "method"]
        constraints = [models.UniqueConstraint(fields=["run", "method", "name"], name="unique_endpoint_per_run")]

    def __str__(self) -> str:
        return f"{self.method} {self.name}".strip()


class FailureStats(models.Model):
    """One kind of failure of a run: the same method, name and error text."""

    run = models.ForeignKey(PerfRun, on_delete=models.CASCADE, related_name="failures")
    method = models.CharField(max_length=16, blank=True)
    name = models.CharField(max_length=1000)
    error = models.TextField()
    occurrences = models.PositiveBigIntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        verbose_name_plural = "failure stats"
        ordering = ["run", "-occurrences", "name", "method"]

    def __str__(self) -> str:
        return f"{self.method} {self.name}: {self.error[:80]} (×{self.occurrences})"


class StatsSample(models.Model):
    """One point of a run's time series: rates over the window since the previous sample, percentiles
    over the last 10 s (``perf.load.stats.ROLLING_WINDOW``)."""

    run = models.ForeignKey(PerfRun, on_delete=models.CASCADE, related_name="samples")
    timestamp = models.DateTimeField()
    elapsed = models.FloatField(help_text="Seconds since the run started.")
    users = models.PositiveIntegerField(default=0)
    target = models.FloatField(
        null=True, blank=True, help_text="What the load profile asked for at this point: users, or iterations a second."
    )
    requests_per_second = models.FloatField(default=0.0)
    failures_per_second = models.FloatField(default=0.0)
    iterations_per_second = models.FloatField(
        null=True, blank=True,
        help_text="Iterations started a second since the previous sample (the open model); empty for the closed model.",
    )
    p50 = models.FloatField(null=True, blank=True)
    p95 = models.FloatField(null=True, blank=True)
    p99 = models.FloatField(null=True, blank=True)
    avg_response_time = models.FloatField(null=True, blank=True)
    total_requests = models.PositiveBigIntegerField(default=0)
    total_failures = models.PositiveBigIntegerField(default=0)
    endpoints = models.JSONField(
        default=dict, blank=True, help_text='Per endpoint at this point: {"METHOD name": [req/s, p95 ms]}.'
    )

    class Meta:
        ordering = ["run", "timestamp"]
        # Also the index for reading a run's series in order; makes storing a sample twice a no-op.
        constraints = [models.UniqueConstraint(fields=["run", "timestamp"], name="unique_sample_per_run")]

    def __str__(self) -> str:
        return f"{self.run_id} @ {self.elapsed:.1f}s: {self.requests_per_second:.1f} req/s"


class ShardReport(models.Model):
    """One shard of a ``run_perf --distributed celery`` run: what its worker measured so far.

    The shard rewrites its row every second with its cumulative figures (a serialized StatsRegistry),
    so the coordinating command can merge the latest rows at any moment, and a shard that dies still
    leaves what it measured up to its last heartbeat. Rows are also the control channel back to the
    shards (``stop_requested``), since the broker carries no replies.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    run = models.ForeignKey(PerfRun, on_delete=models.CASCADE, related_name="shards")
    index = models.PositiveIntegerField(help_text="0-based; shard i runs the users at spawn positions i, i+N, …")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    hostname = models.CharField(max_length=255, blank=True, help_text="The Celery worker that ran the shard.")
    users = models.PositiveIntegerField(default=0, help_text="Users planned for this shard.")
    running_users = models.PositiveIntegerField(default=0, help_text="Users alive at the last heartbeat.")
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    stats = models.JSONField(default=dict, blank=True,
                             help_text="Cumulative StatsRegistry (perf.distributed.coordinator).")
    requests = models.PositiveBigIntegerField(default=0, help_text="Requests in ``stats``, for listing.")
    cpu_percent = models.FloatField(null=True, blank=True, help_text="Worker CPU at the last heartbeat.")
    max_cpu_percent = models.FloatField(null=True, blank=True)
    notes = models.JSONField(default=list, blank=True, help_text="Scenario remarks made on the worker.")
    facts = models.JSONField(default=dict, blank=True,
                             help_text="What the shard's users remembered for the audit: kind → values (at the end).")
    stop_requested = models.BooleanField(default=False, help_text="Set by the coordinator; the shard stops early.")
    error = models.TextField(blank=True, help_text="Why the shard failed.")

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="unique_shard_per_run")]

    def __str__(self) -> str:
        return f"run {self.run_id} shard {self.index} ({self.status})"


class Launch(models.Model):
    """A run asked for on the New run page, from the moment it was allowed until its process stores its row.

    Counted with the running runs under ``LaunchGate``'s lock (``perf.web.launch.reserve``), so that two starts
    sent at the same moment cannot both see "nothing is running" in the seconds before either process has
    written its run.
    """

    launch_id = models.CharField(max_length=64, unique=True)
    requested_by = models.CharField(max_length=150, blank=True)
    requested_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"launch {self.launch_id[:8]} by {self.requested_by or '?'}"


class LaunchGate(models.Model):
    """One row that every launch updates first in its transaction: on PostgreSQL a row lock, on SQLite
    (``transaction_mode=IMMEDIATE``) the database's write lock. Either way, checks run one at a time."""

    locked_at = models.DateTimeField(null=True, blank=True)
