"""An install's own secret key, and JSON for every API error, over HTTP.

The ``production`` server is a production install with nothing configured: DEBUG off and no SECRET_KEY in its
environment, so its key comes from a key file of its own (SECRET_KEY_FILE, in a temporary folder). Error tests
run against it and against the session's DEBUG server, since Django answers errors differently in each mode.
"""

import os
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import requests
from django.conf import settings

from tests.conftest import Api
from tests.factories import make_user
from tests.liveserver import ROOT, LiveServer, free_port, server_env

# The key settings_perf.py used to fall back to: public, so a token signed with it must never be accepted.
OLD_PUBLIC_KEY = "perfkit-insecure-dev-key-change-me-in-production"
PRINT_SETTINGS_KEY = "import settings_perf; print(settings_perf.SECRET_KEY)"
DEEP = 100_000
DEEP_BODIES = {
    "arrays": "[" * DEEP + "]" * DEEP,
    "objects": '{"a":' * DEEP + "1" + "}" * DEEP,
}


def without_secret_key(env: dict[str, str], key_file: Path) -> dict[str, str]:
    """``env`` as an install that sets no SECRET_KEY, keeping its key in ``key_file``."""
    clean = {name: value for name, value in env.items() if name != "SECRET_KEY"}
    return {**clean, "SECRET_KEY_FILE": str(key_file)}


def python(code: str, env: dict[str, str]) -> str:
    """Run ``code`` in a fresh Python process from the project root; its stripped output."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout.strip()


def access_claims(user_id: uuid.UUID) -> dict:
    """The claims of a valid access token (backend/tokens.py), for signing with a key of the test's choice."""
    now = int(time.time())
    return {"token_type": "access", "user_id": str(user_id), "jti": uuid.uuid4().hex, "iat": now,
            "exp": now + 3600, "aud": settings.JWT_AUDIENCE}


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("key") / "secret_key"


