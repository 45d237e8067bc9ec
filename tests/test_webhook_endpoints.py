"""The webhook endpoints API: secrets, the URL rules, which changes queue deliveries, redelivery, pings."""

import base64
import re

import mysql.connector
import pytest

from db import connection_settings, dict_cursor
from models import webhook_model
from services import webhooks
from tests.conftest import card_payment, make_api_key
from tests.live import free_port

SECRET = re.compile(r"^whsec_[A-Za-z0-9+/]{43}=$")


# Each test starts and ends with no webhook endpoint, so other tests' writes queue nothing.
pytestmark = pytest.mark.usefixtures("no_webhook_endpoints")


@pytest.fixture
def make_endpoint(client):
    """Create an endpoint through the API (to a closed loopback port by default); return its JSON with the secret."""

    def make(**fields) -> dict:
        body = {"url": f"http://127.0.0.1:{free_port()}/hooks", "event_types": ["*"], **fields}
        response = client.post("/webhook-endpoints", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return make


def deliveries_of(sql, endpoint_id: int) -> list[dict]:
    """Return an endpoint's deliveries with their event types, in id order."""
    return sql(
        "SELECT webhook_deliveries.*, events.type FROM webhook_deliveries JOIN events ON events.id = event_id"
        " WHERE endpoint_id = %s ORDER BY webhook_deliveries.id",
        (endpoint_id,),
    )


def test_creating_an_endpoint_shows_its_secret_once_and_stores_it_encrypted(client, sql):
    body = {"url": "http://127.0.0.1:9/hooks", "event_types": ["payment.completed"], "description": " Orders "}
    response = client.post("/webhook-endpoints", json=body)
    assert response.status_code == 201
    created = response.get_json()
    assert response.headers["Location"] == f"/webhook-endpoints/{created['id']}"
    assert SECRET.match(created["secret"]) and len(base64.b64decode(created["secret"][6:])) == 32
    assert created["description"] == "Orders" and created["enabled"] is True
    shown = client.get(f"/webhook-endpoints/{created['id']}").get_json()
    assert shown == {name: value for name, value in created.items() if name != "secret"}
    assert client.get("/webhook-endpoints").get_json() == [shown]
    stored = sql("SELECT secret FROM webhook_endpoints WHERE id = %s", (created["id"],))[0]["secret"]
    assert created["secret"].encode() not in stored and base64.b64decode(created["secret"][6:]) not in stored


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://10.0.0.7/hooks", "internal address"),
        ("http://192.168.1.1/hooks", "internal address"),
        ("http://169.254.169.254/latest/meta-data", "internal address"),
        ("http://[::1]:8080/hooks", "internal address"),
        ("http://[::ffff:10.0.0.1]/hooks", "internal address"),
        ("http://0.0.0.0/hooks", "internal address"),
        ("http://localhost:{port}/hooks", "internal address"),  # a name that resolves to loopback
        ("https://no-such-host.invalid/hooks", "does not resolve"),
        ("ftp://example.com/hooks", "http or https"),
        ("http://user:secret@127.0.0.1/hooks", "user name or password"),
        ("http://127.0.0.1/hooks#part", "fragment"),
        ("http://127.0.0.1:99999/hooks", "well-formed"),
        ("/hooks", "http or https"),
    ],
)
def test_an_endpoint_url_that_breaks_the_rules_is_refused_and_nothing_is_stored(client, sql, url, says):
    url = url.format(port=free_port())
    response = client.post("/webhook-endpoints", json={"url": url, "event_types": ["*"]})
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert says in response.get_json()["errors"]["url"]
    assert sql("SELECT COUNT(*) AS n FROM webhook_endpoints")[0]["n"] == 0


def test_without_the_operators_leave_plain_http_and_loopback_are_refused():
    with pytest.raises(webhooks.UrlRefused, match="https"):
        webhooks.check_url("http://example.com/hooks", allow_http=False, allowed_hosts=())
    with pytest.raises(webhooks.UrlRefused, match="internal address"):
        webhooks.check_url("https://127.0.0.1/hooks", allow_http=False, allowed_hosts=())
    assert webhooks.check_url("https://127.0.0.1/h", allow_http=False, allowed_hosts={"127.0.0.1"}) == (
        "https://127.0.0.1/h"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://127.0.0.1:9/", "event_types": []},
        {"url": "http://127.0.0.1:9/", "event_types": ["payment.nope"]},
        {"url": "http://127.0.0.1:9/", "event_types": ["ping"]},
        {"url": "http://127.0.0.1:9/", "event_types": "payment.created"},
        {"url": "http://127.0.0.1:9/", "event_types": ["user.created", "user.created"]},
        {"url": "http://127.0.0.1:9/", "event_types": ["*", "user.created"]},
        {"url": "http://127.0.0.1:9/", "event_types": ["*"], "secret": "whsec_mine"},
        {"url": "http://127.0.0.1:9/", "event_types": ["*"], "enabled": False},
        {"url": 5, "event_types": ["*"]},
        {"event_types": ["*"]},
    ],
)
def test_a_bad_endpoint_is_refused_with_422(client, sql, body):
    response = client.post("/webhook-endpoints", json=body)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"]
    assert sql("SELECT COUNT(*) AS n FROM webhook_endpoints")[0]["n"] == 0


