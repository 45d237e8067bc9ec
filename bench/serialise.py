"""Time the serialisation of one 100-row payment page: the app's code against suggested variants.

    .venv/bin/python -m bench.serialise

A list page spends about a quarter of its time in `dump_payment` and `jsonify` (see the profile in
bench/RESULTS.md). This measures, on the same 100 rows and in one process:
- `dump_payment` as it is, against a variant with the same output that formats times with
  `isoformat()` instead of `strftime` and quantizes amounts with a per-currency constant;
- Flask's `jsonify` as configured (the default provider sorts keys) against `sort_keys = False`.
"""

import timeit
from datetime import date, datetime
from decimal import Decimal

from flask import Flask, jsonify

from schemas.payment_schema import CURRENCY_DECIMALS, dump_payment

QUANTUM = {code: Decimal(1).scaleb(-decimals) for code, decimals in CURRENCY_DECIMALS.items()}


def sample_rows(count: int = 100) -> list[dict]:
    """Return rows as the dictionary cursor gives them."""
    return [
        {
            "id": 999_850 + index,
            "user_id": 4242,
            "amount": Decimal("1234.5600"),
            "currency": "INR",
            "payment_method": "Credit Card",
            "card_last4": "1111",
            "card_brand": "visa",
            "card_fingerprint": "ab" * 32,
            "card_expiry": date(2030, 1, 1),
            "status": "completed",
            "description": f"Order {index}",
            "created_at": datetime(2026, 1, 2, 3, 4, 5),
            "updated_at": datetime(2026, 1, 2, 3, 9, 5),
        }
        for index in range(count)
    ]


def dump_payment_suggested(payment: dict) -> dict:
    """The same output as dump_payment, with cheaper time and amount formatting."""
    last4, expiry = payment["card_last4"], payment["card_expiry"]
    return {
        "id": payment["id"],
        "user_id": payment["user_id"],
        "amount": f"{payment['amount'].quantize(QUANTUM[payment['currency']]):f}",
        "currency": payment["currency"],
        "payment_method": payment["payment_method"],
        "card_no": "XXXX-XXXX-XXXX-" + last4 if last4 else None,
        "card_brand": payment["card_brand"],
        "card_fingerprint": payment["card_fingerprint"],
        "card_expiry": expiry.isoformat() if expiry else None,
        "status": payment["status"],
        "description": payment["description"],
        "created_at": payment["created_at"].isoformat() + "Z",
        "updated_at": payment["updated_at"].isoformat() + "Z",
    }


def best_us(functions: dict, number: int = 200, rounds: int = 7) -> dict:
    """Return each function's best per-call time in µs, measured in alternation so drift hits all alike."""
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(rounds):
        for name, function in functions.items():
            best[name] = min(best[name], timeit.timeit(function, number=number) / number * 1e6)
    return best


def _jsonify_bytes(app: Flask, page: list, sort_keys: bool) -> bytes:
    """Serialise a page with the app's JSON provider, sorting keys or not."""
    app.json.sort_keys = sort_keys
    return jsonify(page).get_data()


def measure() -> dict:
    """Return the timings, in µs per 100-row page."""
    rows = sample_rows()
    assert [dump_payment_suggested(row) for row in rows] == [dump_payment(row) for row in rows]
    app = Flask(__name__)
    page = [dump_payment(row) for row in rows]
    with app.app_context():
        return best_us(
            {
                "dump_payment, as is": lambda: [dump_payment(row) for row in rows],
                "dump_payment, suggested": lambda: [dump_payment_suggested(row) for row in rows],
                "jsonify, sort_keys=True (Flask default)": lambda: _jsonify_bytes(app, page, True),
                "jsonify, sort_keys=False": lambda: _jsonify_bytes(app, page, False),
            }
        )


def main() -> None:
    """Print the timings."""
    for name, micros in measure().items():
        print(f"{name:42} {micros:8.0f} µs per 100-row page")


if __name__ == "__main__":
    main()
