"""A reference point: the smallest Flask app that serves a payment by id, one round trip a request.

No validation, logging, headers or formatting, and no liveness checks: each worker holds one
connection (a pool of one, opened at its first request) and sends one SELECT per request; the row
goes out as JSON. mysql-connector's own pool would ping the server twice more per request (when a
connection is taken, and again in cursor()), so the cursor is made directly, as db.dict_cursor
does. It shows how much of the ceiling a point read through Flask and mysql-connector can reach at
all on the machine; the benchmark serves it under the production server beside GET /payments/<id>.
"""

import os

import mysql.connector
from flask import Flask, jsonify
from mysql.connector.cursor_cext import CMySQLCursorDict

COLUMNS = (
    "id, user_id, amount, currency, payment_method, card_last4, card_brand,"
    " card_fingerprint, card_expiry, status, description, created_at, updated_at"
)


def create_app() -> Flask:
    """Return an app with one route, /payments/<id>, over one held connection per worker."""
    app = Flask(__name__)
    held = {}

    @app.get("/payments/<int:payment_id>")
    def get_payment(payment_id: int):
        if "connection" not in held:  # opened in the worker: a connection made before a fork would be shared
            held["connection"] = mysql.connector.connect(
                host=os.environ["DB_HOST"],
                port=int(os.environ["DB_PORT"]),
                user=os.environ["DB_USER"],
                password=os.environ["DB_PASSWORD"],
                database=os.environ["DB_NAME"],
                autocommit=True,
            )
        cursor = CMySQLCursorDict(held["connection"])
        cursor.execute(f"SELECT {COLUMNS} FROM payments WHERE id = %s", (payment_id,))
        row = cursor.fetchone()
        cursor.close()
        return jsonify({name: None if value is None else str(value) for name, value in row.items()})

    return app
