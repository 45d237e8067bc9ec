"""The pooled MySQL/MariaDB connection, transactions, and applying schema.sql."""

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import mysql.connector
from flask import Flask, current_app, g
from mysql.connector import errorcode
from mysql.connector.abstracts import MySQLConnectionAbstract
from mysql.connector.cursor import MySQLCursorDict
from mysql.connector.errors import get_mysql_exception

from utils.errors import ServerMisconfigured, ServiceUnavailable

try:  # The C extension's commit() and rollback() raise its own error, not a mysql.connector.Error.
    from _mysql_connector import MySQLInterfaceError
    from mysql.connector.connection_cext import CMySQLConnection
    from mysql.connector.cursor_cext import CMySQLCursorDict
except ImportError:  # pure-Python connector
    MySQLInterfaceError = mysql.connector.errors.InterfaceError
    CMySQLConnection = CMySQLCursorDict = None

if CMySQLCursorDict is not None:

    class CDictCursor(CMySQLCursorDict):
        """The C extension's dictionary cursor, with a fetchall() that reads rows straight from the C layer.

        The driver's fetchall() goes through CMySQLConnection.get_rows(), which copies every row
        into a list, loops over its columns in Python looking for VECTOR values (this schema has
        none; the C layer has already converted the rest) and rebuilds the column descriptions at
        the end; then the dict cursor evaluates `column_names` for every row. Reading the rows from
        the C layer directly and naming them once makes a 100-row page about 13% faster to fetch.
        Errors are raised as the driver raises them. tests/test_db.py compares the rows, types and
        rowcount with the driver's own fetchall(), and checks a connection lost mid-fetch.
        """

        def fetchall(self) -> list[dict]:
            """Return all remaining rows of the result as dicts."""
            if (self._nextrow and self._nextrow[0]) or not self._connection.unread_result:
                return CMySQLCursorDict.fetchall(self)  # after a fetchone(), or with nothing left
            names = self.column_names
            fetch_row = self._connection._cmysql.fetch_row
            rows = []
            try:
                row = fetch_row()
                while row:
                    rows.append(dict(zip(names, row, strict=True)))
                    row = fetch_row()
            except MySQLInterfaceError as error:  # rows stream in as they are fetched: the connection can fail here
                self._connection.free_result()
                raise _driver_error(error) from error
            self._rowcount += len(rows)
            self._handle_eof()
            return rows


def _driver_error(error: MySQLInterfaceError) -> mysql.connector.Error:
    """Return the mysql.connector error the driver raises for one of its C extension's errors."""
    if hasattr(error, "errno"):
        return get_mysql_exception(error.errno, msg=error.msg, sqlstate=error.sqlstate)
    return mysql.connector.errors.InterfaceError(str(error))


SCHEMA_PATH = Path(__file__).with_name("schema.sql")
logger = logging.getLogger(__name__)
_pool_lock = threading.Lock()

# Errors that mean "the database is not reachable right now", not "this request is wrong".
TRANSIENT_ERRNOS = {
    errorcode.CR_CONNECTION_ERROR,
    errorcode.CR_CONN_HOST_ERROR,
    errorcode.CR_SERVER_GONE_ERROR,
    errorcode.CR_SERVER_LOST,
    errorcode.CR_SERVER_LOST_EXTENDED,
    errorcode.ER_LOCK_WAIT_TIMEOUT,
    errorcode.ER_LOCK_DEADLOCK,
    errorcode.ER_SERVER_SHUTDOWN,
    errorcode.ER_CON_COUNT_ERROR,
    errorcode.ER_QUERY_INTERRUPTED,
}


def connection_settings(config: dict, *, with_database: bool = True) -> dict:
    """Return mysql-connector arguments for the configured server."""
    settings = {
        "host": config["DB_HOST"],
        "port": config["DB_PORT"],
        "user": config["DB_USER"],
        "password": config["DB_PASSWORD"],
        "charset": "utf8mb4",
        "collation": "utf8mb4_unicode_ci",
        "autocommit": True,
        "connection_timeout": config["DB_CONNECT_TIMEOUT"],
    }
    if with_database:
        settings["database"] = config["DB_NAME"]
    return settings


