"""The delivery worker against a real receiver on loopback that verifies every signature with standardwebhooks."""

import signal
import time

import pytest

from config import TestConfig
from tests.conftest import SUITE_API_KEY, card_payment, config_dict, init_test_db, run_sql, unique_email
from tests.mariadb_server import MariaDBServer
from tests.webhook_receiver import Receiver, all_arrived, stop_worker

# Each test starts and ends with no webhook endpoint, so other tests' writes queue nothing.
pytestmark = pytest.mark.usefixtures("no_webhook_endpoints")


def subscribe(client, receiver: Receiver, **fields) -> dict:
    """Subscribe the receiver to every event; return the endpoint, and give the receiver its secret."""
    response = client.post("/webhook-endpoints", json={"url": receiver.url, "event_types": ["*"], **fields})
    assert response.status_code == 201, response.get_json()
    endpoint = response.get_json()
    receiver.secrets.append(endpoint["secret"])
    return endpoint


def make_writes(client, count: int) -> list[int]:
    """Create `count` users; return the ids of their events."""
    ids = []
    for _ in range(count):
        response = client.post("/users", json={"name": "Hook", "email": unique_email(), "phone": "1234567"})
        assert response.status_code == 201, response.get_json()
        user = response.get_json()
        ids.append(client.get(f"/events?object_type=user&object_id={user['id']}").get_json()[0]["id"])
    return ids


def deliveries(client, endpoint: dict) -> list[dict]:
    """Return every delivery of an endpoint through the API."""
    response = client.get(f"/webhook-endpoints/{endpoint['id']}/deliveries?limit=1000")
    assert response.status_code == 200
    return response.get_json()


def test_every_change_arrives_once_signed_with_the_events_data_and_no_card_data(client, receiver, workers, sql):
    endpoint = subscribe(client, receiver)
    workers()
    user = client.post("/users", json={"name": "Ann", "email": unique_email(), "phone": "1234567"}).get_json()
    payment = client.post("/payments", json=card_payment(user["id"])).get_json()
    client.patch(f"/payments/{payment['id']}", json={"status": "completed"})
    client.delete(f"/payments/{payment['id']}")
    events = client.get(f"/payments/{payment['id']}/events").get_json()
    events = client.get(f"/events?object_type=user&object_id={user['id']}").get_json() + events
    assert receiver.wait_for(all_arrived([event["id"] for event in events]))
    time.sleep(0.5)  # anything sent twice would arrive by now

    assert sorted(receiver.ids()) == sorted(str(event["id"]) for event in events)
    by_id = {item.webhook_id: item for item in receiver.received}
    for event in events:
        received = by_id[str(event["id"])]
        assert received.verified_by == endpoint["secret"]
        assert received.message == {"type": event["type"], "timestamp": event["created_at"], "data": event["data"]}
        assert received.headers["Content-Type"] == "application/json"
    assert all(item["status"] == "delivered" and item["attempt_count"] == 1 for item in deliveries(client, endpoint))
    assert [attempt["status_code"] for item in deliveries(client, endpoint) for attempt in item["attempts"]] == [
        200
    ] * len(events)
    everything = b"".join(item.body for item in receiver.received) + str(everything_stored(sql)).encode()
    for secret in (
        b"4111111111111111",
        b'"123"',
        b"'123'",
        b"card_cvc",
        SUITE_API_KEY.encode(),
        endpoint["secret"].encode(),
    ):
        assert secret not in everything, secret


def everything_stored(sql) -> list:
    """Return every row of the events and webhook tables."""
    tables = ("events", "webhook_endpoints", "webhook_deliveries", "webhook_attempts")
    return [row for table in tables for row in sql(f"SELECT * FROM {table}")]  # noqa: S608 - fixed names


def test_a_receiver_answering_500_is_retried_until_it_answers_200(client, receiver, workers):
    receiver.answer = lambda received: 500 if receiver.ids().count(received.webhook_id) <= 2 else 200
    endpoint = subscribe(client, receiver)
    workers()
    [event_id] = make_writes(client, 1)
    assert receiver.wait_for(lambda receiver: receiver.ids().count(str(event_id)) == 3)
    assert receiver.wait_for(lambda receiver: deliveries(client, endpoint)[0]["status"] == "delivered", 5)
    [delivery] = deliveries(client, endpoint)
    assert [attempt["status_code"] for attempt in delivery["attempts"]] == [500, 500, 200]
    assert [attempt["error"] for attempt in delivery["attempts"]] == [
        "the receiver answered 500",
        "the receiver answered 500",
        None,
    ]
    assert all(item.verified_by for item in receiver.received)


