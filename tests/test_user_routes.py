"""The /users resource, through the API, checked against the database."""

import secrets

import pytest

from tests.conftest import HEX_TO_LETTERS, ISO_UTC, unique_email


def test_creating_a_user_with_the_seed_sample_returns_201_and_location(client, sql):
    email = unique_email()
    body = {"name": "John Doe", "email": email, "phone": "1234567890", "country": "India"}
    response = client.post("/users", json=body)
    assert response.status_code == 201
    user = response.get_json()
    assert response.headers["Location"] == f"/users/{user['id']}"
    assert {k: user[k] for k in body} == body
    assert ISO_UTC.fullmatch(user["created_at"]) and ISO_UTC.fullmatch(user["updated_at"])
    assert sql("SELECT name, email FROM users WHERE id = %s", (user["id"],)) == [{"name": "John Doe", "email": email}]


def test_email_is_stored_lower_case_and_name_trimmed(client):
    email = unique_email()
    response = client.post("/users", json={"name": "  Ann  ", "email": email.upper()})
    assert response.status_code == 201
    assert response.get_json()["email"] == email
    assert response.get_json()["name"] == "Ann"
    assert response.get_json()["phone"] is None


def test_a_duplicate_email_is_409_whatever_its_case(client, make_user):
    user = make_user()
    response = client.post("/users", json={"name": "Other", "email": user["email"].upper()})
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "1 to 100"),
        ("name", "   ", "1 to 100"),
        ("name", "x" * 101, "1 to 100"),
        ("name", 42, "string"),
        ("name", None, "required"),
        ("name", "bad\x00name", "control"),
        ("email", "not-an-email", "valid email"),
        ("email", "a@b", "valid email"),
        ("email", "x" * 250 + "@example.com", "254"),
        ("email", ["a@example.com"], "string"),
        ("phone", "12345", "7 to 15"),
        ("phone", "1234567890123456", "7 to 15"),
        ("phone", "12345abc90", "7 to 15"),
        ("phone", "12+34567890", "7 to 15"),
        ("phone", 1234567890, "string"),
        ("country", "I", "2 to 64"),
        ("country", "x" * 65, "2 to 64"),
        ("id", 5, "read-only"),
        ("created_at", "2026-01-01T00:00:00Z", "read-only"),
        ("nickname", "jd", "not a known field"),
    ],
)
def test_an_invalid_user_field_is_422_naming_the_field(client, sql, field, value, message):
    email = unique_email()
    body = {"name": "Valid Name", "email": email, field: value}
    response = client.post("/users", json=body)
    assert response.status_code == 422
    problem = response.get_json()
    assert response.mimetype == "application/problem+json"
    assert message in problem["errors"][field]
    assert sql("SELECT id FROM users WHERE email = %s", (email,)) == []


@pytest.mark.parametrize("phone", ["+91 (123) 456-7890", "1234567", "+123456789012345", "123-456-7890"])
def test_phone_numbers_in_common_forms_are_accepted(client, phone):
    response = client.post("/users", json={"name": "P", "email": unique_email(), "phone": phone})
    assert response.status_code == 201
    assert response.get_json()["phone"] == phone


def test_a_missing_required_field_names_each_one(client):
    response = client.post("/users", json={})
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"name", "email"}


def test_getting_a_user(client, make_user):
    user = make_user()
    response = client.get(f"/users/{user['id']}")
    assert response.status_code == 200
    assert response.get_json() == user


@pytest.mark.parametrize("user_id", ["0", "-1", "abc", "1.5", "99999999999999999999", "%20"])
def test_an_id_that_is_not_a_positive_integer_is_404(client, user_id):
    response = client.get(f"/users/{user_id}")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_an_unknown_user_is_404(client):
    assert client.get("/users/999999999").status_code == 404


@pytest.mark.parametrize("method", ["put", "patch"])
def test_updating_changes_only_the_fields_given(client, sql, make_user, method):
    user = make_user()
    response = getattr(client, method)(f"/users/{user['id']}", json={"country": "France"})
    assert response.status_code == 200
    assert response.get_json() == {**user, "country": "France", "updated_at": response.get_json()["updated_at"]}
    assert sql("SELECT country, name FROM users WHERE id = %s", (user["id"],)) == [
        {"country": "France", "name": user["name"]}
    ]


def test_an_optional_field_can_be_cleared_with_null(client, make_user):
    user = make_user()
    response = client.put(f"/users/{user['id']}", json={"phone": None})
    assert response.status_code == 200
    assert response.get_json()["phone"] is None


def test_an_update_with_no_field_is_422(client, make_user):
    user = make_user()
    assert client.put(f"/users/{user['id']}", json={}).status_code == 422


def test_an_update_to_null_name_is_422_and_changes_nothing(client, sql, make_user):
    user = make_user()
    response = client.put(f"/users/{user['id']}", json={"name": None, "country": "Spain"})
    assert response.status_code == 422
    assert "name" in response.get_json()["errors"]
    assert sql("SELECT country FROM users WHERE id = %s", (user["id"],)) == [{"country": "India"}]


