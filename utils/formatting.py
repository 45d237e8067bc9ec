"""Times and amounts: the current stored time, and amounts to a currency's decimals."""

from datetime import UTC, datetime
from decimal import Decimal


def utc_now() -> datetime:
    """Return the current UTC time, to the second, without tzinfo (as stored)."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


_QUANTUMS = {decimals: Decimal(1).scaleb(-decimals) for decimals in range(5)}


def format_amount(amount: Decimal, decimals: int) -> str:
    """Format an amount with exactly the currency's number of decimals."""
    # str() is plain notation here (the exponent is 0 to -4) and twice as fast as f"{:f}".
    return str(amount.quantize(_QUANTUMS[decimals]))