def test_a_receiver_down_for_a_while_gets_everything_once_it_is_back(client, receiver, workers):
    endpoint = subscribe(client, receiver)
    receiver.stop()
    workers()
    event_ids = make_writes(client, 5)
    assert receiver.wait_for(lambda _: all(item["attempt_count"] >= 2 for item in deliveries(client, endpoint)), 10), (
        deliveries(client, endpoint)
    )
    assert {item["attempts"][0]["error"] for item in deliveries(client, endpoint)} == {"connection refused"}
    receiver.start()
    assert receiver.wait_for(all_arrived(event_ids), 30)
    assert receiver.wait_for(lambda _: {item["status"] for item in deliveries(client, endpoint)} == {"delivered"}, 5)


def test_a_worker_killed_mid_delivery_leaves_it_to_another_which_sends_the_same_webhook_id(client, receiver, workers):
    receiver.hold = lambda received: 30 if len(receiver.received) == 1 else 0  # the first one never gets its answer
    endpoint = subscribe(client, receiver)
    first = workers(WEBHOOK_TIMEOUT_SECONDS=1)  # a lease of 2 x 1 + 5 = 7 s
    [event_id] = make_writes(client, 1)
    assert receiver.wait_for(lambda receiver: len(receiver.received) == 1, 10)
    stop_worker(first, signal.SIGKILL)
    workers(WEBHOOK_TIMEOUT_SECONDS=1)
    assert receiver.wait_for(lambda receiver: len(receiver.received) == 2, 20)
    assert receiver.ids() == [str(event_id), str(event_id)]
    assert all(item.verified_by for item in receiver.received)
    assert receiver.wait_for(lambda _: deliveries(client, endpoint)[0]["status"] == "delivered", 5)
    assert [attempt["status_code"] for attempt in deliveries(client, endpoint)[0]["attempts"]] == [200]


def test_sigterm_lets_the_worker_finish_what_it_is_sending_then_exit(client, receiver, workers):
    receiver.hold = lambda received: 1
    endpoint = subscribe(client, receiver)
    worker = workers()
    make_writes(client, 1)
    assert receiver.wait_for(lambda receiver: len(receiver.received) == 1, 10)
    assert stop_worker(worker) == 0
    [delivery] = deliveries(client, endpoint)
    assert delivery["status"] == "delivered" and [a["status_code"] for a in delivery["attempts"]] == [200]


def test_two_workers_share_the_work_without_sending_anything_twice(client, receiver, workers):
    subscribe(client, receiver)
    workers()
    workers()
    event_ids = make_writes(client, 40)
    assert receiver.wait_for(all_arrived(event_ids), 30)
    time.sleep(0.5)
    assert sorted(receiver.ids()) == sorted(str(event_id) for event_id in event_ids)


def test_an_address_allowed_at_save_but_not_at_delivery_is_refused_then(client, receiver, workers):
    endpoint = subscribe(client, receiver)
    workers(WEBHOOK_ALLOWED_HOSTS=frozenset())
    make_writes(client, 1)
    assert receiver.wait_for(lambda _: deliveries(client, endpoint)[0]["attempt_count"] >= 1, 10)
    error = deliveries(client, endpoint)[0]["attempts"][0]["error"]
    assert error.startswith("refused:") and "internal address" in error
    assert receiver.received == []


def test_an_endpoint_failing_for_too_long_is_disabled(client, receiver, workers):
    receiver.answer = lambda received: 500
    endpoint = subscribe(client, receiver)
    workers(WEBHOOK_DISABLE_AFTER_DAYS=1 / 86400)  # a second
    make_writes(client, 1)
    path = f"/webhook-endpoints/{endpoint['id']}"
    assert receiver.wait_for(lambda _: client.get(path).get_json()["enabled"] is False, 20)
    shown = client.get(path).get_json()
    assert "failed for too long" in shown["disabled_reason"] and shown["failing_since"]
    assert client.post(f"{path}/test").status_code == 409


