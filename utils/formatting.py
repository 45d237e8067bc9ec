"""Formatting of times and amounts for responses."""

from datetime import UTC, date, datetime
from decimal import Decimal


def utc_now() -> datetime:
    """Return the current UTC time, to the second, without tzinfo (as stored)."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def iso_utc(moment: datetime) -> str:
    """Format a stored UTC datetime as ISO 8601 with a Z suffix."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_date(day: date | None) -> str | None:
    """Format a date as YYYY-MM-DD."""
    return day.isoformat() if day else None


def format_amount(amount: Decimal, decimals: int) -> str:
    """Format an amount with exactly the currency's number of decimals."""
    return f"{amount.quantize(Decimal(1).scaleb(-decimals)):f}"