def test_updating_to_another_users_email_is_409(client, make_user):
    first, second = make_user(), make_user()
    response = client.patch(f"/users/{second['id']}", json={"email": first["email"]})
    assert response.status_code == 409


def test_updating_an_unknown_user_is_404(client):
    assert client.put("/users/999999999", json={"name": "Nobody"}).status_code == 404


def test_deleting_a_user_is_204_and_removes_the_row(client, sql, make_user):
    user = make_user()
    response = client.delete(f"/users/{user['id']}")
    assert response.status_code == 204
    assert response.data == b""
    assert sql("SELECT id FROM users WHERE id = %s", (user["id"],)) == []
    assert client.get(f"/users/{user['id']}").status_code == 404


def test_deleting_a_user_with_payments_is_409_and_keeps_both(client, sql, make_payment):
    payment = make_payment()
    response = client.delete(f"/users/{payment['user_id']}")
    assert response.status_code == 409
    assert response.get_json()["type"] == "/problems/user-has-payments"
    assert sql("SELECT id FROM payments WHERE id = %s", (payment["id"],)) == [{"id": payment["id"]}]


def test_deleting_an_unknown_user_is_404(client):
    assert client.delete("/users/999999999").status_code == 404


def test_users_are_listed_in_pages_with_a_next_link(client, make_user):
    first = make_user()
    created = [first, make_user(), make_user()]
    response = client.get(f"/users?limit=2&after={first['id'] - 1}")
    assert response.status_code == 200
    assert [user["id"] for user in response.get_json()] == [created[0]["id"], created[1]["id"]]
    link = response.headers["Link"]
    assert link == f'<http://localhost/users?limit=2&after={created[1]["id"]}>; rel="next"'
    last_page = client.get(f"/users?limit=2&after={created[1]['id']}")
    assert [user["id"] for user in last_page.get_json()] == [created[2]["id"]]
    assert "Link" not in last_page.headers


def test_a_users_payments_are_listed(client, make_user, make_payment):
    user = make_user()
    payments = [make_payment(user_id=user["id"]) for _ in range(3)]
    make_payment()
    response = client.get(f"/users/{user['id']}/payments?limit=2")
    assert [p["id"] for p in response.get_json()] == [payments[0]["id"], payments[1]["id"]]
    assert f"/users/{user['id']}/payments?limit=2&after={payments[1]['id']}" in response.headers["Link"]


def test_the_payments_of_an_unknown_user_are_404(client):
    assert client.get("/users/999999999/payments").status_code == 404


def test_a_card_number_in_a_name_or_email_is_refused(client):
    response = client.post("/users", json={"name": "4111 1111 1111 1111", "email": "4111111111111111@example.com"})
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"name", "email"}


@pytest.mark.parametrize("phone", ["378282246310005", "3782 822463 10005", "+378282246310005"])
def test_a_card_number_as_a_phone_number_is_refused_and_nothing_is_stored(client, sql, phone):
    email = unique_email()
    response = client.post("/users", json={"name": "Typo", "email": email, "phone": phone})
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"phone": "must not contain a card number"}
    assert "378282246310005" not in response.get_data(as_text=True)
    assert sql("SELECT id FROM users WHERE email = %s", (email,)) == []


@pytest.mark.parametrize(
    ("name", "email"),
    [
        ("User 1764230400123", "john.doe+1795792105-8104-20672@example.com"),
        ("Run 1764230400123456789", "run-1764230400123456789@example.com"),
        ("Ticket 0000000000000000", "order-1764230400123@example.com"),
    ],
)
def test_timestamps_ids_and_emails_with_long_numbers_are_accepted(client, name, email):
    response = client.post("/users", json={"name": name, "email": email})
    assert response.status_code == 201, response.get_json()


def test_an_update_that_changes_nothing_keeps_updated_at(client, sql, make_user):
    user = make_user()
    sql("UPDATE users SET updated_at = '2026-01-01 00:00:00' WHERE id = %s", (user["id"],))
    response = client.patch(f"/users/{user['id']}", json={"email": user["email"].upper(), "name": user["name"]})
    assert response.status_code == 200
    assert response.get_json()["updated_at"] == "2026-01-01T00:00:00Z"


def test_ids_with_leading_zeros_are_404(client, make_user):
    user = make_user()
    assert client.get(f"/users/0{user['id']}").status_code == 404
    assert client.get(f"/payments?user_id=0{user['id']}").status_code == 400


def test_a_204_and_an_options_answer_carry_no_content_type(client, make_user):
    response = client.delete(f"/users/{make_user()['id']}")
    assert response.status_code == 204
    assert "Content-Type" not in response.headers
    options = client.options("/users")
    assert "Content-Type" not in options.headers and "GET" in options.headers["Allow"]


def test_accented_and_plain_emails_are_different_users(client):
    local = secrets.token_hex(4).translate(HEX_TO_LETTERS)
    first = client.post("/users", json={"name": "A", "email": f"jose{local}@example.com"})
    second = client.post("/users", json={"name": "B", "email": f"josé{local}@example.com"})
    assert (first.status_code, second.status_code) == (201, 201)
