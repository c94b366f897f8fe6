"""``run_perf --junit PATH``: the run's verdicts as JUnit XML, the format GitLab, Jenkins and GitHub's test
reporters read, so that a CI job shows which rule failed and by how much without anyone opening the log.

One ``<testsuite>`` for the run (its id and label, when it started, how long it lasted), one ``<testcase>``
per verdict the run reached:

* each ``--threshold`` (a load test's, judged on the whole run);
* a capacity search's outcome, and each of its steps: a step past the knee is expected to fail the thresholds,
  so it is ``<skipped>`` (as pytest writes an expected failure), not a failure; the outcome fails as the exit
  code does (the first step failed, or the generator limited itself);
* with ``--compare-to``, each endpoint (and the Aggregated row) against the baseline, and each other row that
  regressed (a stage, a capacity): a failure only with ``--fail-on-regression`` (the gate that sets exit code 4);
  without it a regression is written in the test's output and the test passes, as the run does;
* each integrity audit check;
* the run itself: it ended as planned, and (for a load test) no request failed.

A failure's ``message`` holds the figures (``p95<500ms: 612 ms``), so that the CI's list of failures is
the whole story. The file says what the run's exit code says: a failing test for every reason it is not 0.
"""

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from perf.load.stats import StatsRegistry
from perf.reports import formats
from perf.reports.description import RunDescription
from perf.reports.files import write_atomic
from perf.reports.summary_md import admin_url

# Capacity statuses that fail the run (perf.cli.run._exit_code): the file fails them too.
FAILING_CAPACITY = {"first_step_failed": "the first step already failed the thresholds",
                    "generator_limit": "the load generator limited itself before the server did"}
# XML 1.0 cannot hold these at all, escaped or not: a label or an error text with one would make the file invalid.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class Case:
    """One ``<testcase>``: a failure or a skip message, or neither (it passed); ``output`` goes to its system-out."""

    classname: str
    name: str
    failure: str | None = None
    skipped: str | None = None
    output: str = ""
    seconds: float | None = None


def cases(stats: StatsRegistry, run: RunDescription) -> list[Case]:
    """Every test case of the run, in the order the console prints its verdicts."""
    found = [*_threshold_cases(run), *_capacity_cases(run), *_comparison_cases(stats, run), *_noise_cases(run),
             *_audit_cases(run)]
    return found + _run_cases(stats, run)


def _threshold_cases(run: RunDescription) -> Iterable[Case]:
    for verdict in run.thresholds:
        yield Case("perfkit.thresholds", verdict.expression or verdict.line,
                   failure=None if verdict.ok else verdict.line, output=verdict.line)


def _capacity_cases(run: RunDescription) -> Iterable[Case]:
    found = run.capacity_result
    if found is None:
        return
    verdict = found.verdict or found.status
    why = FAILING_CAPACITY.get(found.status)
    yield Case("perfkit.capacity", "capacity search", failure=f"{why}: {verdict}" if why else None, output=verdict)
    for step in found.steps:
        lines = [("PASS " if v.ok else "FAIL ") + (v.line or v.expression) for v in step.verdicts]
        broken = "; ".join(v.line or v.expression for v in step.verdicts if not v.ok)
        skipped = None
        if step.generator_limited:
            skipped = "the load generator limited itself at this step: not a verdict on the server"
        elif not step.passed:
            skipped = f"past the capacity: {broken or 'no answers'}"
        name = f"step {(step.index or 0) + 1}: {step.load:g} {found.unit}" if step.load is not None else "step"
        yield Case("perfkit.capacity.steps", name.strip(), skipped=skipped, output="\n".join(lines),
                   seconds=step.seconds)


def _comparison_cases(stats: StatsRegistry, run: RunDescription) -> Iterable[Case]:
    """Each endpoint against the baseline; then each regressed row no endpoint names (a stage, a capacity)."""
    comparison = run.comparison
    if comparison is None:
        return
    against = f"vs run {comparison.baseline}"
    rule = f"regression above {comparison.percent:g}%"
    notes = "\n".join(f"Note: {note}" for note in comparison.notes)

    def case(name: str, regressions: list[str]) -> Case:
        text = "; ".join(regressions)
        if regressions and comparison.gate:
            return Case("perfkit.regressions", f"{name} {against}", failure=text, output=notes)
        said = f"{rule} (not a gate without --fail-on-regression): {text}" if regressions else f"no {rule}"
        return Case("perfkit.regressions", f"{name} {against}", output="\n".join(filter(None, (said, notes))))

    left = list(comparison.regressions)
    if not run.is_capacity:  # a capacity search's endpoints are over every step: listed, never judged
        for entry in [*stats.sorted_entries(), stats.total]:
            label = f"{entry.method} {entry.name}".strip()
            mine = [line for line in left if line.startswith(f"{label}: ")]
            left = [line for line in left if line not in mine]
            yield case(label, mine)
    for line in left:
        yield case(line.split(": ", 1)[0] if ": " in line else line.split(" ", 1)[0], [line])
    if run.is_capacity and not comparison.regressions:
        yield case("capacity", [])


