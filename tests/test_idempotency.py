"""Idempotency-Key on POST /payments and POST /users."""

import hashlib
import hmac
import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

import db
from app import create_app
from models import idempotency_model
from tests import api
from tests.conftest import SuiteConfig, card_payment, unique_email
from utils.crypto_utils import derive_key


def new_key() -> str:
    """Return a fresh Idempotency-Key."""
    return str(uuid.uuid4())


def test_a_repeated_payment_is_replayed_and_creates_nothing(client, sql, make_user):
    user = make_user()
    body, headers = card_payment(user["id"]), {"Idempotency-Key": new_key()}
    first = client.post("/payments", json=body, headers=headers)
    again = client.post("/payments", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert "Idempotent-Replayed" not in first.headers
    assert len(sql("SELECT id FROM payments WHERE user_id = %s", (user["id"],))) == 1


def test_the_same_key_with_another_body_is_422(client, sql, make_user):
    user = make_user()
    headers = {"Idempotency-Key": new_key()}
    client.post("/payments", json=card_payment(user["id"]), headers=headers)
    response = client.post("/payments", json=card_payment(user["id"], amount=501), headers=headers)
    assert response.status_code == 422
    assert response.get_json()["type"] == "/problems/idempotency-key-reused"
    assert len(sql("SELECT id FROM payments WHERE user_id = %s", (user["id"],))) == 1


def test_a_user_create_is_idempotent_too(client):
    body, headers = {"name": "Idem", "email": unique_email()}, {"Idempotency-Key": new_key()}
    first = client.post("/users", json=body, headers=headers)
    again = client.post("/users", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]


def test_keys_are_scoped_to_the_endpoint(client, make_user):
    key = new_key()
    user = client.post("/users", json={"name": "A", "email": unique_email()}, headers={"Idempotency-Key": key})
    payment = client.post("/payments", json=card_payment(user.get_json()["id"]), headers={"Idempotency-Key": key})
    assert payment.status_code == 201 and "Idempotent-Replayed" not in payment.headers


def test_a_failed_request_frees_its_key_for_a_retry(client, make_user):
    headers = {"Idempotency-Key": new_key()}
    missing_user = client.post("/payments", json=card_payment(999999999), headers=headers)
    assert missing_user.status_code == 422
    retried = client.post("/payments", json=card_payment(make_user()["id"]), headers=headers)
    assert retried.status_code == 201


def test_a_request_whose_twin_is_in_flight_is_409(client, sql, make_user):
    key = new_key()
    body = card_payment(make_user()["id"])
    client.post("/payments", json=body, headers={"Idempotency-Key": key})
    sql("UPDATE idempotency_keys SET response_status = NULL WHERE response_body LIKE %s", (f"%{body['user_id']}%",))
    response = client.post("/payments", json=body, headers={"Idempotency-Key": key})
    assert response.status_code == 409
    assert response.get_json()["type"] == "/problems/idempotency-in-flight"
    assert response.headers["Retry-After"] == "1"


def test_an_expired_key_is_forgotten(client, sql, make_user):
    key, user = new_key(), make_user()
    client.post("/payments", json=card_payment(user["id"]), headers={"Idempotency-Key": key})
    sql(
        "UPDATE idempotency_keys SET created_at = created_at - INTERVAL 25 HOUR WHERE response_body LIKE %s",
        (f"%{user['id']}%",),
    )
    again = client.post("/payments", json=card_payment(user["id"]), headers={"Idempotency-Key": key})
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert len(sql("SELECT id FROM payments WHERE user_id = %s", (user["id"],))) == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve"])
def test_a_malformed_key_is_400(client, make_user, key):
    response = client.post("/payments", json=card_payment(make_user()["id"]), headers={"Idempotency-Key": key})
    assert response.status_code == 400


def test_concurrent_twins_create_exactly_one_payment(live_server, sql, make_user):
    user = make_user()
    body, headers = card_payment(user["id"]), {"Idempotency-Key": new_key()}

    def post(_):
        return api.post(f"{live_server.url}/payments", json=body, headers=headers, timeout=10)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(post, range(8)))
    statuses = sorted(response.status_code for response in responses)
    assert set(statuses) <= {201, 409}
    assert 201 in statuses
    assert len(sql("SELECT id FROM payments WHERE user_id = %s", (user["id"],))) == 1
    created_ids = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created_ids) == 1


def test_a_request_whose_stale_claim_was_taken_over_cannot_complete_or_release_it(app, sql):
    key_hash, first_at, second_at = os.urandom(32), datetime(2026, 1, 1, 0, 0, 0), datetime(2026, 1, 1, 0, 1, 0)
    with app.app_context(), db.autocommit() as cursor:
        assert idempotency_model.claim_key(cursor, key_hash, b"a" * 32, first_at)
        stale = idempotency_model.get_key(cursor, (key_hash,))
        assert idempotency_model.reclaim_key(cursor, stale, b"b" * 32, second_at)
        assert not idempotency_model.reclaim_key(cursor, stale, b"c" * 32, second_at)
        assert not idempotency_model.complete_key(cursor, key_hash, first_at, 201, "{}", "/payments/1")
        idempotency_model.release_key(cursor, key_hash, first_at)
        assert idempotency_model.complete_key(cursor, key_hash, second_at, 201, '{"id": 2}', "/payments/2")
        record = idempotency_model.get_key(cursor, (key_hash,))
    assert (record["request_hash"], record["response_body"]) == (b"b" * 32, '{"id": 2}')


