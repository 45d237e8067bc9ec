"""Events: one per change, in the change's transaction, append-only, readable by the API."""

import mysql.connector
import pytest

from db import connection_settings
from tests.conftest import card_payment, make_api_key, unique_email


def events_of(client, object_type: str, object_id: int) -> list[dict]:
    """Return every event of one object, oldest first."""
    response = client.get(f"/events?object_type={object_type}&object_id={object_id}&limit=1000")
    assert response.status_code == 200
    return response.get_json()


def suite_key_id(sql) -> int:
    """Return the id of the suite's API key, the actor of the test client's requests."""
    return sql("SELECT id FROM api_keys WHERE name = 'test suite'")[0]["id"]


def test_every_write_of_a_payment_records_one_event_with_the_object_and_the_actor(client, make_user, sql):
    user = make_user()
    created = client.post("/payments", json=card_payment(user["id"]), headers={"X-Request-Id": "req-create"})
    payment = created.get_json()
    updated = client.patch(f"/payments/{payment['id']}", json={"description": "Changed"}).get_json()
    completed = client.patch(f"/payments/{payment['id']}", json={"status": "completed"}).get_json()
    refunded = client.put(f"/payments/{payment['id']}", json={"status": "refunded", "description": "Back"}).get_json()
    assert client.patch(f"/payments/{payment['id']}", json={"description": "Back"}).status_code == 200  # no change
    assert client.delete(f"/payments/{payment['id']}").status_code == 204

    history = client.get(f"/payments/{payment['id']}/events").get_json()
    assert [event["type"] for event in history] == [
        "payment.created",
        "payment.updated",
        "payment.completed",
        "payment.refunded",
        "payment.deleted",
    ]
    assert [event["data"] for event in history] == [payment, updated, completed, refunded, refunded]
    assert history[0]["request_id"] == "req-create"
    assert {event["actor"]["type"] for event in history} == {"api_key"}
    assert {event["actor"]["id"] for event in history} == {suite_key_id(sql)}
    assert history == events_of(client, "payment", payment["id"])


def test_every_write_of_a_user_records_one_event(client, make_user):
    user = make_user()
    changed = client.patch(f"/users/{user['id']}", json={"name": "New Name"}).get_json()
    assert client.delete(f"/users/{user['id']}").status_code == 204
    history = events_of(client, "user", user["id"])
    assert [(event["type"], event["data"]) for event in history] == [
        ("user.created", user),
        ("user.updated", changed),
        ("user.deleted", changed),
    ]


