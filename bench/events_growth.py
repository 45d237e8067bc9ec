"""Event history at scale: load events by SQL and time `GET /events?object_id=` at 10k and at 10M events.

Both data sets give each object 10 events spread over the whole table (an object's events are
as far apart as in a real history: event n belongs to object n mod objects), so both queries
return 10 rows and differ only in the size of the table and its indexes. Rows are made by one
INSERT ... SELECT per million, from a cross join of digits (MariaDB and MySQL alike), with the
shape the API writes: a payment's `payment.updated`, an actor, a request id and the payment as data.
"""

import time

import mysql.connector

from db import connection_settings

EVENTS_PER_OBJECT = 10
ACTOR = '{"type": "api_key", "id": 1}'
BATCH = 1_000_000
_DIGITS = "(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL" \
    " SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)"  # fmt: skip
_DATA = (
    'CONCAT(\'{"id": \', {oid}, \', "user_id": \', 1 + {oid} % 1000, \', "amount": "125.50", "currency": "INR",'
    ' "payment_method": "UPI", "card_no": null, "card_brand": null, "card_fingerprint": null,'
    ' "card_expiry": null, "status": "completed", "description": "order \', {oid}, \'",'
    ' "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:05:00Z"}\')'
)


def _numbers() -> str:
    """Return a derived table of the numbers 0..999,999."""
    columns = " + ".join(f"t{place}.d * {10**place}" for place in range(6))
    tables = ", ".join(f"{_DIGITS} t{place}" for place in range(6))
    return f"(SELECT {columns} AS n FROM {tables})"


def insert_events(settings: dict, count: int, first_object: int) -> float:
    """Insert `count` events, 10 for each of the objects from first_object on; return the seconds it took."""
    objects = count // EVENTS_PER_OBJECT
    started = time.perf_counter()
    cnx = mysql.connector.connect(**connection_settings(settings))
    try:
        cursor = cnx.cursor()
        done = 0
        while done < count:
            size = min(BATCH, count - done)
            oid = f"({first_object} + ({done} + n) % {objects})"
            data = _DATA.replace("{oid}", oid)
            cursor.execute(
                "INSERT INTO events (type, object_type, object_id, created_at, actor, request_id, data)"
                f" SELECT 'payment.updated', 'payment', {oid}, '2026-12-01 10:05:00', '{ACTOR}',"
                f" MD5({first_object * EVENTS_PER_OBJECT + done} + n), {data}"
                f" FROM {_numbers()} numbers WHERE n < {size} ORDER BY n"
            )
            cnx.commit()
            done += size
    finally:
        cnx.close()
    return time.perf_counter() - started
