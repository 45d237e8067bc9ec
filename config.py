"""Configuration read from the environment (and `.env`, through python-dotenv)."""

import os

from dotenv import load_dotenv

from utils.crypto_utils import KeyConfigError, generate_key, parse_key, parse_keyring

load_dotenv()


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _number(name: str, default: float, low: float, high: float, kind: type = int) -> float:
    """Read a number variable within bounds, falling back to `default` when unset; stop with a clear message."""
    text = os.environ.get(name) or str(default)
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        noun = "a whole number" if kind is int else "a number"
        raise SystemExit(f"Cannot start the Payments API: {name} must be {noun} from {low} to {high}, not {text!r}.")
    return value


def _flag(name: str) -> bool:
    """Read a yes/no variable (true/false, yes/no, 1/0; unset is no); stop with a clear message otherwise."""
    text = (os.environ.get(name) or "false").strip().lower()
    if text not in ("true", "yes", "1", "false", "no", "0"):
        raise SystemExit(f"Cannot start the Payments API: {name} must be true or false, not {text!r}.")
    return text in ("true", "yes", "1")


def _names(name: str) -> frozenset[str]:
    """Read a comma-separated list of host names or addresses, lower-cased."""
    return frozenset(item.strip().lower() for item in (os.environ.get(name) or "").split(",") if item.strip())


def _log_level() -> str:
    """Read LOG_LEVEL, one of the standard level names; stop with a clear message otherwise."""
    level = (os.environ.get("LOG_LEVEL") or "INFO").strip().upper()
    if level not in LOG_LEVELS:
        raise SystemExit(f"Cannot start the Payments API: LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}.")
    return level


def parse_servers(text: str, default_port: int) -> list[tuple[str, int]]:
    """Split a server list (`host[:port],host[:port],…`; `[v6 address]:port` too) into (host, port) pairs."""
    servers = []
    for entry in (part.strip() for part in text.split(",")):
        host, port = entry, default_port
        if entry.startswith("["):
            host, _, rest = entry[1:].partition("]")
            port = int(rest.removeprefix(":")) if rest else default_port
        elif entry.count(":") == 1:
            host, port = entry.split(":")[0], int(entry.split(":")[1])
        if not host or not 1 <= port <= 65535:
            raise ValueError(entry)
        servers.append((host, port))
    return servers


def _db_host(default_port: int) -> str:
    """Read DB_HOST, one server or a list of them; stop with a clear message when it is malformed."""
    text = os.environ.get("DB_HOST") or "127.0.0.1"
    try:
        parse_servers(text, default_port)
    except ValueError:
        raise SystemExit(
            "Cannot start the Payments API: DB_HOST must be host[:port],"
            f" or a list of them separated by commas, not {text!r}."
        ) from None
    return text


