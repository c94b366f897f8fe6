"""One typed description of a run: what was asked for, how it ended and its verdicts, beside its figures.

The reports (the run page, ``--html``, the JSON summary, the downloads) take a registry, a duration and
this. It used to be a dict built in two places, the end of ``run_perf`` and the stored run, which
disagreed: a run's own ``--html`` file lacked the notes (stopped early, CPU warning, run id) that the
admin's download of the same run had. Now both places build the same type, ``RunDescription.live``
at the end of a run (after its final save) and ``RunDescription.from_run`` from a stored row
(``perf.reports.stored.describe`` adds what it takes queries to know), and
readers use its fields, each typed and with a default, instead of guessing at keys.

``as_json`` is what ``--json`` writes under ``"meta"``; ``from_json`` reads it back (``perf_import``),
and is the one place that checks the types of what it reads: a summary is a file anyone may edit.
It also reads the layout written before this type existed (the same keys, with ``unsaved`` an object
holding the row's id and three fields), so summaries kept by older versions can still be imported.

Three values are kept as the JSON the run stores, whole, because the files carry them whole: the stages, a capacity
search and a plan's noise verdicts (each has keys the reports never show, and ``perf_import`` stores what the file
holds). The reports read them typed (``stage_results``, ``capacity_result``, ``noise_result``: ``StageResult``,
``CapacityResult``, ``NoiseResult``), leniently, as a stored row may have been edited by hand; ``from_json`` checks
them strictly, as every other key.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # the JSON side is read without Django (a test harness writes summaries without settings)
    from perf.models import PerfRun

T = TypeVar("T")
Json = dict[str, Any]
CAPACITY = "capacity"  # perf.models.PerfRun.Kind.CAPACITY, named here without importing the models


class DescriptionError(ValueError):
    """A summary's ``meta`` that does not hold what ``run_perf`` writes; the message names the key."""


def _read(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any, where: str) -> Any:
    """``data[key]`` when it is of ``kind``; the default when it is missing or null."""
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise DescriptionError(f"{where}{key} is {value!r}, not a number")
    if not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise DescriptionError(f"{where}{key} is {value!r}, not {names}")
    return value


def _number(data: Mapping[str, Any], key: str, default: float | None, where: str) -> float | None:
    value = _read(data, key, (int, float), default, where)
    return None if value is None else float(value)


def _items(data: Mapping[str, Any], key: str, read: Callable[[Json, str], T], where: str) -> tuple[T, ...]:
    """A list of objects, each read by ``read``; none when the key is missing or null."""
    values = _read(data, key, list, None, where) or []
    return tuple(read(_object(item, f"{where}{key}[{i}]"), f"{where}{key}[{i}].") for i, item in enumerate(values))


def _object(value: Any, where: str) -> Json:
    if not isinstance(value, dict):
        raise DescriptionError(f"{where} is {value!r}, not an object")
    return value


def _strings(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    values = _read(data, key, list, None, where) or []
    if not all(isinstance(value, str) for value in values):
        raise DescriptionError(f"{where}{key} holds something else than text: {values!r}")
    return tuple(values)


def _counts(data: Mapping[str, Any], key: str, where: str) -> dict[str, int]:
    values = _read(data, key, dict, None, where) or {}
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in values.values()):
        raise DescriptionError(f"{where}{key} holds something else than counts: {values!r}")
    return dict(values)


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


