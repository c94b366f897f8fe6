"""The registration scenario's passwords pass the backend's own validators, every time: a refused one
would be a failure the backend did not cause (a hex password looked like the hex email about 1 in 2,850)."""

import random
import uuid

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from backend.models import User
from platform_pack.scenarios.auth import registration_password
from platform_pack.seeded import REGISTRATION_EMAIL_DOMAIN, REGISTRATION_EMAIL_PREFIX


def test_ten_thousand_registration_passwords_all_pass_the_validators() -> None:
    rng = random.Random(7)
    refused = []
    for _ in range(10_000):
        email = f"{REGISTRATION_EMAIL_PREFIX}{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}@{REGISTRATION_EMAIL_DOMAIN}"
        password = registration_password(rng)
        try:
            validate_password(password, User(username=email, email=email))
        except ValidationError as error:
            refused.append((email, password, error.messages))
    assert refused == []