def _noise_cases(run: RunDescription) -> Iterable[Case]:
    """``--plan``: each endpoint and metric against the plan's history (perf.analysis.noise); "regressed" fails
    when the plan fails on regressions, "not enough history" is skipped (no verdict either way)."""
    noise = run.noise_result
    if noise is None:
        return
    for verdict in noise.verdicts:
        said = formats.noise_line(verdict)
        name = f"{verdict.metric} {verdict.endpoint} against plan {noise.plan}"
        if verdict.verdict == "not enough history":
            yield Case("perfkit.noise", name, skipped=said, output=said)
        elif verdict.verdict == "regressed" and noise.fail_on_regression:
            yield Case("perfkit.noise", name, failure=said, output=said)
        else:
            yield Case("perfkit.noise", name, output=said)


def _audit_cases(run: RunDescription) -> Iterable[Case]:
    if run.audit is None:
        return
    for check in run.audit.checks:
        yield Case("perfkit.audit", check.name, failure=None if check.ok else check.detail or "failed",
                   output=check.detail)


def _run_cases(stats: StatsRegistry, run: RunDescription) -> list[Case]:
    ended = run.status == "completed"
    why = run.stop_reason or run.error or run.status or "unknown"
    found = [Case("perfkit.run", "run completed", failure=None if ended else f"the run is {run.status}: {why}")]
    if not run.is_capacity:  # failed requests are what a search looks for past the knee
        total = stats.total
        failed = total.num_failures
        text = (f"{formats.count(failed)} of {formats.plural(total.num_requests, 'request')} failed "
                f"({formats.percent(100.0 * failed / total.num_requests if total.num_requests else 0.0)})")
        found.append(Case("perfkit.run", "no failed requests", failure=text if failed else None, output=text))
    return found


def junit_xml(stats: StatsRegistry, duration: float, run: RunDescription) -> str:
    """The whole file: ``<testsuites>`` around the run's one ``<testsuite>``."""
    found = cases(stats, run)
    failures = sum(case.failure is not None for case in found)
    skipped = sum(case.skipped is not None for case in found)
    name = " ".join(filter(None, ("perfkit", f"run {run.run_id}" if run.run_id is not None else "", run.label)))
    counts = {"tests": str(len(found)), "failures": str(failures), "errors": "0", "skipped": str(skipped),
              "time": f"{duration:.3f}"}
    root = ElementTree.Element("testsuites", {"name": _text(name), **counts})
    suite = ElementTree.SubElement(root, "testsuite", {"name": _text(name), **counts,
                                                        "timestamp": _timestamp(run.started_at)})
    properties = ElementTree.SubElement(suite, "properties")
    for key, value in _properties(run).items():
        ElementTree.SubElement(properties, "property", {"name": key, "value": _text(value)})
    for case in found:
        _case_element(suite, case)
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="unicode") + "\n"


def _case_element(suite: ElementTree.Element, case: Case) -> None:
    attributes = {"classname": case.classname, "name": _text(case.name)}
    if case.seconds is not None:
        attributes["time"] = f"{case.seconds:.3f}"
    element = ElementTree.SubElement(suite, "testcase", attributes)
    if case.failure is not None:
        failure = ElementTree.SubElement(element, "failure", {"message": _text(case.failure)})
        failure.text = _text(case.failure)
    if case.skipped is not None:
        ElementTree.SubElement(element, "skipped", {"message": _text(case.skipped)})
    if case.output:
        ElementTree.SubElement(element, "system-out").text = _text(case.output)


def _properties(run: RunDescription) -> dict[str, str]:
    values: dict[str, Any] = {"run_id": run.run_id, "label": run.label, "kind": run.kind, "status": run.status,
                              "host": run.host, "git_revision": run.git_revision, "admin_url": admin_url(run)}
    return {key: str(value) for key, value in values.items() if value not in (None, "")}


def _timestamp(epoch: float | None) -> str:
    """ISO 8601 in UTC without a zone, as JUnit's schema has it; now when the start is unknown."""
    moment = datetime.fromtimestamp(epoch, tz=UTC) if epoch is not None else datetime.now(tz=UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="seconds")


def _text(value: str) -> str:
    return _NOT_XML.sub("\N{REPLACEMENT CHARACTER}", value)


def write_junit(path: str | os.PathLike[str], stats: StatsRegistry, duration: float, run: RunDescription) -> Path:
    """Write the file whole or not at all (``perf.reports.files``)."""
    return write_atomic(path, junit_xml(stats, duration, run))
