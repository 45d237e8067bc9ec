"""Access control: every request but the public ones needs a credential that grants its endpoint's scope.

Credentials are API keys (services/api_keys.py) and user tokens (services/tokens.py), sent as
`Authorization: Bearer <credential>`. A user token acts for its user only: `acting_user_id()`
names that user, and the routes show and change nothing of anyone else's.
"""

from dataclasses import dataclass
from functools import lru_cache

from flask import Flask, current_app, g, request

from db import autocommit
from services import api_keys, tokens
from utils.errors import InsufficientScope, Unauthorized
from utils.formatting import utc_now

# The scope each endpoint needs. An endpoint in neither this table nor PUBLIC_ENDPOINTS stops the
# app at start, so no route can be added without deciding who may call it.
ENDPOINT_SCOPES = {
    "users.list_users": "users:read",
    "users.create_user": "users:write",
    "users.get_user": "users:read",
    "users.update_user": "users:write",
    "users.delete_user": "users:write",
    "users.list_user_payments": "payments:read",
    "users.create_token": "tokens:write",
    "payments.list_payments": "payments:read",
    "payments.create_payment": "payments:write",
    "payments.get_payment": "payments:read",
    "payments.update_payment": "payments:write",
    "payments.delete_payment": "payments:write",
    "payments.list_payment_events": "events:read",
    "events.list_events": "events:read",
    "events.redeliver_event": "webhooks:manage",
    "webhooks.create_endpoint": "webhooks:manage",
    "webhooks.list_endpoints": "webhooks:manage",
    "webhooks.get_endpoint": "webhooks:manage",
    "webhooks.update_endpoint": "webhooks:manage",
    "webhooks.delete_endpoint": "webhooks:manage",
    "webhooks.rotate_secret": "webhooks:manage",
    "webhooks.list_deliveries": "webhooks:manage",
    "webhooks.send_test": "webhooks:manage",
}
# Endpoints a user token may not call even with the scope: they reach beyond its user.
API_KEY_ONLY = {"users.list_users": "list users", "users.delete_user": "delete its user"}
PUBLIC_ENDPOINTS = frozenset(
    {
        "static",
        "health",
        "flasgger.apispec",
        "flasgger.apidocs",
        "flasgger.<lambda>",  # /apidocs/index.html
        "flasgger.static",
        "flasgger.oauth_redirect",
    }
)


@dataclass(frozen=True)
class Caller:
    """Who made a request: an API key, or a user token acting for one user."""

    scopes: frozenset[str]
    api_key_id: int | None = None
    user_id: int | None = None
    token_id: str | None = None

    def actor(self) -> dict:
        """Return how events record this caller."""
        if self.api_key_id is not None:
            return {"type": "api_key", "id": self.api_key_id}
        return {"type": "user_token", "user_id": self.user_id, "token_id": self.token_id}


def init_app(app: Flask) -> None:
    """Check every request's credential, and refuse to start with a route whose scope is not decided."""
    undecided = {rule.endpoint for rule in app.url_map.iter_rules()} - ENDPOINT_SCOPES.keys() - PUBLIC_ENDPOINTS
    if undecided:
        raise RuntimeError(f"endpoints without a scope in services/access.py: {sorted(undecided)}")
    app.extensions["api_key_cache"] = api_keys.KeyCache()
    app.extensions["live_users"] = tokens.LiveUsers()
    app.before_request(authorize)


def authorize() -> None:
    """Let the request through if its credential grants its endpoint's scope; raise 401 or 403 otherwise."""
    current = request._get_current_object()  # one context lookup, not one per use of `request`
    endpoint = current.endpoint
    if current.method == "OPTIONS" or endpoint is None or endpoint in PUBLIC_ENDPOINTS:
        return
    caller = authenticate(current.environ.get("HTTP_AUTHORIZATION"))
    scope = ENDPOINT_SCOPES[endpoint]
    if scope not in caller.scopes:
        raise InsufficientScope(scope)
    if caller.user_id is not None and endpoint in API_KEY_ONLY:
        raise InsufficientScope(scope, f"A user token cannot {API_KEY_ONLY[endpoint]}; use an API key.")
    g.caller = caller


def authenticate(header: str | None) -> Caller:
    """Return the caller a bearer credential names, or raise Unauthorized (one answer whatever the reason)."""
    scheme, _, credential = (header or "").strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise Unauthorized(credential_sent=False)
    if credential.startswith(api_keys.KEY_PREFIX):
        return _api_key_caller(credential)
    return _token_caller(credential)


def _api_key_caller(key: str) -> Caller:
    """Return the caller of a live API key."""
    cache = current_app.extensions["api_key_cache"]
    record = cache.lookup(autocommit, key)
    if record is None or record.revoked or (record.expires_at is not None and record.expires_at <= utc_now()):
        raise Unauthorized(credential_sent=True)
    cache.note_use(autocommit, record.id)
    return _key_caller(record.scopes, record.id)


@lru_cache(maxsize=1024)
def _key_caller(scopes: frozenset[str], api_key_id: int) -> Caller:
    """Return the (immutable, so shared) caller of an API key."""
    return Caller(scopes=scopes, api_key_id=api_key_id)


def _token_caller(token: str) -> Caller:
    """Return the caller of a valid user token whose user still exists."""
    try:
        verified = tokens.verify(current_app.extensions["jwt_keys"], token)
    except tokens.InvalidToken:
        raise Unauthorized(credential_sent=True) from None
    if not current_app.extensions["live_users"].exists(autocommit, verified.user_id):
        raise Unauthorized(credential_sent=True)
    return Caller(scopes=verified.scopes, user_id=verified.user_id, token_id=verified.token_id)


def forget_user(user_id: int) -> None:
    """Refuse a deleted user's tokens in this process from now on (other workers: within seconds)."""
    current_app.extensions["live_users"].forget(user_id)


def current_caller() -> Caller:
    """Return the caller of the request being served."""
    return g.caller


def acting_user_id() -> int | None:
    """Return the user a user token acts for, or None for an API key (which may act for anyone)."""
    return g.caller.user_id


def may_see_user(user_id: int) -> bool:
    """Return whether the caller may see or change this user."""
    acting = g.caller.user_id
    return acting is None or acting == user_id


def may_grant(scopes: tuple[str, ...]) -> str | None:
    """Return the first scope the caller would grant but does not hold itself, or None."""
    return next((scope for scope in scopes if scope not in g.caller.scopes), None)
