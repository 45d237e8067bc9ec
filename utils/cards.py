"""Facts about card numbers: the Luhn check, the network a number belongs to, card numbers in free text."""

import re
from collections.abc import Iterator

# Digits of any script (fullwidth "４１１１" too) with up to 8 separators between them ("4111 1111",
# "4111.1111", "4111 -- 1111", "4111\r\n\r\n1111"): a card number in disguise. A letter ends a run.
_SEPARATED_DIGITS = re.compile(r"\d(?:[^\dA-Za-z]{0,8}\d)*")
_DIGITS = re.compile(r"\d+")
_DIGIT = re.compile(r"\d")
MIN_CARD_DIGITS, MAX_CARD_DIGITS = 12, 19

# The card networks by IIN prefix (inclusive ranges) and the lengths each issues, after the IIN
# table of Wikipedia's "Payment card number" (Diners' 300-305, 3095 and 38-39 after Discover's
# acceptance table). A number belongs to the first row whose prefix and length both fit, so a
# narrower range comes before the wider one it lies in (RuPay's 6521-6522 inside Discover's 65).
# RuPay's 353 and 356 are RuPay-JCB cards inside JCB's range: the API has always called them jcb.
CARD_NETWORKS: tuple[tuple[str, tuple[tuple[int, int], ...], tuple[int, ...]], ...] = (
    ("amex", ((34, 34), (37, 37)), (15,)),
    ("visa", ((4, 4),), (13, 16, 19)),
    ("mastercard", ((51, 55), (2221, 2720)), (16,)),
    ("rupay", ((6521, 6522),), (16,)),
    ("discover", ((6011, 6011), (644, 649), (65, 65), (622126, 622925)), tuple(range(16, 20))),
    ("rupay", ((60, 60), (81, 82), (508, 508)), (16,)),
    ("jcb", ((3528, 3589),), tuple(range(16, 20))),
    ("diners", ((300, 305), (3095, 3095), (36, 36), (38, 39)), tuple(range(14, 20))),
    ("unionpay", ((62, 62),), tuple(range(16, 20))),
    (
        "maestro",
        ((5018, 5018), (5020, 5020), (5038, 5038), (5893, 5893), (6304, 6304), (6759, 6759), (6761, 6763))
        + ((676770, 676770), (676774, 676774)),
        tuple(range(12, 20)),
    ),
)
CARD_BRANDS = tuple(dict.fromkeys(brand for brand, _, _ in CARD_NETWORKS)) + ("unknown",)


def luhn_valid(digits: str) -> bool:
    """Return whether a string of digits passes the Luhn check."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def card_brand(digits: str) -> str:
    """Return the network that issues card numbers with this prefix and length, or `unknown`."""
    for brand, ranges, lengths in CARD_NETWORKS:
        if len(digits) in lengths:
            for low, high in ranges:
                if low <= int(digits[: len(str(low))]) <= high:
                    return brand
    return "unknown"


def is_card_number(digits: str) -> bool:
    """Return whether a string of ASCII digits is a card number: a network's prefix and length, passing Luhn."""
    return card_brand(digits) != "unknown" and luhn_valid(digits)


def _ascii(digits: str) -> str:
    """Return digits of any script ("４１１１", "٤١١١") as ASCII digits."""
    return "".join(str(int(char)) for char in digits)


def _card_number_spans(text: str) -> Iterator[tuple[int, int]]:
    """Yield (start, end) of each card number in text, separators allowed, not glued to other digits.

    A card number is one or more whole digit groups of a run: the run "Ref 12: 4111 1111 1111 1111 12/29"
    holds one, though the run as a whole is 22 digits of no network.
    """
    for run in _SEPARATED_DIGITS.finditer(text):
        groups = [(group.start(), group.end(), _ascii(group.group())) for group in _DIGITS.finditer(text, *run.span())]
        for first, (start, _, _) in enumerate(groups):
            digits = ""
            for _, end, group_digits in groups[first:]:
                digits += group_digits
                if len(digits) > MAX_CARD_DIGITS:
                    break
                if len(digits) >= MIN_CARD_DIGITS and is_card_number(digits):
                    yield start, end


def holds_card_number(value: str) -> bool:
    """Return whether free text holds a card number: a network's prefix and length, passing Luhn."""
    return next(_card_number_spans(value), None) is not None


def redact_card_numbers(text: str) -> str:
    """Mask the digits of each card number in text (as `holds_card_number` finds them); keep all else."""
    chars = list(text)
    for start, end in _card_number_spans(text):
        for index in range(start, end):
            if chars[index].isdecimal():
                chars[index] = "*"
    return "".join(chars)


def redact_digits(text: str, min_digits: int = 6) -> str:
    """Mask runs of `min_digits` or more digits (separators allowed), so no card number is echoed."""
    if len(_DIGIT.findall(text)) < min_digits:
        return text  # too few digits in all to make one long run: the common case, decided in C

    def mask(match: re.Match) -> str:
        run = match.group()
        return _DIGIT.sub("*", run) if sum(char.isdecimal() for char in run) >= min_digits else run

    return _SEPARATED_DIGITS.sub(mask, text)
