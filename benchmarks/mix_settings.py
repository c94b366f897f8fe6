"""Settings of the benchmarks' scratch backends only (``benchmarks/mix.py``, ``benchmarks/soak.py``): the
project's settings with a fast password hasher.

Every login and registration of the scenario mix hashes a password; at Django's default PBKDF2 cost that is
~0.3 s of server CPU each, and a target that spends its time hashing cannot keep up with the generator being
measured. MD5 makes a login as cheap as any other request. The database is the benchmark's own scratch SQLite
file (DATABASE_URL, set by the benchmark), seeded with ``bootstrap_perf_tests`` under these same settings so that the
seeded hashes are MD5 too. Never use this module for anything but these benchmarks.
"""

from settings_perf import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
