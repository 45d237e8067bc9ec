"""Idempotency-Key handling for POST requests, stored in the database."""

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from decimal import Decimal, DecimalException
from functools import wraps

import mysql.connector
from flask import Flask, Response, current_app, g, request

import db
from db import autocommit, close_db, mark_broken
from models import idempotency_model
from utils.crypto_utils import derive_key, fingerprint_card
from utils.errors import BadRequest, IdempotencyInFlight, IdempotencyKeyReused, ServiceUnavailable
from utils.formatting import utc_now
from web.http import json_body

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
KEYED_HASHES_UPGRADE = "keyed-idempotency-hashes"


def idempotent(view):
    """Answer a repeated POST with the same Idempotency-Key from its stored response."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        replay = _claim(_key_hashes(key), _request_hash(json_body()))
        if replay is not None:
            return replay
        try:
            response = view(*args, **kwargs)
        except BaseException:
            _release()
            raise
        if response.status_code >= 300:
            _release()
        return response

    return wrapper


def remember_response(cursor, response: Response) -> None:
    """Store a response for the request's Idempotency-Key, in the caller's transaction."""
    claim = g.get("idempotency_claim")
    if claim is None:
        return
    body, location = response.get_data(as_text=True), response.headers.get("Location")
    if not idempotency_model.complete_key(cursor, *claim, response.status_code, body, location):
        # The claim went stale and another request took the key over: this one must not commit.
        raise IdempotencyInFlight()


def init_app(app: Flask) -> None:
    """Learn, before a process first uses the database, until when legacy key hashes may be stored."""
    db.add_first_use_check(app, _read_legacy_window)


def _read_legacy_window(connection) -> None:
    """Note until when records stored under a legacy (plain SHA-256) key hash can still be replayed."""
    cursor = db.dict_cursor(connection)
    try:
        upgraded_at = idempotency_model.upgrade_applied_at(cursor, KEYED_HASHES_UPGRADE)
    finally:
        cursor.close()
    # Without the record (a schema older than the code), every stored hash may be a legacy one.
    lifetime = timedelta(seconds=current_app.config["IDEMPOTENCY_TTL_SECONDS"])
    current_app.extensions["idempotency_legacy_until"] = upgraded_at + lifetime if upgraded_at else datetime.max


def _key_hashes(key: str) -> tuple[bytes, bytes | None]:
    """Validate a key and return its keyed hash, scoped to the request's path, and its legacy hash if still needed.

    The keyed hash (HMAC) means a client that put card data in a key cannot have it recovered
    from the database by guessing; the legacy plain SHA-256 is what stored records were keyed by
    before, looked up during one record lifetime after the upgrade so no retry is answered twice.
    """
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise BadRequest(f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.")
    scoped = f"{request.path}\n{key}".encode()
    keyed = hmac.new(_derived_key(b"idempotency key hash"), scoped, hashlib.sha256).digest()
    if utc_now() >= current_app.extensions.get("idempotency_legacy_until", datetime.max):
        return keyed, None
    return keyed, hashlib.sha256(scoped).digest()


def _derived_key(purpose: bytes) -> bytes:
    """Return a key for one purpose, derived from the fingerprint key (the one card key that never changes)."""
    return derive_key(current_app.extensions["card_keys"]["fingerprint"], purpose)


def _request_hash(body: dict) -> bytes:
    """Return a keyed hash of the body that holds nothing derived from a CVC.

    The card number enters only as its fingerprint, and the CVC not at all (a retry that differs
    only in its CVC counts as the same request), under a key derived for this one purpose.
    """
    keys = current_app.extensions["card_keys"]
    comparable = {name: value for name, value in body.items() if name != "card_cvc"}
    if isinstance(comparable.get("card_no"), str):
        digits = comparable["card_no"].replace(" ", "").replace("-", "")
        comparable["card_no"] = fingerprint_card(digits, keys["fingerprint"])
    canonical = json.dumps(_canonical_numbers(comparable), sort_keys=True, separators=(",", ":"))
    return hmac.new(_derived_key(b"idempotency request hash"), canonical.encode(), hashlib.sha256).digest()


def _canonical_numbers(value):
    """Write every number in one form, so 500, 500.0 and 5E+2 compare equal."""
    if isinstance(value, dict):
        return {name: _canonical_numbers(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_canonical_numbers(item) for item in value]
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        try:
            return f"number:{number.normalize()}"
        except DecimalException:  # NaN, or beyond the decimal context's range
            return f"number:{number}"
    return value


def _claim(key_hashes: tuple[bytes, bytes | None], request_hash: bytes) -> Response | None:
    """Claim the key for this request, or return the stored response to replay."""
    keyed, legacy = key_hashes
    now = utc_now()
    with autocommit() as cursor:
        if idempotency_model.claim_key(cursor, keyed, request_hash, now, legacy):
            g.idempotency_claim = (keyed, now)
            return None
        record = idempotency_model.get_key(cursor, (keyed, legacy) if legacy else (keyed,))
        if record is None:
            raise IdempotencyInFlight()
        if _expired(record, now):
            if idempotency_model.reclaim_key(cursor, record, request_hash, now):
                g.idempotency_claim = (bytes(record["key_hash"]), now)
                return None
            raise IdempotencyInFlight()
    if not hmac.compare_digest(bytes(record["request_hash"]), request_hash):
        raise IdempotencyKeyReused()
    if record["response_status"] is None:
        raise IdempotencyInFlight()
    return _replay(record)


def _expired(record: dict, now) -> bool:
    """Return whether a record is past its lifetime, or abandoned while in flight."""
    age = now - record["created_at"]
    if record["response_status"] is None:
        return age > timedelta(seconds=current_app.config["IDEMPOTENCY_STALE_SECONDS"])
    return age > timedelta(seconds=current_app.config["IDEMPOTENCY_TTL_SECONDS"])


def _replay(record: dict) -> Response:
    """Rebuild the stored response, marked as replayed."""
    response = Response(record["response_body"], status=record["response_status"], mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    if record["location"]:
        response.headers["Location"] = record["location"]
    return response


def _release() -> None:
    """Free this request's claim after it failed; if the database is down, it expires by itself."""
    claim = g.pop("idempotency_claim", None)
    if claim is None:
        return
    for _attempt in range(2):
        try:
            with autocommit() as cursor:
                idempotency_model.release_key(cursor, *claim)
            return
        except (mysql.connector.Error, ServiceUnavailable):
            # The request's own connection may be the one that broke: take a fresh one.
            mark_broken()
            close_db()
    current_app.logger.warning("could not release an idempotency key; it expires by itself")
