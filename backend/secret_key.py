"""SECRET_KEY for an install whose environment gives none: made once, kept in a file, shared by every process.

A key written in the code is public, and with it anyone can sign a JWT (HS256 over SECRET_KEY) for any user
or forge an admin session cookie. So each install makes its own random key the first time a process needs one
and keeps it in a file only its owner can read (mode 0600). Gunicorn workers, run_perf's worker processes,
Celery workers and the tests' child processes all read that one file, so a token one of them signs is valid in
all the others. The file name is in .gitignore: the key never leaves the machine.
"""

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

# secrets.token_urlsafe(50): 50 random bytes, 67 characters, well above Django's 50-character minimum.
KEY_BYTES = 50


def read_or_create(path: Path) -> str:
    """The key stored in ``path``; the file is made first when it does not exist yet."""
    if not path.exists():
        try:
            _create(path)
        except OSError as exc:
            raise ImproperlyConfigured(
                f"cannot create the secret key file {path} ({exc}): set SECRET_KEY, "
                f"or SECRET_KEY_FILE to a file in a writable folder"
            ) from exc
    key = path.read_text().strip()
    if not key:
        raise ImproperlyConfigured(f"the secret key file {path} is empty: delete it to have a new key made")
    return key


def _create(path: Path) -> None:
    """Write a new key to a private temporary file beside ``path``, then hard-link it into place.

    The link is atomic and fails when ``path`` exists, so of processes starting at once exactly one key wins
    and every process reads that one; nobody ever sees a half-written file.
    """
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(KEY_BYTES) + "\n")
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs is the key
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