def test_the_stored_request_hash_does_not_depend_on_the_cvc(client, make_user):
    user, key = make_user(), new_key()
    first = client.post("/payments", json=card_payment(user["id"], card_cvc="123"), headers={"Idempotency-Key": key})
    again = client.post("/payments", json=card_payment(user["id"], card_cvc="456"), headers={"Idempotency-Key": key})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()


def test_equal_numbers_written_differently_are_the_same_body(client, make_user):
    user, key = make_user(), new_key()
    client.post("/payments", json=card_payment(user["id"], amount=500), headers={"Idempotency-Key": key})
    again = client.post("/payments", json=card_payment(user["id"], amount=500.0), headers={"Idempotency-Key": key})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("amount", ["1e999999999", "NaN", "-Infinity", "1e-999999999"])
def test_odd_numbers_in_an_idempotent_request_are_a_clean_422(client, make_user, amount):
    body = json.dumps(card_payment(make_user()["id"])).replace('"amount": 500.0', f'"amount": {amount}')
    headers = {"Idempotency-Key": new_key()}
    response = client.post("/payments", data=body, content_type="application/json", headers=headers)
    assert response.status_code == 422
    assert "amount" in response.get_json()["errors"]


def stored_key_hashes(sql) -> set[bytes]:
    """Return every key hash in the idempotency store."""
    return {bytes(row["key_hash"]) for row in sql("SELECT key_hash FROM idempotency_keys")}


def legacy_hash(path: str, key: str) -> bytes:
    """Return the plain SHA-256 key hash that records were stored under before hashes were keyed."""
    return hashlib.sha256(f"{path}\n{key}".encode()).digest()


def test_the_store_holds_a_keyed_hash_of_the_key_not_a_plain_one(app, client, sql, make_user):
    key = "4111111111111111"  # a client that put card data in its key
    client.post("/payments", json=card_payment(make_user()["id"]), headers={"Idempotency-Key": key})
    subkey = derive_key(app.extensions["card_keys"]["fingerprint"], b"idempotency key hash")
    stored = stored_key_hashes(sql)
    assert hmac.new(subkey, f"/payments\n{key}".encode(), hashlib.sha256).digest() in stored
    assert legacy_hash("/payments", key) not in stored


def test_a_retry_of_a_key_stored_before_the_upgrade_is_replayed_not_repeated(client, sql, make_user):
    user, key = make_user(), new_key()
    body = card_payment(user["id"])
    first = client.post("/payments", json=body, headers={"Idempotency-Key": key})
    # The record as the previous version wrote it: keyed by the plain SHA-256 of path and key.
    sql(
        "UPDATE idempotency_keys SET key_hash = %s WHERE location = %s",
        (legacy_hash("/payments", key), first.headers["Location"]),
    )
    again = client.post("/payments", json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert len(sql("SELECT id FROM payments WHERE user_id = %s", (user["id"],))) == 1


def test_a_retry_of_a_key_stored_before_the_upgrade_and_still_in_flight_is_409(client, sql, make_user):
    user, key = make_user(), new_key()
    body = card_payment(user["id"])
    first = client.post("/payments", json=body, headers={"Idempotency-Key": key})
    sql(
        "UPDATE idempotency_keys SET key_hash = %s, response_status = NULL, created_at = UTC_TIMESTAMP()"
        " WHERE location = %s",
        (legacy_hash("/payments", key), first.headers["Location"]),
    )
    response = client.post("/payments", json=body, headers={"Idempotency-Key": key})
    assert response.status_code == 409
    assert len(sql("SELECT id FROM payments WHERE user_id = %s", (user["id"],))) == 1


def test_one_record_lifetime_after_the_upgrade_legacy_hashes_are_no_longer_looked_up(database, sql):
    sql("UPDATE schema_upgrades SET applied_at = UTC_TIMESTAMP() - INTERVAL 25 HOUR")
    try:
        app = create_app(SuiteConfig)
        client = app.test_client()
        user = client.post("/users", json={"name": "Late", "email": unique_email()}).get_json()
        key = new_key()
        sql(
            "INSERT INTO idempotency_keys (key_hash, request_hash, created_at) VALUES (%s, %s, UTC_TIMESTAMP())",
            (legacy_hash("/payments", key), os.urandom(32)),
        )
        response = client.post("/payments", json=card_payment(user["id"]), headers={"Idempotency-Key": key})
        assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    finally:
        sql("UPDATE schema_upgrades SET applied_at = UTC_TIMESTAMP()")


def test_many_first_claims_at_once_during_the_upgrade_window_all_succeed(live_server, make_user):
    user = make_user()

    def post(_):
        headers = {"Idempotency-Key": new_key()}
        return api.post(f"{live_server.url}/payments", json=card_payment(user["id"]), headers=headers, timeout=10)

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = [response.status_code for response in pool.map(post, range(40))]
    assert statuses == [201] * 40