def test_patch_changes_types_and_enabled_and_refuses_bad_changes(client, make_endpoint):
    endpoint = make_endpoint()
    path = f"/webhook-endpoints/{endpoint['id']}"
    changed = client.patch(path, json={"event_types": ["user.created"], "enabled": False}).get_json()
    assert changed["event_types"] == ["user.created"] and changed["enabled"] is False
    for body in ({}, {"enabled": "no"}, {"secret": "x"}, {"url": "http://10.0.0.1/"}, {"id": 5}):
        response = client.patch(path, json=body)
        assert response.status_code == 422, body
    assert client.get(path).get_json() == changed
    assert client.patch("/webhook-endpoints/999999999", json={"enabled": True}).status_code == 404


def test_each_change_queues_one_delivery_per_subscribed_enabled_endpoint(client, make_endpoint, make_user, sql):
    everything = make_endpoint()
    completions = make_endpoint(event_types=["payment.completed"])
    disabled = make_endpoint()
    client.patch(f"/webhook-endpoints/{disabled['id']}", json={"enabled": False})
    user = make_user()
    payment = client.post("/payments", json=card_payment(user["id"])).get_json()
    client.patch(f"/payments/{payment['id']}", json={"status": "completed"})
    assert client.delete(f"/users/{user['id']}").status_code == 409  # rolled back: no event, no delivery

    assert [row["type"] for row in deliveries_of(sql, everything["id"])] == [
        "user.created",
        "payment.created",
        "payment.completed",
    ]
    assert [row["type"] for row in deliveries_of(sql, completions["id"])] == ["payment.completed"]
    assert deliveries_of(sql, disabled["id"]) == []
    assert {row["status"] for row in deliveries_of(sql, everything["id"])} == {"pending"}


def test_deleting_an_endpoint_removes_it_and_its_deliveries(client, make_endpoint, make_user, sql):
    endpoint = make_endpoint()
    make_user()
    assert client.delete(f"/webhook-endpoints/{endpoint['id']}").status_code == 204
    assert client.get(f"/webhook-endpoints/{endpoint['id']}").status_code == 404
    assert client.delete(f"/webhook-endpoints/{endpoint['id']}").status_code == 404
    assert deliveries_of(sql, endpoint["id"]) == []


def test_rotating_a_secret_shows_a_new_one_and_can_keep_the_old_one_signing_for_a_while(client, make_endpoint, sql):
    endpoint = make_endpoint()
    path = f"/webhook-endpoints/{endpoint['id']}/rotate-secret"
    rotated = client.post(path).get_json()
    assert SECRET.match(rotated["secret"]) and rotated["secret"] != endpoint["secret"]
    assert rotated["previous_secret_expires_at"] is None
    overlapping = client.post(path, json={"keep_previous_for": 3600}).get_json()
    assert overlapping["previous_secret_expires_at"] is not None
    row = sql("SELECT previous_secret FROM webhook_endpoints WHERE id = %s", (endpoint["id"],))[0]
    assert row["previous_secret"] is not None
    for body in ({"keep_previous_for": -1}, {"keep_previous_for": 86401}, {"keep_previous_for": "1"}, {"x": 1}):
        assert client.post(path, json=body).status_code == 422, body
    assert client.post("/webhook-endpoints/999999999/rotate-secret").status_code == 404


def test_a_ping_is_queued_for_its_endpoint_alone_and_refused_while_disabled(client, make_endpoint, sql):
    endpoint, other = make_endpoint(), make_endpoint()
    response = client.post(f"/webhook-endpoints/{endpoint['id']}/test")
    assert response.status_code == 202
    queued = response.get_json()
    assert [row["id"] for row in deliveries_of(sql, endpoint["id"])] == queued["delivery_ids"]
    assert deliveries_of(sql, other["id"]) == []
    ping = client.get(f"/events?type=ping&object_id={endpoint['id']}").get_json()
    assert [event["id"] for event in ping] == [queued["event_id"]]
    assert ping[0]["data"] == {"id": endpoint["id"], "message": "A test of this endpoint."}
    client.patch(f"/webhook-endpoints/{endpoint['id']}", json={"enabled": False})
    refused = client.post(f"/webhook-endpoints/{endpoint['id']}/test")
    assert refused.status_code == 409 and refused.get_json()["type"] == "/problems/endpoint-disabled"


