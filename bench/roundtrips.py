"""Count the database round trips each endpoint makes per request.

The app runs in-process (Flask test client) on the benchmark database, with the driver's methods
that each cost one round trip wrapped in counters: `is_connected` (a ping: the pool calls it on
every checkout and `cursor()` on every cursor), `cmd_query` (every statement, START TRANSACTION
included), `commit` and `rollback`. A request that needs one SELECT but makes three round trips
spends most of its database time on the two it did not need.
"""

from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager

from mysql.connector import connection

try:
    from mysql.connector import connection_cext
except ImportError:  # no C extension: only the pure-Python connection exists
    connection_cext = None

COUNTED = ("is_connected", "cmd_query", "commit", "rollback", "cmd_reset_connection", "ping")


@contextmanager
def counting(counter: Counter):
    """Count calls of the round-trip methods of every connection class while the block runs."""
    classes = [connection.MySQLConnection] + ([connection_cext.CMySQLConnection] if connection_cext else [])
    originals = []
    for cls in classes:
        for name in COUNTED:
            original = cls.__dict__.get(name)
            if original is None:
                continue
            originals.append((cls, name, original))
            setattr(cls, name, _counted(original, name, counter))
    try:
        yield counter
    finally:
        for cls, name, original in originals:
            setattr(cls, name, original)


def _counted(method, name: str, counter: Counter):
    """Wrap a method so that each call adds one to counter[name]."""

    def wrapper(self, *args, **kwargs):
        counter[name] += 1
        return method(self, *args, **kwargs)

    return wrapper


def _with_headers(request: dict, headers: dict) -> dict:
    """Return a request's keyword arguments with more headers."""
    return {**request, "headers": {**headers, **request.get("headers", {})}}


def measure(app, requests: dict[str, Callable[[int], dict]], headers: dict, repeats: int = 20) -> dict[str, dict]:
    """Return, per endpoint, the mean count of each round trip per request (after one warm-up request).

    `requests` maps a name to a function of the attempt number (0 is the warm-up) that returns the
    keyword arguments of `client.open`: path, method, json, headers. Every request also sends `headers`.
    """
    client = app.test_client()
    results = {}
    for key, make in requests.items():
        client.open(**_with_headers(make(0), headers))  # warm-up: the pool opens its connections
        counter: Counter = Counter()
        statuses: Counter = Counter()
        with counting(counter):
            for attempt in range(1, repeats + 1):
                statuses[client.open(**_with_headers(make(attempt), headers)).status_code] += 1
        results[key] = {name: counter[name] / repeats for name in COUNTED if counter[name]}
        results[key]["total"] = sum(counter.values()) / repeats
        results[key]["statuses"] = dict(statuses)
    return results


def costs(settings: dict, repeats: int = 2000) -> dict[str, float]:
    """Return the median wall time, in µs, of a ping, a point SELECT and `cursor()` on one connection."""
    import statistics
    import time

    import mysql.connector

    from db import connection_settings

    cnx = mysql.connector.connect(**connection_settings(settings))
    cursor = cnx.cursor()
    operations = {
        "ping (is_connected)": cnx.is_connected,
        "cursor() (includes a ping)": lambda: cnx.cursor().close(),
        "SELECT one payment by id": lambda: (cursor.execute("SELECT * FROM payments WHERE id = 1"), cursor.fetchall()),
    }
    times: dict[str, list[float]] = {name: [] for name in operations}
    try:
        for _ in range(repeats):
            for name, operation in operations.items():
                started = time.perf_counter()
                operation()
                times[name].append((time.perf_counter() - started) * 1e6)
    finally:
        cnx.close()
    return {name: statistics.median(values) for name, values in times.items()}
