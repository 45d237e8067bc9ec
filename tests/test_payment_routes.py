"""The /payments resource: validation, masking, card storage, lifecycle, lists."""

from datetime import UTC, datetime

import pytest

from tests.conftest import ISO_UTC, card_payment

MASKED = "XXXX-XXXX-XXXX-1111"


def this_month(day: int = 1) -> str:
    """Return a date in the current month, as YYYY-MM-DD."""
    return datetime.now(UTC).date().replace(day=day).isoformat()


def last_month() -> str:
    """Return the first day of the previous month, as YYYY-MM-DD."""
    today = datetime.now(UTC).date()
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year}-{month:02d}-01"


def test_creating_the_seed_sample_payment(client, make_user):
    user = make_user()
    body = card_payment(user["id"], status="completed", card_expiry="2099-12-01")
    response = client.post("/payments", json=body)
    assert response.status_code == 201
    payment = response.get_json()
    assert response.headers["Location"] == f"/payments/{payment['id']}"
    assert response.headers["Cache-Control"] == "no-store"
    assert payment["amount"] == "500.00"
    assert payment["card_no"] == MASKED
    assert payment["card_brand"] == "visa"
    assert payment["card_expiry"] == "2099-12-01"
    assert payment["currency"] == "INR"
    assert payment["status"] == "completed"
    assert "card_cvc" not in payment
    # The CVC could only hide in a text field; ids and times are numbers and clocks that may read 123.
    texts = [value for name, value in payment.items() if isinstance(value, str) and not name.endswith("_at")]
    assert not [text for text in texts if "123" in text.replace(payment["card_fingerprint"], "")]


def test_times_read_the_same_whether_just_written_or_read_back(client, make_user):
    user = make_user()
    created = client.post("/payments", json=card_payment(user["id"], card_expiry="2099-12-01")).get_json()
    changed = client.put(f"/payments/{created['id']}", json={"description": "renamed"}).get_json()
    read = client.get(f"/payments/{created['id']}").get_json()
    listed = client.get(f"/payments?user_id={user['id']}").get_json()
    assert ISO_UTC.fullmatch(created["created_at"]) and ISO_UTC.fullmatch(changed["updated_at"])
    assert read == listed[0] == changed
    assert read["created_at"] == created["created_at"] and read["card_expiry"] == "2099-12-01"


def test_the_stored_row_holds_neither_the_card_number_nor_the_cvc(client, sql, make_user):
    user = make_user()
    payment = client.post("/payments", json=card_payment(user["id"], card_cvc="987")).get_json()
    row = sql("SELECT * FROM payments WHERE id = %s", (payment["id"],))[0]
    for column, value in row.items():
        raw = value if isinstance(value, bytes | bytearray) else str(value).encode()
        assert b"4111111111111111" not in raw, column
        # The fingerprint is 64 hex digits of an HMAC of the card number: any three digits turn up in 1.5% of them.
        assert b"987" not in raw or column in ("id", "user_id", "created_at", "updated_at", "card_fingerprint"), column
    assert row["card_last4"] == "1111"
    assert row["card_no_encrypted"] and row["card_cvc_encrypted"]


def test_the_idempotency_store_holds_no_card_data(client, sql, make_user):
    user = make_user()
    key = "no-card-data-here-" + str(user["id"])
    client.post("/payments", json=card_payment(user["id"], card_cvc="987"), headers={"Idempotency-Key": key})
    for row in sql("SELECT * FROM idempotency_keys"):
        for value in row.values():
            raw = value if isinstance(value, bytes | bytearray) else str(value).encode()
            assert b"4111111111111111" not in raw and b'"987"' not in raw


def test_a_card_number_with_spaces_and_dashes_is_accepted(client, make_user):
    body = card_payment(make_user()["id"], card_no="4111 1111-1111 1111")
    response = client.post("/payments", json=body)
    assert response.status_code == 201
    assert response.get_json()["card_no"] == MASKED


def test_the_same_card_has_the_same_fingerprint_across_users(client, make_payment):
    first, second = make_payment(), make_payment()
    other = make_payment(card_no="5555555555554444")
    assert first["card_fingerprint"] == second["card_fingerprint"]
    assert first["card_fingerprint"] != other["card_fingerprint"]
    assert other["card_brand"] == "mastercard"


