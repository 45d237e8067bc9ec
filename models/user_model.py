"""SQL for users: plain functions over a cursor, dicts out."""

from datetime import datetime

from mysql.connector import errorcode
from mysql.connector.errors import IntegrityError

from models import only_row, parse_datetime, parsed_rows, select_list
from utils.errors import DuplicateEmail, UserHasPayments

PUBLIC = ("id", "name", "email", "phone", "country", "created_at", "updated_at")
TEXT_PARSERS = {"created_at": parse_datetime, "updated_at": parse_datetime}
COLUMNS = ", ".join(PUBLIC)
PAGE_COLUMNS = select_list(PUBLIC, TEXT_PARSERS)
WRITABLE = ("name", "email", "phone", "country")


def create_user(cursor, user: dict, now: datetime) -> dict:
    """Insert a user and return the stored row."""
    values = [user[name] for name in WRITABLE]
    try:
        cursor.execute(
            "INSERT INTO users (name, email, phone, country, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s)",
            (*values, now, now),
        )
    except IntegrityError as error:
        raise _domain_error(error) from error
    return {"id": cursor.lastrowid, **user, "created_at": now, "updated_at": now}


def get_user(cursor, user_id: int, *, for_update: bool = False) -> dict | None:
    """Return one user, or None; `for_update` locks the row until the transaction ends."""
    lock = " FOR UPDATE" if for_update else ""
    cursor.execute(f"SELECT {COLUMNS} FROM users WHERE id = %s{lock}", (user_id,))
    return only_row(cursor)


def list_users(cursor, after: int, limit: int) -> list[dict]:
    """Return up to `limit` users with ids above `after`, in id order."""
    cursor.execute(f"SELECT {PAGE_COLUMNS} FROM users WHERE id > %s ORDER BY id LIMIT %s", (after, limit))
    return parsed_rows(cursor, TEXT_PARSERS)


def update_user(cursor, user_id: int, changes: dict, now: datetime) -> None:
    """Apply the given column changes to a user."""
    assignments = ", ".join(f"{name} = %s" for name in changes)
    try:
        cursor.execute(
            f"UPDATE users SET {assignments}, updated_at = %s WHERE id = %s",
            (*changes.values(), now, user_id),
        )
    except IntegrityError as error:
        raise _domain_error(error) from error


def delete_user(cursor, user_id: int) -> bool:
    """Delete a user; return whether one was deleted."""
    try:
        cursor.execute("DELETE FROM users WHERE id = %s", (user_id,))
    except IntegrityError as error:
        raise _domain_error(error) from error
    return cursor.rowcount == 1


def _domain_error(error: IntegrityError) -> Exception:
    """Turn a known integrity failure into the API's error for it."""
    if error.errno == errorcode.ER_DUP_ENTRY:
        return DuplicateEmail()
    if error.errno == errorcode.ER_ROW_IS_REFERENCED_2:
        return UserHasPayments()
    return error


def user_exists(cursor, user_id: int) -> bool:
    """Return whether a user with this id exists."""
    cursor.execute("SELECT id FROM users WHERE id = %s", (user_id,))
    return bool(cursor.fetchall())