def test_a_status_change_by_the_one_statement_path_and_by_a_token_records_its_actor(client, make_user):
    user = make_user()
    payment = client.post("/payments", json=card_payment(user["id"])).get_json()
    token = client.post(f"/users/{user['id']}/tokens", json={"scopes": ["payments:write"]}).get_json()["token"]
    changed = client.patch(
        f"/payments/{payment['id']}", json={"status": "failed"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert changed.status_code == 200
    last = events_of(client, "payment", payment["id"])[-1]
    assert last["type"] == "payment.failed" and last["data"] == changed.get_json()
    assert last["actor"]["type"] == "user_token" and last["actor"]["user_id"] == user["id"]


def test_a_refused_change_records_no_event(client, make_user, sql):
    user = make_user()
    payment = client.post("/payments", json=card_payment(user["id"], status="completed")).get_json()
    before = sql("SELECT COUNT(*) AS n FROM events")[0]["n"]
    assert client.patch(f"/payments/{payment['id']}", json={"status": "pending"}).status_code == 409
    assert client.patch(f"/payments/{payment['id']}", json={"card_no": "5555555555554444"}).status_code == 409
    assert client.post("/users", json={"name": "Dup", "email": user["email"]}).status_code == 409
    assert client.delete(f"/users/{user['id']}").status_code == 409  # has a payment: rolled back
    assert client.post("/payments", json=card_payment(999999999)).status_code == 422
    assert sql("SELECT COUNT(*) AS n FROM events")[0]["n"] == before


def test_no_event_holds_a_card_number_or_a_cvc(client, make_user, sql):
    user = make_user()
    payment = client.post("/payments", json=card_payment(user["id"], card_no="378282246310005", card_cvc="7391"))
    client.patch(f"/payments/{payment.get_json()['id']}", json={"status": "completed"})
    rows = sql("SELECT data FROM events WHERE object_type = 'payment' AND object_id = %s", (payment.get_json()["id"],))
    assert len(rows) == 2
    for row in rows:
        assert "378282246310005" not in row["data"] and "7391" not in row["data"] and "cvc" not in row["data"]


@pytest.mark.parametrize("statement", ["UPDATE events SET type = 'user.created'", "DELETE FROM events"])
def test_the_database_refuses_to_change_or_delete_an_event(database, make_user, statement):
    make_user()
    cnx = mysql.connector.connect(**connection_settings(database))
    try:
        with pytest.raises(mysql.connector.Error, match="append-only"):
            cnx.cursor().execute(statement + " ORDER BY id LIMIT 1")
    finally:
        cnx.close()


def test_purge_events_deletes_only_those_past_the_retention(runner, client, make_user, sql):
    user = make_user()
    old = events_of(client, "user", user["id"])[0]["id"]
    sql("SET @events_purge_before = NULL")
    sql("DROP TRIGGER events_refuse_update")  # to age one event; the trigger comes back below
    sql("UPDATE events SET created_at = created_at - INTERVAL 400 DAY WHERE id = %s", (old,))
    sql("COMMIT")
    assert runner.invoke(args=["init-db"]).exit_code == 0
    result = runner.invoke(args=["purge-events", "--older-than", "365"])
    assert result.exit_code == 0 and result.output.startswith("Deleted 1 events")
    assert sql("SELECT id FROM events WHERE id = %s", (old,)) == []
    assert sql("SELECT COUNT(*) AS n FROM events")[0]["n"] > 0
    assert runner.invoke(args=["purge-events", "--older-than", "0"]).exit_code == 2


def test_get_events_filters_and_paginates(client, make_user):
    first, second = make_user(), make_user()
    page = client.get(f"/events?type=user.created&after={events_of(client, 'user', first['id'])[0]['id'] - 1}&limit=1")
    assert page.status_code == 200 and len(page.get_json()) == 1
    assert 'rel="next"' in page.headers["Link"] and "type=user.created" in page.headers["Link"]
    assert page.get_json()[0]["data"] == first
    assert client.get("/events?created_after=2999-01-01T00:00:00Z").get_json() == []
    since_first = events_of(client, "user", first["id"])[0]["id"] - 1  # the default page of 100 may end before
    recent = client.get(f"/events?created_after=2000-01-01T00:00:00%2B05:30&object_type=user&after={since_first}")
    recent = recent.get_json()
    assert {event["data"]["id"] for event in recent} >= {first["id"], second["id"]}


@pytest.mark.parametrize(
    "query, finds_it",
    [
        ("created_before=1447-08-22T12:09:20.794Z", False),
        ("created_before=0001-01-01T00:00:00%2B05:00", False),
        ("created_after=1001-01-01T00:00:00Z", True),
        ("created_before=9999-12-31T23:59:59-05:00", True),
    ],
)
def test_a_time_filter_far_outside_the_stored_range_is_a_bound_like_any_other(client, make_user, query, finds_it):
    user = make_user()
    found = client.get(f"/events?object_type=user&object_id={user['id']}&{query}")
    assert found.status_code == 200, found.get_json()
    assert [event["data"]["id"] for event in found.get_json()] == ([user["id"]] if finds_it else [])


@pytest.mark.parametrize(
    "query", ["type=payment.exploded", "object_type=card", "object_id=0", "object_id=x", "created_after=yesterday"]
)
def test_a_bad_event_filter_is_a_400(client, query):
    response = client.get(f"/events?{query}")
    assert response.status_code == 400
    assert response.get_json()["type"] == "/problems/bad-request"


def test_events_need_events_read(client, database, make_user):
    key = make_api_key(database, ("payments:read", "payments:write", "users:read", "users:write"))
    for path in ("/events", "/payments/1/events"):
        response = client.get(path, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 403
        assert response.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="events:read"'


def test_a_payment_that_never_existed_has_no_history(client):
    assert client.get("/payments/999999999/events").status_code == 404


def test_an_email_change_records_the_new_email(client, make_user):
    user = make_user()
    email = unique_email()
    client.put(f"/users/{user['id']}", json={"email": email})
    assert events_of(client, "user", user["id"])[-1]["data"]["email"] == email