class ConnectionPool:
    """A fixed number of mysql-connector connections per process, opened when first needed.

    mysql-connector's own pool opens every connection in its constructor, raises at once when
    none is free, and pings the server on every checkout and every cursor(); those two pings were
    a third of a point read's time under load. This pool waits briefly for a free connection,
    pings only one that sat idle (and so may have been dropped), and replaces a broken one.
    """

    def __init__(self, settings: dict, size: int, *, idle_ping_seconds: float = 1.0):
        self._settings = settings
        self._idle_ping_seconds = idle_ping_seconds
        # Most recently used first, so a busy worker keeps reusing one warm connection.
        self._slots: queue.LifoQueue = queue.LifoQueue(maxsize=size)
        for _ in range(size):
            self._slots.put(None)

    def acquire(self, wait_seconds: float) -> MySQLConnectionAbstract:
        """Take a connection, waiting up to `wait_seconds` for one; raise ServiceUnavailable."""
        try:
            slot = self._slots.get(timeout=wait_seconds)
        except queue.Empty as error:
            raise ServiceUnavailable("No database connection became free in time; retry shortly.") from error
        try:
            return self._usable(slot)
        except BaseException as error:
            if slot is not None:
                _close_quietly(slot[0])
            self._slots.put(None)  # whatever failed, the slot is never lost
            if isinstance(error, Exception):
                logger.warning("cannot connect to the database: %s", error)
                raise ServiceUnavailable() from error
            raise

    def _usable(self, slot: tuple | None) -> MySQLConnectionAbstract:
        """Open a connection for an empty slot, or check one that sat idle."""
        if slot is None:
            return mysql.connector.connect(**self._settings)
        connection, released_at = slot
        if time.monotonic() - released_at > self._idle_ping_seconds:
            connection.ping(reconnect=True, attempts=1, delay=0)
        return connection

    def release(self, connection: MySQLConnectionAbstract, *, broken: bool = False) -> None:
        """Give a connection back; a broken one is closed and its slot left empty."""
        if not broken:
            self._slots.put((connection, time.monotonic()))
            return
        try:
            _close_quietly(connection)
        finally:
            self._slots.put(None)


def _close_quietly(connection: MySQLConnectionAbstract) -> None:
    """Close a connection that may already be dead."""
    try:
        connection.close()
    except (mysql.connector.Error, MySQLInterfaceError):
        pass


def get_pool(app: Flask) -> ConnectionPool:
    """Return this process's pool, creating it on first use."""
    pool = app.extensions.get("db_pool")
    if pool is None:
        with _pool_lock:
            pool = app.extensions.get("db_pool")
            if pool is None:
                pool = ConnectionPool(connection_settings(app.config), app.config["DB_POOL_SIZE"])
                app.extensions["db_pool"] = pool
    return pool


def get_db() -> MySQLConnectionAbstract:
    """Return the request's connection, taken from the pool on first use."""
    if "db" not in g:
        g.db = get_pool(current_app).acquire(current_app.config["DB_POOL_WAIT_SECONDS"])
        if not current_app.extensions.get("db_checked"):
            _run_first_use_checks(g.db)
    return g.db


def _run_first_use_checks(connection: MySQLConnectionAbstract) -> None:
    """Run the checks registered with `add_first_use_check` until they have all passed once in this process."""
    for check in current_app.extensions.get("db_first_use_checks", ()):
        check(connection)
    current_app.extensions["db_checked"] = True


def add_first_use_check(app: Flask, check: Callable[[MySQLConnectionAbstract], None]) -> None:
    """Run `check(connection)` before a process first uses the database; an exception it raises fails the request."""
    app.extensions.setdefault("db_first_use_checks", []).append(check)