@dataclass(frozen=True)
class _Reader:
    """One JSON object of a stored layout being read, and where it is (for the message).

    Strict (a summary, which anyone may edit, read by ``RunDescription.from_json``): a value of the wrong type is a
    DescriptionError naming its key, as for every key of ``meta``. Lenient (the reports' reading of what the run
    stored): it reads as missing and an item that is not an object is left out, so a row edited by hand or written
    by an older version shows a dash where it lacks a figure, and its page still opens.
    """

    data: Mapping[str, Any]
    where: str
    strict: bool

    def value(self, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        try:
            return _read(self.data, key, kind, default, self.where)
        except DescriptionError:
            if self.strict:
                raise
            return default

    def number(self, key: str) -> float | None:
        value = self.value(key, (int, float), None)
        return None if value is None else float(value)

    def whole(self, key: str) -> int | None:
        """A count or an index, stored as a number (``2.0`` reads as 2)."""
        value = self.number(key)
        return None if value is None else int(value)

    def text(self, key: str) -> str:
        return str(self.value(key, str, ""))

    def flag(self, key: str, default: bool = False) -> bool:
        return bool(self.value(key, bool, default))

    def strings(self, key: str) -> tuple[str, ...]:
        if self.strict:
            return _strings(self.data, key, self.where)
        return tuple(value for value in self.value(key, list, None) or [] if isinstance(value, str))

    def child(self, key: str, read: "Callable[[_Reader], T]") -> T | None:
        """The object under ``key`` read by ``read``; None when it is missing or null (or, leniently, not one)."""
        value = self.value(key, dict, None)
        return None if value is None else read(_Reader(value, f"{self.where}{key}.", self.strict))

    def children(self, key: str, read: "Callable[[_Reader], T]") -> tuple[T, ...]:
        """Each object of the list under ``key``, read by ``read``."""
        found = []
        for index, item in enumerate(self.value(key, list, None) or []):
            place = f"{self.where}{key}[{index}]"
            if isinstance(item, dict):
                found.append(read(_Reader(item, place + ".", self.strict)))
            elif self.strict:
                raise DescriptionError(f"{place} is {item!r}, not an object")
        return tuple(found)

    def verdicts(self, key: str) -> tuple["ThresholdResult", ...]:
        """Threshold verdicts as stored; leniently, one that does not hold their layout is left out (a verdict read
        wrong would say PASS or FAIL on its own)."""
        found = []
        for index, item in enumerate(self.value(key, list, None) or []):
            try:
                found.append(ThresholdResult.from_json(_object(item, f"{self.where}{key}[{index}]"),
                                                       f"{self.where}{key}[{index}]."))
            except DescriptionError:
                if self.strict:
                    raise
        return tuple(found)


# ---------------------------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class ThresholdResult:
    """One ``--threshold`` checked at the end (``perf.load.thresholds.Verdict.as_dict``, as stored)."""

    expression: str = ""
    endpoint: str | None = None
    method: str | None = None
    metric: str = ""
    operator: str = ""
    limit: float | None = None
    unit: str = ""
    actual: float | None = None
    ok: bool = False
    line: str = ""  # "p95<500ms: 312 ms": the rule and what was measured, with its unit

    @classmethod
    def from_json(cls, data: Json, where: str = "") -> "ThresholdResult":
        return cls(
            expression=_read(data, "expression", str, "", where), endpoint=_read(data, "endpoint", str, None, where),
            method=_read(data, "method", str, None, where), metric=_read(data, "metric", str, "", where),
            operator=_read(data, "operator", str, "", where), limit=_number(data, "limit", None, where),
            unit=_read(data, "unit", str, "", where), actual=_number(data, "actual", None, where),
            ok=_read(data, "ok", bool, False, where), line=_read(data, "line", str, "", where),
        )

    def as_json(self) -> Json:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class AuditCheckResult:
    name: str = ""
    ok: bool = False
    detail: str = ""

    @classmethod
    def from_json(cls, data: Json, where: str = "") -> "AuditCheckResult":
        return cls(_read(data, "name", str, "", where), _read(data, "ok", bool, False, where),
                   _read(data, "detail", str, "", where))


@dataclass(frozen=True)
class AuditResult:
    """The integrity audit's verdict (``perf.analysis.audit.AuditReport.as_dict``, as stored on the run)."""

    ok: bool = True
    checks: tuple[AuditCheckResult, ...] = ()

    @classmethod
    def from_json(cls, data: Json, where: str = "") -> "AuditResult":
        return cls(_read(data, "ok", bool, True, where), _items(data, "checks", AuditCheckResult.from_json, where))

    def as_json(self) -> Json:
        return {"ok": self.ok, "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks]}


@dataclass(frozen=True)
class ComparisonResult:
    """The ``--compare-to`` verdict (``perf.analysis.compare.Comparison.verdict``): regressions at ``percent``."""

    baseline: int = 0
    baseline_label: str = ""
    percent: float = 0.0
    gate: bool = False  # --fail-on-regression was given: the regressions fail the run
    regressions: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Json, where: str = "") -> "ComparisonResult":
        return cls(_read(data, "baseline", int, 0, where), _read(data, "baseline_label", str, "", where),
                   _number(data, "percent", 0.0, where) or 0.0,
                   _read(data, "gate", bool, False, where),
                   _strings(data, "regressions", where), _strings(data, "notes", where))

    def as_json(self) -> Json:
        return {"baseline": self.baseline, "baseline_label": self.baseline_label, "percent": self.percent,
                "gate": self.gate, "regressions": list(self.regressions), "notes": list(self.notes)}


@dataclass(frozen=True)
class OpenModelResult:
    """A ``--rate`` run's iterations (``perf.load.open_model.OpenModelRunner.outcome``)."""

    rate: float = 0.0
    pool_users: int = 0
    schedule_seconds: float = 0.0
    scheduled_iterations: int = 0
    started_iterations: int = 0
    dropped_iterations: int = 0
    dropped_percent: float = 0.0
    dropped_by_scenario: dict[str, int] = field(default_factory=dict)
    max_busy_users: int = 0

    @classmethod
    def from_json(cls, data: Json, where: str = "") -> "OpenModelResult":
        return cls(
            rate=_number(data, "rate", 0.0, where) or 0.0, pool_users=_read(data, "pool_users", int, 0, where),
            schedule_seconds=_number(data, "schedule_seconds", 0.0, where) or 0.0,
            scheduled_iterations=_read(data, "scheduled_iterations", int, 0, where),
            started_iterations=_read(data, "started_iterations", int, 0, where),
            dropped_iterations=_read(data, "dropped_iterations", int, 0, where),
            dropped_percent=_number(data, "dropped_percent", 0.0, where) or 0.0,
            dropped_by_scenario=_counts(data, "dropped_by_scenario", where),
            max_busy_users=_read(data, "max_busy_users", int, 0, where),
        )

    def as_json(self) -> Json:
        return {f.name: getattr(self, f.name) for f in fields(self)} | {
            "dropped_by_scenario": dict(self.dropped_by_scenario)}


@dataclass(frozen=True)
class ShardResult:
    """One shard of a ``--distributed celery`` run, as its row last said (``perf.models.ShardReport``)."""

    index: int = 0
    status: str = ""
    hostname: str = ""
    users: int = 0
    requests: int = 0
    max_cpu_percent: float | None = None
    heartbeat_at: float | None = None
    error: str = ""

    @classmethod
    def from_json(cls, data: Json, where: str = "") -> "ShardResult":
        return cls(_read(data, "index", int, 0, where), _read(data, "status", str, "", where),
                   _read(data, "hostname", str, "", where), _read(data, "users", int, 0, where),
                   _read(data, "requests", int, 0, where), _number(data, "max_cpu_percent", None, where),
                   _number(data, "heartbeat_at", None, where), _read(data, "error", str, "", where))

    def as_json(self) -> Json:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class ProfileResult:
    """The run's load profile as ``PerfRun.profile`` stores it (perf/models.py): what it counts (users or a rate),
    where it came from (``stages`` or ``shape``), the option's text, the shape's name and parameters, and its
    stages placed on the clock (seconds since the start)."""

    kind: str = "users"
    source: str = "stages"
    text: str = ""
    shape: str | None = None
    params: dict[str, float] = field(default_factory=dict)
    spans: tuple[dict[str, float], ...] = ()

    @classmethod
    def from_json(cls, data: Json, where: str = "") -> "ProfileResult":
        params = _read(data, "params", dict, None, where) or {}
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in params.values()):
            raise DescriptionError(f"{where}params holds something else than numbers: {params!r}")
        spans = _items(data, "spans", _span, where)
        return cls(_read(data, "kind", str, "users", where), _read(data, "source", str, "stages", where),
                   _read(data, "text", str, "", where), _read(data, "shape", str, None, where), dict(params), spans)

    def as_json(self) -> Json:
        return {"kind": self.kind, "source": self.source, "text": self.text, "shape": self.shape,
                "params": dict(self.params), "spans": [dict(span) for span in self.spans]}


