"""Loading webhook endpoint requests, and dumping endpoints, deliveries and attempts."""

from typing import Any

from flask import current_app

from schemas.fields import FieldError, load_fields, nullable, text
from services.events import SUBSCRIBABLE_TYPES
from services.webhooks import UrlRefused, check_url
from utils.errors import ValidationFailed

READ_ONLY = ("id", "secret", "disabled_reason", "failing_since", "created_at", "updated_at")
MAX_KEEP_PREVIOUS_SECONDS = 24 * 3600


def webhook_url(value: Any) -> str:
    """Return a URL a webhook may go to: https (or allowed http), to a public address or an allowed host."""
    url = text(1, 2048, strip=True)(value)
    config = current_app.config
    try:
        return check_url(url, allow_http=config["WEBHOOK_ALLOW_HTTP"], allowed_hosts=config["WEBHOOK_ALLOWED_HOSTS"])
    except UrlRefused as error:
        raise FieldError(str(error)) from error


def event_types(value: Any) -> str:
    """Return the subscribed types as stored: `*`, or the distinct types comma-separated."""
    if value == ["*"]:
        return "*"
    if (
        not isinstance(value, list)
        or not value
        or any(not isinstance(item, str) or item not in SUBSCRIBABLE_TYPES for item in value)
        or len(set(value)) != len(value)
    ):
        raise FieldError(
            f'must be ["*"] or a non-empty array of distinct event types from: {", ".join(SUBSCRIBABLE_TYPES)}'
        )
    return ",".join(value)


def flag(value: Any) -> bool:
    """Return a JSON boolean."""
    if not isinstance(value, bool):
        raise FieldError("must be true or false")
    return value


def keep_seconds(value: Any) -> int:
    """Return how long a rotated-out secret still signs: whole seconds, 0 to a day."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_KEEP_PREVIOUS_SECONDS:
        raise FieldError(f"must be a whole number of seconds from 0 to {MAX_KEEP_PREVIOUS_SECONDS}")
    return value


def optional_id(value: Any) -> int:
    """Return a positive integer id."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**63 - 1:
        raise FieldError("must be a positive integer")
    return value


VALIDATORS = {"url": webhook_url, "event_types": event_types, "description": nullable(text(1, 255))}
CHANGE_VALIDATORS = {**VALIDATORS, "enabled": flag}


def load_new_endpoint(data: dict) -> dict:
    """Validate a create request; return the endpoint's fields."""
    endpoint = load_fields(data, VALIDATORS, required=("url", "event_types"), read_only=READ_ONLY)
    return {"description": None, **endpoint}


def load_endpoint_changes(data: dict) -> dict:
    """Validate a PATCH; return the fields to change (at least one)."""
    changes = load_fields(data, CHANGE_VALIDATORS, read_only=READ_ONLY)
    if not changes:
        raise ValidationFailed("Give at least one field to change.", errors={"body": "has no field to change"})
    return changes


def load_rotation(data: dict) -> int:
    """Validate a rotate-secret request; return how many seconds the old secret keeps signing."""
    return load_fields(data, {"keep_previous_for": keep_seconds}).get("keep_previous_for", 0)


def load_redelivery(data: dict) -> int | None:
    """Validate a redeliver request; return the one endpoint it names, or None for all of the event's."""
    return load_fields(data, {"endpoint_id": optional_id}).get("endpoint_id")


def dump_endpoint(endpoint: dict) -> dict:
    """Return the public representation of an endpoint row (never its secret)."""
    types = endpoint["event_types"]
    return {
        "id": endpoint["id"],
        "url": endpoint["url"],
        "description": endpoint["description"],
        "event_types": ["*"] if types == "*" else types.split(","),
        "enabled": bool(endpoint["enabled"]),
        "disabled_reason": endpoint["disabled_reason"],
        "failing_since": endpoint["failing_since"],
        "created_at": endpoint["created_at"],
        "updated_at": endpoint["updated_at"],
    }


def dump_delivery(delivery: dict, attempts: list[dict]) -> dict:
    """Return the public representation of a delivery with its attempts."""
    pending = delivery["status"] == "pending"
    return {
        "id": delivery["id"],
        "event_id": delivery["event_id"],
        "event_type": delivery["event_type"],
        "status": delivery["status"],
        "attempt_count": delivery["attempts"],
        "next_attempt_at": delivery["next_attempt_at"] if pending else None,
        "created_at": delivery["created_at"],
        "finished_at": delivery["finished_at"],
        "attempts": [dump_attempt(attempt) for attempt in attempts],
    }


def dump_attempt(attempt: dict) -> dict:
    """Return the public representation of one attempt."""
    return {
        "attempted_at": attempt["attempted_at"],
        "status_code": attempt["status_code"],
        "error": attempt["error"],
        "duration_ms": attempt["duration_ms"],
    }