@pytest.mark.parametrize(
    ("fields", "amount"),
    [
        ({"amount": 1500.0, "currency": "JPY"}, "1500"),
        ({"amount": "12.345", "currency": "kwd"}, "12.345"),
        ({"amount": 0.01}, "0.01"),
        ({"amount": "999999999999.99"}, "999999999999.99"),
        ({"amount": 7}, "7.00"),
    ],
)
def test_amounts_come_back_as_strings_with_the_currency_decimals(client, make_user, fields, amount):
    response = client.post("/payments", json=card_payment(make_user()["id"], **fields))
    assert response.status_code == 201
    assert response.get_json()["amount"] == amount
    assert response.get_json()["currency"] == fields.get("currency", "INR").upper()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": float("nan")}, "amount"),
        ({"amount": float("inf")}, "amount"),
        ({"amount": "Infinity"}, "amount"),
        ({"amount": 10**12}, "amount"),
        ({"amount": 1e300}, "amount"),
        ({"amount": 1500.5, "currency": "JPY"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"amount": None}, "amount"),
        ({"amount": [1]}, "amount"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "XXX"}, "currency"),
        ({"currency": "US"}, "currency"),
        ({"currency": 840}, "currency"),
        ({"payment_method": "Cheque"}, "payment_method"),
        ({"user_id": "1"}, "user_id"),
        ({"user_id": 0}, "user_id"),
        ({"user_id": 1.5}, "user_id"),
        ({"user_id": 999999999}, "user_id"),
        ({"user_id": True}, "user_id"),
        ({"card_no": "4111111111111112"}, "card_no"),
        ({"card_no": "41111111111"}, "card_no"),
        ({"card_no": "41111111111111111111"}, "card_no"),
        ({"card_no": 4111111111111111}, "card_no"),
        ({"card_no": "4111-abcd-1111-1111"}, "card_no"),
        ({"card_expiry": "2099-02-30"}, "card_expiry"),
        ({"card_expiry": "2099-13"}, "card_expiry"),
        ({"card_expiry": "13/30"}, "card_expiry"),
        ({"card_expiry": "tomorrow"}, "card_expiry"),
        ({"card_expiry": "2020-01-01"}, "card_expiry"),
        ({"card_cvc": 123}, "card_cvc"),
        ({"card_cvc": "12"}, "card_cvc"),
        ({"card_cvc": "1234"}, "card_cvc"),
        ({"card_cvc": "12a"}, "card_cvc"),
        ({"card_no": "378282246310005", "card_cvc": "123"}, "card_cvc"),
        ({"card_no": None}, "card_no"),
        ({"card_cvc": None}, "card_cvc"),
        ({"card_expiry": None}, "card_expiry"),
        ({"status": "done"}, "status"),
        ({"description": "x" * 256}, "description"),
        ({"description": 5}, "description"),
        ({"card_brand": "visa"}, "card_brand"),
        ({"card_fingerprint": "ab"}, "card_fingerprint"),
        ({"id": 1}, "id"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_an_invalid_payment_field_is_422_naming_it_and_stores_nothing(client, sql, make_user, fields, field):
    user = make_user()
    response = client.post("/payments", json=card_payment(user["id"], **fields))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"]
    assert "4111111111111111" not in response.get_data(as_text=True)
    assert sql("SELECT id FROM payments WHERE user_id = %s", (user["id"],)) == []


def test_all_field_errors_are_reported_at_once(client, make_user):
    body = card_payment(make_user()["id"], amount=-1, currency="ZZZ", card_cvc=1, name="x")
    errors = client.post("/payments", json=body).get_json()["errors"]
    assert set(errors) == {"amount", "currency", "card_cvc", "name"}


def test_an_expired_card_is_422_but_this_month_is_fine(client, make_user):
    user = make_user()
    assert client.post("/payments", json=card_payment(user["id"], card_expiry=last_month())).status_code == 422
    assert client.post("/payments", json=card_payment(user["id"], card_expiry=this_month())).status_code == 201


@pytest.mark.parametrize(
    ("given", "stored"), [("2099-12", "2099-12-01"), ("12/99", "2099-12-01"), ("2099-12-31", "2099-12-31")]
)
def test_expiry_forms_are_accepted_and_returned_as_dates(client, make_user, given, stored):
    response = client.post("/payments", json=card_payment(make_user()["id"], card_expiry=given))
    assert response.status_code == 201
    assert response.get_json()["card_expiry"] == stored


def test_an_amex_card_needs_a_four_digit_cvc(client, make_user):
    body = card_payment(make_user()["id"], card_no="378282246310005", card_cvc="1234")
    response = client.post("/payments", json=body)
    assert response.status_code == 201
    assert response.get_json()["card_brand"] == "amex"
    assert response.get_json()["card_no"] == "XXXX-XXXX-XXXX-0005"


@pytest.mark.parametrize("method", ["UPI", "net banking", "Wallet", "Bank Transfer", "cash"])
def test_a_non_card_payment_needs_no_card_and_refuses_one(client, make_user, method):
    user = make_user()
    body = {"user_id": user["id"], "amount": 10, "currency": "usd", "payment_method": method}
    response = client.post("/payments", json={**body, "card_no": None, "card_cvc": None})
    assert response.status_code == 201
    payment = response.get_json()
    assert payment["card_no"] is None and payment["card_brand"] is None and payment["card_expiry"] is None
    assert payment["payment_method"].casefold() == method.casefold()
    refused = client.post("/payments", json={**body, "card_no": "4111111111111111", "card_cvc": "123"})
    assert refused.status_code == 422
    assert set(refused.get_json()["errors"]) == {"card_no", "card_cvc"}


def test_a_card_payment_needs_every_card_field(client, make_user):
    body = {"user_id": make_user()["id"], "amount": 10, "currency": "USD", "payment_method": "debit card"}
    response = client.post("/payments", json=body)
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"card_no", "card_expiry", "card_cvc"}