_SPAN_KEYS = ("index", "start", "end", "start_target", "target")


def _span(data: Json, where: str) -> dict[str, float]:
    span = {}
    for key in _SPAN_KEYS:
        value = _number(data, key, None, where)
        if value is None:
            raise DescriptionError(f"{where}{key} is missing")
        span[key] = int(value) if key == "index" else value
    return span


# ---------------------------------------------------------------------------------------------- stages


@dataclass(frozen=True)
class StageResult:
    """One stage's figures and verdicts (``perf.load.stage_figures.StageFigures.as_json``, as ``PerfRun.stages``
    stores it). None: the figure is not there (the stage had no request, or the row does not hold it)."""

    index: int | None = None
    name: str = ""  # "stage 2 (50 → 200)"
    start: float | None = None  # seconds since the run's start
    end: float | None = None
    start_target: float | None = None
    target: float | None = None
    seconds: float | None = None  # how long the run spent in it: less than end - start when it ended inside it
    requests: int | None = None
    failures: int | None = None
    requests_per_second: float | None = None
    failures_per_second: float | None = None
    avg_response_time: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    thresholds: tuple[ThresholdResult, ...] = ()

    @classmethod
    def from_json(cls, data: Json, where: str = "", strict: bool = True) -> "StageResult":
        return cls.of(_Reader(data, where, strict))

    @classmethod
    def of(cls, read: _Reader) -> "StageResult":
        return cls(
            index=read.whole("index"), name=read.text("name"), start=read.number("start"), end=read.number("end"),
            start_target=read.number("start_target"), target=read.number("target"), seconds=read.number("seconds"),
            requests=read.whole("requests"), failures=read.whole("failures"),
            requests_per_second=read.number("requests_per_second"),
            failures_per_second=read.number("failures_per_second"),
            avg_response_time=read.number("avg_response_time"), p50=read.number("p50"), p95=read.number("p95"),
            p99=read.number("p99"), thresholds=read.verdicts("thresholds"),
        )


