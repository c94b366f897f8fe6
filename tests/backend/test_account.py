"""The caller's account, registration and email verification over HTTP (docs/api.md, "Accounts and tokens").

Registration and login each cost the server a PBKDF2 hash, so one registration is shared by the
tests that only read its outcome. Verification tokens for other tests are minted with the
server's own code and key.
"""

import email
import email.policy
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import jwt
import pytest
import requests
from django.conf import settings

from backend.models import BlacklistedToken, OutstandingToken, User
from backend.tokens import make_pair, make_verification_token
from tests.factories import PASSWORD, access_token, make_user
from tests.liveserver import ROOT

STRONG_PASSWORD = "Quiet-Lantern-47!"
USER_FIELDS = {
    "id", "email", "email_verified", "is_active", "first_name", "last_name", "preferred_name", "pronouns",
    "display_name", "bio", "language", "totp_active", "referral_code", "profile_picture_url",
    "profile_picture_thumbnail_url", "profile_picture_preview_url",
}


def new_email() -> str:
    return f"reg-{uuid.uuid4().hex[:12]}@example.com"


def registration(address: str, **overrides) -> dict:
    body = {
        "email": address,
        "password1": STRONG_PASSWORD,
        "password2": STRONG_PASSWORD,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "accept_toc_and_privacy": True,
    }
    body.update(overrides)
    return body


def mail_files(mail_dir: Path) -> list[Path]:
    """The server's mail files. django-environ reads ``filemail:///abs/path`` as the relative path
    ``abs/path`` (from the server's working directory, the project root), so look there too."""
    relative = ROOT / mail_dir.relative_to(mail_dir.anchor)
    return sorted(path for folder in (mail_dir, relative) for path in folder.glob("*"))


