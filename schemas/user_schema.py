"""Loading user input and dumping user rows."""

import re
from typing import Any

from email_validator import EmailNotValidError, validate_email

from schemas.fields import FieldError, load_fields, nullable, require_string, text
from utils.cards import holds_card_number, redact_digits
from utils.errors import ValidationFailed

READ_ONLY = ("id", "created_at", "updated_at")
_PHONE = re.compile(r"\+?[0-9 ()\-]+", re.ASCII)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def email_address(value: Any) -> str:
    """Return a syntactically valid email address, lower-cased."""
    value = require_string(value).strip()
    if len(value) > 254:
        raise FieldError("must be at most 254 characters long")
    try:
        # strict: also the RFC 5321 limit of 64 characters before the @.
        address = validate_email(value, check_deliverability=False, strict=True).normalized
    except EmailNotValidError as error:
        raise FieldError(f"must be a valid email address: {_unquoted(str(error))}") from error
    if holds_card_number(address):
        raise FieldError("must not contain a card number")
    return address.lower()


def _unquoted(message: str) -> str:
    """Return email-validator's explanation without the parts of the address it quotes, digit runs masked."""
    return redact_digits(_QUOTED.sub("…", message))


def phone_number(value: Any) -> str:
    """Return a phone number of 7-15 digits (optional leading +, spaces, dashes, parentheses), not a card number."""
    value = require_string(value).strip()
    digits = sum(char.isdigit() for char in value)
    if len(value) > 32 or not _PHONE.fullmatch(value) or not 7 <= digits <= 15:
        raise FieldError("must have 7 to 15 digits, an optional leading +, and only spaces, dashes or parentheses")
    # Up to 15 digits fit an Amex number: one typed into the wrong field is not stored in clear.
    if holds_card_number(value):
        raise FieldError("must not contain a card number")
    return value


VALIDATORS = {
    "name": text(1, 100),
    "email": email_address,
    "phone": nullable(phone_number),
    "country": nullable(text(2, 64)),
}


def load_new_user(data: dict) -> dict:
    """Validate a create request; return the user's fields."""
    user = load_fields(data, VALIDATORS, required=("name", "email"), read_only=READ_ONLY)
    return {"phone": None, "country": None, **user}


def load_user_changes(data: dict) -> dict:
    """Validate an update request; return the fields to change (at least one)."""
    changes = load_fields(data, VALIDATORS, read_only=READ_ONLY)
    if not changes:
        raise ValidationFailed("Give at least one field to change.", errors={"body": "has no field to change"})
    return changes


def dump_user(user: dict) -> dict:
    """Return the public representation of a user row (times as stored; the JSON provider writes them)."""
    return {
        "id": user["id"],
        "name": user["name"],
        "email": user["email"],
        "phone": user["phone"],
        "country": user["country"],
        "created_at": user["created_at"],
        "updated_at": user["updated_at"],
    }
