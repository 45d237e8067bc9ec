"""Query-string filters for the payment and event lists."""

import re
from datetime import UTC, datetime

from flask import request

from models.payment_model import FILTERS
from schemas.fields import MAX_ID
from schemas.payment_schema import STATUSES
from services.events import OBJECT_TYPES, TYPES
from utils.errors import BadRequest

_FINGERPRINT = re.compile(r"[0-9a-f]{64}", re.ASCII)


def payment_filters(allowed: tuple[str, ...] = FILTERS) -> dict:
    """Read the payment list filters present in the query string, or raise 400."""
    return _read_filters({name: _PAYMENT_FILTER_PARSERS[name] for name in allowed})


def event_filters() -> dict:
    """Read the event list filters present in the query string, or raise 400."""
    return _read_filters(_EVENT_FILTER_PARSERS)


def _read_filters(parsers: dict) -> dict:
    """Parse each filter of `parsers` that the query string holds, by its name and text."""
    filters = {}
    for name, parse in parsers.items():
        value = request.args.get(name)
        if value is not None:
            filters[name] = parse(name, value)
    return filters


def _positive_id(name: str, value: str) -> int:
    """Parse an id filter: a positive integer."""
    if not re.fullmatch(r"[1-9][0-9]{0,18}", value, re.ASCII) or int(value) > MAX_ID:
        raise BadRequest(f"Query parameter {name!r} must be a positive integer.")
    return int(value)


def _status(_name: str, value: str) -> str:
    """Parse a status filter (case-insensitive)."""
    status = value.strip().lower()
    if status not in STATUSES:
        raise BadRequest("Query parameter 'status' must be one of: " + ", ".join(STATUSES) + ".")
    return status


def _card_fingerprint(_name: str, value: str) -> str:
    """Parse a card fingerprint filter: 64 hexadecimal digits."""
    fingerprint = value.strip().lower()
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise BadRequest("Query parameter 'card_fingerprint' must be 64 hexadecimal digits.")
    return fingerprint


_PAYMENT_FILTER_PARSERS = {"user_id": _positive_id, "status": _status, "card_fingerprint": _card_fingerprint}


def link_params(filters: dict) -> dict:
    """Return filters as a next-page link writes them: times in ISO 8601 UTC."""
    return {
        name: f"{value:%Y-%m-%dT%H:%M:%SZ}" if isinstance(value, datetime) else value for name, value in filters.items()
    }


def _one_of(choices: tuple[str, ...]):
    """Return a parser of a filter that takes one of `choices`."""

    def parse(name: str, value: str) -> str:
        if value not in choices:
            raise BadRequest(f"Query parameter {name!r} must be one of: {', '.join(choices)}.")
        return value

    return parse


EARLIEST, LATEST = datetime(1970, 1, 1), datetime(9998, 12, 31, 23, 59, 59)


def _moment(name: str, value: str) -> datetime:
    """Parse a time filter: ISO 8601, UTC unless it names an offset; returned as naive UTC like the stored times."""
    try:
        moment = datetime.fromisoformat(value) if value.isascii() and len(value) <= 40 else None
    except ValueError:
        moment = None
    if moment is None:
        raise BadRequest(f"Query parameter {name!r} must be an ISO 8601 time such as 2026-12-06T10:00:00Z.")
    # Any valid time is a valid bound: before 1970 or after 9998 (where converting its offset could
    # overflow) it keeps or drops every stored event, as the range's ends do.
    if not 1970 <= moment.year <= 9998:
        return EARLIEST if moment.year < 1970 else LATEST
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


_EVENT_FILTER_PARSERS = {
    "type": _one_of(TYPES),
    "object_type": _one_of(OBJECT_TYPES),
    "object_id": _positive_id,
    "created_after": _moment,
    "created_before": _moment,
}
