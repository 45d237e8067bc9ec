"""The pooled MySQL/MariaDB connection, transactions, and applying schema.sql."""

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path

import click
import mysql.connector
from flask import Flask, current_app, g, has_request_context, request
from mysql.connector import errorcode
from mysql.connector.abstracts import MySQLConnectionAbstract
from mysql.connector.cursor import MySQLCursorDict
from mysql.connector.errors import get_mysql_exception

from config import parse_servers
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
    errorcode.ER_UNKNOWN_COM_ERROR,  # a Galera node not ready for queries (joining, or cut off from the others)
}
# How many times in all a request runs when it loses a certification conflict or its server dies.
REQUEST_ATTEMPTS = 3
# Requests with these methods change nothing: their connection commits every statement by itself.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def connection_settings(config: dict, *, with_database: bool = True) -> dict:
    """Return mysql-connector arguments for the configured server, or servers (DB_HOST may list several)."""
    servers = parse_servers(config["DB_HOST"], config["DB_PORT"])
    settings = {
        "host": servers[0][0],
        "port": servers[0][1],
        "user": config["DB_USER"],
        "password": config["DB_PASSWORD"],
        "charset": "utf8mb4",
        "collation": "utf8mb4_unicode_ci",
        "autocommit": True,
        "connection_timeout": config["DB_CONNECT_TIMEOUT"],
    }
    if with_database:
        settings["database"] = config["DB_NAME"]
    if len(servers) > 1:
        # mysql-connector's failover: descending priorities keep the configured order (equal ones are shuffled).
        settings["failover"] = [{"host": h, "port": p, "priority": 100 - i} for i, (h, p) in enumerate(servers)]
    return settings


def connect(settings: dict, sync_wait: int = 1) -> MySQLConnectionAbstract:
    """Connect to the first listed server that answers and is ready for queries; raise the last error.

    Not mysql-connector's own failover: it takes a Galera node that answers but is not ready
    (joining, or cut off from the primary component, answering every query with errno 1047).
    """
    single = {name: value for name, value in settings.items() if name != "failover"}
    error = None
    for server in settings.get("failover") or [single]:
        try:
            return _ready_connection({**single, "host": server["host"], "port": server["port"]}, sync_wait)
        except (mysql.connector.Error, MySQLInterfaceError) as failure:
            logger.warning("cannot use the database server %s:%s: %s", server["host"], server["port"], failure)
            error = failure
    raise error


def _ready_connection(settings: dict, sync_wait: int) -> MySQLConnectionAbstract:
    """Open a connection; on a Galera node, check that it accepts queries and set its causality wait."""
    connection = mysql.connector.connect(**settings)
    try:
        cursor = connection.cursor()
        cursor.execute("SHOW GLOBAL VARIABLES LIKE 'wsrep_on'")
        if cursor.fetchall() in ([], [("wsrep_on", "OFF")]):
            return connection  # not a Galera node
        cursor.execute("SHOW GLOBAL STATUS LIKE 'wsrep_ready'")
        if cursor.fetchall() != [("wsrep_ready", "ON")]:
            raise mysql.connector.errors.OperationalError(
                "the Galera node is not ready for queries", errno=errorcode.ER_UNKNOWN_COM_ERROR
            )
        cursor.execute("SET SESSION wsrep_sync_wait = %s", (sync_wait,))
        cursor.close()
    except BaseException:
        _close_quietly(connection)
        raise
    return connection


NO_SLOT = object()


class Slots:
    """A pool's slots (a connection and when it was given back, or None for one not yet opened), newest first.

    Most recently used first, so a busy worker keeps reusing one warm connection. A slot is
    taken with one lock and a list pop while one is free; queue.LifoQueue's Condition cost
    several times as much on every request.
    """

    def __init__(self, size: int):
        self._free: list = [None] * size
        self._lock = threading.Lock()
        self._given_back = threading.Condition(self._lock)
        self._waiting = 0

    def take(self, wait_seconds: float):
        """Return the newest free slot, waiting up to `wait_seconds` for one; NO_SLOT if none came."""
        with self._lock:
            if not self._free:
                self._waiting += 1
                try:
                    if not self._given_back.wait_for(lambda: self._free, wait_seconds):
                        return NO_SLOT
                finally:
                    self._waiting -= 1
            return self._free.pop()

    def give(self, slot) -> None:
        """Put a slot back, waking one request that waits for it."""
        with self._lock:
            self._free.append(slot)
            if self._waiting:
                self._given_back.notify()


