"""Loading payment input and dumping payment rows."""

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import iso4217

from schemas.fields import (
    FieldError,
    choice,
    collect_fields,
    decimal_number,
    load_fields,
    nullable,
    positive_integer,
    require_string,
    text,
)
from utils.cards import card_brand, luhn_valid
from utils.crypto_utils import mask_card
from utils.errors import ValidationFailed
from utils.formatting import format_amount

PAYMENT_METHODS = ("Credit Card", "Debit Card", "UPI", "Net Banking", "Wallet", "Bank Transfer", "Cash")
CARD_METHODS = ("Credit Card", "Debit Card")
STATUSES = ("pending", "completed", "failed", "cancelled", "refunded")
CARD_FIELDS = ("card_no", "card_expiry", "card_cvc")
READ_ONLY = ("id", "card_brand", "card_fingerprint", "created_at", "updated_at")
REQUIRED = ("user_id", "amount", "currency", "payment_method")
AMOUNT_LIMIT = Decimal(10) ** 12

# Active ISO 4217 codes and their minor units; funds and metals without a minor unit are left out.
CURRENCY_DECIMALS = {currency.code: currency.exponent for currency in iso4217.Currency if currency.exponent is not None}


def currency_code(value: Any) -> str:
    """Return an active ISO 4217 currency code, upper-case."""
    code = require_string(value).strip()
    # ASCII first: "ınr" (a dotless ı) upper-cases to "INR".
    code = code.upper() if code.isascii() else code
    if code not in CURRENCY_DECIMALS:
        raise FieldError("must be an active ISO 4217 currency code, such as INR, USD or JPY")
    return code


def card_number(value: Any) -> str:
    """Return the digits of a Luhn-valid card number of 12-19 digits."""
    text = require_string(value)
    if len(text) > 40:
        raise FieldError("must be 12 to 19 digits (spaces and dashes allowed)")
    digits = re.sub(r"[ \-]", "", text)
    if not re.fullmatch(r"[0-9]{12,19}", digits, re.ASCII):
        raise FieldError("must be 12 to 19 digits (spaces and dashes allowed)")
    if not luhn_valid(digits):
        raise FieldError("is not a valid card number (Luhn check failed)")
    return digits


def card_expiry(value: Any) -> date:
    """Return the expiry date from YYYY-MM-DD, YYYY-MM or MM/YY; an expired card is refused."""
    expiry = _parse_expiry(require_string(value).strip())
    today = datetime.now(UTC).date()
    if (expiry.year, expiry.month) < (today.year, today.month):
        raise FieldError("the card has expired")
    return expiry


def _parse_expiry(value: str) -> date:
    """Parse one of the accepted expiry forms into a date."""
    forms = (
        (r"(\d{4})-(\d{2})-(\d{2})", lambda y, m, d: (y, m, d)),
        (r"(\d{4})-(\d{2})", lambda y, m: (y, m, 1)),
        (r"(\d{2})/(\d{2})", lambda m, y: (2000 + y, m, 1)),
    )
    for pattern, to_ymd in forms:
        match = re.fullmatch(pattern, value, re.ASCII)
        if match:
            try:
                return date(*to_ymd(*map(int, match.groups())))
            except ValueError as error:
                raise FieldError("is not a real date") from error
    raise FieldError("must be YYYY-MM-DD, YYYY-MM or MM/YY")


def card_cvc(value: Any) -> str:
    """Return a CVC: a string of 3 or 4 digits (a number would lose leading zeros)."""
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{3,4}", value, re.ASCII):
        raise FieldError("must be a string of 3 digits (4 for American Express)")
    return value


def amount_value(value: Any) -> Decimal:
    """Return a positive amount below 10^12."""
    amount = decimal_number(value)
    if amount <= 0:
        raise FieldError("must be greater than 0")
    if amount >= AMOUNT_LIMIT:
        raise FieldError("must be less than 1000000000000")
    return amount


VALIDATORS = {
    "user_id": positive_integer,
    "amount": amount_value,
    "currency": currency_code,
    "payment_method": choice(PAYMENT_METHODS),
    "card_no": card_number,
    "card_expiry": card_expiry,
    "card_cvc": card_cvc,
    "status": choice(STATUSES),
    "description": nullable(text(0, 255, strip=False, multiline=True)),
}


