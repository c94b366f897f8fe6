"""``run_perf --summary-md PATH``: the run in a page of Markdown, for a CI job's summary or a pull request
comment. When ``GITHUB_STEP_SUMMARY`` is set (a GitHub Actions step), the same text is appended to that file,
which GitHub shows on the job's page, with or without ``--summary-md``.

What a reviewer needs to decide without opening the run: the key figures, each threshold's verdict, a
capacity search's result, the regressions against the baseline, the audit's verdict, and a link to the run's
admin page for the rest. The endpoints' table is folded away (``<details>``): it is long, and the verdicts say
whether it needs reading.
"""

import os
from collections.abc import Iterable
from pathlib import Path

from perf.load.stats import StatsEntry, StatsRegistry
from perf.options import site_root
from perf.reports import formats
from perf.reports.description import CapacityStep, RunDescription
from perf.reports.files import write_atomic
from perf.reports.report import ending_notes

GITHUB_STEP_SUMMARY = "GITHUB_STEP_SUMMARY"
PASS, FAIL = "✅ PASS", "❌ FAIL"


def admin_url(run: RunDescription) -> str | None:
    """The stored run's admin page, as ``run_perf`` prints it at the end; None for a run not stored (yet)."""
    if run.run_id is None or run.unsaved or not run.host:
        return None
    return f"{site_root(run.host)}/admin/perf/perfrun/{run.run_id}/change/"


def summary_markdown(stats: StatsRegistry, duration: float, run: RunDescription) -> str:
    """The whole summary, ending with a newline (appended summaries stay apart)."""
    parts = [_heading(run, duration), _key_figures(stats, duration, run), _thresholds(run), _capacity(run),
             _comparison(run), _noise(run), _audit(run), _endpoints(stats, duration)]
    return "\n\n".join(part for part in parts if part) + "\n"


def _heading(run: RunDescription, duration: float) -> str:
    name = " · ".join(filter(None, (f"run {run.run_id}" if run.run_id is not None else "run (not stored)",
                                    run.label)))
    what = "capacity search" if run.is_capacity else "load test"
    lines = [f"## perfkit {_cell(name)}: {run.status or 'unknown'}"]
    facts = [what, formats.duration(duration),
             f"against `{run.host}`" if run.host else "",
             f"revision `{run.git_revision}`" if run.git_revision else "",
             formats.moment(run.started_at) if run.started_at is not None else ""]
    lines.append(", ".join(fact for fact in facts if fact))
    lines += [_cell(note) for note in ending_notes(run)]
    url = admin_url(run)
    if url:
        lines.append(f"[Run {run.run_id} in the admin]({url})")
    elif run.unsaved:
        lines.append("The database refused the run: its summary is kept for `manage.py perf_import`.")
    return "\n\n".join(lines)


def _key_figures(stats: StatsRegistry, duration: float, run: RunDescription) -> str:
    total = stats.total
    failed = (f"{formats.count(total.num_failures)} "
              f"({formats.percent(100.0 * total.fail_ratio)})")
    rows = [[formats.count(total.num_requests), failed, formats.rate(total.rps(duration)),
             *(_ms(total, q) for q in (0.5, 0.95, 0.99))]]
    title = "Over every step of the search" if run.is_capacity else ""
    table = _table(["Requests", "Failures", "req/s", "p50", "p95", "p99"], rows)
    return f"{title}\n\n{table}" if title else table


def _thresholds(run: RunDescription) -> str:
    if not run.thresholds:
        return ""
    rows = [[PASS if verdict.ok else FAIL, f"`{verdict.expression}`", _measured(verdict.line)]
            for verdict in run.thresholds]
    return "### Thresholds\n\n" + _table(["", "Rule", "Measured"], rows)


def _measured(line: str) -> str:
    """``p95<500ms: 612 ms`` → ``612 ms``: the rule has its own column."""
    return _cell(line.rsplit(": ", 1)[-1])


def _capacity(run: RunDescription) -> str:
    found = run.capacity_result
    if found is None:
        return ""
    lines = ["### Capacity", _cell(found.verdict or found.status)]
    if found.steps:
        rows = [[str((step.index or 0) + 1), step.phase, _number(step.load), formats.rate(step.requests_per_second),
                 formats.ms_unit(step.p95), formats.percent(step.failure_percent), _step_result(step)]
                for step in found.steps]
        unit = "Users" if found.model == "users" else "Iterations/s"
        lines.append(_table(["Step", "Phase", unit, "req/s", "p95", "Failures", "Result"], rows))
    return "\n\n".join(line for line in lines if line)


