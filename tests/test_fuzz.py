"""Property-based fuzzing over the app: no input, however odd, gets a 5xx or leaks card data."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import unique_email

FUZZ = settings(
    max_examples=600, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck)
)
PAYMENT_FIELDS = [
    "user_id", "amount", "currency", "payment_method", "card_no", "card_expiry", "card_cvc", "status", "description",
    "id", "card_brand", "card_fingerprint", "created_at",
]  # fmt: skip
USER_FIELDS = ["name", "email", "phone", "country", "id", "created_at"]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=300),
    st.text(alphabet="0123456789 -/.+e", max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
plausible = st.sampled_from(
    [
        "4111111111111111", "4111 1111 1111 1111", "378282246310005", "5555555555554444", "4111111111111112",
        "2099-12-01", "2099-02-30", "12/99", "00/00", "2099-12", "123", "1234", "012", "INR", "jpy", "XXX",
        "Credit Card", "upi", "pending", "COMPLETED", "refunded", "1500.5", "0.001", "1e3", "-0", "1" * 40,
        1, 0, -1, 10**12, 2**63, 1.5, "\x00", "\ud800", "'; DROP TABLE payments; --",
    ]
)  # fmt: skip
field_values = st.one_of(plausible, json_values)


def bodies(fields: list[str]):
    """Build JSON objects mixing known fields, stray keys, plausible and random values."""
    keys = st.one_of(st.sampled_from(fields), st.text(max_size=10))
    return st.dictionaries(keys, field_values, max_size=len(fields) + 2)


def assert_well_handled(response) -> None:
    """Check a response is not a server error, errors are problem+json, and no card number leaks."""
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        assert response.mimetype == "application/problem+json"
    text = response.get_data(as_text=True)
    assert "4111111111111111" not in text and "5555555555554444" not in text and "378282246310005" not in text


def send_json(client, method: str, url: str, body) -> None:
    """Send a body as JSON, allowing NaN and Infinity as some clients do."""
    data = json.dumps(body, allow_nan=True)
    assert_well_handled(client.open(url, method=method, data=data, content_type="application/json"))


@FUZZ
@given(body=bodies(PAYMENT_FIELDS))
def test_fuzzed_payment_creates(client, fuzz_user, body):
    if isinstance(body.get("user_id"), str):
        body["user_id"] = fuzz_user["id"]
    send_json(client, "POST", "/payments", body)


@FUZZ
@given(body=bodies(PAYMENT_FIELDS), method=st.sampled_from(["PUT", "PATCH"]))
def test_fuzzed_payment_updates(client, fuzz_payment, body, method):
    send_json(client, method, f"/payments/{fuzz_payment['id']}", body)


@FUZZ
@given(body=bodies(USER_FIELDS), method=st.sampled_from(["POST", "PUT", "PATCH"]))
def test_fuzzed_user_writes(client, fuzz_user, body, method):
    url = "/users" if method == "POST" else f"/users/{fuzz_user['id']}"
    send_json(client, method, url, body)


@FUZZ
@given(raw=st.binary(max_size=200), path=st.sampled_from(["/users", "/payments"]))
def test_fuzzed_raw_bodies(client, raw, path):
    assert_well_handled(client.post(path, data=raw, content_type="application/json"))


no_surrogates = st.characters(exclude_categories=("Cs",))
query_values = st.one_of(
    st.text(no_surrogates, max_size=20), st.integers(-5, 10**20).map(str), plausible.map(str).filter(str.isprintable)
)


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["limit", "after", "user_id", "status", "card_fingerprint", "x"]), query_values
    ),
    path=st.sampled_from(["/payments", "/users", "/users/1/payments"]),
)
def test_fuzzed_list_queries(client, params, path):
    assert_well_handled(client.get(path, query_string=params))


@FUZZ
@given(segment=st.text(no_surrogates, max_size=30), resource=st.sampled_from(["users", "payments"]))
def test_fuzzed_ids(client, segment, resource):
    assert_well_handled(client.get(f"/{resource}/{segment}"))


@FUZZ
@given(
    key=st.text(st.characters(exclude_characters="\r\n", exclude_categories=("Cs",)), max_size=300),
    body=bodies(USER_FIELDS),
)
def test_fuzzed_idempotency_keys(client, key, body):
    body = {**body, "email": unique_email()} if "email" in body else body
    latin1_key = key.encode("latin-1", "replace").decode("latin-1")
    response = client.post("/users", json=body, headers={"Idempotency-Key": latin1_key})
    assert_well_handled(response)


def test_invalid_percent_encoded_bytes_in_queries_and_paths(client):
    for url in ("/payments?limit=%ff", "/payments?status=%c3%28", "/users/%ff", "/payments/%00", "/users?after=%e2%82"):
        assert_well_handled(client.get(url))
