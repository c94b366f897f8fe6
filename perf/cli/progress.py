"""Live progress during a run: one updating line on a terminal, plain lines otherwise. Its figures are written as
the run page writes them (``perf.reports.formats``): ``[1m 05s of 5m 00s] users   10 | ... | p95 41 ms``."""

from perf.load.hooks import Tick
from perf.reports import formats
from perf.reports.output import Output


class ProgressPrinter:
    def __init__(self, out: Output, duration: float, is_tty: bool | None = None) -> None:
        self.out = out
        self.duration = duration
        self.is_tty = out.isatty() if is_tty is None else is_tty
        self._line_open = False

    def format(self, tick: Tick) -> str:
        sample = tick.sample
        total = sample.total_requests
        percent = 100.0 * sample.total_failures / total if total else 0.0
        return (
            f"[{formats.duration(tick.elapsed)} of {formats.duration(self.duration)}] users {tick.users:>4} | "
            f"{sample.requests_per_second:7.1f} req/s | requests {total} | "
            f"failures {sample.total_failures} ({percent:.2f}%) | "
            f"p50 {formats.ms_unit(sample.p50)} | p95 {formats.ms_unit(sample.p95)}"
        ) + self._stage(tick)

    @staticmethod
    def _stage(tick: Tick) -> str:
        """With a load profile: the stage under way and what the profile asks for now."""
        if tick.target is None:
            return ""
        stage = f"stage {tick.stage.index + 1} → {tick.stage.target:g} | " if tick.stage is not None else ""
        return f" | {stage}target {tick.target:.1f}"

    def __call__(self, tick: Tick) -> None:
        line = self.format(tick)
        if self.is_tty:
            self.out.write("\r\x1b[2K" + line)
            self._line_open = True
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def message(self, text: str) -> None:
        """A remark (e.g. the CPU warning) that must not be overwritten by the next update."""
        self.finish()
        self.out.write(text + "\n")
        self.out.flush()

    def finish(self) -> None:
        if self._line_open:
            self.out.write("\n")
            self._line_open = False
