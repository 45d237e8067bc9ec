"""A reference point: the smallest Flask app that serves a payment by id from a pooled connection.

No validation, logging, headers or formatting: mysql-connector's own pool (without the session
reset), one SELECT, the row as JSON. It shows how much of the ceiling a point read through Flask
and mysql-connector can reach at all on the machine; the benchmark serves it under the same
gunicorn config and reports it beside GET /payments/<id>.
"""

import os

from flask import Flask, jsonify
from mysql.connector import pooling

COLUMNS = (
    "id, user_id, amount, currency, payment_method, card_last4, card_brand,"
    " card_fingerprint, card_expiry, status, description, created_at, updated_at"
)


def create_app() -> Flask:
    """Return an app with one route, /payments/<id>, over a pool of the configured database."""
    app = Flask(__name__)
    pools = {}

    @app.get("/payments/<int:payment_id>")
    def get_payment(payment_id: int):
        if "pool" not in pools:  # opened in the worker: a pool made before a fork would share one socket
            pools["pool"] = pooling.MySQLConnectionPool(
                pool_size=1,
                pool_reset_session=False,
                host=os.environ["DB_HOST"],
                port=int(os.environ["DB_PORT"]),
                user=os.environ["DB_USER"],
                password=os.environ["DB_PASSWORD"],
                database=os.environ["DB_NAME"],
                autocommit=True,
            )
        connection = pools["pool"].get_connection()
        try:
            cursor = connection.cursor(dictionary=True)
            cursor.execute(f"SELECT {COLUMNS} FROM payments WHERE id = %s", (payment_id,))
            row = cursor.fetchone()
            cursor.close()
        finally:
            connection.close()
        return jsonify({name: None if value is None else str(value) for name, value in row.items()})

    return app
