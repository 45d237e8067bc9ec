"""Hand-written, parameterised SQL: plain functions over a dictionary cursor."""

from collections.abc import Callable, Iterable
from datetime import date, datetime

# mysql-connector's C extension imports the datetime or decimal module again for every DATE,
# DATETIME and DECIMAL value it reads, which makes it several times slower than the standard
# library parsing the same text. Pages of rows select such columns as text and parse them here,
# with the same results (tests/test_models.py compares them with the driver's). A single row is
# left to the driver: for one row the server's CASTs cost more than the parsing saves.
# Measurements: bench/README.md.
Parsers = dict[str, Callable[[str], object]]


def parse_date(text: str) -> date | None:
    """Parse a DATE as the driver does: a zero or otherwise impossible date is None."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def parse_datetime(text: str) -> datetime | None:
    """Parse a DATETIME as the driver does: a zero or otherwise impossible one is None."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def select_list(columns: Iterable[str], parsers: Parsers) -> str:
    """Return a SELECT list of `columns` that reads those with a parser as text, under their own names."""
    # ORDER BY, GROUP BY and HAVING would take such a name as the text alias: sort on `table.column`.
    return ", ".join(f"CAST({name} AS CHAR) AS {name}" if name in parsers else name for name in columns)


def parsed_rows(cursor, parsers: Parsers) -> list[dict]:
    """Return all rows of the cursor's result, with the text columns parsed (NULL stays None)."""
    rows = cursor.fetchall()
    for row in rows:
        for name, parse in parsers.items():
            value = row[name]
            if value is not None:
                row[name] = parse(value)
    return rows


def in_list(values: list) -> str:
    """Return the placeholders of an IN list of `values` (`%s, %s, ...`)."""
    return ", ".join(["%s"] * len(values))


def only_row(cursor) -> dict | None:
    """Return the one row a lookup by a unique key found, or None.

    fetchall() reads the result in one pass; the driver's fetchone() reads a row ahead and
    rebuilds the column descriptions, about 30 µs more per point read.
    """
    rows = cursor.fetchall()
    return rows[0] if rows else None
