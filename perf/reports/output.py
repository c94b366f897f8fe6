"""What a run writes its console lines to: one type for a command's stdout and stderr, a file, a StringIO.

``run_perf`` hands the run a ``LossyOutput`` (perf/management/base.py) around Django's ``OutputWrapper``;
tests and the admin's launcher hand it a ``StringIO`` or a log file. They share no base class, and the run
needs only these three methods, so this is a Protocol: any of them fits without being wrapped.
"""

from typing import Protocol


class Output(Protocol):
    def write(self, text: str, /) -> object: ...

    def flush(self) -> None: ...

    def isatty(self) -> bool: ...
