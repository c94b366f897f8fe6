"""Every file ``run_perf`` writes whole (``--json``, ``--html``, the ``--csv`` files, the summary kept when
the database refuses the run) goes through ``write_atomic``: written beside its target under a scratch
name, flushed to disk, then renamed over it.

A disk that fills up, a quota, or a process killed mid-write would otherwise leave a truncated file
(invalid JSON, an empty HTML report) where a reader expects a whole one, and destroy the good file a
previous run left at that path. A rename within one folder is atomic: a reader sees the old file or
the new one, never half of either; a write that fails removes its scratch file and leaves the old
file as it was.
"""

import os
import tempfile
import time
from pathlib import Path
from typing import IO

# The process's umask, read once while only one thread runs (reading it means setting it).
_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomic(path: str | os.PathLike[str], content: str | bytes, newline: str | None = None) -> Path:
    """Write ``content`` (text as UTF-8) to ``path``, creating its folders; all of it or nothing.

    ``newline`` is as for ``open``: ``""`` keeps the text's own line ends (the CSV files' ``\\r\\n``).
    A file that already exists keeps its permissions.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        if isinstance(content, bytes):
            with os.fdopen(handle, "wb") as out:
                out.write(content)
                _sync(out)
        else:
            with os.fdopen(handle, "w", encoding="utf-8", newline=newline) as out:
                out.write(content)
                _sync(out)
        os.chmod(scratch, _mode_for(target))
        os.replace(scratch, target)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
    return target


def _sync(out: IO) -> None:
    """Data on disk before the rename, so that a crash right after it cannot leave an empty file."""
    out.flush()
    os.fsync(out.fileno())


def _mode_for(target: Path) -> int:
    """The old file's permissions, or what ``open`` would give a new one (mkstemp's are 0600)."""
    try:
        return target.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0o666 & ~_UMASK


def unsaved_summary_path(run_id: int | None) -> Path:
    """A new file of its own for the summary of a run the database refused, when no ``--json`` path was
    given: made here (empty, 0600) so that two runs refused in the same second never share one, even runs
    against two databases whose run ids agree."""
    prefix = f"perfkit-run-{run_id if run_id is not None else 'new'}-unsaved-{time.strftime('%Y%m%d-%H%M%S')}-"
    handle, name = tempfile.mkstemp(prefix=prefix, suffix=".json")
    os.close(handle)
    return Path(name)
