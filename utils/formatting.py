"""Formatting of times and amounts for responses."""

from datetime import UTC, date, datetime
from decimal import Decimal


def utc_now() -> datetime:
    """Return the current UTC time, to the second, without tzinfo (as stored)."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def iso_utc(moment: datetime) -> str:
    """Format a stored UTC datetime (whole seconds) as ISO 8601 with a Z suffix."""
    # isoformat() is four times faster than strftime(), which counts on a 1000-row page.
    return moment.isoformat(timespec="seconds") + "Z"


def iso_date(day: date | None) -> str | None:
    """Format a date as YYYY-MM-DD."""
    return day.isoformat() if day else None


_QUANTUMS = {decimals: Decimal(1).scaleb(-decimals) for decimals in range(5)}


def format_amount(amount: Decimal, decimals: int) -> str:
    """Format an amount with exactly the currency's number of decimals."""
    return f"{amount.quantize(_QUANTUMS[decimals]):f}"
