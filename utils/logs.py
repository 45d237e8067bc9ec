"""Structured (JSON) logging: one object per line, no card data by construction."""

import json
import logging
import os
import sys
import threading
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache

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


def _timestamp(created: float) -> str:
    """Return a record's time in ISO 8601, UTC, to the millisecond."""
    second = int(created)
    microsecond = round((created - second) * 1_000_000)  # rounded as datetime.fromtimestamp rounds it
    if microsecond == 1_000_000:
        second, microsecond = second + 1, 0
    return f"{_second_stamp(second)}.{microsecond // 1000:03d}+00:00"


@lru_cache(maxsize=4)
def _second_stamp(second: int) -> str:
    """Return a whole second in ISO 8601, UTC, without its offset (a line a second reuses it)."""
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


class JsonFormatter(logging.Formatter):
    """Format a log record as one JSON object, with any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line."""
        entry = {
            "time": _timestamp(record.created),
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


class QuickRecord(logging.LogRecord):
    """An INFO record made without Logger.info's search for its caller and LogRecord's general set-up.

    One is written for every request (the access log), where the standard path cost about twice
    as much. It has every standard attribute, so any formatter can use it (gunicorn's, for one,
    reads %(process)d), and it carries the request id the record factory would have stamped.
    """

    def __init__(self, name: str, message: str, fields: dict, caller) -> None:
        self.created = time.time_ns() / 1e9
        self.name, self.msg, self.args = name, message, ()
        self.levelname, self.levelno = "INFO", logging.INFO
        self.pathname = caller.f_code.co_filename
        self.filename, self.module = _file_and_module(self.pathname)
        self.funcName, self.lineno = caller.f_code.co_name, caller.f_lineno
        self.exc_info = self.exc_text = self.stack_info = None
        self.msecs = int((self.created - int(self.created)) * 1000) + 0.0  # as LogRecord computes it
        self.relativeCreated = (self.created - logging._startTime) * 1000
        self.thread, self.threadName = threading.get_ident(), threading.current_thread().name
        self.process, self.processName = os.getpid(), _process_name()
        _add_request_id(self)
        self.__dict__.update(fields)  # last, as Logger.makeRecord adds `extra`: no field may reuse a standard name


@lru_cache(maxsize=64)
def _file_and_module(pathname: str) -> tuple[str, str]:
    """Return a source file's name and module name as LogRecord gives them."""
    filename = os.path.basename(pathname)
    return filename, os.path.splitext(filename)[0]


def _process_name() -> str:
    """Return the process's name as LogRecord finds it."""
    multiprocessing = sys.modules.get("multiprocessing")
    return multiprocessing.current_process().name if multiprocessing is not None else "MainProcess"


def log_info(logger: logging.Logger, message: str, fields: dict) -> None:
    """Log an INFO record with these extra fields, as `logger.info(message, extra=fields)` would, faster."""
    if logger.isEnabledFor(logging.INFO):
        logger.handle(QuickRecord(logger.name, message, fields, sys._getframe(1)))


def _stamp_request_id(factory):
    """Wrap a log record factory so records made while serving a request carry its id."""

    def make_record(*args, **kwargs) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        _add_request_id(record)
        return record

    make_record.stamps_request_id = True
    return make_record


def _add_request_id(record: logging.LogRecord) -> None:
    """Give a record the id of the request being served, if any."""
    request_id = current_request_id()
    if request_id is not None:
        record.request_id = request_id


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