def messages_to(mail_dir: Path, address: str, timeout: float = 3.0) -> list[EmailMessage]:
    """Every message the server's file backend wrote for ``address`` (several files, several messages each)."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for path in mail_files(mail_dir):
            for chunk in path.read_bytes().split(b"-" * 79):
                if chunk.strip():
                    message = email.message_from_bytes(chunk.strip() + b"\n", policy=email.policy.default)
                    if address in str(message.get("To", "")):
                        found.append(message)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def body_of(message: EmailMessage, subtype: str) -> str:
    return message.get_body(preferencelist=(subtype,)).get_content()


def expired_verification_token(user: User) -> str:
    claims = {
        "user_id": str(user.id), "email": user.email, "jti": str(uuid.uuid4()), "aud": settings.JWT_AUDIENCE,
        "type": "email_verification", "exp": int((datetime.now(UTC) - timedelta(minutes=1)).timestamp()),
    }
    return jwt.encode(claims, settings.SECRET_KEY, algorithm="HS256")


@pytest.fixture(scope="module")
def registered(api):
    """One real registration with a mixed-case address: (the address as sent, the response)."""
    address = f"Reg-{uuid.uuid4().hex[:12]}@Example.com"
    return address, api.post("/account/register", json=registration(address))


@pytest.fixture
def unverified(orm) -> User:
    return make_user(email_verified=False)


# --- /account/me -------------------------------------------------------------------------------------


def test_me_returns_the_callers_user_object(api, orm):
    user = make_user(first_name="Grace", last_name="Hopper")

    response = api.get("/account/me", token=access_token(user))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == USER_FIELDS
    assert body["id"] == str(user.id)
    assert body["email"] == user.email
    assert body["display_name"] == "Grace Hopper"


def test_me_without_a_token_is_401(api):
    response = api.get("/account/me")

    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}


def test_me_with_a_garbage_token_is_401(api):
    response = api.get("/account/me", token="garbage")

    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


# --- registration ------------------------------------------------------------------------------------


def test_register_answers_201_with_an_unverified_active_user(registered):
    address, response = registered

    assert response.status_code == 201
    body = response.json()
    assert set(body) == USER_FIELDS
    assert body["email"] == address.lower()
    assert body["email_verified"] is False
    assert body["is_active"] is True
    assert (body["first_name"], body["last_name"]) == ("Ada", "Lovelace")


def test_register_stores_the_lowercased_email_as_username(registered, orm):
    address, response = registered

    user = User.objects.get(pk=response.json()["id"])

    assert user.username == user.email == address.lower()
    assert user.check_password(STRONG_PASSWORD)


def test_register_returns_the_verification_token_in_a_test_header(registered):
    _, response = registered
    claims = jwt.decode(
        response.headers["X-Test-Verification-Token"], settings.SECRET_KEY, algorithms=["HS256"],
        audience=settings.JWT_AUDIENCE,
    )

    assert claims["type"] == "email_verification"
    assert claims["user_id"] == response.json()["id"]


def test_register_emails_the_verification_link(registered, mail_dir):
    address, response = registered
    token = response.headers["X-Test-Verification-Token"]
    link = f"{settings.FRONTEND_BASE_URL}/login/confirm-email?token={token}"

    [message] = messages_to(mail_dir, address.lower())

    assert message["Subject"] == "Verify your email"
    assert link in body_of(message, "plain")
    assert link in body_of(message, "html")


def test_register_with_a_registered_email_is_400(api, orm):
    existing = make_user()

    response = api.post("/account/register", json=registration(existing.email))

    assert response.status_code == 400
    assert response.json() == {"detail": "A user with this email already exists."}
    assert "X-Test-Verification-Token" not in response.headers


def test_register_detects_duplicates_case_insensitively(api, orm):
    existing = make_user()

    response = api.post("/account/register", json=registration(existing.email.upper()))

    assert response.status_code == 400
    assert response.json() == {"detail": "A user with this email already exists."}


def test_register_again_while_unverified_sends_a_fresh_link(api, unverified, mail_dir):
    response = api.post("/account/register", json=registration(unverified.email))

    assert response.status_code == 400
    token = response.headers["X-Test-Verification-Token"]
    [message] = messages_to(mail_dir, unverified.email)
    assert f"?token={token}" in body_of(message, "plain")


def test_register_with_a_common_password_is_400(api):
    response = api.post("/account/register", json=registration(new_email(), password1="password123",
                                                               password2="password123"))

    assert response.status_code == 400
    assert response.json() == {"detail": "This password is too common."}


def test_register_with_a_password_like_the_email_is_400(api):
    address = new_email()
    password = address.split("@")[0]

    response = api.post("/account/register", json=registration(address, password1=password, password2=password))

    assert response.status_code == 400
    assert "too similar" in response.json()["detail"]


def test_register_with_mismatched_passwords_is_422(api):
    response = api.post("/account/register", json=registration(new_email(), password2="Other-Lantern-48!"))

    assert response.status_code == 422
    assert [error["msg"] for error in response.json()["detail"]] == ["Value error, Passwords do not match"]


def test_register_without_accepting_the_terms_is_422(api):
    body = registration(new_email())
    del body["accept_toc_and_privacy"]

    response = api.post("/account/register", json=body)

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["type"] == "missing"
    assert error["loc"][-1] == "accept_toc_and_privacy"


def test_register_refusing_the_terms_is_422(api):
    response = api.post("/account/register", json=registration(new_email(), accept_toc_and_privacy=False))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "accept_toc_and_privacy"


def test_register_with_a_short_password_is_422(api):
    response = api.post("/account/register", json=registration(new_email(), password1="Ab1!", password2="Ab1!"))

    assert response.status_code == 422
    assert {error["type"] for error in response.json()["detail"]} == {"string_too_short"}


def test_register_with_an_invalid_email_is_422(api):
    response = api.post("/account/register", json=registration("not-an-email"))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "email"


def test_concurrent_registrations_of_one_email_create_one_user(api, orm):
    address = new_email()

    def post(_: int) -> requests.Response:
        return requests.post(f"{api.base_url}/account/register", json=registration(address), timeout=60)

    with ThreadPoolExecutor(max_workers=3) as pool:
        statuses = sorted(response.status_code for response in pool.map(post, range(3)))

    assert statuses == [201, 400, 400]
    assert User.objects.filter(email=address).count() == 1


# --- verification ------------------------------------------------------------------------------------


def test_register_verify_then_login_with_the_new_password(api, orm):
    address = new_email()
    token = api.post("/account/register", json=registration(address)).headers["X-Test-Verification-Token"]

    verified = api.post("/account/verify", json={"token": token})

    assert verified.status_code == 200
    assert verified.json()["user"]["email_verified"] is True
    assert User.objects.get(email=address).email_verified is True
    login = api.post("/auth/token/pair", json={"username": address, "password": STRONG_PASSWORD})
    assert login.status_code == 200


def test_verify_answers_the_user_and_a_usable_token_pair(api, unverified):
    response = api.post("/account/verify", json={"token": make_verification_token(unverified.id, unverified.email)})

    assert response.status_code == 200
    body = response.json()
    assert body["user"]["id"] == str(unverified.id)
    assert body["token"]["username"] == unverified.username
    assert set(body["token"]) == {"username", "access", "refresh"}
    assert api.get("/account/me", token=body["token"]["access"]).json()["email_verified"] is True


def test_verify_records_last_login_and_the_outstanding_refresh_token(api, unverified):
    response = api.post("/account/verify", json={"token": make_verification_token(unverified.id, unverified.email)})

    refresh_jti = jwt.decode(response.json()["token"]["refresh"], options={"verify_signature": False})["jti"]
    unverified.refresh_from_db()
    assert unverified.last_login is not None
    assert OutstandingToken.objects.filter(jti=refresh_jti, user=unverified).exists()


def test_verify_reactivates_a_deactivated_account(api, orm):
    user = make_user(email_verified=False, is_active=False)

    response = api.post("/account/verify", json={"token": make_verification_token(user.id, user.email)})

    assert response.status_code == 200
    user.refresh_from_db()
    assert user.is_active and user.email_verified


def test_a_used_verification_token_is_401(api, unverified):
    token = make_verification_token(unverified.id, unverified.email)
    assert api.post("/account/verify", json={"token": token}).status_code == 200

    response = api.post("/account/verify", json={"token": token})

    assert response.status_code == 401
    assert response.json() == {"detail": "Token is blacklisted."}


def test_verify_puts_the_token_on_the_blacklist(api, unverified):
    token = make_verification_token(unverified.id, unverified.email)

    api.post("/account/verify", json={"token": token})

    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert BlacklistedToken.objects.filter(jti=jti).exists()


def test_verify_with_a_malformed_token_is_400(api):
    response = api.post("/account/verify", json={"token": "not-a-token"})

    assert response.status_code == 400
    assert response.json()["detail"].startswith("Invalid token: ")


def test_verify_with_an_access_token_is_400(api, unverified):
    response = api.post("/account/verify", json={"token": make_pair(unverified.id).access})

    assert response.status_code == 400
    assert response.json()["detail"].startswith("Invalid token: ")


def test_verify_with_an_expired_token_is_400(api, unverified):
    response = api.post("/account/verify", json={"token": expired_verification_token(unverified)})

    assert response.status_code == 400
    assert response.json() == {"detail": "Token has expired."}


def test_verify_for_a_deleted_user_is_400(api, orm):
    user = make_user(email_verified=False)
    token = make_verification_token(user.id, user.email)
    user.delete()

    response = api.post("/account/verify", json={"token": token})

    assert response.status_code == 400


def test_verify_without_a_token_is_422(api):
    assert api.post("/account/verify", json={}).status_code == 422


def test_concurrent_verifications_of_one_token_succeed_once(api, unverified):
    token = make_verification_token(unverified.id, unverified.email)

    def post(_: int) -> requests.Response:
        return requests.post(f"{api.base_url}/account/verify", json={"token": token}, timeout=60)

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(response.status_code for response in pool.map(post, range(4)))

    assert statuses == [200, 401, 401, 401]


def test_login_does_not_require_a_verified_email(api, unverified):
    response = api.post("/auth/token/pair", json={"username": unverified.username, "password": PASSWORD})

    assert response.status_code == 200
