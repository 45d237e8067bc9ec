"""A reference point: the smallest Flask app that does each measured request's database work, and nothing else.

No validation, access control, logging, headers or formatting, and no liveness checks: each worker
holds two connections (opened at its first request), one with autocommit on for reads and one with
it off for writes (so that a write's first statement begins its transaction, as the API's pools
do), and sends only the statements the API's request sends:

- `GET /payments/<id>`: one SELECT by id.
- `GET /payments?limit=100`: the API's keyset SELECT of a page (101 rows, to know whether there is
  a next one; amounts, dates and times cast to text), its values read as raw text (the driver's
  conversion of 100 rows to Python types costs more than the rest of the request).
- `POST /payments`: the card number and CVC encrypted with pycryptodome's AES-GCM (as SPEC §1
  fixes) and the card's HMAC fingerprint, the payment INSERT (the same columns), its event INSERT
  (the payment as JSON), a durable COMMIT.
- `PUT /payments/<id>` `{"status": "completed"}`: the API's conditional UPDATE from pending (the
  CVC erased), the SELECT of the row it changed, its event INSERT, COMMIT.

mysql-connector's own pool would ping the server twice more per request (when a connection is
taken, and again in cursor()), so cursors are made directly, as db.dict_cursor does. It shows how
much of the ceiling each kind of request through Flask and mysql-connector can reach at all on the
machine; the benchmark serves it under the production server beside the API's endpoints.
"""

import hashlib
import hmac
import json
import os
from datetime import UTC, datetime

import mysql.connector
from Crypto.Cipher import AES
from flask import Flask, jsonify, request
from mysql.connector.cursor_cext import CMySQLCursorDict, CMySQLCursorRaw

from models import payment_model

# The API's own columns and statements (models/payment_model.py), so that both do the same database work.
COLUMNS = payment_model.COLUMNS
PAGE = f"SELECT {payment_model.PAGE_COLUMNS} FROM payments WHERE id > %s ORDER BY id LIMIT %s"
MOVE_FROM_PENDING = (
    "UPDATE payments FORCE INDEX (PRIMARY) SET status = %s, card_cvc_encrypted = NULL, updated_at = %s"
    " WHERE id = %s AND status IN ('pending')"
)
STORED = (
    "user_id, amount, currency, payment_method, card_no_encrypted, card_last4, card_brand, card_fingerprint,"
    " card_expiry, card_cvc_encrypted, status, description, created_at, updated_at"
)
INSERT_PAYMENT = f"INSERT INTO payments ({STORED}) VALUES ({', '.join(['%s'] * 14)})"
# Events record who made the change, as the API writes it for the benchmark's one API key.
ACTOR = '{"type":"api_key","id":1}'
INSERT_EVENT = (
    "INSERT INTO events (type, object_type, object_id, created_at, actor, request_id, data)"
    " VALUES (%s, 'payment', %s, %s, %s, NULL, %s)"
)


def create_app() -> Flask:
    """Return an app with the four reference routes, over two held connections per worker."""
    app = Flask(__name__)
    held = {}
    key = os.urandom(32)

    def connection(writes: bool):
        """Return this worker's read or write connection, opening it on first use."""
        # Opened in the worker: a connection made before a fork would be shared.
        if writes not in held:
            held[writes] = mysql.connector.connect(
                host=os.environ["DB_HOST"],
                port=int(os.environ["DB_PORT"]),
                user=os.environ["DB_USER"],
                password=os.environ["DB_PASSWORD"],
                database=os.environ["DB_NAME"],
                charset="utf8mb4",
                collation="utf8mb4_unicode_ci",
                autocommit=not writes,
            )
        return held[writes]

    def read(statement: str, params: tuple) -> list[dict]:
        cursor = CMySQLCursorDict(connection(writes=False))
        cursor.execute(statement, params)
        rows = cursor.fetchall()
        cursor.close()
        return rows

    def encrypt(text: str) -> bytes:
        nonce = os.urandom(12)
        ciphertext, tag = AES.new(key, AES.MODE_GCM, nonce=nonce).encrypt_and_digest(text.encode())
        return nonce + tag + ciphertext

    @app.get("/payments/<int:payment_id>")
    def get_payment(payment_id: int):
        rows = read(f"SELECT {COLUMNS} FROM payments WHERE id = %s", (payment_id,))
        return jsonify(_as_text(rows[0]))

    @app.get("/payments")
    def list_payments():
        after, limit = int(request.args.get("after", 0)), int(request.args.get("limit", 100))
        cursor = CMySQLCursorRaw(connection(writes=False))
        cursor.execute(PAGE, (after, limit + 1))
        rows = cursor.fetchall()
        cursor.close()
        page = [dict(zip(payment_model.PUBLIC, map(_decoded, row), strict=True)) for row in rows[:limit]]
        return jsonify({"data": page})

    @app.post("/payments")
    def create_payment():
        body, now = request.get_json(), datetime.now(UTC).replace(microsecond=0, tzinfo=None)
        card_no = body["card_no"]
        payment = {
            "user_id": body["user_id"], "amount": body["amount"], "currency": body["currency"],
            "payment_method": body["payment_method"], "card_last4": card_no[-4:], "card_brand": "visa",
            "card_fingerprint": hmac.new(key, card_no.encode(), hashlib.sha256).hexdigest(),
            "card_expiry": body["card_expiry"], "status": "pending", "description": body.get("description"),
            "created_at": now.isoformat(), "updated_at": now.isoformat(),
        }  # fmt: skip
        cursor = CMySQLCursorDict(connection(writes=True))
        cursor.execute(
            INSERT_PAYMENT,
            (payment["user_id"], payment["amount"], payment["currency"], payment["payment_method"], encrypt(card_no),
             payment["card_last4"], "visa", payment["card_fingerprint"], payment["card_expiry"],
             encrypt(body["card_cvc"]), "pending", payment["description"], now, now),
        )  # fmt: skip
        payment = {"id": cursor.lastrowid, **payment}
        cursor.execute(INSERT_EVENT, ("payment.created", payment["id"], now, ACTOR, json.dumps(payment)))
        cursor.close()
        connection(writes=True).commit()
        return jsonify(payment), 201

    @app.put("/payments/<int:payment_id>")
    def update_payment(payment_id: int):
        status, now = request.get_json()["status"], datetime.now(UTC).replace(microsecond=0, tzinfo=None)
        cursor = CMySQLCursorDict(connection(writes=True))
        cursor.execute(MOVE_FROM_PENDING, (status, now, payment_id))
        moved = cursor.rowcount == 1
        cursor.execute(f"SELECT {COLUMNS} FROM payments WHERE id = %s", (payment_id,))
        payment = _as_text(cursor.fetchone())
        if not moved:  # not pending (a repeat): nothing changes and no event, as in the API
            cursor.close()
            connection(writes=True).rollback()
            return jsonify(payment)
        cursor.execute(INSERT_EVENT, (f"payment.{status}", payment_id, now, ACTOR, json.dumps(payment)))
        cursor.close()
        connection(writes=True).commit()
        return jsonify(payment)

    return app


def _decoded(value: bytes | None) -> str | None:
    """Return a raw column value as text."""
    return None if value is None else value.decode()


def _as_text(row: dict) -> dict:
    """Return a row with every value as text (or null), ready for JSON."""
    return {name: None if value is None else str(value) for name, value in row.items()}
