"""Card-number facts: Luhn, networks by IIN and length, and card numbers in free text, refused or masked."""

import pytest

from tests.conftest import card_payment, unique_email
from utils.cards import CARD_BRANDS, card_brand, holds_card_number, luhn_valid, redact_card_numbers, redact_digits


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4111111111111111", True),
        ("4111111111111112", False),
        ("5555555555554444", True),
        ("378282246310005", True),
        ("6011111111111117", True),
        ("79927398713", True),
        ("79927398710", False),
        ("0000000000000000", True),
    ],
)
def test_luhn(number, valid):
    assert luhn_valid(number) is valid


# Real test card numbers of each network (the processors' published ones where there are any).
CARDS = [
    ("4111111111111111", "visa"),
    ("4222222222222", "visa"),
    ("4111111111111111110", "visa"),
    ("5555555555554444", "mastercard"),
    ("2223003122003222", "mastercard"),
    ("378282246310005", "amex"),
    ("371449635398431", "amex"),
    ("6011111111111117", "discover"),
    ("6011000990139424", "discover"),
    ("6445644564456445", "discover"),
    ("6500000000000000003", "discover"),
    ("6221260000000000", "discover"),
    ("6521000000000007", "rupay"),
    ("6070000000000002", "rupay"),
    ("3530111333300000", "jcb"),
    ("3566002020360505", "jcb"),
    ("30569309025904", "diners"),
    ("36227206271667", "diners"),
    ("38520000023237", "diners"),
    ("6200000000000005", "unionpay"),
    ("6205500000000000004", "unionpay"),
    ("6759649826438453", "maestro"),
    ("6304000000000000", "maestro"),
    ("5018000000000009", "maestro"),
    ("501800000009", "maestro"),
    ("6759000000000000005", "maestro"),
]


@pytest.mark.parametrize(("number", "brand"), CARDS)
def test_card_brand_is_the_network_that_issues_the_prefix_at_that_length(number, brand):
    assert card_brand(number) == brand


@pytest.mark.parametrize(
    "number",
    [
        "9999999999999995",  # no network
        "411111111117",  # Visa issues 13, 16 and 19 digits, not 12
        "412345678901233",  # nor 15
        "3412345678902",  # Amex issues 15 digits only
        "3412345678901237",
        "5555555555554",  # Mastercard issues 16 only
        "601100000000000004" + "12",  # 20 digits: no network
        "3056930902590",  # Diners: 14 to 19
        "5000000000000000",  # 50 outside Maestro's 5018, 5020 and 5038
    ],
)
def test_a_prefix_at_a_length_its_network_does_not_issue_is_unknown(number):
    assert card_brand(number) == "unknown"


def test_a_rupay_number_at_a_length_rupay_does_not_issue_falls_to_discovers_65():
    assert card_brand("65210000000000000") == "discover"


def test_the_brands_are_the_ones_the_api_has_always_returned():
    expected = ("visa", "mastercard", "amex", "discover", "rupay", "jcb", "diners", "unionpay", "maestro", "unknown")
    assert sorted(CARD_BRANDS) == sorted(expected)


def disguises(number: str) -> list[str]:
    """Return a card number as people type it: grouped, dotted, full-width, between words."""
    fours = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    return [
        number,
        fours,
        fours.replace(" ", "-"),
        fours.replace(" ", "."),
        fours.replace(" ", " -- "),
        fours.replace(" ", "\r\n\r\n"),
        number.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
        number.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),
        f"card {fours}, thanks",
        f"Ref 12: {fours}",  # a number in front, glued by separators only
        f"{fours} 12/29 123",  # expiry and CVC behind
        f"a{number}b",  # between letters, as in a hex id
    ]


@pytest.mark.parametrize("text", [text for number, _ in CARDS for text in disguises(number)])
def test_a_card_number_in_any_disguise_is_found(text):
    assert holds_card_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "3782 822463 10005",
        "Visa 4111 1111 1111 1111 exp 12/29",
        "3056 9309 0259 04",
        "6200-0000-0000-0005",
        "card no. 6759.6498.2643.8453",
    ],
)
def test_a_card_number_grouped_as_printed_on_the_card_is_found(text):
    assert holds_card_number(text)