def test_a_ping_and_a_redelivery_arrive_and_a_rotated_secret_signs_beside_the_old_one(client, receiver, workers):
    endpoint = subscribe(client, receiver)
    workers()
    ping = client.post(f"/webhook-endpoints/{endpoint['id']}/test").get_json()
    assert receiver.wait_for(all_arrived([ping["event_id"]]))
    assert receiver.received[0].message["type"] == "ping"

    old = receiver.secrets.pop()
    rotated = client.post(f"/webhook-endpoints/{endpoint['id']}/rotate-secret", json={"keep_previous_for": 60})
    receiver.secrets = [old]  # a receiver not yet switched still verifies
    assert client.post(f"/events/{ping['event_id']}/redeliver").status_code == 202
    assert receiver.wait_for(lambda receiver: len(receiver.received) == 2)
    receiver.secrets = [rotated.get_json()["secret"]]  # and one switched already verifies too
    assert client.post(f"/events/{ping['event_id']}/redeliver").status_code == 202
    assert receiver.wait_for(lambda receiver: len(receiver.received) == 3)
    assert [item.verified_by for item in receiver.received[1:]] == [old, rotated.get_json()["secret"]]
    assert receiver.ids() == [str(ping["event_id"])] * 3

    client.post(f"/webhook-endpoints/{endpoint['id']}/rotate-secret")  # no overlap: the old secret stops at once
    assert client.post(f"/events/{ping['event_id']}/redeliver").status_code == 202
    assert receiver.wait_for(lambda receiver: len(receiver.received) == 4)
    assert receiver.received[3].verified_by is None


def test_the_database_stopped_and_started_under_the_worker_loses_nothing(receiver, workers, tmp_path):
    server = MariaDBServer()
    server.start()
    try:
        # Its own server's address in DB_HOST too, which on a cluster run lists the cluster's nodes.
        settings = {**config_dict(), "DB_HOST": server.host, "DB_PORT": server.port, "DB_NAME": "payments_webhooks"}
        init_test_db(settings)
        client = app_on(settings).test_client()
        endpoint = subscribe(client, receiver)
        receiver.stop()
        worker = workers(settings)
        before = make_writes(client, 5)
        server.stop()
        time.sleep(2)
        receiver.start()
        server.start()
        after = make_writes(client, 5)
        assert receiver.wait_for(all_arrived(before + after), 40)
        assert worker.poll() is None
        assert receiver.wait_for(lambda _: _all_delivered(settings), 5)
        assert len(deliveries(client, endpoint)) == 10
    finally:
        server.cleanup()


def _all_delivered(settings: dict) -> bool:
    """Return whether every delivery in a database is delivered."""
    return {row["status"] for row in run_sql(settings, "SELECT status FROM webhook_deliveries")} == {"delivered"}


def app_on(settings: dict):
    """Return the app on another database than the suite's."""
    from app import create_app

    return create_app(type("OtherDatabase", (TestConfig,), _names(settings)))


def _names(settings: dict) -> dict:
    """Return the settings an app on another database needs from the suite's."""
    names = ("DB_HOST", "DB_PORT", "DB_NAME", "CARD_NUMBER_KEYS", "CARD_CVC_KEYS", "CARD_FINGERPRINT_KEY")
    return {name: settings[name] for name in (*names, "JWT_SIGNING_KEYS", "WEBHOOK_SECRET_KEYS")}


def test_a_redirect_is_not_followed_and_the_delivery_fails_after_the_last_retry(client, receiver, workers):
    receiver.answer = lambda received: (302, {"Location": "/elsewhere"})
    endpoint = subscribe(client, receiver)
    workers(WEBHOOK_RETRY_SCALE=0.0001)  # the whole schedule in about 10 s
    [event_id] = make_writes(client, 1)
    assert receiver.wait_for(lambda _: deliveries(client, endpoint)[0]["status"] == "failed", 30)
    [delivery] = deliveries(client, endpoint)
    assert delivery["attempt_count"] == 8 and delivery["next_attempt_at"] is None and delivery["finished_at"]
    assert {attempt["error"] for attempt in delivery["attempts"]} == {"the receiver answered 302"}
    assert receiver.ids() == [str(event_id)] * 8
    assert {item.path for item in receiver.received} == {"/hooks"}  # never /elsewhere
