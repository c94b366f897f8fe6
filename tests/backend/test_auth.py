"""Login and refresh over HTTP (docs/api.md, "Accounts and tokens").

Each login costs the server a PBKDF2 hash, so the successful login is made once per module and
several tests read it; refresh tests mint their refresh tokens with the server's own code.
"""

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import requests
from django.conf import settings

from backend.models import BlacklistedToken, OutstandingToken
from backend.tokens import make_pair
from tests.factories import PASSWORD, make_user

NO_ACCOUNT = {"detail": "No active account found with the given credentials", "code": "authentication_failed"}
INVALID = {"detail": "Token is invalid or expired", "code": "token_not_valid"}
BLACKLISTED = {"detail": "Token is blacklisted", "code": "token_not_valid"}


def claims_of(token: str) -> dict:
    return jwt.decode(token, settings.SECRET_KEY, algorithms=["HS256"], audience=settings.JWT_AUDIENCE)


@pytest.fixture(scope="module")
def login(api, django_db_setup, django_db_blocker):
    """One real login: (the user, the response)."""
    with django_db_blocker.unblock():
        user = make_user()
    response = api.post("/auth/token/pair", json={"username": user.username, "password": PASSWORD})
    return user, response


@pytest.fixture
def user(orm):
    return make_user()


# --- login -------------------------------------------------------------------------------------------


def test_login_answers_username_and_a_token_pair(login):
    user, response = login

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"username", "access", "refresh"}
    assert body["username"] == user.username


def test_login_tokens_carry_the_platform_claims(login):
    user, response = login
    access, refresh = claims_of(response.json()["access"]), claims_of(response.json()["refresh"])

    assert access["token_type"] == "access"
    assert refresh["token_type"] == "refresh"
    for claims in (access, refresh):
        assert claims["user_id"] == str(user.id)
        assert claims["aud"] == "letsrevel.io"
        assert len(claims["jti"]) == 32 and int(claims["jti"], 16) >= 0
    assert access["jti"] != refresh["jti"]
    assert access["iat"] == refresh["iat"]
    assert access["exp"] - access["iat"] == 3600
    assert refresh["exp"] - refresh["iat"] == 30 * 24 * 3600


def test_login_records_the_refresh_token_as_outstanding(login, orm):
    user, response = login
    jti = claims_of(response.json()["refresh"])["jti"]

    assert OutstandingToken.objects.filter(jti=jti, user=user).exists()


def test_login_with_a_wrong_password_is_401(api, user):
    response = api.post("/auth/token/pair", json={"username": user.username, "password": "Wrong-password-1"})

    assert response.status_code == 401
    assert response.json() == NO_ACCOUNT


def test_login_of_an_unknown_user_is_401(api):
    response = api.post("/auth/token/pair", json={"username": f"{uuid.uuid4().hex}@example.com", "password": PASSWORD})

    assert response.status_code == 401
    assert response.json() == NO_ACCOUNT


def test_login_of_an_inactive_user_is_401(api, orm):
    inactive = make_user(is_active=False)

    response = api.post("/auth/token/pair", json={"username": inactive.username, "password": PASSWORD})

    assert response.status_code == 401
    assert response.json() == NO_ACCOUNT


@pytest.mark.parametrize(
    "body",
    [{}, {"username": "someone@example.com"}, {"password": PASSWORD}, {"username": "", "password": PASSWORD}],
    ids=["nothing", "no-password", "no-username", "empty-username"],
)
def test_login_without_username_or_password_is_400(api, body):
    response = api.post("/auth/token/pair", json=body)

    assert response.status_code == 400


# --- refresh -----------------------------------------------------------------------------------------


def test_refresh_returns_a_new_pair_for_the_same_user(api, user):
    old = make_pair(user.id).refresh

    response = api.post("/auth/refresh", json={"refresh": old})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert body["refresh"] != old
    assert claims_of(body["access"])["token_type"] == "access"
    new_refresh = claims_of(body["refresh"])
    assert new_refresh["token_type"] == "refresh"
    assert new_refresh["user_id"] == str(user.id)
    assert new_refresh["jti"] != claims_of(old)["jti"]


def test_refresh_blacklists_the_presented_token(api, user):
    old = make_pair(user.id).refresh

    assert api.post("/auth/refresh", json={"refresh": old}).status_code == 200

    assert BlacklistedToken.objects.filter(jti=claims_of(old)["jti"]).exists()


def test_a_rotated_refresh_token_is_401_blacklisted(api, user):
    old = make_pair(user.id).refresh
    assert api.post("/auth/refresh", json={"refresh": old}).status_code == 200

    response = api.post("/auth/refresh", json={"refresh": old})

    assert response.status_code == 401
    assert response.json() == BLACKLISTED


def test_the_new_refresh_token_works_after_rotation(api, user):
    first = api.post("/auth/refresh", json={"refresh": make_pair(user.id).refresh}).json()

    response = api.post("/auth/refresh", json={"refresh": first["refresh"]})

    assert response.status_code == 200


def test_token_refresh_alias_serves_the_same_rotation(api, user):
    old = make_pair(user.id).refresh

    assert api.post("/auth/token/refresh", json={"refresh": old}).status_code == 200
    assert api.post("/auth/refresh", json={"refresh": old}).json() == BLACKLISTED


def test_an_access_token_presented_to_refresh_is_401(api, user):
    response = api.post("/auth/refresh", json={"refresh": make_pair(user.id).access})

    assert response.status_code == 401
    assert response.json() == INVALID


def test_a_garbage_refresh_token_is_401(api):
    response = api.post("/auth/refresh", json={"refresh": "not.a.jwt"})

    assert response.status_code == 401
    assert response.json() == INVALID


def test_an_expired_refresh_token_is_401(api, user):
    past = datetime.now(UTC) - timedelta(minutes=5)
    claims = {
        "token_type": "refresh", "user_id": str(user.id), "jti": uuid.uuid4().hex, "aud": settings.JWT_AUDIENCE,
        "iat": int((past - timedelta(days=30)).timestamp()), "exp": int(past.timestamp()),
    }
    expired = jwt.encode(claims, settings.SECRET_KEY, algorithm="HS256")

    response = api.post("/auth/refresh", json={"refresh": expired})

    assert response.status_code == 401
    assert response.json() == INVALID


def test_refresh_without_a_token_is_400(api):
    assert api.post("/auth/refresh", json={}).status_code == 400


def test_concurrent_refreshes_of_one_token_rotate_it_once(api, user):
    token = make_pair(user.id).refresh

    def post(_: int) -> requests.Response:
        # A session per request: requests.Session is not meant to be shared between threads.
        return requests.post(f"{api.base_url}/auth/refresh", json={"refresh": token}, timeout=60)

    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(post, range(4)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 401, 401, 401]
    assert all(r.json() == BLACKLISTED for r in responses if r.status_code == 401)
