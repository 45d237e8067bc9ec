"""Facts about card numbers: the Luhn check, the network a number belongs to, card numbers in free text."""

import re

# Digits of any script (fullwidth "４１１１" too) with up to 8 separators between them ("4111 1111",
# "4111.1111", "4111 -- 1111", "4111\r\n\r\n1111"): a card number in disguise.
_SEPARATED_DIGITS = re.compile(r"\d(?:[^\dA-Za-z]{0,8}\d)*")
_DIGIT = re.compile(r"\d")


def luhn_valid(digits: str) -> bool:
    """Return whether a string of digits passes the Luhn check."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


# (brand, prefix ranges, inclusive) in match order: the more specific ranges first.
_BRAND_RANGES = (
    ("amex", ((34, 34), (37, 37))),
    ("visa", ((4, 4),)),
    ("mastercard", ((51, 55), (2221, 2720))),
    ("rupay", ((6521, 6522),)),
    ("discover", ((6011, 6011), (644, 649), (65, 65), (622126, 622925))),
    ("rupay", ((60, 60), (81, 82), (508, 508))),
    ("jcb", ((3528, 3589),)),
    ("diners", ((300, 305), (36, 36), (38, 39))),
    ("unionpay", ((62, 62),)),
    ("maestro", ((50, 50), (56, 58), (63, 63), (67, 67))),
)


def card_brand(digits: str) -> str:
    """Return the card network a card number belongs to, or `unknown`."""
    for brand, ranges in _BRAND_RANGES:
        for low, high in ranges:
            prefix = int(digits[: len(str(low))])
            if low <= prefix <= high:
                return brand
    return "unknown"


def redact_digits(text: str, min_digits: int = 6) -> str:
    """Mask runs of `min_digits` or more digits (separators allowed), so no card number is echoed."""

    def mask(match: re.Match) -> str:
        run = match.group()
        return _DIGIT.sub("*", run) if sum(char.isdecimal() for char in run) >= min_digits else run

    return _SEPARATED_DIGITS.sub(mask, text)


def holds_card_number(value: str) -> bool:
    """Return whether free text holds what looks like a card number: 13-19 digits of a known network, passing Luhn."""
    for run in _SEPARATED_DIGITS.findall(value):
        digits = "".join(str(int(char)) for char in run if char.isdecimal())  # in ASCII, whatever the script
        if 13 <= len(digits) <= 19 and card_brand(digits) != "unknown" and luhn_valid(digits):
            return True
    return False