def test_status_and_method_are_case_insensitive_in_and_canonical_out(client, make_user):
    body = card_payment(make_user()["id"], status="PENDING", payment_method="credit CARD")
    payment = client.post("/payments", json=body).get_json()
    assert payment["status"] == "pending"
    assert payment["payment_method"] == "Credit Card"


def test_getting_a_payment_shows_the_masked_card(client, make_payment):
    payment = make_payment()
    response = client.get(f"/payments/{payment['id']}")
    assert response.status_code == 200
    assert response.get_json() == payment
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("payment_id", ["0", "-3", "x", "999999999"])
def test_an_unknown_payment_is_404(client, payment_id):
    assert client.get(f"/payments/{payment_id}").status_code == 404
    assert client.put(f"/payments/{payment_id}", json={"description": "x"}).status_code == 404
    assert client.delete(f"/payments/{payment_id}").status_code == 404


def test_deleting_a_payment(client, sql, make_payment):
    payment = make_payment()
    assert client.delete(f"/payments/{payment['id']}").status_code == 204
    assert sql("SELECT id FROM payments WHERE id = %s", (payment["id"],)) == []


def cvc_stored(sql, payment_id: int) -> bool:
    """Return whether the payment row still holds an encrypted CVC."""
    return (
        sql("SELECT card_cvc_encrypted FROM payments WHERE id = %s", (payment_id,))[0]["card_cvc_encrypted"] is not None
    )


@pytest.mark.parametrize("target", ["completed", "failed", "cancelled"])
def test_leaving_pending_erases_the_cvc_in_the_same_update(client, sql, make_payment, target):
    payment = make_payment()
    assert cvc_stored(sql, payment["id"])
    response = client.patch(f"/payments/{payment['id']}", json={"status": target})
    assert response.status_code == 200
    assert response.get_json()["status"] == target
    assert not cvc_stored(sql, payment["id"])


def test_a_status_change_answers_with_the_payment_as_stored_and_touches_nothing_else(client, make_payment):
    payment = make_payment()
    response = client.put(f"/payments/{payment['id']}", json={"status": "completed"})
    assert response.status_code == 200
    stored = client.get(f"/payments/{payment['id']}").get_json()
    assert response.get_json() == stored and stored["status"] == "completed"
    unchanged = set(payment) - {"status", "updated_at"}
    assert {name: stored[name] for name in unchanged} == {name: payment[name] for name in unchanged}


def test_a_status_change_of_an_unknown_payment_is_404(client):
    response = client.patch("/payments/999999999", json={"status": "completed"})
    assert response.status_code == 404 and response.mimetype == "application/problem+json"


def test_a_payment_created_in_another_status_never_stores_the_cvc(client, sql, make_payment):
    payment = make_payment(status="completed")
    assert not cvc_stored(sql, payment["id"])


