"""The liveness probe, and the JSON error bodies every route shares."""


def test_healthcheck_answers_ok_over_http(api):
    response = api.get("/healthcheck")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_unknown_route_is_a_json_404(api):
    response = api.get("/no-such-route")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_wrong_method_is_a_json_405(api):
    response = api.post("/healthcheck")

    assert response.status_code == 405
    assert "detail" in response.json()
