"""Idempotency-Key handling for POST requests, stored in the database."""

import hashlib
import hmac
import json
from datetime import timedelta
from decimal import Decimal, DecimalException
from functools import wraps

import mysql.connector
from flask import Response, current_app, g, request

from db import autocommit, close_db, mark_broken, transaction
from models import idempotency_model
from utils.crypto_utils import fingerprint_card
from utils.errors import BadRequest, IdempotencyInFlight, IdempotencyKeyReused, ServiceUnavailable
from utils.formatting import utc_now
from web.http import json_body

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def idempotent(view):
    """Answer a repeated POST with the same Idempotency-Key from its stored response."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        key_hash = _key_hash(key)
        replay = _claim(key_hash, _request_hash(json_body()))
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


def create_scope():
    """Return the context a create runs in: a transaction when its response must be remembered.

    Without a key the create is one INSERT, atomic by itself under autocommit; with a key the
    stored response has to commit together with the row it describes.
    """
    return transaction() if "idempotency_claim" in g else autocommit()


def remember_response(cursor, response: Response) -> None:
    """Store a response for the request's Idempotency-Key, in the caller's transaction."""
    claim = g.get("idempotency_claim")
    if claim is None:
        return
    body, location = response.get_data(as_text=True), response.headers.get("Location")
    if not idempotency_model.complete_key(cursor, *claim, response.status_code, body, location):
        # The claim went stale and another request took the key over: this one must not commit.
        raise IdempotencyInFlight()


def _key_hash(key: str) -> bytes:
    """Validate a key and scope it to the request's path."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise BadRequest(f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.")
    return hashlib.sha256(f"{request.path}\n{key}".encode()).digest()


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
    hash_key = hmac.new(keys["fingerprint"], b"idempotency request hash", hashlib.sha256).digest()
    return hmac.new(hash_key, canonical.encode(), hashlib.sha256).digest()


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


def _claim(key_hash: bytes, request_hash: bytes) -> Response | None:
    """Claim the key for this request, or return the stored response to replay."""
    now = utc_now()
    with autocommit() as cursor:
        if idempotency_model.claim_key(cursor, key_hash, request_hash, now):
            g.idempotency_claim = (key_hash, now)
            return None
        record = idempotency_model.get_key(cursor, key_hash)
        if record is None:
            raise IdempotencyInFlight()
        if _expired(record, now):
            if idempotency_model.reclaim_key(cursor, record, request_hash, now):
                g.idempotency_claim = (key_hash, now)
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