@pytest.mark.parametrize(
    ("path", "target"),
    [
        (["completed"], "pending"),
        (["completed"], "failed"),
        (["failed"], "completed"),
        (["cancelled"], "pending"),
        (["completed", "refunded"], "completed"),
        (["completed", "refunded"], "pending"),
        ([], "refunded"),
    ],
)
def test_a_forbidden_status_change_is_409_and_changes_nothing(client, make_payment, path, target):
    payment = make_payment()
    for status in path:
        assert client.patch(f"/payments/{payment['id']}", json={"status": status}).status_code == 200
    before = client.get(f"/payments/{payment['id']}").get_json()
    response = client.patch(f"/payments/{payment['id']}", json={"status": target})
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert client.get(f"/payments/{payment['id']}").get_json() == before


def test_refunding_a_completed_payment(client, make_payment):
    payment = make_payment(status="completed")
    response = client.put(f"/payments/{payment['id']}", json={"status": "refunded"})
    assert response.status_code == 200
    assert response.get_json()["status"] == "refunded"


def test_sending_the_current_status_is_accepted_and_changes_nothing(client, make_payment):
    payment = make_payment(status="completed")
    response = client.put(f"/payments/{payment['id']}", json={"status": "completed"})
    assert response.status_code == 200
    assert response.get_json() == payment


def test_a_pending_payment_may_change_every_writable_field(client, sql, make_user, make_payment):
    payment = make_payment()
    other_user = make_user()
    changes = {
        "user_id": other_user["id"],
        "amount": "75.5",
        "currency": "usd",
        "card_no": "5555555555554444",
        "card_expiry": "2098-01",
        "card_cvc": "321",
        "description": "changed",
    }
    response = client.put(f"/payments/{payment['id']}", json=changes)
    assert response.status_code == 200
    updated = response.get_json()
    assert (updated["user_id"], updated["amount"], updated["currency"]) == (other_user["id"], "75.50", "USD")
    assert (updated["card_no"], updated["card_brand"], updated["card_expiry"]) == (
        "XXXX-XXXX-XXXX-4444",
        "mastercard",
        "2098-01-01",
    )
    assert updated["card_fingerprint"] != payment["card_fingerprint"]
    assert client.get(f"/payments/{payment['id']}").get_json() == updated


def test_a_new_card_on_a_pending_payment_needs_its_expiry_and_cvc(client, make_payment):
    payment = make_payment()
    response = client.patch(f"/payments/{payment['id']}", json={"card_no": "5555555555554444"})
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"card_expiry", "card_cvc"}


def test_switching_a_pending_payment_to_upi_clears_the_card(client, sql, make_payment):
    payment = make_payment()
    response = client.patch(f"/payments/{payment['id']}", json={"payment_method": "UPI"})
    assert response.status_code == 200
    assert response.get_json()["card_no"] is None
    row = sql("SELECT card_no_encrypted, card_cvc_encrypted, card_last4 FROM payments WHERE id = %s", (payment["id"],))
    assert row == [{"card_no_encrypted": None, "card_cvc_encrypted": None, "card_last4": None}]


def test_switching_to_a_card_method_needs_the_card(client, make_payment):
    payment = make_payment(payment_method="UPI", card_no=None, card_expiry=None, card_cvc=None)
    response = client.patch(f"/payments/{payment['id']}", json={"payment_method": "Credit Card"})
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"card_no", "card_expiry", "card_cvc"}


def test_a_new_amount_must_fit_the_currency(client, make_payment):
    payment = make_payment()
    response = client.patch(f"/payments/{payment['id']}", json={"currency": "JPY", "amount": "10.5"})
    assert response.status_code == 422
    assert "amount" in response.get_json()["errors"]


@pytest.mark.parametrize(
    "changes",
    [{"amount": 1}, {"currency": "USD"}, {"user_id": 1}, {"payment_method": "UPI"}, {"card_no": "5555555555554444"}],
)
def test_after_pending_only_status_and_description_may_change(client, make_payment, changes):
    payment = make_payment(status="completed")
    response = client.patch(f"/payments/{payment['id']}", json=changes)
    assert response.status_code == 409
    assert client.get(f"/payments/{payment['id']}").get_json() == payment


