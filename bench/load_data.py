"""Bulk-load realistic users and payments into the benchmark database.

Rows are written with multi-row INSERTs (not through the API), but every card column is made by
the API's own code (`services.payments.new_payment_record`) under the keys the server is given,
so the server can read, list and update them like any payment it created.

Card numbers: one distinct card per user (so a user's card payments share a card, as in real data).
Each card is encrypted once, in parallel on all cores, and its ciphertexts are reused by that card's
payments; the API itself encrypts each payment afresh with a new nonce. The ciphertexts are bound to
the card's fingerprint (the API's associated data), not to the row, so every reused value decrypts.
"""

import multiprocessing
import multiprocessing.pool
import random
import signal
import time
from datetime import UTC, date, datetime, timedelta

import mysql.connector
from mysql.connector import errorcode

from config import load_keys
from db import connection_settings
from services.payments import new_payment_record
from utils.cards import luhn_valid

USER_CHUNK = 5000
PAYMENT_CHUNK = 2000
DEADLOCK_RETRIES = 5
SEED = 20261127
COUNTRIES = ("India", "United States", "Germany", "Japan", "United Kingdom", "Brazil", "Kenya", "France")
# (method, weight): most payments are by card.
METHODS = (("Credit Card", 55), ("Debit Card", 25), ("UPI", 10), ("Net Banking", 4), ("Wallet", 3), ("Cash", 3))
# (currency, decimals, weight)
CURRENCIES = (("INR", 2, 60), ("USD", 2, 20), ("EUR", 2, 8), ("GBP", 2, 5), ("JPY", 0, 5), ("KWD", 3, 2))
STATUSES = (("completed", 80), ("failed", 7), ("cancelled", 4), ("refunded", 4), ("pending", 5))
# (prefix, length) of the generated card numbers: visa, mastercard, amex, discover, rupay.
CARD_SHAPES = (("4", 16), ("4", 16), ("51", 16), ("55", 16), ("37", 15), ("6011", 16), ("6521", 16))

_cards: list[dict] = []  # card templates, inherited by the forked insert workers
_settings: dict = {}
_connection = None


def _weighted(options):
    """Return (values, cumulative weights) for random.choices."""
    values = [option[:-1] if len(option) > 2 else option[0] for option in options]
    total, cumulative = 0, []
    for option in options:
        total += option[-1]
        cumulative.append(total)
    return values, cumulative


def card_number(index: int) -> str:
    """Return a distinct, Luhn-valid card number for a card index."""
    prefix, length = CARD_SHAPES[index % len(CARD_SHAPES)]
    body = prefix + str(index).zfill(length - len(prefix) - 1)
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("no Luhn check digit")


def make_card(args: tuple[int, dict]) -> dict:
    """Encrypt one card with the API's code; return its stored card columns (binary as hex)."""
    index, config = args
    keys = load_keys(config)
    number = card_number(index)
    rng = random.Random(SEED + index)
    payment = {
        "user_id": 1,
        "amount": 1,
        "currency": "INR",
        "payment_method": "Credit Card",
        "card_no": number,
        "card_expiry": date(rng.randint(2027, 2034), rng.randint(1, 12), 1),
        "card_cvc": "1234" if number.startswith(("34", "37")) else "123",
        "status": "pending",
        "description": None,
    }
    record = new_payment_record(payment, keys)
    return {
        "card_no_encrypted": record["card_no_encrypted"].hex(),
        "card_last4": record["card_last4"],
        "card_brand": record["card_brand"],
        "card_fingerprint": record["card_fingerprint"],
        "card_expiry": record["card_expiry"].isoformat(),
        "card_cvc_encrypted": record["card_cvc_encrypted"].hex(),
    }


def make_cards(count: int, config: dict, processes: int) -> list[dict]:
    """Encrypt `count` distinct cards on `processes` cores."""
    with worker_pool(processes) as pool:
        return pool.map(make_card, ((index, config) for index in range(1, count + 1)), chunksize=500)


def worker_pool(processes: int) -> multiprocessing.pool.Pool:
    """Return a pool of forked workers that die of SIGTERM, as the pool expects when it stops them."""
    return multiprocessing.get_context("fork").Pool(processes, initializer=_default_signals)


def _default_signals() -> None:
    """Let a pool worker die of SIGTERM, which is how the pool stops it at the end.

    A worker forked from the benchmark inherits its SIGTERM handler (an exit with clean-up); a
    worker blocked on the pool's task queue never ran it, and the pool waited for it forever.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _connect(settings: dict):
    """Open a loader connection: no autocommit, no per-row checks (the generator keeps them)."""
    cnx = mysql.connector.connect(**{**connection_settings(settings), "autocommit": False})
    cursor = cnx.cursor()
    cursor.execute("SET SESSION unique_checks = 0, foreign_key_checks = 0")
    cursor.close()
    return cnx


def _worker_init() -> None:
    """Give each insert worker its own connection, and let it die of SIGTERM like the card workers."""
    global _connection
    _default_signals()
    _connection = _connect(_settings)


def _quote(text: str | None) -> str:
    """Return an SQL string literal (the generated text has no quotes or backslashes)."""
    return "NULL" if text is None else "'" + text + "'"


def _user_values(user_id: int, start: datetime) -> str:
    """Return the VALUES tuple of one user."""
    created = (start + timedelta(seconds=user_id * 97)).strftime("%Y-%m-%d %H:%M:%S")
    country = COUNTRIES[user_id % len(COUNTRIES)] if user_id % 10 else None
    phone = f"'+91 98{user_id % 1000:03d} {user_id:06d}'" if user_id % 3 else "NULL"
    return f"({user_id},'User {user_id}','user{user_id}@example.com',{phone},{_quote(country)},'{created}','{created}')"


def insert_users(settings: dict, count: int, start: datetime) -> None:
    """Insert users 1..count."""
    cnx = _connect(settings)
    try:
        cursor = cnx.cursor()
        for low in range(1, count + 1, USER_CHUNK):
            values = ",".join(_user_values(i, start) for i in range(low, min(low + USER_CHUNK, count + 1)))
            cursor.execute(
                "INSERT INTO users (id, name, email, phone, country, created_at, updated_at) VALUES " + values
            )
            cnx.commit()
    finally:
        cnx.close()


_METHOD_VALUES, _METHOD_WEIGHTS = _weighted(METHODS)
_CURRENCY_VALUES, _CURRENCY_WEIGHTS = _weighted(CURRENCIES)
_STATUS_VALUES, _STATUS_WEIGHTS = _weighted(STATUSES)
PAYMENT_COLUMNS = (
    "id, user_id, amount, currency, payment_method, card_no_encrypted, card_last4, card_brand, card_fingerprint,"
    " card_expiry, card_cvc_encrypted, status, description, created_at, updated_at"
)


def _amount(rng: random.Random, decimals: int) -> str:
    """Return a random amount with the currency's number of decimals."""
    whole = rng.randint(1, 50000)
    return str(whole) if decimals == 0 else f"{whole}.{rng.randint(0, 10**decimals - 1):0{decimals}d}"