# ---------------------------------------------------------------------------------------------- capacity
# A capacity search's JSON (``PerfRun.capacity``, docs/capacity.md) as the reports read it: the keys they show. The
# description keeps the JSON itself too, whole, for the files (each step's endpoints, its concurrency, ...).


@dataclass(frozen=True)
class CapacitySettingsResult:
    """The search as it was asked for (``perf.load.capacity.CapacitySettings.as_json``)."""

    start: float | None = None
    factor: float | None = None
    increment: float | None = None
    settle: float | None = None
    hold: float | None = None
    resolution: float | None = None
    max_load: float | None = None
    budget: float | None = None
    thresholds: tuple[str, ...] = ()

    @classmethod
    def of(cls, read: _Reader) -> "CapacitySettingsResult":
        number = read.number
        return cls(number("start"), number("factor"), number("increment"), number("settle"), number("hold"),
                   number("resolution"), number("max_load"), number("budget"), read.strings("thresholds"))


@dataclass(frozen=True)
class CapacityStep:
    """One step: where it lies (the step under way has only that), what its judged window measured, and its
    verdicts (``perf.load.capacity.Step.as_json``)."""

    index: int | None = None
    load: float | None = None
    phase: str = ""  # "raise" or "narrow"
    start: float | None = None  # seconds since the run's start
    settle_end: float | None = None
    end: float | None = None
    seconds: float | None = None
    requests_per_second: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    failure_percent: float | None = None
    cpu_percent: float | None = None
    dropped_percent: float | None = None  # an open model's arrivals dropped for want of a free user
    passed: bool | None = None  # None: not judged
    generator_limited: bool = False
    verdicts: tuple[ThresholdResult, ...] = ()

    @classmethod
    def of(cls, read: _Reader) -> "CapacityStep":
        return cls(
            index=read.whole("index"), load=read.number("load"), phase=read.text("phase"), start=read.number("start"),
            settle_end=read.number("settle_end"), end=read.number("end"), seconds=read.number("seconds"),
            requests_per_second=read.number("requests_per_second"), p50=read.number("p50"), p95=read.number("p95"),
            p99=read.number("p99"), failure_percent=read.number("failure_percent"),
            cpu_percent=read.number("cpu_percent"), dropped_percent=read.number("dropped_percent"),
            passed=read.value("passed", bool, None), generator_limited=read.flag("generator_limited"),
            verdicts=read.verdicts("verdicts"),
        )


@dataclass(frozen=True)
class CapacityPoint:
    """The capacity, or the first failing load: a step's load, throughput and index."""

    load: float | None = None
    requests_per_second: float | None = None
    step: int | None = None

    @classmethod
    def of(cls, read: _Reader) -> "CapacityPoint":
        return cls(read.number("load"), read.number("requests_per_second"), read.whole("step"))


@dataclass(frozen=True)
class CapacityLimit:
    """The ceiling a search hit: ``max_users``, ``max_rate`` or ``budget``, and its value."""

    kind: str = ""
    value: float | None = None

    @classmethod
    def of(cls, read: _Reader) -> "CapacityLimit":
        return cls(read.text("kind"), read.number("value"))


@dataclass(frozen=True)
class Breakdown:
    """Where an endpoint's time went at the knee, in ms (``perf.load.capacity.endpoint_json``)."""

    client_ms: float | None = None
    app_ms: float | None = None  # None without Server-Timing
    db_ms: float | None = None
    queries: float | None = None
    queue_ms: float | None = None

    @classmethod
    def of(cls, read: _Reader) -> "Breakdown":
        number = read.number
        return cls(number("client_ms"), number("app_ms"), number("db_ms"), number("queries"), number("queue_ms"))


