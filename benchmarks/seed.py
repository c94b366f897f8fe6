"""How long seeding 10,000 users takes, beside what per-user ``set_password`` would cost.

Usage: ``.venv/bin/python benchmarks/seed.py [--users N]``. A fresh SQLite file in a temporary
folder is migrated by a child process, then this process seeds it with platform_pack/seed.py. The naive
figure times three password hashes at Django's default cost and multiplies by the user count:
hashing alone, before a single row is written, which is why the seed hashes once.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(function, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    num_users = parser.parse_args().users

    with tempfile.TemporaryDirectory() as folder:
        # Set before Django is imported: settings_perf reads DATABASE_URL once.
        os.environ["DATABASE_URL"] = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
        os.environ["DJANGO_SETTINGS_MODULE"] = "settings_perf"
        subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "--no-input", "-v0"], cwd=ROOT, check=True)

        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.contrib.auth.hashers import make_password

        from platform_pack.seed import reset, seed

        options = {"num_users": num_users, "password": "password123"}
        fresh, _ = timed(seed, **options)
        again, _ = timed(seed, **options)
        start = time.perf_counter()
        reset()
        seed(**options)
        reset_and_seed = time.perf_counter() - start

        hashes = [timed(make_password, f"password-{i}")[0] for i in range(3)]
        per_hash = sum(hashes) / len(hashes)
        naive = per_hash * num_users

    print(f"users: {num_users:,} (+ admin and staff), SQLite, Django {django.get_version()}")
    print(f"seed, fresh database:        {fresh:8.2f} s")
    print(f"seed again (idempotent):     {again:8.2f} s")
    print(f"--reset then seed:           {reset_and_seed:8.2f} s")
    print(f"one password hash:           {per_hash:8.3f} s (mean of 3)")
    print(f"naive set_password per user: {naive:8.0f} s (hashing only, extrapolated)")
    print(f"ratio naive / seed:          {naive / fresh:8.0f}x")


if __name__ == "__main__":
    main()
