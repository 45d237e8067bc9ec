"""EXPLAIN the list and lookup queries exactly as the models send them, and time them.

    DB_NAME=payments_bench .venv/bin/python -m bench.explain

Each query shape is produced by calling the model function itself with a recording cursor, so the
SQL explained is the SQL the API runs. On MariaDB, `ANALYZE` also reports the rows actually read
(r_rows), which shows that LIMIT stops a keyset range scan early even where `rows` (the optimizer's
estimate for the whole range) is large. A plan of type ALL is a full table scan.
"""

import statistics
import time

import mysql.connector

from config import Config
from db import connection_settings
from models import idempotency_model, payment_model, user_model

TIMING_REPEATS = 20


class RecordingCursor:
    """A cursor stand-in that records the statement a model function sends, and runs it for reads."""

    def __init__(self, cursor):
        self.cursor = cursor
        self.statement: tuple[str, tuple] | None = None
        self.rows: list = []
        self.rowcount = 0
        self.lastrowid = None

    def execute(self, sql: str, params=()) -> None:
        """Record the statement; run it only when it is a plain read."""
        self.statement = (sql, tuple(params))
        if sql.lstrip().upper().startswith("SELECT") and "FOR UPDATE" not in sql.upper():
            self.cursor.execute(sql, params)
            self.rows = self.cursor.fetchall()

    def fetchall(self) -> list:
        """Return the rows of a read."""
        return self.rows

    def fetchone(self):
        """Return the first row of a read."""
        return self.rows[0] if self.rows else None


def query_shapes(sample: dict) -> list[tuple[str, object]]:
    """Return (name, model call) for every list and lookup query shape."""
    deep, user, fingerprint = sample["deep_after"], sample["user_id"], sample["fingerprint"]
    return [
        ("GET /payments (first page)", lambda c: payment_model.list_payments(c, {}, 0, 101)),
        (f"GET /payments?after={deep}", lambda c: payment_model.list_payments(c, {}, deep, 101)),
        (
            "GET /payments?user_id= (and /users/<id>/payments)",
            lambda c: payment_model.list_payments(c, {"user_id": user}, 0, 101),
        ),
        ("GET /payments?status=pending", lambda c: payment_model.list_payments(c, {"status": "pending"}, 0, 101)),
        ("GET /payments?status=refunded", lambda c: payment_model.list_payments(c, {"status": "refunded"}, 0, 101)),
        (
            "GET /payments?card_fingerprint=",
            lambda c: payment_model.list_payments(c, {"card_fingerprint": fingerprint}, 0, 101),
        ),
        (
            "GET /payments?user_id=&status=completed",
            lambda c: payment_model.list_payments(c, {"user_id": user, "status": "completed"}, 0, 101),
        ),
        ("GET /users (first page)", lambda c: user_model.list_users(c, 0, 101)),
        (f"GET /users?after={sample['deep_user']}", lambda c: user_model.list_users(c, sample["deep_user"], 101)),
        ("GET /payments/<id>", lambda c: payment_model.get_payment(c, deep)),
        ("PUT /payments/<id> row lock", lambda c: payment_model.lock_payment(c, deep)),
        ("Idempotency-Key lookup by key_hash", lambda c: idempotency_model.get_key(c, (sample["key_hash"],))),
        ("Idempotency-Key purge by created_at", lambda c: idempotency_model.purge_keys(c, sample["now"])),
    ]


def sample_values(cnx) -> dict:
    """Pick realistic parameters from the data: a deep page, a user with payments, a fingerprint."""
    cursor = cnx.cursor()
    cursor.execute("SELECT COALESCE(MAX(id), 0), COUNT(*) FROM payments")
    max_id, payments = cursor.fetchone()
    cursor.execute("SELECT COALESCE(MAX(id), 0), COUNT(*) FROM users")
    max_user, users = cursor.fetchone()
    cursor.execute("SELECT user_id FROM payments ORDER BY id LIMIT 1")
    row = cursor.fetchone()
    cursor.execute("SELECT card_fingerprint FROM payments WHERE card_fingerprint IS NOT NULL ORDER BY id LIMIT 1")
    fingerprint = cursor.fetchone()
    cursor.execute("SELECT key_hash FROM idempotency_keys LIMIT 1")
    key = cursor.fetchone()
    cursor.execute("SELECT UTC_TIMESTAMP() - INTERVAL 1 DAY, VERSION()")
    now, version = cursor.fetchone()
    cursor.close()
    return {
        "deep_after": max(max_id - 150, 0),
        "deep_user": max(max_user - 150, 0),
        "user_id": row[0] if row else 1,
        "fingerprint": fingerprint[0] if fingerprint else "0" * 64,
        "key_hash": bytes(key[0]) if key else bytes(32),
        "now": now,
        "version": version,
        "payments": payments,
        "users": users,
    }


