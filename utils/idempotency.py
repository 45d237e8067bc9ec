"""Idempotency-Key handling for POST requests, stored in the database."""

import hashlib
import hmac
import json
from datetime import timedelta
from functools import wraps

import mysql.connector
from flask import Response, current_app, g, request

from db import close_db, mark_broken, reading, transaction
from models import idempotency_model
from utils.errors import BadRequest, IdempotencyInFlight, IdempotencyKeyReused, ServiceUnavailable
from utils.formatting import utc_now
from utils.http import json_body

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
        request_hash = _request_hash(json_body())
        replay = _claim(key_hash, request_hash)
        if replay is not None:
            return replay
        g.idempotency_key_hash = key_hash
        try:
            response = view(*args, **kwargs)
        except BaseException:
            _release(key_hash)
            raise
        if response.status_code >= 300:
            _release(key_hash)
        return response

    return wrapper


def create_scope():
    """Return the context a create runs in: a transaction when its response must be remembered.

    Without a key the create is one INSERT, atomic by itself under autocommit; with a key the
    stored response has to commit together with the row it describes.
    """
    return transaction() if "idempotency_key_hash" in g else reading()


def remember_response(cursor, response: Response) -> None:
    """Store a response for the request's Idempotency-Key, in the caller's transaction."""
    key_hash = g.get("idempotency_key_hash")
    if key_hash is not None:
        body = response.get_data(as_text=True)
        idempotency_model.complete_key(cursor, key_hash, response.status_code, body, response.headers.get("Location"))


def _key_hash(key: str) -> bytes:
    """Validate a key and scope it to the request's path."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise BadRequest(f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.")
    return hashlib.sha256(f"{request.path}\n{key}".encode()).digest()


def _request_hash(body: dict) -> bytes:
    """Return a keyed hash of the request body, so no card data is stored with the key."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    fingerprint_key = current_app.extensions["card_keys"]["fingerprint"]
    return hmac.new(fingerprint_key, canonical.encode(), hashlib.sha256).digest()


def _claim(key_hash: bytes, request_hash: bytes) -> Response | None:
    """Claim the key for this request, or return the stored response to replay."""
    now = utc_now()
    with reading() as cursor:
        if idempotency_model.claim_key(cursor, key_hash, request_hash, now):
            return None
        record = idempotency_model.get_key(cursor, key_hash)
        if record is None:
            raise IdempotencyInFlight()
        if _expired(record, now):
            if idempotency_model.reclaim_key(cursor, key_hash, record["created_at"], request_hash, now):
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


def _release(key_hash: bytes) -> None:
    """Free the key after a failed request; if the database is down, it expires by itself."""
    for _attempt in range(2):
        try:
            with reading() as cursor:
                idempotency_model.release_key(cursor, key_hash)
            return
        except (mysql.connector.Error, ServiceUnavailable):
            # The request's own connection may be the one that broke: take a fresh one.
            mark_broken()
            close_db()
    current_app.logger.warning("could not release an idempotency key; it expires by itself")
