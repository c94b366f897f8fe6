"""The exit codes of ``run_perf`` and ``perf_compare``, in one place so that CI scripts can rely on them.

When several apply to one run, the first of these wins (``perf.cli.run._exit_code``): AUDIT, THRESHOLD, FAILURES
for a run cut short by a failed shard, REGRESSION, then FAILURES (or ``--exit-code-on-error``) for failed
requests. A run stopped by a signal exits as
a shell reports a process killed by it (128 + the signal's number), whatever else it found: a CI
job must never read an interrupted run as a pass. A signal that comes after the load has ended
interrupts nothing, and the run keeps the code it earned, unless a second one cut its ending short
(``perf.cli.stop_signals``).

A capacity search (``run_perf --find-capacity``) exits OK when it found a capacity (or reached its ceiling with every
step passing), THRESHOLD when even its first step failed, and GENERATOR_LIMIT when the generator limited itself.
"""

OK = 0
FAILURES = 1  # some request failed (run_perf --exit-code-on-error N changes it)
USAGE = 2  # bad input: one line naming the fix, nothing was run
THRESHOLD = 3  # a --threshold was breached
REGRESSION = 4  # --fail-on-regression found a regression
AUDIT = 5  # the data-integrity audit found a broken invariant
NOT_STORED = 6  # the database refused the run's final save: its summary went to a file instead
GENERATOR_LIMIT = 7  # run_perf --find-capacity: the generator, not the server, was the limit; no capacity is reported


def for_signal(signum: int) -> int:
    """128 + N, as shells report a process ended by signal N: 129 for SIGHUP, 130 for SIGINT, 143 for SIGTERM."""
    return 128 + signum
