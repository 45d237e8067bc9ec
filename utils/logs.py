"""Structured (JSON) logging: one object per line, no card data by construction."""

import json
import logging
import os
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson

# Set by the request middleware for the length of each request.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def new_request_id() -> str:
    """Return a fresh request id: 32 random hex characters."""
    return os.urandom(16).hex()


def current_request_id() -> str | None:
    """Return the id of the request being served, or None outside a request."""
    return request_id_var.get()


class JsonFormatter(logging.Formatter):
    """Format a log record as one JSON object, with any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line."""
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({key: value for key, value in vars(record).items() if key not in _STANDARD_ATTRIBUTES})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(entry, default=str).decode()
        except TypeError:  # a lone surrogate, or an integer beyond 64 bits: the standard library writes them
            return json.dumps(entry, default=str)


def _stamp_request_id(factory):
    """Wrap a log record factory so records made while serving a request carry its id."""

    def make_record(*args, **kwargs) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        request_id = current_request_id()
        if request_id is not None:
            record.request_id = request_id
        return record

    make_record.stamps_request_id = True
    return make_record


def configure_logging(level: str) -> None:
    """Send every log record to stderr as JSON, once per process."""
    if not getattr(logging.getLogRecordFactory(), "stamps_request_id", False):
        logging.setLogRecordFactory(_stamp_request_id(logging.getLogRecordFactory()))
    root = logging.getLogger()
    if any(isinstance(handler.formatter, JsonFormatter) for handler in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    # The development server's own request lines would repeat the access log, raw paths included.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