class ConnectionPool:
    """A fixed number of mysql-connector connections per process, opened when first needed.

    mysql-connector's own pool opens every connection in its constructor, raises at once when
    none is free, and pings the server on every checkout and every cursor(); those two pings were
    a third of a point read's time under load. This pool waits briefly for a free connection,
    pings only one that sat idle (and so may have been dropped), and replaces a broken one.
    """

    def __init__(self, settings: dict, size: int, *, idle_ping_seconds: float = 1.0, sync_wait: int = 1):
        self._settings = settings
        self._sync_wait = sync_wait
        self._idle_ping_seconds = idle_ping_seconds
        # Connections given back before this moment are checked before reuse: a broken one was
        # just seen, and its server may have taken its siblings with it.
        self._suspect_before = 0.0
        self._slots = Slots(size)

    def acquire(self, wait_seconds: float) -> MySQLConnectionAbstract:
        """Take a connection, waiting up to `wait_seconds` for one; raise ServiceUnavailable."""
        slot = self._slots.take(wait_seconds)
        if slot is NO_SLOT:
            raise ServiceUnavailable("No database connection became free in time; retry shortly.")
        try:
            return self._usable(slot)
        except BaseException as error:
            if slot is not None:
                _close_quietly(slot[0])
            self._slots.give(None)  # whatever failed, the slot is never lost
            if isinstance(error, Exception):
                logger.warning("cannot connect to the database: %s", error)
                raise ServiceUnavailable() from error
            raise

    def _usable(self, slot: tuple | None) -> MySQLConnectionAbstract:
        """Open a connection for an empty slot, or check one that sat idle (replacing it if it is dead)."""
        if slot is None:
            return connect(self._settings, self._sync_wait)
        connection, released_at = slot
        if released_at < self._suspect_before or time.monotonic() - released_at > self._idle_ping_seconds:
            try:
                connection.ping()
            except (mysql.connector.Error, MySQLInterfaceError):
                _close_quietly(connection)  # its server may be gone: open a new one, to the first that answers
                return connect(self._settings, self._sync_wait)
        return connection

    def release(self, connection: MySQLConnectionAbstract, *, broken: bool = False) -> None:
        """Give a connection back; a broken one is closed and its slot left empty."""
        if not broken:
            self._slots.give((connection, time.monotonic()))
            return
        self._suspect_before = time.monotonic()
        try:
            _close_quietly(connection)
        finally:
            self._slots.give(None)


def _close_quietly(connection: MySQLConnectionAbstract) -> None:
    """Close a connection that may already be dead."""
    try:
        connection.close()
    except (mysql.connector.Error, MySQLInterfaceError):
        pass


def get_pool(app: Flask, *, writes: bool = False) -> ConnectionPool:
    """Return this process's pool of autocommit connections, or of write connections, creating it on first use.

    A write connection has autocommit off, so its first statement begins the transaction: no
    START TRANSACTION round trip. Reads keep autocommit on, so they never leave a transaction
    (and its snapshot and metadata locks) open on an idle connection.
    """
    name = "db_write_pool" if writes else "db_pool"
    pool = app.extensions.get(name)
    if pool is None:
        with _pool_lock:
            pool = app.extensions.get(name)
            if pool is None:
                settings = {**connection_settings(app.config), "autocommit": not writes}
                pool = ConnectionPool(settings, app.config["DB_POOL_SIZE"], sync_wait=app.config["DB_WSREP_SYNC_WAIT"])
                app.extensions[name] = pool
    return pool


def get_db() -> MySQLConnectionAbstract:
    """Return the request's connection, taken on first use: a write connection for a request that may change data."""
    context_globals = g._get_current_object()  # one context lookup, not one per use of `g`
    connection = context_globals.get("db")
    if connection is None:
        app = current_app._get_current_object()
        writes = has_request_context() and request.method not in READ_METHODS
        connection = get_pool(app, writes=writes).acquire(app.config["DB_POOL_WAIT_SECONDS"])
        context_globals.db, context_globals.db_writes = connection, writes
        if not app.extensions.get("db_checked"):
            _run_first_use_checks(connection)
    return connection


def _run_first_use_checks(connection: MySQLConnectionAbstract) -> None:
    """Run the checks registered with `add_first_use_check` until they have all passed once in this process."""
    for check in current_app.extensions.get("db_first_use_checks", ()):
        check(connection)
    _end_open_transaction(connection)
    current_app.extensions["db_checked"] = True


def add_first_use_check(app: Flask, check: Callable[[MySQLConnectionAbstract], None]) -> None:
    """Run `check(connection)` before a process first uses the database; an exception it raises fails the request."""
    app.extensions.setdefault("db_first_use_checks", []).append(check)


def mark_broken() -> None:
    """Note that the request's connection failed, so it is replaced instead of reused."""
    g.db_broken = True