class Config:
    """Settings for running the API; secrets have no default and are checked at start."""

    TESTING = False
    MAX_CONTENT_LENGTH = 64 * 1024
    LOG_LEVEL = _log_level()

    DB_PORT = _number("DB_PORT", 3306, 1, 65535)
    DB_HOST = _db_host(DB_PORT)
    DB_USER = os.environ.get("DB_USER", "root")
    DB_PASSWORD = os.environ.get("DB_PASSWORD", "")
    DB_NAME = os.environ.get("DB_NAME", "payments")
    DB_POOL_SIZE = _number("DB_POOL_SIZE", 4, 1, 100)
    DB_POOL_WAIT_SECONDS = _number("DB_POOL_WAIT_SECONDS", 2, 0, 60, float)
    DB_CONNECT_TIMEOUT = _number("DB_CONNECT_TIMEOUT", 3, 1, 300)
    # On a Galera node only: wait for the node to catch up before a read (1), so a read through
    # one node sees what a request through another node has just committed.
    DB_WSREP_SYNC_WAIT = _number("DB_WSREP_SYNC_WAIT", 1, 0, 15)

    CARD_NUMBER_KEYS = os.environ.get("CARD_NUMBER_KEYS")
    CARD_CVC_KEYS = os.environ.get("CARD_CVC_KEYS")
    CARD_FINGERPRINT_KEY = os.environ.get("CARD_FINGERPRINT_KEY")
    JWT_SIGNING_KEYS = os.environ.get("JWT_SIGNING_KEYS")
    WEBHOOK_SECRET_KEYS = os.environ.get("WEBHOOK_SECRET_KEYS")

    # Webhook URLs must be https and reach a public address, unless these allow otherwise.
    WEBHOOK_ALLOW_HTTP = _flag("WEBHOOK_ALLOW_HTTP")
    WEBHOOK_ALLOWED_HOSTS = _names("WEBHOOK_ALLOWED_HOSTS")
    WEBHOOK_TIMEOUT_SECONDS = _number("WEBHOOK_TIMEOUT_SECONDS", 10, 1, 60, float)
    # Multiplies the retry schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); tests make it tiny.
    WEBHOOK_RETRY_SCALE = _number("WEBHOOK_RETRY_SCALE", 1, 0.0001, 100, float)
    WEBHOOK_DISABLE_AFTER_DAYS = _number("WEBHOOK_DISABLE_AFTER_DAYS", 5, 0.00001, 365, float)
    WEBHOOK_POLL_SECONDS = _number("WEBHOOK_POLL_SECONDS", 0.2, 0.01, 60, float)
    WEBHOOK_WORKER_THREADS = _number("WEBHOOK_WORKER_THREADS", 4, 1, 64)

    IDEMPOTENCY_TTL_SECONDS = 24 * 3600
    # A key still in flight after this long belongs to a request that died (gunicorn's timeout is 30 s).
    IDEMPOTENCY_STALE_SECONDS = 35


class TestConfig(Config):
    """Settings for the test suite: its own database, throwaway keys."""

    TESTING = True
    DB_NAME = os.environ.get("TEST_DB_NAME", "payments_test")
    DB_POOL_WAIT_SECONDS = 0.5
    CARD_NUMBER_KEYS = "1:" + generate_key()
    CARD_CVC_KEYS = "1:" + generate_key()
    CARD_FINGERPRINT_KEY = generate_key()
    JWT_SIGNING_KEYS = "1:" + generate_key()
    WEBHOOK_SECRET_KEYS = "1:" + generate_key()
    # The tests' receivers listen on loopback, over plain HTTP, and retries come in milliseconds.
    WEBHOOK_ALLOW_HTTP = True
    WEBHOOK_ALLOWED_HOSTS = frozenset({"127.0.0.1"})
    WEBHOOK_RETRY_SCALE = 0.0005
    WEBHOOK_TIMEOUT_SECONDS = 2
    WEBHOOK_POLL_SECONDS = 0.05


def load_keys(config: dict) -> dict:
    """Parse the card keys and the token signing keys from a config mapping; raise KeyConfigError if any is bad."""
    keys = {
        "card_number": parse_keyring("CARD_NUMBER_KEYS", config.get("CARD_NUMBER_KEYS")),
        "card_cvc": parse_keyring("CARD_CVC_KEYS", config.get("CARD_CVC_KEYS")),
        "fingerprint": parse_key("CARD_FINGERPRINT_KEY", config.get("CARD_FINGERPRINT_KEY")),
        "jwt": parse_keyring("JWT_SIGNING_KEYS", config.get("JWT_SIGNING_KEYS")),
        "webhook_secret": parse_keyring("WEBHOOK_SECRET_KEYS", config.get("WEBHOOK_SECRET_KEYS")),
    }
    rings = ("card_number", "card_cvc", "jwt", "webhook_secret")
    groups = [set(keys[name].keys.values()) for name in rings] + [{keys["fingerprint"]}]
    if sum(map(len, groups)) != len(set().union(*groups)):
        raise KeyConfigError(
            "CARD_NUMBER_KEYS, CARD_CVC_KEYS, CARD_FINGERPRINT_KEY, JWT_SIGNING_KEYS and WEBHOOK_SECRET_KEYS"
            " must all be different keys."
        )
    return keys
