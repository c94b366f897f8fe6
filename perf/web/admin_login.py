"""The demo's way into the Django admin: one superuser whose password nobody else knows.

Seeded accounts share a public password (the scenarios log in with it), so none of them may open the admin:
a seed that made one a superuser would leave a backdoor on every server it ever ran on, and seeding again
would reopen it. Instead the first seed on a database without a superuser makes ``perfkit-admin`` with a
random password, prints it once and keeps it in a file only its owner can read (``PERF_ADMIN_PASSWORD_FILE``,
git-ignored, as ``.secret_key`` is). Later seeds never touch it; a team with its own superuser
(``createsuperuser``) gets none.
"""

import os
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from perf.conf import perf_settings

USERNAME = "perfkit-admin"
EMAIL = "perfkit-admin@localhost"
# secrets.token_urlsafe(12): 96 random bits in 16 characters, short enough to type.
PASSWORD_BYTES = 12


def password_file() -> Path:
    """Where the demo login's password is kept (``PERF_ADMIN_PASSWORD_FILE``, else ``.admin_password``)."""
    return perf_settings.PERF_ADMIN_PASSWORD_FILE


def ensure_admin_login() -> str:
    """One line saying how to log into the admin, making the demo login first when the database has no
    superuser at all. The password appears in that line only when it was made just now."""
    users = get_user_model()
    path = password_file()
    if users.objects.filter(username=USERNAME).exists():
        where = f"in {path}" if path.exists() else f"set before; change it with: manage.py changepassword {USERNAME}"
        return f"Admin login: {USERNAME}, password {where} (seeding never resets it)"
    if users.objects.filter(is_superuser=True, is_active=True).exists():
        return "Admin login: your own superuser (seeding makes none while one exists)"
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    with transaction.atomic():  # a password that cannot be kept leaves no account behind
        users.objects.create_superuser(username=USERNAME, email=EMAIL, password=password)
        _write_private(path, password)
    return f"Admin login made: {USERNAME}, password {password} (shown once; kept in {path}, readable by you only)"


def _write_private(path: Path, password: str) -> None:
    """The password in a file readable by its owner only (0600), never world-readable, not even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # O_CREAT's mode does not apply to a file that was already there: made private before a byte is written.
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(password + "\n")
