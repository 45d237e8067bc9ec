"""Gunicorn settings for `make run`. PORT and WEB_CONCURRENCY (environment or .env) override the defaults."""

import os

from dotenv import load_dotenv

from web import server_errors

load_dotenv()
# Requests gunicorn cannot parse get problem+json from it too, not its HTML page.
server_errors.install()

bind = f"0.0.0.0:{os.environ.get('PORT', '8080')}"
# More workers than cores (gunicorn's own advice, 2 × cores + 1; measured best against 3 and 7, see
# bench/README.md): a sync worker sits idle while it waits for the database and for the client to close.
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1) + 1)
# Sync, not gthread: with gthread, keep-alive clients sometimes piled onto one worker.
worker_class = "sync"
# The app logs every request itself, with its request id; this would say it twice.
accesslog = None
timeout = 30
graceful_timeout = 10
keepalive = 5
# Each worker opens its own database pool lazily: sockets made before fork are shared.
preload_app = False
# Unused here, and its default path is one per user: make run beside the tests' live
# server would fight over it.
control_socket_disable = True


def on_starting(server):
    """Refuse to start the master, not just each worker, when the card keys are missing or bad."""
    from config import Config, load_keys
    from utils.crypto_utils import KeyConfigError

    try:
        load_keys(vars(Config))
    except KeyConfigError as error:
        raise SystemExit(f"Cannot start the Payments API: {error}") from None


def listening_url(server) -> str:
    """Return the URL of gunicorn's first TCP address, with the port it really bound; `localhost` for a wildcard."""
    # With reuse_port the workers bind, and the master has only the configured addresses.
    addresses = [listener.getsockname() for listener in server.LISTENERS] or server.cfg.address
    for address in addresses:
        if isinstance(address, tuple):
            host, port = address[:2]
            if host in ("0.0.0.0", "::", ""):  # every interface: this machine's own name reaches it
                host = "localhost"
            elif ":" in host:  # IPv6
                host = f"[{host}]"
            return f"{'https' if server.cfg.is_ssl else 'http'}://{host}:{port}"
    return f"unix:{addresses[0]}"


KEY_HINT = (
    "Every request but /health and /apidocs needs an API key: the first one is printed above on a new"
    " database; make another with: flask --app app create-api-key --name NAME"
)


def ready_line(url: str) -> str:
    """Return the line that tells the user where the API and its Swagger UI are, once it is ready."""
    return f"Payments API ready: {url} (Swagger UI: {url}/apidocs)"


def when_ready(server):
    """Print where the API is and how to get a key, once gunicorn listens (its own lines are log records)."""
    print(ready_line(listening_url(server)), KEY_HINT, sep="\n", flush=True)