def test_redelivery_queues_the_event_again_for_one_or_all_of_its_endpoints(client, make_endpoint, make_user, sql):
    first, second = make_endpoint(), make_endpoint()
    make_user()
    event_id = deliveries_of(sql, first["id"])[0]["event_id"]
    everywhere = client.post(f"/events/{event_id}/redeliver")
    assert everywhere.status_code == 202 and len(everywhere.get_json()["delivery_ids"]) == 2
    one = client.post(f"/events/{event_id}/redeliver", json={"endpoint_id": second["id"]})
    assert one.status_code == 202
    assert [row["event_id"] for row in deliveries_of(sql, second["id"])] == [event_id] * 3
    assert client.post("/events/999999999/redeliver").status_code == 404
    assert client.post(f"/events/{event_id}/redeliver", json={"endpoint_id": 999999999}).status_code == 404
    assert client.post(f"/events/{event_id}/redeliver", json={"endpoint_id": "1"}).status_code == 422


def test_redelivering_an_event_that_went_nowhere_needs_an_endpoint(client, make_user, make_endpoint):
    make_user()
    event_id = client.get("/events?type=user.created").get_json()[-1]["id"]
    refused = client.post(f"/events/{event_id}/redeliver")
    assert refused.status_code == 409 and refused.get_json()["type"] == "/problems/nothing-to-redeliver"
    endpoint = make_endpoint()
    assert client.post(f"/events/{event_id}/redeliver", json={"endpoint_id": endpoint["id"]}).status_code == 202


def test_webhook_management_needs_the_webhooks_manage_scope(client, database, make_endpoint):
    endpoint = make_endpoint()
    key = make_api_key(database, tuple(scope for scope in ("users:read", "events:read", "payments:write")))
    headers = {"Authorization": f"Bearer {key}"}
    calls = [
        ("get", "/webhook-endpoints"),
        ("post", "/webhook-endpoints"),
        ("get", f"/webhook-endpoints/{endpoint['id']}"),
        ("patch", f"/webhook-endpoints/{endpoint['id']}"),
        ("delete", f"/webhook-endpoints/{endpoint['id']}"),
        ("post", f"/webhook-endpoints/{endpoint['id']}/rotate-secret"),
        ("get", f"/webhook-endpoints/{endpoint['id']}/deliveries"),
        ("post", f"/webhook-endpoints/{endpoint['id']}/test"),
        ("post", "/events/1/redeliver"),
    ]
    for method, path in calls:
        response = getattr(client, method)(path, headers=headers, json={"enabled": False})
        assert response.status_code == 403, (method, path)
        assert "webhooks:manage" in response.get_json()["detail"]
    assert client.get(f"/webhook-endpoints/{endpoint['id']}").get_json()["enabled"] is True


def test_purging_an_event_removes_its_deliveries_and_keeps_the_others(runner, client, make_endpoint, make_user, sql):
    endpoint = make_endpoint()
    make_user(), make_user()
    old, kept = (row["event_id"] for row in deliveries_of(sql, endpoint["id"]))
    sql(
        "INSERT INTO webhook_attempts (delivery_id, attempted_at, duration_ms)"
        " SELECT id, NOW(), 1 FROM webhook_deliveries"
    )
    sql("DROP TRIGGER events_refuse_update")  # to age one event; init-db puts the trigger back
    sql("UPDATE events SET created_at = created_at - INTERVAL 400 DAY WHERE id = %s", (old,))
    assert runner.invoke(args=["init-db"]).exit_code == 0
    assert runner.invoke(args=["purge-events", "--older-than", "365"]).exit_code == 0
    assert [row["event_id"] for row in deliveries_of(sql, endpoint["id"])] == [kept]
    assert sql("SELECT COUNT(*) AS n FROM webhook_attempts")[0]["n"] == 1


def test_a_claim_returns_every_delivery_it_leases_even_one_committed_after_its_snapshot(
    database, make_endpoint, make_user, sql
):
    make_endpoint()
    cnx = mysql.connector.connect(**connection_settings(database))
    try:
        cnx.start_transaction()  # REPEATABLE READ, the server's default
        cursor = dict_cursor(cnx)
        cursor.execute("SELECT COUNT(*) AS n FROM events")  # the transaction's snapshot starts here
        cursor.fetchall()
        make_user()  # its event and delivery commit after the snapshot
        claimed = webhook_model.claim_due(cursor, "a-worker", 10, 60)
        cnx.commit()
    finally:
        cnx.close()
    leased = sql("SELECT id FROM webhook_deliveries WHERE leased_by = 'a-worker'")
    assert len(leased) == 1
    assert [delivery["id"] for delivery in claimed] == [row["id"] for row in leased]
