"""Live processes for tests and scripts/screenshots.py: the API's server on a free port, Debian's Chromium."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHROMIUM_MISSING = f"{CHROMIUM} is missing: run scripts/install_chromium.sh (as root) to install it."


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_environment(settings: dict, port: int) -> dict:
    """Return the environment that points a server process at the settings' database and keys."""
    names = ("DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME")
    names += ("CARD_NUMBER_KEYS", "CARD_CVC_KEYS", "CARD_FINGERPRINT_KEY", "JWT_SIGNING_KEYS", "WEBHOOK_SECRET_KEYS")
    names += tuple(name for name in settings if name.startswith("WEBHOOK_") and name != "WEBHOOK_SECRET_KEYS")
    values = {name: setting_text(settings[name]) for name in names}
    return {**os.environ, **values, "PORT": str(port), "WEB_CONCURRENCY": "2"}


def setting_text(value: object) -> str:
    """Write a setting as its environment variable holds it (a set of names comma-separated)."""
    if isinstance(value, frozenset | set):
        return ",".join(sorted(value))
    return str(value)


def wait_until_healthy(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    """Poll /health until it answers 200, or raise RuntimeError."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not become healthy in time")


BIN = Path(sys.executable).parent
APP = "app:create_app()"
# The production server (the Procfile's, uwsgi.ini) and the alternative one (gunicorn.conf.py).
SERVER_COMMANDS = {
    "uwsgi": lambda port: [str(BIN / "python"), "-m", "web.serve"],
    "gunicorn": lambda port: [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", APP],
}


def start_server(
    settings: dict, log_file: Path, server: str = "uwsgi", options: tuple = ()
) -> tuple[subprocess.Popen, str]:
    """Start the API under a server's config for `settings` on a free port (more `options` last); wait until healthy."""
    port = free_port()
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [*SERVER_COMMANDS[server](port), *options],
            cwd=ROOT,
            env=server_environment(settings, port),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process)
    except BaseException:
        stop_server(process)
        raise
    return process, url


def stop_server(process: subprocess.Popen) -> None:
    """Stop a server started by start_server (SIGTERM: it finishes what it is serving)."""
    process.terminate()
    process.wait(timeout=30)


def launch_chromium(playwright):
    """Launch Debian's Chromium, headless, through Playwright (which never downloads a browser)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