LOOK_ALIKES = [
    "Order 3412345678902",  # 13 digits starting 34, passing Luhn: Amex numbers have 15
    "Invoice 6011111111111112",  # 16 digits starting 6011, failing Luhn
    "Invoice 6011-0000-0000-0001",
    "Invoice 6011202600426",  # 13 and 15 digits starting 6011, passing Luhn: Discover has 16 to 19
    "Invoice 601120260042014",
    "Ref 412345678901233",  # 15 digits starting 4, passing Luhn: Visa has 13, 16 or 19
    "Ref 411111111117",  # 12 digits starting 4, passing Luhn
    "Ticket 3412345678901237",  # 16 digits starting 34, passing Luhn
    "Batch 50000000000000005",  # 17 digits starting 50, passing Luhn: not a Maestro IIN
    "Run 1764230400123456789",  # a 19-digit timestamp
    "+1 (415) 555-2671",
    "+91 98765 43210",
    "+44 20 7946 0958",
    "2026-11-27T10:00:00Z",
    "27/11/2026 10:30:00",
    "INR 12,34,56,789.00 paid 2026-11-27",
    "USD 1,234,567,890.12",
    "DE89 3704 0044 0532 0130 00",  # an IBAN
    "GB82 WEST 1234 5698 7654 32",
    "5f4dcc3b5aa765d61d8327deb882cf99",  # an MD5 hex id
    "123e4567-e89b-12d3-a456-426614174000",  # a UUID
    "id a412345678901233f",  # a Luhn-valid digit run at a length no network issues, inside a hex id
    "0004111111111111111",  # a card number glued to other digits is a different number
]


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_numbers_no_one_would_call_a_card_number_are_not_found(text):
    assert not holds_card_number(text)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Bad header 4111111111111111: 1", "Bad header ****************: 1"),
        ("card 4111-1111-1111-1111.", "card ****-****-****-****."),
        ("Ref 12: 4111 1111 1111 1111 12/29", "Ref 12: **** **** **** **** 12/29"),
        ("x３７８２８２２４６３１０００５y", "x***************y"),
        ("Listening at: http://127.0.0.1:8080 (4123)", "Listening at: http://127.0.0.1:8080 (4123)"),
        ("Order 3412345678902, invoice 6011111111111112", "Order 3412345678902, invoice 6011111111111112"),
    ],
)
def test_redact_card_numbers_masks_card_numbers_only(text, masked):
    assert redact_card_numbers(text) == masked


@pytest.mark.parametrize("text", [text for number, _ in CARDS for text in disguises(number)])
def test_redact_card_numbers_leaves_no_card_number_behind(text):
    assert not holds_card_number(redact_card_numbers(text))


def test_redact_digits_still_masks_every_long_digit_run():
    assert redact_digits("order 3412345678902 at 10:30") == "order ************* at 10:30"


# Through the API: the fields that refuse card numbers, and ordinary data in them.
@pytest.mark.parametrize(
    "fields",
    [
        {"name": "John 4111 1111 1111 1111"},
        {"name": "3056-9309-0259-04"},
        {"country": "6759 6498 2643 8453"},
        {"email": "a4111111111111111b@example.com"},
        {"email": "john.3530111333300000@example.com"},
    ],
)
def test_a_user_with_a_card_number_in_free_text_is_422_without_the_digits(client, fields):
    response = client.post("/users", json={"name": "Ann", "email": unique_email(), **fields})
    assert response.status_code == 422
    field = next(iter(fields))
    assert response.get_json()["errors"][field] == "must not contain a card number"
    body = response.get_data(as_text=True)
    assert not any(group in body for group in ("4111", "3056", "6759", "3530"))


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "Order 3412345678902"},
        {"name": "Invoice 6011111111111112"},
        {"country": "Ref 412345678901233"},
        {"email": "user-5f4dcc3b5aa765d61d8327deb882cf99."},
        {"email": "user-a412345678901233f."},
        {"email": "order-3412345678902."},
    ],
)
def test_a_user_with_numbers_that_are_no_card_number_is_201(client, fields):
    body = {"name": "Ann", **fields, "email": fields.get("email", "") + unique_email()}
    response = client.post("/users", json=body)
    assert response.status_code == 201, response.get_json()
    assert {name: response.get_json()[name] for name in fields} == {name: body[name] for name in fields}


@pytest.mark.parametrize(
    ("description", "status"),
    [
        ("card 6011 1111 1111 1117", 422),
        ("paid with 6200000000000005, exp 12/29", 422),
        ("Ref 12: 3782 822463 10005", 422),
        ("Invoice 6011111111111112", 201),
        ("Order 3412345678902, 3 items", 201),
        ("Call +44 20 7946 0958 on 2026-11-27", 201),
    ],
)
def test_a_payment_description_refuses_card_numbers_only(client, make_user, description, status):
    response = client.post("/payments", json=card_payment(make_user()["id"], description=description))
    assert response.status_code == status, response.get_json()
    if status == 422:
        assert response.get_json()["errors"] == {"description": "must not contain a card number"}
        assert not any(group in response.get_data(as_text=True) for group in ("6011", "6200", "3782"))
    else:
        assert response.get_json()["description"] == description


def test_redact_digits_leaves_text_with_too_few_digits_alone_and_counts_across_runs():
    assert redact_digits("/payments/12345", min_digits=12) == "/payments/12345"
    assert redact_digits("4111 1111 1111 1111", min_digits=12) == "**** **** **** ****"
    assert redact_digits("123456-123456", min_digits=12) == "******-******"
    assert redact_digits("123456 x 123456", min_digits=12) == "123456 x 123456"
