"""The Django admin over real HTTP, as a browser without JavaScript uses it: a login, CSRF-protected POSTs."""

import requests


class AdminClient:
    """A logged-in (or anonymous) session on a live server's admin; ``root`` is ``http://host:port``."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.session = requests.Session()
        self.username = ""

    def login(self, username: str, password: str) -> "AdminClient":
        self.session.get(f"{self.root}/admin/login/", timeout=30).raise_for_status()
        response = self.post("/admin/login/?next=/admin/", {"username": username, "password": password})
        assert response.url.rstrip("/").endswith("/admin"), f"login as {username} failed: {response.url}"
        self.username = username
        return self

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return self.session.get(f"{self.root}{path}", timeout=30, **kwargs)

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: object) -> requests.Response:
        """A form POST with the CSRF token from the session's cookie, as the admin's forms send it."""
        token = self.session.cookies.get("csrftoken", "")
        return self.session.post(f"{self.root}{path}", data={"csrfmiddlewaretoken": token, **(data or {})},
                                 headers={"Referer": f"{self.root}{path}"}, timeout=30, **kwargs)


def staff_client(root: str, *codenames: str) -> AdminClient:
    """A staff user of its own, logged in, holding only the ``perf`` permissions ``codenames``."""
    from django.contrib.auth.models import Permission

    from tests.factories import PASSWORD, make_user

    user = make_user(is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="perf"))
    return AdminClient(root).login(user.username, PASSWORD)