def amount_problem(amount: Decimal, currency: str) -> str | None:
    """Say why an amount cannot be expressed in the currency's minor unit, if it cannot."""
    decimals = CURRENCY_DECIMALS[currency]
    if amount != amount.quantize(Decimal(1).scaleb(-decimals)):
        return f"must have at most {decimals} decimal places in {currency}"
    return None


def cvc_problem(cvc: str, brand: str) -> str | None:
    """Say why a CVC does not fit the card's brand, if it does not."""
    expected = 4 if brand == "amex" else 3
    if len(cvc) != expected:
        return f"must be {expected} digits for this card"
    return None


def _drop_null_card_fields(data: dict) -> dict:
    """Treat a null card field as absent, so `"card_no": null` fits any payment method."""
    return {name: value for name, value in data.items() if not (name in CARD_FIELDS and value is None)}


def load_new_payment(data: dict) -> dict:
    """Validate a create request; return the payment's fields (card data still in clear)."""
    data = _drop_null_card_fields(data)
    if data.get("status", "") is None:
        del data["status"]
    payment, errors = collect_fields(data, VALIDATORS, required=REQUIRED, read_only=READ_ONLY)
    payment = {"status": "pending", "description": None, **payment}
    if "payment_method" in payment:
        card_errors = _card_errors(payment, required=CARD_FIELDS)
        errors.update({name: message for name, message in card_errors.items() if name not in errors})
    if "amount" in payment and "currency" in payment:
        problem = amount_problem(payment["amount"], payment["currency"])
        if problem:
            errors["amount"] = problem
    if errors:
        raise ValidationFailed(errors=errors)
    return payment


def load_payment_changes(data: dict) -> dict:
    """Validate an update request field by field; return the fields given (at least one)."""
    changes = load_fields(_drop_null_card_fields(data), VALIDATORS, read_only=READ_ONLY)
    if not changes:
        raise ValidationFailed("Give at least one field to change.", errors={"body": "has no field to change"})
    return changes


def _card_errors(payment: dict, *, required: tuple[str, ...]) -> dict:
    """Check the card fields against the payment method: required for cards, refused otherwise."""
    if payment["payment_method"] not in CARD_METHODS:
        return {name: "is only accepted for card payments" for name in CARD_FIELDS if name in payment}
    errors = {name: "is required for card payments" for name in required if name not in payment}
    if "card_cvc" in payment and "card_no" in payment:
        problem = cvc_problem(payment["card_cvc"], card_brand(payment["card_no"]))
        if problem:
            errors["card_cvc"] = problem
    return errors


def check_card_changes(payment: dict, required: tuple[str, ...], stored_brand: str | None) -> None:
    """Check the card fields of a change to a pending payment; raise ValidationFailed if wrong."""
    errors = _card_errors(payment, required=required)
    if "card_cvc" in payment and "card_no" not in payment and stored_brand and "card_cvc" not in errors:
        problem = cvc_problem(payment["card_cvc"], stored_brand)
        if problem:
            errors["card_cvc"] = problem
    if errors:
        raise ValidationFailed(errors=errors)


def dump_payment(payment: dict) -> dict:
    """Return the public representation of a payment row: card masked, CVC never.

    Dates and times stay `date`/`datetime`: the JSON provider writes them (see utils/json_provider.py).
    """
    last4 = payment["card_last4"]
    return {
        "id": payment["id"],
        "user_id": payment["user_id"],
        # A currency withdrawn from ISO 4217 after it was stored still reads back (as 2 decimals).
        "amount": format_amount(payment["amount"], CURRENCY_DECIMALS.get(payment["currency"], 2)),
        "currency": payment["currency"],
        "payment_method": payment["payment_method"],
        "card_no": mask_card(last4) if last4 else None,
        "card_brand": payment["card_brand"],
        "card_fingerprint": payment["card_fingerprint"],
        "card_expiry": payment["card_expiry"],
        "status": payment["status"],
        "description": payment["description"],
        "created_at": payment["created_at"],
        "updated_at": payment["updated_at"],
    }
