"""Query-string filters for payment lists."""

import re

from flask import request

from models.payment_model import FILTERS
from schemas.fields import MAX_ID
from schemas.payment_schema import STATUSES
from utils.errors import BadRequest

_FINGERPRINT = re.compile(r"[0-9a-f]{64}", re.ASCII)


def payment_filters(allowed: tuple[str, ...] = FILTERS) -> dict:
    """Read the payment list filters present in the query string, or raise 400."""
    filters = {}
    for name in allowed:
        value = request.args.get(name)
        if value is not None:
            filters[name] = _FILTER_PARSERS[name](value)
    return filters


def _user_id(value: str) -> int:
    """Parse a user id filter."""
    if not re.fullmatch(r"[1-9][0-9]{0,18}", value, re.ASCII) or int(value) > MAX_ID:
        raise BadRequest("Query parameter 'user_id' must be a positive integer.")
    return int(value)


def _status(value: str) -> str:
    """Parse a status filter (case-insensitive)."""
    status = value.strip().lower()
    if status not in STATUSES:
        raise BadRequest("Query parameter 'status' must be one of: " + ", ".join(STATUSES) + ".")
    return status


def _card_fingerprint(value: str) -> str:
    """Parse a card fingerprint filter: 64 hexadecimal digits."""
    fingerprint = value.strip().lower()
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise BadRequest("Query parameter 'card_fingerprint' must be 64 hexadecimal digits.")
    return fingerprint


_FILTER_PARSERS = {"user_id": _user_id, "status": _status, "card_fingerprint": _card_fingerprint}