def close_db(exception: BaseException | None = None) -> None:
    """Give the request's connection back to the pool (replaced if a request failed on it)."""
    context_globals = g._get_current_object()
    connection = context_globals.pop("db", None)
    if connection is None:
        return
    writes = context_globals.pop("db_writes", False)
    if exception is None and not context_globals.get("db_broken") and connection.in_transaction:
        _rollback_quietly(connection)  # never hand on an open transaction (a failed rollback marks it broken)
    broken = context_globals.pop("db_broken", False) or exception is not None
    get_pool(current_app._get_current_object(), writes=writes).release(connection, broken=broken)


def dict_cursor(connection: MySQLConnectionAbstract):
    """Return a dictionary cursor without the liveness ping that connection.cursor() sends."""
    if CMySQLConnection is not None and isinstance(connection, CMySQLConnection):
        return CDictCursor(connection)
    return MySQLCursorDict(connection)


class Rollback(Exception):
    """Raise inside `transaction()` to end it without committing and go on after the block."""


@contextmanager
def transaction() -> Iterator:
    """Run a block in one transaction: commit on success, roll back and re-raise on error.

    A transaction that loses a conflict (errno 1213: a deadlock, or on Galera a write that another
    node certified first), or whose server dies before the commit, is rolled back everywhere: the
    request runs again from the start (see `repeat_requests`), unless an earlier transaction of
    the request committed, or this one's commit was cut off and may have committed.
    """
    db = get_db()
    cursor = dict_cursor(db)
    try:
        if not g.db_writes:
            db.start_transaction()
        yield cursor
        _commit(db)
    except Rollback:
        _rollback_quietly(db)  # nothing committed: the request may still run again after a conflict
    except BaseException:
        _rollback_quietly(db)
        raise
    finally:
        cursor.close()


@contextmanager
def autocommit() -> Iterator:
    """Give a dictionary cursor for reads and single-statement writes, each committed by itself.

    On a write connection (autocommit off) they are committed together at the end of the block,
    or rolled back if it fails.
    """
    db = get_db()
    cursor = dict_cursor(db)
    try:
        yield cursor
        _end_open_transaction(db)
    except BaseException:
        if db.in_transaction:
            _rollback_quietly(db)
        raise
    finally:
        cursor.close()


def _end_open_transaction(db: MySQLConnectionAbstract) -> None:
    """Commit what a write connection's statements began (a read begins a transaction too); no-op otherwise."""
    if db.in_transaction:
        _driver_commit(db)


def _commit(db: MySQLConnectionAbstract) -> None:
    """Commit, noting that the request changed data, or may have: only a lost conflict certainly did not."""
    try:
        _driver_commit(db)
    except mysql.connector.Error as error:
        if error.errno != errorcode.ER_LOCK_DEADLOCK:
            g.db_committed = True  # cut off mid-commit: it may have committed
        raise
    g.db_committed = True


def _driver_commit(db: MySQLConnectionAbstract) -> None:
    """Commit, raising the C extension's errors as the driver's (its errno kept, else a lost connection)."""
    try:
        db.commit()
    except MySQLInterfaceError as error:
        if getattr(error, "errno", None):
            raise _driver_error(error) from error
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


def may_repeat(error: mysql.connector.Error) -> bool:
    """Return whether a request that failed with this error can run again from the start.

    A conflict (1213) or a lost server leaves nothing of the failed transaction anywhere; a lock
    wait timeout would only wait as long again. Nothing of the request may have committed before.
    """
    repeatable = error.errno == errorcode.ER_LOCK_DEADLOCK or (
        is_transient(error) and error.errno != errorcode.ER_LOCK_WAIT_TIMEOUT
    )
    return repeatable and not g.get("db_committed", False)


def repeat_requests(dispatch: Callable) -> Callable:
    """Wrap Flask's view dispatch so a request that `may_repeat` runs again, on a fresh connection if its broke."""

    @wraps(dispatch)
    def run():
        for attempt in range(1, REQUEST_ATTEMPTS + 1):
            try:
                return dispatch()
            except mysql.connector.Error as error:
                if attempt == REQUEST_ATTEMPTS or not may_repeat(error):
                    raise
                logger.info("running the request again (attempt %d) after errno %s", attempt + 1, error.errno)
                _start_over(error)

    return run


def _start_over(error: mysql.connector.Error) -> None:
    """Give back a connection that failed; pause a moment so that rivals in a conflict do not meet again."""
    if error.errno != errorcode.ER_LOCK_DEADLOCK:
        mark_broken()
        close_db()
    time.sleep(random.uniform(0, 0.01))


def init_app(app: Flask) -> None:
    """Give every request's connection back to the pool when the request ends; repeat requests that may be."""
    app.teardown_appcontext(close_db)
    # Flask has no hook around the view itself, and only there can a whole request run again.
    app.dispatch_request = repeat_requests(app.dispatch_request)
