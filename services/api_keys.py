"""API keys for the operator's back-end services: made, looked up (cached per process), revoked.

A key reads `payapi_sk_` + 40 random base62 characters (238 bits from the OS's CSPRNG) + a
6-character base62 CRC-32 of them. The fixed prefix lets secret scanners find a leaked key, and
the checksum lets them (and this API) tell a real key from a typo without a database lookup, as
GitHub's tokens do. Only the SHA-256 of a key is stored; its first characters are kept as a
public prefix so that an operator can tell keys apart.
"""

import hashlib
import hmac
import re
import secrets
import threading
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from db import table_required
from models import api_key_model

KEY_PREFIX = "payapi_sk_"
SCOPES = (
    "users:read",
    "users:write",
    "payments:read",
    "payments:write",
    "events:read",
    "webhooks:manage",
    "tokens:write",
)
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_LENGTH = 40
_CHECKSUM_LENGTH = 6
_SHOWN_LENGTH = len(KEY_PREFIX) + 8
_KEY = re.compile(rf"{KEY_PREFIX}([0-9A-Za-z]{{{_RANDOM_LENGTH}}})([0-9A-Za-z]{{{_CHECKSUM_LENGTH}}})", re.ASCII)
# A revoked key is refused by every worker within this many seconds (the specification allows 10).
CACHE_SECONDS = 5.0
CACHE_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class ApiKey:
    """What a request needs to know of a key: who it is, what it may do, until when."""

    id: int
    scopes: frozenset[str]
    expires_at: datetime | None
    revoked: bool


def _base62(number: int, length: int) -> str:
    """Write a number in base62, zero-padded to `length` characters."""
    digits = []
    for _ in range(length):
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return "".join(reversed(digits))


def _checksum(random_part: str) -> str:
    """Return the base62 CRC-32 of a key's random part."""
    return _base62(zlib.crc32(random_part.encode("ascii")), _CHECKSUM_LENGTH)


def new_key() -> str:
    """Return a fresh API key."""
    random_part = "".join(secrets.choice(_BASE62) for _ in range(_RANDOM_LENGTH))
    return KEY_PREFIX + random_part + _checksum(random_part)


def is_well_formed(key: str) -> bool:
    """Return whether a string has the form of an API key, its checksum included."""
    match = _KEY.fullmatch(key)
    return match is not None and _checksum_matches(match)


def _checksum_matches(match: re.Match) -> bool:
    """Return whether a key's checksum is the one of its random part."""
    return hmac.compare_digest(_checksum(match.group(1)), match.group(2))


def hash_key(key: str) -> bytes:
    """Return the stored form of a key: its SHA-256 (the key has far too much entropy to be guessed)."""
    return hashlib.sha256(key.encode("ascii")).digest()


def create_key(cursor, name: str, scopes: tuple[str, ...], expires_in_days: int | None, now: datetime) -> str:
    """Store a new key's hash and return the key itself, which is never stored or shown again."""
    key = new_key()
    store_key(cursor, key, name, scopes, expires_in_days, now)
    return key


def store_key(cursor, key: str, name: str, scopes: tuple[str, ...], expires_in_days: int | None, now: datetime) -> None:
    """Store the record of a key: its hash, public prefix, scopes and expiry."""
    expires_at = now + timedelta(days=expires_in_days) if expires_in_days else None
    record = {
        "name": name,
        "prefix": key[:_SHOWN_LENGTH],
        "key_hash": hash_key(key),
        "scopes": " ".join(scope for scope in SCOPES if scope in scopes),
        "expires_at": expires_at,
    }
    api_key_model.create_key(cursor, record, now)


def _find_by_hash(cursor_factory, key_hash: bytes) -> dict | None:
    """Return the record of the key with this hash; a database without the table needs `init-db` first."""
    with table_required("api_keys"), cursor_factory() as cursor:
        return api_key_model.find_by_hash(cursor, key_hash)


class KeyCache:
    """This process's recent key lookups, so that a request in the steady state costs no round trip.

    An entry is trusted for CACHE_SECONDS, which bounds how long a revoked key keeps working in a
    worker; expiry is checked on every request against the cached time. Only keys of the right
    form are looked up (and so cached): the checksum is checked on a miss, once per entry.
    """

    def __init__(self, seconds: float = CACHE_SECONDS):
        self._seconds = seconds
        self._entries: dict[bytes, tuple[float, ApiKey | None]] = {}
        self._last_used_minute: dict[int, int] = {}
        self._lock = threading.Lock()

    def lookup(self, cursor_factory, key: str) -> ApiKey | None:
        """Return the key's record from the cache, or from the database when stale or absent; None if unknown."""
        match = _KEY.fullmatch(key)
        if match is None:
            return None
        key_hash = hash_key(key)
        entry = self._entries.get(key_hash)
        if entry is not None and time.monotonic() - entry[0] < self._seconds:
            return entry[1]
        if not _checksum_matches(match):
            return None
        found = self._load(cursor_factory, key_hash)
        with self._lock:
            if len(self._entries) >= CACHE_MAX_ENTRIES:
                self._entries.clear()
            self._entries[key_hash] = (time.monotonic(), found)
        return found

    def _load(self, cursor_factory, key_hash: bytes) -> ApiKey | None:
        """Read a key's record from the database, noting when it was last used."""
        row = _find_by_hash(cursor_factory, key_hash)
        if row is None or not hmac.compare_digest(bytes(row["key_hash"]), key_hash):
            return None
        if row["last_used_at"] is not None:
            self._last_used_minute.setdefault(row["id"], _minute_number(row["last_used_at"]))
        return ApiKey(row["id"], frozenset(row["scopes"].split()), row["expires_at"], row["revoked_at"] is not None)

    def note_use(self, cursor_factory, key_id: int) -> None:
        """Record the minute a key was used, at most once a minute per key and process."""
        minute = int(time.time() // 60)
        if self._last_used_minute.get(key_id, -1) >= minute:
            return
        self._last_used_minute[key_id] = minute
        with cursor_factory() as cursor:
            api_key_model.touch_key(cursor, key_id, datetime.fromtimestamp(minute * 60, UTC).replace(tzinfo=None))


def _minute_number(moment: datetime) -> int:
    """Return the number of whole minutes from the epoch to a stored (UTC, naive) time."""
    return int(moment.replace(tzinfo=UTC).timestamp() // 60)
