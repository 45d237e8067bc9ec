"""The body of a user token request, and the token as the API returns it."""

from typing import Any

from schemas.fields import FieldError, load_fields
from services.tokens import DEFAULT_LIFETIME_SECONDS, MAX_LIFETIME_SECONDS, SCOPES


def token_scopes(value: Any) -> tuple[str, ...]:
    """Return a non-empty list of distinct user token scopes."""
    if not isinstance(value, list) or not value:
        raise FieldError(f"must be a non-empty array of scopes from: {', '.join(SCOPES)}")
    if any(not isinstance(scope, str) or scope not in SCOPES for scope in value) or len(set(value)) != len(value):
        raise FieldError(f"must list distinct scopes from: {', '.join(SCOPES)}")
    return tuple(value)


def lifetime_seconds(value: Any) -> int:
    """Return a token lifetime in whole seconds, 1 to the maximum."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIFETIME_SECONDS:
        raise FieldError(f"must be a whole number of seconds from 1 to {MAX_LIFETIME_SECONDS}")
    return value


VALIDATORS = {"scopes": token_scopes, "expires_in": lifetime_seconds}


def load_token_request(data: dict) -> dict:
    """Validate a token request; return its scopes and lifetime."""
    request = load_fields(data, VALIDATORS, required=("scopes",))
    return {"expires_in": DEFAULT_LIFETIME_SECONDS, **request}