def _payment_values(payment_id: int, rng: random.Random, plan: dict) -> str:
    """Return the VALUES tuple of one payment."""
    user_id = rng.randint(1, plan["users"])
    method = rng.choices(_METHOD_VALUES, cum_weights=_METHOD_WEIGHTS)[0]
    currency, decimals = rng.choices(_CURRENCY_VALUES, cum_weights=_CURRENCY_WEIGHTS)[0]
    if plan["pending_low"] <= payment_id <= plan["pending_high"]:
        status = "pending"
    else:
        status = rng.choices(_STATUS_VALUES, cum_weights=_STATUS_WEIGHTS)[0]
    created = plan["start"] + timedelta(seconds=payment_id * plan["step_seconds"])
    updated = created if status == "pending" else created + timedelta(seconds=rng.randint(1, 600))
    if method in ("Credit Card", "Debit Card"):
        card = _cards[user_id - 1]
        cvc = "X'" + card["card_cvc_encrypted"] + "'" if status == "pending" else "NULL"
        card_sql = (
            f"X'{card['card_no_encrypted']}','{card['card_last4']}','{card['card_brand']}',"
            f"'{card['card_fingerprint']}','{card['card_expiry']}',{cvc}"
        )
    else:
        card_sql = "NULL,NULL,NULL,NULL,NULL,NULL"
    description = f"'Order {payment_id}'" if payment_id % 4 else "NULL"
    return (
        f"({payment_id},{user_id},{_amount(rng, decimals)},'{currency}','{method}',{card_sql},'{status}',"
        f"{description},'{created:%Y-%m-%d %H:%M:%S}','{updated:%Y-%m-%d %H:%M:%S}')"
    )


def _insert_payment_chunk(task: tuple[int, int, dict]) -> int:
    """Generate and insert payments low..high (inclusive) on this worker's connection."""
    low, high, plan = task
    rng = random.Random(SEED * 7919 + low)
    values = ",".join(_payment_values(i, rng, plan) for i in range(low, high + 1))
    cursor = _connection.cursor()
    # Parallel multi-row INSERTs can deadlock on their foreign-key locks; InnoDB says: retry.
    for attempt in range(DEADLOCK_RETRIES):
        try:
            cursor.execute(f"INSERT INTO payments ({PAYMENT_COLUMNS}) VALUES {values}")
            _connection.commit()
            break
        except mysql.connector.errors.InternalError as error:
            _connection.rollback()
            if error.errno != errorcode.ER_LOCK_DEADLOCK or attempt == DEADLOCK_RETRIES - 1:
                raise
    cursor.close()
    return high - low + 1


def insert_payments(settings: dict, cards: list[dict], low: int, high: int, plan: dict, processes: int) -> None:
    """Insert payments low..high (inclusive) from `processes` workers in parallel."""
    global _cards, _settings
    _cards, _settings = cards, settings
    tasks = [(start, min(start + PAYMENT_CHUNK - 1, high), plan) for start in range(low, high + 1, PAYMENT_CHUNK)]
    context = multiprocessing.get_context("fork")
    with context.Pool(processes, initializer=_worker_init) as pool:
        for _ in pool.imap_unordered(_insert_payment_chunk, tasks):
            pass


def payment_plan(users: int, payments: int, pending_low: int, pending_high: int) -> dict:
    """Describe the generated data: user range, the block of pending payments, the time span."""
    start = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(days=365)
    return {
        "users": users,
        "pending_low": pending_low,
        "pending_high": pending_high,
        "start": start,
        "step_seconds": 365 * 86400 / max(payments, 1),
    }


def analyze(settings: dict) -> None:
    """Refresh the optimizer statistics after a bulk load."""
    cnx = mysql.connector.connect(**connection_settings(settings))
    try:
        cursor = cnx.cursor()
        for table in ("users", "payments", "events"):
            cursor.execute(f"ANALYZE TABLE {table}")
            cursor.fetchall()
    finally:
        cnx.close()


def timed(label: str, function, *args) -> float:
    """Run a load step and print how long it took."""
    started = time.perf_counter()
    function(*args)
    elapsed = time.perf_counter() - started
    print(f"bench: {label} in {elapsed:.1f} s", flush=True)
    return elapsed
