"""The benchmark's reference app does the database work of the requests it stands beside, on a real database.

It gets a database of its own: its rows are not the API's (no validation, a fixed actor), and the
suite's other tests read every event of theirs.
"""

import pytest

from bench import reference_app
from db import init_db
from tests.conftest import card_payment, run_sql


@pytest.fixture(scope="module")
def reference_db(database):
    """A database of the reference app's own, with one user; dropped at the end."""
    settings = {**database, "DB_NAME": f"{database['DB_NAME']}_reference"}
    init_db(settings)
    run_sql(
        settings,
        "INSERT INTO users (id, name, email, created_at, updated_at) VALUES (1, 'R', 'r@example.com', NOW(), NOW())",
    )
    yield settings
    run_sql({**settings, "DB_NAME": database["DB_NAME"]}, f"DROP DATABASE IF EXISTS `{settings['DB_NAME']}`")


@pytest.fixture
def reference(reference_db, monkeypatch):
    """A test client of the reference app over its database."""
    for name in ("DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME"):
        monkeypatch.setenv(name, str(reference_db[name]))
    return reference_app.create_app().test_client()


@pytest.fixture
def sql(reference_db):
    """Run one statement on the reference app's database; return its rows."""
    return lambda statement, params=(): run_sql(reference_db, statement, *params)


def new_payment(reference) -> int:
    """Create a payment through the reference app; return its id."""
    response = reference.post("/payments", json=card_payment(1, amount="12.34"))
    assert response.status_code == 201
    return response.get_json()["id"]


def test_a_reference_post_stores_the_payment_encrypted_with_its_event(reference, sql):
    payment_id = new_payment(reference)
    [row] = sql("SELECT * FROM payments WHERE id = %s", (payment_id,))
    assert (row["user_id"], row["status"], row["card_last4"], len(row["card_fingerprint"])) == (
        1,
        "pending",
        "1111",
        64,
    )
    assert b"4111111111111111" not in row["card_no_encrypted"]
    assert row["card_cvc_encrypted"]
    events = sql("SELECT type, actor FROM events WHERE object_type = 'payment' AND object_id = %s", (payment_id,))
    assert events == [{"type": "payment.created", "actor": '{"type":"api_key","id":1}'}]


def test_a_reference_put_completes_the_payment_erases_the_cvc_and_records_the_event(reference, sql):
    payment_id = new_payment(reference)
    response = reference.put(f"/payments/{payment_id}", json={"status": "completed"})
    assert response.status_code == 200
    assert response.get_json()["status"] == "completed"
    [row] = sql("SELECT status, card_cvc_encrypted FROM payments WHERE id = %s", (payment_id,))
    assert row == {"status": "completed", "card_cvc_encrypted": None}
    events = sql("SELECT type FROM events WHERE object_type = 'payment' AND object_id = %s ORDER BY id", (payment_id,))
    assert [event["type"] for event in events] == ["payment.created", "payment.completed"]


def test_a_repeated_reference_put_changes_nothing_and_records_no_event(reference, sql):
    payment_id = new_payment(reference)
    assert reference.put(f"/payments/{payment_id}", json={"status": "completed"}).status_code == 200
    [before] = sql("SELECT updated_at FROM payments WHERE id = %s", (payment_id,))
    response = reference.put(f"/payments/{payment_id}", json={"status": "completed"})
    assert response.status_code == 200
    assert response.get_json()["status"] == "completed"
    assert sql("SELECT updated_at FROM payments WHERE id = %s", (payment_id,)) == [before]
    events = sql("SELECT type FROM events WHERE object_type = 'payment' AND object_id = %s ORDER BY id", (payment_id,))
    assert [event["type"] for event in events] == ["payment.created", "payment.completed"]


def test_the_reference_reads_serve_one_payment_and_a_page(reference):
    payment_id = new_payment(reference)
    one = reference.get(f"/payments/{payment_id}").get_json()
    assert (one["id"], one["card_last4"]) == (str(payment_id), "1111")
    second = new_payment(reference)
    page = reference.get(f"/payments?after={payment_id - 1}&limit=1").get_json()["data"]
    assert [(row["id"], row["amount"]) for row in page] == [(str(payment_id), "12.3400")]
    assert second > payment_id
