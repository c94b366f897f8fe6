"""What a run writes and prints while it goes, once a second: Locust's CSV files (``--csv``) and the
request statistics table (``--print-stats N``).

The runner's base class makes a stats-history point about once a second and at every tick
(``Runner.second_clock``, ``Runner.report_tick``) and calls ``on_second`` with it; ``LiveOutput.second``
is that hook. As Locust does, the history file gets rows appended (``tail -f`` follows it) and the three
others are rewritten, each through a scratch file renamed over it, so a reader never sees half a file.
It all happens on the event loop: the files are small and each second costs well under a millisecond.

A write that fails mid-run is one line (said once until writes work again) and the run goes on; the
final write, after the run, fails as any output file does (``perf.cli.run``).
"""

import os
import time
from collections.abc import Callable
from pathlib import Path

from perf.load.history import HistoryPoint
from perf.load.stats import StatsEntry, StatsRegistry
from perf.options import escaped
from perf.reports import console, locust_csv
from perf.reports.windows import CurrentWindows


class LiveCsv:
    """``--csv PREFIX``'s four files, kept up to date while the run goes."""

    def __init__(self, prefix: str, stats: StatsRegistry, full_history: bool = False,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.prefix = prefix
        self.stats = stats
        self.full_history = full_history
        self.on_error = on_error
        self._pid = os.getpid()  # a forked worker inherits this object: only its owner writes
        self._history_started = False
        self._failing = False

    def _path(self, suffix: str) -> Path:
        return Path(os.fspath(self.prefix) + suffix)

    def begin(self, start_time: float | None = None) -> None:
        """The files as Locust has them at the start: headers, the history's start row (stamped ``start_time``,
        the stored run's start when there is one, so that its download has the same row), an empty
        Aggregated row."""
        start = time.time() if start_time is None else start_time
        self._attempt(lambda: self._start_history(start), lambda: self._rewrite(0.0))

    def second(self, point: HistoryPoint, windows: CurrentWindows | None = None) -> None:
        """Append the point's history row(s) (a row per endpoint too with ``full_history``; ``windows`` then
        gives the current figures) and rewrite the other three files as of now."""
        if os.getpid() != self._pid:
            return
        stats = self.stats
        if self.full_history and windows is not None:
            rows = locust_csv.full_history_rows(stats, point, windows)
        else:
            rows = [locust_csv.history_point_row(point)]
        self._attempt(lambda: self._append_history(rows, point.timestamp),
                      lambda: self._rewrite(max(point.timestamp - stats.start_time, 0.0)))

    def finish(self, duration: float) -> list[Path]:
        """The final figures over the run's ``duration``; raises OSError as any output file would.

        The history already ends with the final tick's row; it is written whole from the samples only if
        it could never be started while the run went.
        """
        self._rewrite(duration)
        if not self._history_started:
            locust_csv.write_csv_file(self._path(locust_csv.HISTORY_SUFFIX), locust_csv.STATS_HISTORY_CSV_HEADER,
                                  locust_csv.history_csv_rows(self.stats))
        return [self._path(suffix) for suffix in locust_csv.CSV_SUFFIXES]

    def _start_history(self, start_time: float) -> None:
        locust_csv.csv_folder(self.prefix)
        locust_csv.write_csv_file(self._path(locust_csv.HISTORY_SUFFIX), locust_csv.STATS_HISTORY_CSV_HEADER,
                              [locust_csv.history_start_row(start_time)])
        self._history_started = True

    def _append_history(self, rows: list[locust_csv.CsvRow], now: float) -> None:
        """Opened, appended and closed each second: the rows are on disk at once for ``tail -f``."""
        if not self._history_started:
            self._start_history(now)
        locust_csv.write_csv_file(self._path(locust_csv.HISTORY_SUFFIX), locust_csv.STATS_HISTORY_CSV_HEADER, rows,
                                  mode="a")

    def _rewrite(self, duration: float) -> None:
        locust_csv.csv_folder(self.prefix)
        for suffix, (header, rows) in locust_csv.rewritten_csv_files(self.stats, duration).items():
            locust_csv.write_csv_file(self._path(suffix), header, rows)

    def _attempt(self, *writes: Callable[[], None]) -> None:
        """One second's writes, each on its own; a spell of failing seconds is said once, when it begins,
        and every next second tries again."""
        error: OSError | None = None
        for write in writes:
            try:
                write()
            except OSError as exc:
                error = error or exc
        if error is not None and not self._failing and self.on_error is not None:
            self.on_error(f"could not write --csv {escaped(str(self.prefix))}: {error.strerror or error}; "
                          "the run goes on and the files are tried again every second")
        self._failing = error is not None


class LiveOutput:
    """The ``Runner.on_second`` hook of one run: the live CSV files and the periodic console table."""

    def __init__(self, stats: StatsRegistry, csv: LiveCsv | None = None, print_every: float | None = None,
                 say: Callable[[str], None] | None = None) -> None:
        self.stats = stats
        self.csv = csv
        self.print_every = print_every
        self.say = say
        full_history = csv is not None and csv.full_history
        # Per-endpoint current rates (and, for the full history, current percentiles), only when shown.
        self.windows = CurrentWindows(percentiles=full_history) if full_history or print_every else None
        self._printed_at: float | None = None

    def begin(self, start_time: float | None = None) -> None:
        if self.csv is not None:
            self.csv.begin(start_time)

    def finish_csv(self, duration: float) -> list[Path]:
        """The CSV files' final write (``LiveCsv.finish``); OSError when they cannot be written."""
        assert self.csv is not None, "no --csv"
        return self.csv.finish(duration)

    def second(self, point: HistoryPoint) -> None:
        if self.windows is not None:
            self.windows.observe(self.stats, point.timestamp)
        if self.csv is not None:
            self.csv.second(point, self.windows)
        if self.print_every and self.say is not None and self.windows is not None:
            self._maybe_print(point)

    def _maybe_print(self, point: HistoryPoint) -> None:
        """Locust's table every ``print_every`` seconds (give or take the second the points come at)."""
        stats, windows = self.stats, self.windows
        assert self.print_every is not None and windows is not None and self.say is not None
        since = self._printed_at if self._printed_at is not None else stats.start_time
        if point.timestamp - since < self.print_every - 0.5:
            return
        self._printed_at = point.timestamp

        def current(entry: StatsEntry) -> tuple[float, float]:
            return windows.rates(entry, aggregated=entry is stats.total)

        self.say(console.stats_table(stats, point.timestamp - stats.start_time, current) + "\n")
