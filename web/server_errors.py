"""Problem+json for the requests gunicorn answers itself, and no card numbers in its own log lines.

gunicorn refuses a request line or headers it cannot parse (400), a request line over its limit
(414) and headers over theirs (431) with an HTML page of its own, which quotes the request: a
card number in a URL would come back in it. `gunicorn.conf.py` installs `write_problem` in its
place, so those answers are problem documents like every other error, and quote nothing. The
warning gunicorn logs for such a request quotes it too, so its log lines have card numbers masked
(what `utils.cards.holds_card_number` calls one), and nothing else: its "Listening at" line keeps
the address, port and pid.
"""

import logging

from gunicorn import util

from utils.cards import redact_card_numbers
from utils.logs import new_request_id
from web.server_limits import problem_document


def write_problem(sock, status_int: int, reason: str, mesg: str) -> None:
    """Write gunicorn's error answer as application/problem+json (gunicorn.util.write_error's signature).

    `mesg` may quote the request, so it is left out.
    """
    body = problem_document(status_int, reason)
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Request-Id: {new_request_id()}\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Cache-Control: no-store\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


class MaskCardNumbers(logging.Filter):
    """Mask the card numbers in a log record's message, leaving addresses, ports and pids readable."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message with its card numbers masked; always keep the record."""
        record.msg, record.args = redact_card_numbers(record.getMessage()), ()
        return True


def install() -> None:
    """Make gunicorn write its own error answers as problem documents, and mask card numbers in its log."""
    util.write_error = write_problem
    logging.getLogger("gunicorn.error").addFilter(MaskCardNumbers())