@pytest.fixture(scope="module")
def production_server(live_env: dict[str, str], key_file: Path, django_db_setup,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = without_secret_key({**live_env, "DEBUG": "False"}, key_file)
    server = LiveServer(env=env, port=free_port(), log_path=tmp_path_factory.mktemp("production") / "gunicorn.log")
    server.start(workers=2)
    yield server
    server.stop()


@pytest.fixture(params=["debug", "production"])
def any_api(request: pytest.FixtureRequest) -> Api:
    """The session's DEBUG server, then the production one."""
    if request.param == "debug":
        return request.getfixturevalue("api")
    return Api(request.getfixturevalue("production_server").url)


@pytest.fixture(scope="module", params=["True", "False"], ids=["debug", "production"])
def broken_server(request: pytest.FixtureRequest, mail_dir: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server on a database that was never migrated: every query fails, a real unhandled exception."""
    folder = tmp_path_factory.mktemp("broken")
    env = server_env(f"sqlite:///{folder / 'empty.sqlite3'}", mail_dir, DEBUG=request.param)
    server = LiveServer(env=env, port=free_port(), log_path=folder / "gunicorn.log")
    server.start(workers=1)
    yield server
    server.stop()


def assert_json_error(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"] == "application/json", response.text[:500]
    body = response.json()
    assert "detail" in body
    return body


# The secret key


def test_a_token_signed_with_the_old_public_key_is_refused(any_api: Api, orm) -> None:
    forged = jwt.encode(access_claims(make_user().id), OLD_PUBLIC_KEY, algorithm="HS256")
    response = any_api.get("/account/me", token=forged)
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_a_token_signed_with_the_install_key_is_accepted_by_every_worker(production_server: LiveServer,
                                                                          key_file: Path, orm) -> None:
    user = make_user()
    token = jwt.encode(access_claims(user.id), key_file.read_text().strip(), algorithm="HS256")
    api = Api(production_server.url)
    for _ in range(8):  # new connections, so both workers answer some
        api.session.close()
        response = api.get("/account/me", token=token)
        assert response.status_code == 200, response.text
        assert response.json()["id"] == str(user.id)


def test_the_key_file_is_private_and_kept(production_server: LiveServer, key_file: Path) -> None:
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key, inode = key_file.read_text().strip(), key_file.stat().st_ino
    assert len(key) >= 50
    assert key != OLD_PUBLIC_KEY
    another_process = python(PRINT_SETTINGS_KEY, production_server.env)
    assert another_process == key
    assert (key_file.read_text().strip(), key_file.stat().st_ino) == (key, inode)


def test_processes_starting_at_once_share_one_key(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    start_at = time.time() + 1.5  # every child imports first, then all race for the file together
    code = (f"import time; from pathlib import Path; from backend.secret_key import read_or_create; "
            f"time.sleep(max(0, {start_at} - time.time())); print(read_or_create(Path({str(path)!r})))")
    children = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
                for _ in range(12)]
    keys = {child.communicate(timeout=60)[0].strip() for child in children}
    assert [child.returncode for child in children] == [0] * len(children)
    assert keys == {path.read_text().strip()}
    assert os.listdir(tmp_path) == ["secret_key"]  # no temporary file left behind


def test_the_environment_key_wins_and_no_file_is_made(tmp_path: Path) -> None:
    key_path = tmp_path / "secret_key"
    env = {**without_secret_key(dict(os.environ), key_path), "SECRET_KEY": "from-the-environment"}
    assert python(PRINT_SETTINGS_KEY, env) == "from-the-environment"
    assert not key_path.exists()


def test_the_default_key_file_is_git_ignored() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "-q", ".secret_key"], cwd=ROOT, check=False)
    assert ignored.returncode == 0


def test_no_code_holds_the_old_public_key() -> None:
    sources = [ROOT / "settings_perf.py", *(ROOT / "backend").rglob("*.py"), *(ROOT / "perf").rglob("*.py")]
    assert [path for path in sources if OLD_PUBLIC_KEY in path.read_text()] == []


# JSON for every API error


@pytest.mark.parametrize("shape", DEEP_BODIES)
def test_a_deeply_nested_body_is_a_json_422(any_api: Api, shape: str) -> None:
    response = any_api.post("/auth/token/pair", data=DEEP_BODIES[shape])
    body = assert_json_error(response, 422)
    assert body["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize("body", ['{"email": "\\ud800", "password": "x"}', '{"email": {"\\udfff": 1}}'])
def test_a_lone_surrogate_escape_is_a_json_422(any_api: Api, body: str) -> None:
    """Issue 18: json.loads accepts "\\ud800", and the text it makes cannot be encoded: an HTML 500 before."""
    response = any_api.post("/auth/token/pair", data=body)
    assert assert_json_error(response, 422)["detail"][0]["type"] == "json_invalid"


def test_an_unknown_api_path_is_a_json_404(any_api: Api) -> None:
    assert assert_json_error(any_api.get("/no-such-route"), 404) == {"detail": "Not Found"}


def test_a_wrong_method_is_a_json_405(any_api: Api) -> None:
    assert_json_error(any_api.request("DELETE", "/healthcheck"), 405)


def test_a_body_over_the_upload_limit_is_a_json_400(any_api: Api) -> None:
    too_big = '{"username": "' + "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1) + '"}'
    assert assert_json_error(any_api.post("/auth/token/pair", data=too_big), 400) == {"detail": "Bad Request"}


def test_an_unhandled_exception_is_a_json_500_and_still_logged(broken_server: LiveServer) -> None:
    response = Api(broken_server.url).get("/events/")
    assert assert_json_error(response, 500) == {"detail": "Internal Server Error."}
    # Django logged the traceback before answering: replacing the body must not lose it.
    assert "no such table" in broken_server.log_path.read_text()


def test_pages_outside_the_api_stay_html(any_api: Api) -> None:
    root = any_api.base_url.removesuffix("/api")
    login = requests.get(f"{root}/admin/login/", timeout=30)
    assert login.status_code == 200
    assert login.headers["Content-Type"].startswith("text/html")
    missing = requests.get(f"{root}/no-such-page/", timeout=30)
    assert missing.status_code == 404
    assert missing.headers["Content-Type"].startswith("text/html")