@dataclass(frozen=True)
class BrokeFirstResult:
    """What failed first at the first failing load (``perf.analysis.capacity.broke_first``)."""

    threshold: str = ""
    actual: str | float | None = None  # as the verdict's line prints it: "512 ms"
    endpoint: str = ""
    breakdown: Breakdown | None = None

    @classmethod
    def of(cls, read: _Reader) -> "BrokeFirstResult":
        return cls(read.text("threshold"), read.value("actual", (str, int, float), None), read.text("endpoint"),
                   read.child("breakdown", Breakdown.of))


@dataclass(frozen=True)
class UslResult:
    """The Universal Scalability Law's fit of the steps (``perf.analysis.usl.UslFit.as_json``): shown only when
    good enough, else ``why`` not."""

    shown: bool = False
    why: str = ""
    sigma: float | None = None
    kappa: float | None = None
    lam: float | None = None  # "lambda" in the JSON
    peak_load: float | None = None
    peak_throughput: float | None = None
    r2: float | None = None
    load_axis: str = ""  # what its loads count: "users", or "concurrency" (an open model's requests in flight)

    @classmethod
    def of(cls, read: _Reader) -> "UslResult":
        return cls(read.flag("shown"), read.text("why"), read.number("sigma"), read.number("kappa"),
                   read.number("lambda"), read.number("peak_load"), read.number("peak_throughput"), read.number("r2"),
                   read.text("load_axis"))


@dataclass(frozen=True)
class CapacityResult:
    """A capacity search: what it counts, how it ended, its steps, its result and its verdict."""

    model: str = ""  # "users", or "rate" (the open model)
    unit: str = ""  # "users" or "iterations/s"
    status: str = ""  # perf.load.capacity's: "searching", "found", "ceiling", "first_step_failed", ...
    settings: CapacitySettingsResult | None = None
    current: CapacityStep | None = None  # while searching: the step under way (where it lies)
    steps: tuple[CapacityStep, ...] = ()  # the judged steps, in the order they ran
    capacity: CapacityPoint | None = None
    first_failing: CapacityPoint | None = None
    limit: CapacityLimit | None = None
    broke_first: BrokeFirstResult | None = None
    usl: UslResult | None = None
    verdict: str = ""  # one paragraph in plain words

    @classmethod
    def from_json(cls, data: Json, where: str = "", strict: bool = True) -> "CapacityResult":
        read = _Reader(data, where, strict)
        point = CapacityPoint.of
        return cls(
            model=read.text("model"), unit=read.text("unit"), status=read.text("status"),
            settings=read.child("settings", CapacitySettingsResult.of), current=read.child("current", CapacityStep.of),
            steps=read.children("steps", CapacityStep.of), capacity=read.child("capacity", point),
            first_failing=read.child("first_failing", point), limit=read.child("limit", CapacityLimit.of),
            broke_first=read.child("broke_first", BrokeFirstResult.of), usl=read.child("usl", UslResult.of),
            verdict=read.text("verdict"),
        )

    @classmethod
    def read(cls, data: Any) -> "CapacityResult | None":
        """The reports' lenient reading of a stored search; None for anything that is not one."""
        return cls.from_json(data, strict=False) if isinstance(data, dict) else None


# ---------------------------------------------------------------------------------------------- noise


@dataclass(frozen=True)
class NoiseVerdict:
    """One endpoint and metric judged against a plan's history (``perf.analysis.noise.Verdict.as_json``)."""

    endpoint: str = ""
    metric: str = ""  # "p95" (ms) or "failure_rate" (%)
    verdict: str = ""  # "regressed", "improved", "within noise" or "not enough history"
    value: float | None = None
    median: float | None = None
    band: float | None = None  # half the band's width: the value may be median ± band
    history: int | None = None  # how many comparable runs measured it

    @classmethod
    def of(cls, read: _Reader) -> "NoiseVerdict":
        return cls(read.text("endpoint"), read.text("metric"), read.text("verdict"), read.number("value"),
                   read.number("median"), read.number("band"), read.whole("history"))


