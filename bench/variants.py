"""Experiments: the API with some of the suggested changes imitated at run time, to measure their gain.

Not for production. Each factory applies patches that behave like a change proposed in
bench/README.md, then builds the real app, so the benchmark can serve it under the same
gunicorn.conf.py beside the unchanged API and compare them run for run:

    gunicorn -c gunicorn.conf.py "bench.variants:no_ping()"     # ping only a connection idle > 5 s
    gunicorn -c gunicorn.conf.py "bench.variants:suggested()"   # that, plus the cheaper list formatting
"""

import time
from datetime import datetime
from decimal import Decimal

from mysql.connector import connection

try:
    from mysql.connector import connection_cext
except ImportError:  # no C extension
    connection_cext = None

IDLE_PING_SECONDS = 5.0
_QUANTA = {decimals: Decimal(1).scaleb(-decimals) for decimals in range(5)}


def _ping_when_idle() -> None:
    """Make `is_connected()` ping only a connection unused for IDLE_PING_SECONDS.

    That is what a pool that stamps connections when they are used would do: the checkout and
    `cursor()` pings go away under load, and an idle connection is still checked before use.
    """
    classes = [connection.MySQLConnection] + ([connection_cext.CMySQLConnection] if connection_cext else [])
    for cls in classes:
        original_is_connected, original_cmd_query = cls.is_connected, cls.cmd_query

        def is_connected(self, _original=original_is_connected) -> bool:
            if time.monotonic() - getattr(self, "_bench_last_used", 0.0) < IDLE_PING_SECONDS:
                return True
            return _original(self)

        def cmd_query(self, *args, _original=original_cmd_query, **kwargs):
            result = _original(self, *args, **kwargs)
            self._bench_last_used = time.monotonic()
            return result

        cls.is_connected, cls.cmd_query = is_connected, cmd_query


def iso_utc(moment: datetime) -> str:
    """Format a stored (fraction-free) UTC datetime as ISO 8601 with a Z: same output as the app's."""
    return moment.isoformat() + "Z"


def format_amount(amount: Decimal, decimals: int) -> str:
    """Format an amount with a cached quantum: same output as the app's."""
    return f"{amount.quantize(_QUANTA[decimals]):f}"


def _fast_serialisation() -> None:
    """Use the cheaper time and amount formatting in the dump functions."""
    from schemas import payment_schema, user_schema

    payment_schema.iso_utc = iso_utc
    payment_schema.format_amount = format_amount
    user_schema.iso_utc = iso_utc


def no_ping():
    """The API with pings only on idle connections."""
    _ping_when_idle()
    from app import create_app

    return create_app()


def suggested():
    """The API with pings only on idle connections, cheaper formatting and unsorted JSON keys."""
    _ping_when_idle()
    _fast_serialisation()
    from app import create_app

    app = create_app()
    app.json.sort_keys = False
    return app