def mark_broken() -> None:
    """Note that the request's connection failed, so it is replaced instead of reused."""
    g.db_broken = True


def close_db(exception: BaseException | None = None) -> None:
    """Give the request's connection back to the pool (replaced if a request failed on it)."""
    connection = g.pop("db", None)
    if connection is not None:
        broken = g.pop("db_broken", False) or exception is not None
        get_pool(current_app).release(connection, broken=broken)


def dict_cursor(connection: MySQLConnectionAbstract):
    """Return a dictionary cursor without the liveness ping that connection.cursor() sends."""
    if CMySQLConnection is not None and isinstance(connection, CMySQLConnection):
        return CDictCursor(connection)
    return MySQLCursorDict(connection)


@contextmanager
def transaction() -> Iterator:
    """Run a block in one transaction: commit on success, roll back and re-raise on error."""
    db = get_db()
    cursor = dict_cursor(db)
    try:
        db.start_transaction()
        yield cursor
        _commit(db)
    except BaseException:
        _rollback_quietly(db)
        raise
    finally:
        cursor.close()


@contextmanager
def autocommit() -> Iterator:
    """Give a dictionary cursor for reads and single-statement writes, each committed by itself."""
    cursor = dict_cursor(get_db())
    try:
        yield cursor
    finally:
        cursor.close()


def _commit(db: MySQLConnectionAbstract) -> None:
    """Commit, reporting a lost connection as the driver's OperationalError."""
    try:
        db.commit()
    except MySQLInterfaceError as error:
        raise mysql.connector.errors.OperationalError(str(error), errno=errorcode.CR_SERVER_LOST) from error


def _rollback_quietly(db: MySQLConnectionAbstract) -> None:
    """Roll back; if that fails, the connection is replaced rather than reused."""
    try:
        db.rollback()
    except (mysql.connector.Error, MySQLInterfaceError):
        mark_broken()


def is_transient(error: mysql.connector.Error) -> bool:
    """Return whether a driver error means the database is unavailable right now."""
    return error.errno in TRANSIENT_ERRNOS or isinstance(
        error, mysql.connector.errors.InterfaceError | mysql.connector.errors.OperationalError
    )


@contextmanager
def table_required(table: str) -> Iterator[None]:
    """Turn a query on a table the database lacks into ServerMisconfigured: its schema needs `init-db`."""
    try:
        yield
    except mysql.connector.errors.ProgrammingError as error:
        if error.errno != errorcode.ER_NO_SUCH_TABLE:
            raise
        raise ServerMisconfigured(
            f"The table {table} is missing: the database's schema is older than the server."
            " Run `flask --app app init-db` (`make run` does), which adds it and changes nothing else."
        ) from error


def schema_statements() -> list[str]:
    """Return the statements of schema.sql, one string each, honouring `DELIMITER` lines as the mysql client does."""
    statements, current, delimiter = [], [], ";"
    for line in SCHEMA_PATH.read_text().splitlines():
        if line.lstrip().startswith("--"):
            continue
        if line.upper().startswith("DELIMITER "):
            delimiter = line.split()[1]
            continue
        current.append(line)
        if line.rstrip().endswith(delimiter):
            statements.append("\n".join(current).rstrip().removesuffix(delimiter).strip())
            current = []
    statements.append("\n".join(current).strip())
    return [statement for statement in statements if statement]


def init_db(config: dict) -> None:
    """Create the database if it is missing and apply schema.sql (idempotent)."""
    name = config["DB_NAME"]
    if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", name):
        raise click.ClickException("DB_NAME may hold only letters, digits and underscores.")
    cnx = mysql.connector.connect(**connection_settings(config, with_database=False))
    try:
        cursor = cnx.cursor()
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        cursor.execute(f"USE `{name}`")
        for statement in schema_statements():
            cursor.execute(statement)
    finally:
        cnx.close()


def init_app(app: Flask) -> None:
    """Give every request's connection back to the pool when the request ends."""
    app.teardown_appcontext(close_db)
