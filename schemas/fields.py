"""Field validators shared by the resource schemas: each returns a clean value or raises FieldError."""

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from utils.cards import holds_card_number, redact_digits
from utils.errors import ValidationFailed

MAX_ID = 2**63 - 1
# C0 and C1 controls and DEL; the first keeps tab and line breaks (\n, \r) for multi-line text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # Unicode category Cs: never valid text on its own
_NUMERIC_STRING = re.compile(r" *[+-]?([0-9]{1,40}(\.[0-9]{0,40})?|\.[0-9]{1,40}) *", re.ASCII)


class FieldError(ValueError):
    """One field's value is not acceptable; the message says why, never echoing the value."""


Validator = Callable[[Any], Any]


def require_string(value: Any) -> str:
    """Return the value if it is a string of valid Unicode text."""
    if not isinstance(value, str):
        raise FieldError("must be a string")
    if _SURROGATE.search(value):
        raise FieldError("must be valid Unicode text")
    return value


def text(min_length: int, max_length: int, *, strip: bool = True, multiline: bool = False) -> Validator:
    """Build a validator for a string of bounded length with no control characters."""

    def validate(value: Any) -> str:
        value = require_string(value)
        if strip:
            value = value.strip()
        if not min_length <= len(value) <= max_length:
            raise FieldError(f"must be {min_length} to {max_length} characters long")
        if (_CONTROL if multiline else _ANY_CONTROL).search(value):
            raise FieldError("must not contain control characters")
        if holds_card_number(value):
            raise FieldError("must not contain a card number")
        return value

    return validate


def nullable(validator: Validator) -> Validator:
    """Let a validator accept null, which clears an optional field."""

    def validate(value: Any) -> Any:
        return None if value is None else validator(value)

    return validate


def positive_integer(value: Any) -> int:
    """Return a JSON integer that is at least 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError("must be an integer")
    if not 1 <= value <= MAX_ID:
        raise FieldError("must be a positive integer")
    return value


def decimal_number(value: Any) -> Decimal:
    """Return a finite decimal from a JSON number or numeric string (not a boolean)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise FieldError("must be a number or a numeric string")
    if isinstance(value, str) and not _NUMERIC_STRING.fullmatch(value):
        raise FieldError("must be a number or a numeric string")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation as error:
        raise FieldError("must be a number or a numeric string") from error
    if not number.is_finite():
        raise FieldError("must be a finite number")
    return number


def choice(options: tuple[str, ...]) -> Validator:
    """Build a case-insensitive validator for one of `options`, returned in canonical form."""
    canonical = {option.casefold(): option for option in options}

    def validate(value: Any) -> str:
        value = require_string(value).strip()
        # ASCII only: casefold() would also take "caſh" (a long s) for "Cash".
        option = canonical.get(value.casefold()) if value.isascii() else None
        if option is None:
            raise FieldError("must be one of: " + ", ".join(options))
        return option

    return validate


def collect_fields(
    data: Mapping[str, Any],
    validators: Mapping[str, Validator],
    *,
    required: tuple[str, ...] = (),
    read_only: tuple[str, ...] = (),
) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate every field of `data`; return the clean values and a message per bad field."""
    errors = {}
    for name in data:
        if name in read_only:
            errors[name] = "is read-only"
        elif name not in validators:
            errors[_printable_name(name)] = "is not a known field"
    for name in required:
        if data.get(name) is None:
            errors[name] = "is required"
    clean = {}
    for name, validator in validators.items():
        if name in data and name not in errors:
            try:
                clean[name] = validator(data[name])
            except FieldError as error:
                errors[name] = str(error)
    return clean, errors


def _printable_name(name: str) -> str:
    """Return a client's field name fit to echo in an error: cut short, digit runs masked, valid Unicode."""
    return _SURROGATE.sub("\ufffd", redact_digits(name[:64]))


def load_fields(data: Mapping[str, Any], validators: Mapping[str, Validator], **rules: tuple[str, ...]) -> dict:
    """Validate every field of `data`, raising one ValidationFailed that names each bad field."""
    clean, errors = collect_fields(data, validators, **rules)
    if errors:
        raise ValidationFailed(errors=errors)
    return clean