@dataclass(frozen=True)
class NoiseResult:
    """``run_perf --plan``: each endpoint judged against the plan's history (``NoiseReport.as_json``, as
    ``PerfRun.regressions`` stores it), and whether the plan fails on a regression."""

    plan: str = ""
    fail_on_regression: bool = True
    runs: tuple[int, ...] = ()  # the comparable runs judged against, newest first
    verdicts: tuple[NoiseVerdict, ...] = ()

    @classmethod
    def from_json(cls, data: Json, where: str = "", strict: bool = True) -> "NoiseResult":
        read = _Reader(data, where, strict)
        runs = read.value("runs", list, None) or []
        if strict and not all(isinstance(run, int) and not isinstance(run, bool) for run in runs):
            raise DescriptionError(f"{where}runs holds something else than run ids: {runs!r}")
        return cls(read.text("plan"), read.flag("fail_on_regression", True),
                   tuple(run for run in runs if isinstance(run, int) and not isinstance(run, bool)),
                   read.children("verdicts", NoiseVerdict.of))

    @classmethod
    def read(cls, data: Any) -> "NoiseResult | None":
        """The reports' lenient reading of stored verdicts; None for anything that is not an object."""
        return cls.from_json(data, strict=False) if isinstance(data, dict) else None


# ---------------------------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class RunDescription:
    """Everything about a run but its figures. Times are epoch seconds, as the registry's ``start_time``."""

    run_id: int | None = None  # the stored row; None for --no-save
    label: str = ""
    host: str = ""
    status: str = ""  # perf.models.PerfRun.Status
    users: int | None = None
    spawn_rate: float | None = None
    planned_duration: float | None = None
    scenarios: tuple[str, ...] = ()
    user_split: dict[str, int] = field(default_factory=dict)
    seed: int | None = None
    wait: str = "default"  # --wait as given
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None
    git_revision: str = ""
    database_vendor: str = ""
    cpu_warning: bool = False
    max_cpu_percent: float | None = None
    stop_reason: str = ""  # why it stopped before its time; "" when it ran to its end
    error: str = ""  # why it failed, or how it was lost
    stop_requested_by: str = ""
    thresholds: tuple[ThresholdResult, ...] = ()
    audit: AuditResult | None = None  # None: no audit ran
    open_model: OpenModelResult | None = None
    comparison: ComparisonResult | None = None
    options: dict[str, Any] = field(default_factory=dict)  # the run_perf options as given (JSON)
    shards: tuple[ShardResult, ...] = ()
    unsaved: bool = False  # the database refused the final save: ``perf_import`` finishes row ``run_id``
    profile: ProfileResult | None = None  # None: no load profile (-u, -r, -t)
    # The next three are kept as the JSON the run stores, whole: the JSON summary writes it and perf_import stores it
    # back, keys the reports never show included. The reports read them typed: ``stage_results``,
    # ``capacity_result`` and ``noise_result``, never the JSON.
    stages: tuple[Json, ...] = ()  # each stage's figures and verdicts (perf.load.stage_figures.StageFigures.as_json)
    kind: str = "load"  # perf.models.PerfRun.Kind: a load test, or a capacity search (run_perf --find-capacity)
    # A capacity search's steps, result, USL fit and verdict (as perf.models.PerfRun.capacity stores them); None for
    # a load test.
    capacity: Json | None = None
    # ``run_perf --plan``: each endpoint judged against the plan's history (perf.analysis.noise.NoiseReport.as_json,
    # with the plan's "fail_on_regression"), as PerfRun.regressions stores it; None without a plan's verdicts.
    noise: Json | None = None

    # --- the two ways a run is described --------------------------------------------------------------------

    @classmethod
    def live(cls, *, row: "PerfRun | None", status: str, reason: str, label: str, host: str, users: int,
             spawn_rate: float, planned_duration: float, scenarios: tuple[str, ...], user_split: dict[str, int],
             seed: int | None, wait: str | None, options: dict[str, Any], started_at: float, finished_at: float,
             git_revision: str, database_vendor: str, cpu_warning: bool, max_cpu_percent: float | None,
             thresholds: list[Json], open_model: Json | None, unsaved: bool = False,
             shards: tuple[ShardResult, ...] = (), profile: Json | None = None,
             stages: list[Json] | None = None, capacity: Json | None = None, error: str = "") -> "RunDescription":
        """What ``run_perf`` knows at the end of a run, after its final save. ``row`` is the stored run when
        there is one: its id, and the moments and the stop request the database recorded, so that the run's
        own files say what the admin's downloads of it say. ``options`` are already JSON (as stored). ``capacity``
        is a capacity search's JSON (``PerfRun.capacity``): given, the run is described as one. ``error``: why the
        runner broke (a run stored ``failed``), as the row stores it."""
        return cls(
            run_id=None if row is None else row.pk, label=label or "", host=host, status=status, users=users,
            spawn_rate=spawn_rate, planned_duration=planned_duration, scenarios=tuple(scenarios),
            user_split=dict(user_split), seed=seed, wait=wait or "default",
            started_at=started_at if row is None else _epoch(row.started_at),
            finished_at=finished_at if row is None or row.finished_at is None else _epoch(row.finished_at),
            heartbeat_at=None if row is None else _epoch(row.heartbeat_at),
            git_revision=git_revision, database_vendor=database_vendor, cpu_warning=cpu_warning,
            max_cpu_percent=max_cpu_percent, stop_reason="" if reason == "completed" else reason, error=error,
            stop_requested_by="" if row is None else row.stop_requested_by,
            thresholds=tuple(ThresholdResult.from_json(item) for item in thresholds),
            open_model=None if open_model is None else OpenModelResult.from_json(open_model),
            options=options, shards=shards, unsaved=unsaved,
            profile=None if profile is None else ProfileResult.from_json(profile), stages=tuple(stages or ()),
            kind="load" if capacity is None else CAPACITY, capacity=None if capacity is None else dict(capacity),
        )

    @classmethod
    def from_run(cls, run: "PerfRun", comparison: ComparisonResult | None = None,
                 shards: tuple[ShardResult, ...] = ()) -> "RunDescription":
        """A stored run, running or finished; its comparison and shards are read from the database by the caller
        (``perf.reports.stored.describe``), as ``run_perf`` reads the shards after its final save."""
        options = run.options or {}
        return cls(
            run_id=run.pk, label=run.label, host=run.host, status=run.status, users=run.users,
            spawn_rate=run.spawn_rate, planned_duration=run.planned_duration, scenarios=tuple(run.scenarios or ()),
            user_split=dict(run.user_split or {}), seed=run.seed, wait=str(options.get("wait") or "default"),
            started_at=_epoch(run.started_at), finished_at=_epoch(run.finished_at),
            heartbeat_at=_epoch(run.heartbeat_at), git_revision=run.git_revision, database_vendor=run.database_vendor,
            cpu_warning=run.cpu_warning, max_cpu_percent=run.max_cpu_percent, stop_reason=run.stop_reason,
            error=run.error, stop_requested_by=run.stop_requested_by,
            thresholds=tuple(ThresholdResult.from_json(item) for item in run.thresholds or ()),
            audit=AuditResult.from_json(run.audit) if run.audit else None,
            open_model=OpenModelResult.from_json(run.open_model) if run.open_model else None,
            comparison=comparison, options=options, shards=shards,
            profile=stored_profile(run.profile),
            stages=tuple(stage for stage in run.stages or () if isinstance(stage, dict)),
            kind=run.kind or "load", capacity=dict(run.capacity) if isinstance(run.capacity, dict) else None,
            noise=dict(run.regressions) if isinstance(run.regressions, dict) and run.regressions else None,
        )

    def with_audit(self, audit: Json) -> "RunDescription":
        return replace(self, audit=AuditResult.from_json(audit))

    def with_comparison(self, verdict: Json) -> "RunDescription":
        return replace(self, comparison=ComparisonResult.from_json(verdict))

    def with_noise(self, report: Json) -> "RunDescription":
        return replace(self, noise=dict(report))

    # --- JSON: --json's "meta" ----------------------------------------------------------------------------------

    def as_json(self) -> Json:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.update(
            scenarios=list(self.scenarios), user_split=dict(self.user_split),
            thresholds=[item.as_json() for item in self.thresholds],
            audit=None if self.audit is None else self.audit.as_json(),
            open_model=None if self.open_model is None else self.open_model.as_json(),
            comparison=None if self.comparison is None else self.comparison.as_json(),
            options=dict(self.options), shards=[shard.as_json() for shard in self.shards],
            profile=None if self.profile is None else self.profile.as_json(), stages=[dict(s) for s in self.stages],
            capacity=None if self.capacity is None else dict(self.capacity),
            noise=None if self.noise is None else dict(self.noise),
        )
        return data

    @classmethod
    def from_json(cls, data: Any) -> "RunDescription":
        """A summary's ``meta``; DescriptionError (one line naming the key) when a value has the wrong type.
        Keys it does not know are left out (a newer or a hand-made file); missing ones take their defaults."""
        data = _object(data, "meta")
        where = "meta."
        unsaved = _read(data, "unsaved", (bool, dict), False, where)
        run_id = _read(data, "run_id", int, None, where)
        legacy: Json = {}
        if isinstance(unsaved, dict):  # before RunDescription: {"run_id": ..., "fields": {cpu_warning, ...}}
            run_id = _read(unsaved, "run_id", int, run_id, where + "unsaved.")
            legacy = _object(unsaved.get("fields", {}), where + "unsaved.fields")
        merged = {**data, **legacy}
        capacity = _read(data, "capacity", dict, None, where)
        _check_layouts(data, where)
        return cls(
            run_id=run_id, label=_read(data, "label", str, "", where), host=_read(data, "host", str, "", where),
            status=_read(data, "status", str, "", where), users=_read(data, "users", int, None, where),
            spawn_rate=_number(data, "spawn_rate", None, where),
            planned_duration=_number(data, "planned_duration", None, where),
            scenarios=_strings(data, "scenarios", where), user_split=_counts(data, "user_split", where),
            seed=_read(data, "seed", int, None, where), wait=_read(data, "wait", str, "default", where),
            started_at=_number(data, "started_at", None, where), finished_at=_number(data, "finished_at", None, where),
            heartbeat_at=_number(data, "heartbeat_at", None, where),
            git_revision=_read(data, "git_revision", str, "", where),
            database_vendor=_read(data, "database_vendor", str, "", where),
            cpu_warning=_read(merged, "cpu_warning", bool, False, where),
            max_cpu_percent=_number(merged, "max_cpu_percent", None, where),
            stop_reason=_read(merged, "stop_reason", str, "", where), error=_read(data, "error", str, "", where),
            stop_requested_by=_read(data, "stop_requested_by", str, "", where),
            thresholds=_items(data, "thresholds", ThresholdResult.from_json, where),
            audit=_optional(data, "audit", AuditResult.from_json, where),
            open_model=_optional(data, "open_model", OpenModelResult.from_json, where),
            comparison=_optional(data, "comparison", ComparisonResult.from_json, where),
            options=dict(_read(data, "options", dict, None, where) or {}),
            shards=_items(data, "shards", ShardResult.from_json, where), unsaved=bool(unsaved),
            profile=_optional(data, "profile", ProfileResult.from_json, where),
            stages=_items(data, "stages", lambda item, _: dict(item), where),
            # A summary written before capacity searches has neither key: a load test.
            kind=_read(data, "kind", str, CAPACITY if capacity else "load", where), capacity=capacity,
            noise=_read(data, "noise", dict, None, where),
        )

    # --- what the reports ask of it ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def is_capacity(self) -> bool:
        """A capacity search (``run_perf --find-capacity``): the reports show its steps and result first."""
        return self.kind == CAPACITY

    @cached_property
    def stage_results(self) -> tuple[StageResult, ...]:
        """The stages as the reports read them: a stored figure that is not one reads as missing (a dash)."""
        return tuple(StageResult.from_json(stage, strict=False) for stage in self.stages)

    @cached_property
    def capacity_result(self) -> CapacityResult | None:
        """The capacity search as the reports read it, leniently; None for a load test."""
        return CapacityResult.read(self.capacity)

    @cached_property
    def noise_result(self) -> NoiseResult | None:
        """The plan's verdicts as the reports read them, leniently; None without them."""
        return NoiseResult.read(self.noise)


def _check_layouts(data: Json, where: str) -> None:
    """A summary's stages, capacity search and plan verdicts hold the layouts the run stores them in: the reports
    read them leniently, so a value of the wrong type is refused here, in one line naming its key, not stored."""
    for index, stage in enumerate(_read(data, "stages", list, None, where) or []):
        StageResult.from_json(_object(stage, f"{where}stages[{index}]"), f"{where}stages[{index}].")
    for key, read in (("capacity", CapacityResult.from_json), ("noise", NoiseResult.from_json)):
        value = _read(data, key, dict, None, where)
        if value is not None:
            read(value, f"{where}{key}.")


def _optional(data: Json, key: str, read: Callable[[Json, str], T], where: str) -> T | None:
    value = _read(data, key, dict, None, where)
    return read(value, f"{where}{key}.") if value else None


def stored_profile(profile: Any) -> ProfileResult | None:
    """A stored run's profile; a row that does not hold the models' layout (edited by hand, an older one) shows as
    a run without a profile: its page still opens."""
    if not profile:
        return None
    try:
        return ProfileResult.from_json(_object(profile, "profile"), "profile.")
    except DescriptionError:
        return None