def _step_result(step: CapacityStep) -> str:
    if step.generator_limited:
        return "generator-limited"
    if step.passed:
        return PASS
    broken = [verdict.line for verdict in step.verdicts if not verdict.ok]
    return f"{FAIL} " + _cell("; ".join(broken)) if broken else FAIL


def _comparison(run: RunDescription) -> str:
    comparison = run.comparison
    if comparison is None:
        return ""
    baseline = f"run {comparison.baseline}" + (f" ({_cell(comparison.baseline_label)})"
                                               if comparison.baseline_label else "")
    gate = ("fail the run (--fail-on-regression)" if comparison.gate
            else "are marked only: without --fail-on-regression they do not fail the run")
    lines = [f"### Compared with {baseline}", f"Regressions above {comparison.percent:g}% {gate}."]
    if comparison.regressions:
        rows = []
        for line in comparison.regressions:
            what, _, figures = line.partition(": ") if ": " in line else ("", "", line)
            rows.append([FAIL if comparison.gate else "⚠️", _cell(what), _cell(figures)])
        lines.append(_table(["", "Row", "What regressed (baseline → this run)"], rows))
    else:
        lines.append(f"{PASS}: no regression above {comparison.percent:g}%.")
    lines += [f"- {_cell(note)}" for note in comparison.notes]
    return "\n\n".join(lines[:3]) + ("\n\n" + "\n".join(lines[3:]) if lines[3:] else "")


def _noise(run: RunDescription) -> str:
    """``--plan``: the endpoints judged against the plan's history, what regressed first."""
    noise = run.noise_result
    if noise is None:
        return ""
    gate = noise.fail_on_regression
    order = {"regressed": 0, "improved": 1, "within noise": 2}

    def mark(said: str) -> str:
        if said == "regressed":
            return FAIL if gate else "⚠️"
        return PASS if said in ("within noise", "improved") else formats.MISSING

    rows = [[mark(verdict.verdict), _cell(formats.noise_line(verdict))]
            for verdict in sorted(noise.verdicts, key=lambda verdict: order.get(verdict.verdict, 3))]
    head = (f"### Against plan {_cell(noise.plan)}'s history\n\nEach endpoint's p95 and failure "
            "rate against the median ± k × scaled MAD of the plan's comparable runs"
            + ("" if gate else " (the plan does not fail on regressions)") + ".")
    return head + ("\n\n" + _table(["", "Verdict"], rows) if rows else "")


def _audit(run: RunDescription) -> str:
    audit = run.audit
    if audit is None:
        return ""
    if not audit.checks:
        return "### Integrity audit\n\nNo checks configured (`PERF_AUDIT_CHECKS`)."
    failed = [check for check in audit.checks if not check.ok]
    head = (f"### Integrity audit: {PASS if audit.ok else FAIL}\n\n"
            f"{len(audit.checks) - len(failed)} of {formats.plural(len(audit.checks), 'check')} passed.")
    if not failed:
        return head
    return head + "\n\n" + _table(["Check", "Detail"], [[f"`{c.name}`", _cell(c.detail)] for c in failed])


def _endpoints(stats: StatsRegistry, duration: float) -> str:
    entries = stats.sorted_entries()
    if not entries:
        return ""
    rows = [[_cell(entry.method), f"`{_cell(entry.name)}`", formats.count(entry.num_requests),
             formats.count(entry.num_failures), formats.rate(entry.rps(duration)),
             *(_ms(entry, q) for q in (0.5, 0.95, 0.99))] for entry in entries]
    table = _table(["Type", "Name", "Requests", "Failures", "req/s", "p50", "p95", "p99"], rows)
    return f"<details><summary>Endpoints ({len(entries)})</summary>\n\n{table}\n\n</details>"


def _ms(entry: StatsEntry, fraction: float) -> str:
    return formats.ms_unit(entry.percentile(fraction) if entry.num_requests else None)


def _number(value: float | None) -> str:
    return formats.MISSING if value is None else f"{value:g}"


def _table(headers: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Text that stays in its table cell: a pipe would end it and a line break the row."""
    return " ".join(text.split()).replace("|", "\\|")


def write_summary_md(path: str | os.PathLike[str], stats: StatsRegistry, duration: float,
                     run: RunDescription) -> Path:
    """``--summary-md``: the file whole or not at all (``perf.reports.files``)."""
    return write_atomic(path, summary_markdown(stats, duration, run))


def append_step_summary(path: str | os.PathLike[str], text: str) -> None:
    """GitHub's job summary: appended to, as every step of the job may add its own (GitHub's runner makes the
    file). A blank line first keeps this summary apart from what an earlier step wrote."""
    with open(path, "a", encoding="utf-8") as out:
        if out.tell():
            out.write("\n")
        out.write(text)
