"""User tokens: short-lived JWTs that let a client act for one user only (as Stripe's ephemeral keys do).

Signed with HS256 under versioned keys from JWT_SIGNING_KEYS: the newest signs, every listed one
verifies, and the header's `kid` names the version. The API both issues and checks its tokens,
so a shared secret is enough; only HS256 is accepted, which refuses `none` and any other
algorithm a forged header might name.
"""

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from models import user_model
from utils.crypto_utils import Keyring

ALGORITHM = "HS256"
ISSUER = "payments-api"
AUDIENCE = "payments-api"
SCOPES = ("users:read", "payments:read", "payments:write")
DEFAULT_LIFETIME_SECONDS = 900
MAX_LIFETIME_SECONDS = 3600
_REQUIRED_CLAIMS = ["iss", "aud", "sub", "scope", "iat", "exp", "jti"]
# A deleted user's tokens are refused by every worker within this many seconds (the API keys' bound).
LIVE_USER_SECONDS = 5.0
LIVE_USER_MAX_ENTRIES = 100_000


class InvalidToken(Exception):
    """The token is malformed, expired, badly signed, or not one of this API's."""


@dataclass(frozen=True)
class UserToken:
    """What a verified token says: whose it is and what it may do."""

    user_id: int
    scopes: frozenset[str]
    token_id: str


def mint(keyring: Keyring, user_id: int, scopes: tuple[str, ...], lifetime_seconds: int, now: datetime) -> dict:
    """Return a new token for a user with its expiry and scopes, as the API answers them."""
    expires_at = now + timedelta(seconds=lifetime_seconds)
    ordered = [scope for scope in SCOPES if scope in scopes]
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "scope": " ".join(ordered),
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": uuid.uuid4().hex,
    }
    version = keyring.current_version
    token = jwt.encode(claims, keyring.keys[version], algorithm=ALGORITHM, headers={"kid": str(version)})
    return {"token": token, "expires_at": expires_at, "scopes": ordered}


def verify(keyring: Keyring, token: str) -> UserToken:
    """Return what a token says, or raise InvalidToken whatever is wrong with it."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = keyring.keys.get(int(kid)) if isinstance(kid, str) and kid.isdecimal() and len(kid) < 4 else None
        if key is None:
            raise InvalidToken("unknown kid")
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(type(error).__name__) from None
    return _user_token(claims)


def _user_token(claims: dict) -> UserToken:
    """Check the claims a signature vouches for, which this API itself wrote."""
    subject, scope, token_id = claims["sub"], claims["scope"], claims["jti"]
    if not (isinstance(subject, str) and subject.isascii() and subject.isdecimal() and len(subject) < 20):
        raise InvalidToken("bad sub")
    if not isinstance(scope, str) or not set(scope.split()) <= set(SCOPES) or not isinstance(token_id, str):
        raise InvalidToken("bad scope")
    return UserToken(int(subject), frozenset(scope.split()), token_id)


class LiveUsers:
    """This process's recent answers to "does this token's user still exist?", so that a token costs no round trip.

    A user found is trusted for LIVE_USER_SECONDS, which bounds how long a deleted user's tokens
    keep working in another worker; the worker that deletes a user forgets it at once. A user not
    found is never cached: ids are not reused, and a token is only minted for a user who exists.
    """

    def __init__(self, seconds: float = LIVE_USER_SECONDS):
        self._seconds = seconds
        self._checked: dict[int, float] = {}
        self._lock = threading.Lock()

    def exists(self, cursor_factory, user_id: int) -> bool:
        """Return whether the user exists, from the cache when it was seen recently."""
        checked = self._checked.get(user_id)
        if checked is not None and time.monotonic() - checked < self._seconds:
            return True
        with cursor_factory() as cursor:
            found = user_model.user_exists(cursor, user_id)
        with self._lock:
            if found:
                if len(self._checked) >= LIVE_USER_MAX_ENTRIES:
                    self._checked.clear()
                self._checked[user_id] = time.monotonic()
            else:
                self._checked.pop(user_id, None)
        return found

    def forget(self, user_id: int) -> None:
        """Forget a user this process has just deleted."""
        with self._lock:
            self._checked.pop(user_id, None)