def test_after_pending_the_description_may_change_and_same_values_are_no_change(client, make_payment):
    payment = make_payment(status="completed")
    same = {"amount": "500", "currency": "inr", "card_no": "4111111111111111", "user_id": payment["user_id"]}
    response = client.patch(f"/payments/{payment['id']}", json={**same, "description": "receipt sent"})
    assert response.status_code == 200
    assert response.get_json()["description"] == "receipt sent"


def test_a_cvc_cannot_be_given_after_pending(client, make_payment):
    payment = make_payment(status="completed")
    assert client.patch(f"/payments/{payment['id']}", json={"card_cvc": "123"}).status_code == 409


def test_an_update_with_no_field_or_a_read_only_field_is_422(client, make_payment):
    payment = make_payment()
    assert client.patch(f"/payments/{payment['id']}", json={}).status_code == 422
    response = client.patch(f"/payments/{payment['id']}", json={"card_brand": "amex"})
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"card_brand": "is read-only"}


def test_payments_are_listed_with_filters_and_keyset_pages(client, make_user, make_payment):
    user = make_user()
    pending = [make_payment(user_id=user["id"]) for _ in range(3)]
    done = make_payment(user_id=user["id"], status="completed")
    response = client.get(f"/payments?user_id={user['id']}&status=PENDING&limit=2")
    assert response.status_code == 200
    assert [p["id"] for p in response.get_json()] == [pending[0]["id"], pending[1]["id"]]
    assert response.headers["Link"] == (
        f'<http://localhost/payments?user_id={user["id"]}&status=pending&limit=2&after={pending[1]["id"]}>; rel="next"'
    )
    rest = client.get(f"/payments?user_id={user['id']}&status=pending&limit=2&after={pending[1]['id']}")
    assert [p["id"] for p in rest.get_json()] == [pending[2]["id"]]
    assert "Link" not in rest.headers
    completed = client.get(f"/payments?user_id={user['id']}&status=completed").get_json()
    assert [p["id"] for p in completed] == [done["id"]]
    assert all(p["card_no"] == MASKED and "card_cvc" not in p for p in response.get_json())


def test_payments_are_filtered_by_card_fingerprint(client, make_payment):
    card = "6011111111111117"
    first, second = make_payment(card_no=card), make_payment(card_no=card)
    response = client.get(f"/payments?card_fingerprint={first['card_fingerprint']}")
    assert [p["id"] for p in response.get_json()] == [first["id"], second["id"]]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=abc",
        "limit=-1",
        "limit=",
        "after=-1",
        "after=x",
        "user_id=0",
        "user_id=abc",
        "status=done",
        "card_fingerprint=xyz",
    ],
)
def test_a_bad_list_parameter_is_400(client, query):
    response = client.get(f"/payments?{query}")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


def test_the_default_page_holds_100_and_the_maximum_1000(client, make_user, make_payment):
    assert client.get("/payments?limit=1000").status_code == 200
    assert client.get("/users?limit=1").status_code == 200


@pytest.mark.parametrize("text", ["card 4111111111111111", "4111-1111-1111-1111 thanks", "pay 3782 822463 10005"])
def test_a_card_number_in_free_text_is_refused_and_not_echoed(client, make_user, text):
    response = client.post("/payments", json=card_payment(make_user()["id"], description=text))
    assert response.status_code == 422
    assert response.get_json()["errors"]["description"] == "must not contain a card number"
    assert "1111" not in response.get_data(as_text=True).replace("XXXX", "")


def test_ordinary_numbers_in_free_text_are_fine(client, make_user):
    response = client.post("/payments", json=card_payment(make_user()["id"], description="Invoice 2026-0042, 3 items"))
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"amount": "\u0661\u0662"}, "amount"),
        ({"amount": "12\u00a0"}, "amount"),
        ({"card_no": "4111111111111111" + " " * 48 + "junk"}, "card_no"),
        ({"card_no": "4111 1111 1111 1111" + " " * 30}, "card_no"),
    ],
)
def test_non_ascii_digits_and_padding_are_refused(client, make_user, fields, field):
    response = client.post("/payments", json=card_payment(make_user()["id"], **fields))
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


@pytest.mark.parametrize("text", ["card 4111.1111.1111.1111", "4111/1111/1111/1111", "4111  1111  1111  1111"])
def test_a_card_number_with_other_separators_in_free_text_is_refused(client, make_user, text):
    response = client.post("/payments", json=card_payment(make_user()["id"], description=text))
    assert response.status_code == 422