def _plan(cnx, sql: str, params: tuple, analyze: bool) -> list[dict]:
    """Return the EXPLAIN (or MariaDB ANALYZE) rows of a statement."""
    cursor = cnx.cursor(dictionary=True)
    cursor.execute(("ANALYZE " if analyze else "EXPLAIN ") + sql, params)
    rows = cursor.fetchall()
    cursor.close()
    return rows


def _median_ms(cnx, sql: str, params: tuple) -> float:
    """Return the median time of a read, in milliseconds, over TIMING_REPEATS runs."""
    cursor = cnx.cursor()
    times = []
    for _ in range(TIMING_REPEATS):
        started = time.perf_counter()
        cursor.execute(sql, params)
        cursor.fetchall()
        times.append((time.perf_counter() - started) * 1000)
    cursor.close()
    return statistics.median(times)


def explain_all(settings: dict) -> dict:
    """Explain and time every query shape on the configured database; return the findings."""
    cnx = mysql.connector.connect(**connection_settings(settings))
    try:
        sample = sample_values(cnx)
        mariadb = "mariadb" in sample["version"].lower()
        shapes = []
        for name, call in query_shapes(sample):
            recorder = RecordingCursor(cnx.cursor(dictionary=True))
            call(recorder)
            sql, params = recorder.statement
            is_read = sql.lstrip().upper().startswith("SELECT") and "FOR UPDATE" not in sql.upper()
            plan = _plan(cnx, sql, params, analyze=mariadb and is_read)
            timing = _median_ms(cnx, sql, params) if is_read else None
            shapes.append({"name": name, "sql": sql, "params": params, "plan": plan, "median_ms": timing})
        return {"sample": sample, "shapes": shapes}
    finally:
        cnx.close()


def full_scans(findings: dict) -> list[str]:
    """Return the names of the shapes whose plan has a full table scan."""
    return [shape["name"] for shape in findings["shapes"] if any(row.get("type") == "ALL" for row in shape["plan"])]


PLAN_COLUMNS = ("table", "type", "possible_keys", "key", "key_len", "ref", "rows", "r_rows", "filtered", "Extra")


def _cell(value) -> str:
    """Format one plan value for a Markdown table."""
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        value = value.decode()
    return str(value).replace("|", "\\|")


def markdown(findings: dict) -> str:
    """Render the findings as Markdown: one table row per plan row."""
    sample = findings["sample"]
    lines = [
        f"On {sample['payments']:,} payments and {sample['users']:,} users ({sample['version']}); "
        f"`r_rows` is the rows actually read (MariaDB `ANALYZE`), time is the median of {TIMING_REPEATS} runs.",
        "",
        "| query | " + " | ".join(PLAN_COLUMNS) + " | median ms |",
        "|---" * (len(PLAN_COLUMNS) + 2) + "|",
    ]
    for shape in findings["shapes"]:
        timing = "" if shape["median_ms"] is None else f"{shape['median_ms']:.2f}"
        for index, row in enumerate(shape["plan"]):
            name = shape["name"] if index == 0 else "″"
            cells = " | ".join(_cell(row.get(column)) for column in PLAN_COLUMNS)
            lines.append(f"| {name} | {cells} | {timing if index == 0 else ''} |")
    scans = full_scans(findings)
    lines += ["", "Full table scans: " + (", ".join(scans) if scans else "none.")]
    lines += ["", "The statements, as the models build them:", "", "```sql"]
    lines += [f"-- {shape['name']}\n{shape['sql']};" for shape in findings["shapes"]]
    lines.append("```")
    return "\n".join(lines)


def main() -> None:
    """Print the findings for the database named by the environment (DB_NAME)."""
    settings = {name: getattr(Config, name) for name in dir(Config) if name.isupper()}
    print(markdown(explain_all(settings)))


if __name__ == "__main__":
    main()
