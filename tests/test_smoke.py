"""The app and the live server answer."""

import urllib.request


def test_health_says_the_database_is_up(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "up"}


def test_the_live_server_answers_health(live_server):
    with urllib.request.urlopen(f"{live_server.url}/health") as response:
        assert response.status == 200


class UnhashableHook:
    """A callable that cannot be a dict key."""

    __hash__ = None

    def __call__(self):
        return "called"


def test_the_app_runs_plain_and_unhashable_callables_as_flask_does(app):
    def plain():
        return "plain"

    assert app.ensure_sync(plain) is plain and app.ensure_sync(plain) is plain
    hook = UnhashableHook()
    assert app.ensure_sync(hook)() == "called"


def test_serving_class_based_views_keeps_no_state_per_request(app):
    client = app.test_client()
    client.get("/apidocs/")
    remembered = len(app._synchronous)
    for _ in range(20):
        assert client.get("/apidocs/").status_code == 200
    assert len(app._synchronous) == remembered
