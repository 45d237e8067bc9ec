"""The pooled MySQL/MariaDB connection, transactions, and the `init-db` command."""

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import mysql.connector
from flask import Flask, current_app, g
from flask.cli import with_appcontext
from mysql.connector import errorcode
from mysql.connector.pooling import MySQLConnectionPool, PooledMySQLConnection

from utils.errors import ServiceUnavailable

try:  # The C extension's commit() and rollback() raise its own error, not a mysql.connector.Error.
    from _mysql_connector import MySQLInterfaceError
except ImportError:  # pure-Python connector
    MySQLInterfaceError = mysql.connector.errors.InterfaceError

SCHEMA_PATH = Path(__file__).with_name("schema.sql")
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


def get_pool(app: Flask) -> MySQLConnectionPool:
    """Return this process's pool, creating it on first use."""
    pool = app.extensions.get("db_pool")
    if pool is not None:
        return pool
    with _pool_lock:
        pool = app.extensions.get("db_pool")
        if pool is None:
            pool = _create_pool(app.config)
            app.extensions["db_pool"] = pool
    return pool


def _create_pool(config: dict) -> MySQLConnectionPool:
    """Open a pool (the connector opens every connection now), or raise ServiceUnavailable."""
    try:
        # Every path commits or rolls back and no session state is set, so the
        # per-checkout session reset would only add a round trip.
        return MySQLConnectionPool(
            pool_size=config["DB_POOL_SIZE"],
            pool_reset_session=False,
            **connection_settings(config),
        )
    except mysql.connector.Error as error:
        raise ServiceUnavailable() from error


def get_db() -> PooledMySQLConnection:
    """Return the request's connection, checked out of the pool on first use."""
    if "db" not in g:
        g.db = _checkout(get_pool(current_app), current_app.config["DB_POOL_WAIT_SECONDS"])
    return g.db


def _checkout(pool: MySQLConnectionPool, wait_seconds: float) -> PooledMySQLConnection:
    """Take a connection, waiting briefly for a free one (the connector never waits)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return pool.get_connection()
        except mysql.connector.errors.PoolError as error:
            if time.monotonic() >= deadline:
                raise ServiceUnavailable("No database connection became free in time; retry shortly.") from error
            time.sleep(0.005)
        except mysql.connector.Error as error:
            raise ServiceUnavailable() from error


def close_db(_exception: BaseException | None = None) -> None:
    """Give the request's connection back to the pool."""
    db = g.pop("db", None)
    if db is not None:
        try:
            db.close()
        except mysql.connector.Error:
            current_app.logger.warning("returning a broken connection to the pool")


@contextmanager
def transaction() -> Iterator:
    """Run a block in one transaction: commit on success, roll back and re-raise on error."""
    db = get_db()
    db.start_transaction()
    cursor = db.cursor(dictionary=True)
    try:
        yield cursor
        _commit(db)
    except BaseException:
        _rollback_quietly(db)
        raise
    finally:
        cursor.close()


@contextmanager
def reading() -> Iterator:
    """Give a dictionary cursor for autocommitted reads and single-statement writes."""
    cursor = get_db().cursor(dictionary=True)
    try:
        yield cursor
    finally:
        cursor.close()


def _commit(db: PooledMySQLConnection) -> None:
    """Commit, reporting a lost connection as the driver's OperationalError."""
    try:
        db.commit()
    except MySQLInterfaceError as error:
        raise mysql.connector.errors.OperationalError(str(error), errno=errorcode.CR_SERVER_LOST) from error


def _rollback_quietly(db: PooledMySQLConnection) -> None:
    """Roll back; a connection already lost has nothing to roll back."""
    try:
        db.rollback()
    except (mysql.connector.Error, MySQLInterfaceError):
        pass


def is_transient(error: mysql.connector.Error) -> bool:
    """Return whether a driver error means the database is unavailable right now."""
    return error.errno in TRANSIENT_ERRNOS or isinstance(
        error, mysql.connector.errors.InterfaceError | mysql.connector.errors.OperationalError
    )


def schema_statements() -> list[str]:
    """Return the statements of schema.sql, one string each."""
    text = "\n".join(line for line in SCHEMA_PATH.read_text().splitlines() if not line.lstrip().startswith("--"))
    return [statement.strip() for statement in text.split(";") if statement.strip()]


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


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create the database and tables from schema.sql (safe to run again)."""
    try:
        init_db(current_app.config)
    except mysql.connector.Error as error:
        raise click.ClickException(f"Could not reach the database: {error.msg}") from error
    click.echo(f"Schema applied to database {current_app.config['DB_NAME']!r}.")


def init_app(app: Flask) -> None:
    """Register the connection teardown and the CLI command with the app."""
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)
