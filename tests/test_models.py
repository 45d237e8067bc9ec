"""The models' reads: pages that select columns as text return what the driver itself would."""

import pytest

import db
from models import payment_model, user_model
from tests.conftest import typed_row


def drivers_rows(app, table: str, columns: tuple[str, ...], ids: list[int]) -> list[dict]:
    """Read rows by id with the driver's own dictionary cursor and its own type conversions."""
    with app.app_context():
        cursor = db.get_db().cursor(dictionary=True)
        placeholders = ", ".join(["%s"] * len(ids))
        cursor.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE id IN ({placeholders}) ORDER BY id", ids)
        rows = cursor.fetchall()
        cursor.close()
    return [typed_row(row) for row in rows]


@pytest.fixture
def varied_payments(make_user, make_payment) -> list[dict]:
    """One user's payments with every shape of amount, expiry and time the API stores."""
    user_id = make_user()["id"]
    no_card = {"payment_method": "UPI", "card_no": None, "card_expiry": None, "card_cvc": None}
    return [
        make_payment(user_id=user_id, amount="500.10", description=None),
        make_payment(user_id=user_id, **no_card, currency="JPY", amount="1500"),
        make_payment(user_id=user_id, **no_card, currency="KWD", amount="0.125"),
        make_payment(user_id=user_id, amount="999999999999.99", card_expiry="2031-02-28"),
    ]


def test_payment_reads_return_the_types_and_values_the_driver_does(app, varied_payments):
    ids = [payment["id"] for payment in varied_payments]
    expected = drivers_rows(app, "payments", payment_model.PUBLIC, ids)

    with app.app_context(), db.autocommit() as cursor:
        listed = payment_model.list_payments(cursor, {"user_id": varied_payments[0]["user_id"]}, 0, 10)
        one_by_one = [payment_model.get_payment(cursor, payment_id) for payment_id in ids]

    assert [typed_row(row) for row in listed] == expected
    assert [typed_row(row) for row in one_by_one] == expected
    assert expected[1]["card_expiry"] == (type(None), "None")  # NULL stays None


def test_user_reads_return_the_types_and_values_the_driver_does(app, make_user):
    ids = [make_user()["id"], make_user(phone=None, country=None)["id"]]
    expected = drivers_rows(app, "users", user_model.PUBLIC, ids)

    with app.app_context(), db.autocommit() as cursor:
        listed = user_model.list_users(cursor, ids[0] - 1, 2)
        one_by_one = [user_model.get_user(cursor, user_id) for user_id in ids]

    assert [typed_row(row) for row in listed] == expected
    assert [typed_row(row) for row in one_by_one] == expected


def test_zero_dates_written_outside_the_api_read_as_none_as_the_driver_reads_them(app, client, make_payment, sql):
    payment = make_payment()
    sql("SET SESSION sql_mode = ''")  # lets a zero date in, as a server without NO_ZERO_DATE does
    sql(
        "UPDATE payments SET card_expiry = '2099-12-00', created_at = '0000-00-00 00:00:00' WHERE id = %s",
        (payment["id"],),
    )
    try:
        expected = drivers_rows(app, "payments", payment_model.PUBLIC, [payment["id"]])
        with app.app_context(), db.autocommit() as cursor:
            listed = payment_model.list_payments(cursor, {"user_id": payment["user_id"]}, 0, 10)
        page = client.get(f"/payments?user_id={payment['user_id']}")
    finally:  # the API document promises a time: later tests that list every payment must not meet this row
        sql("DELETE FROM payments WHERE id = %s", (payment["id"],))

    assert [typed_row(row) for row in listed] == expected
    assert expected[0]["card_expiry"] == expected[0]["created_at"] == (type(None), "None")
    assert page.status_code == 200
    assert [(item["card_expiry"], item["created_at"]) for item in page.get_json()] == [(None, None)]
