"""A webhook receiver on loopback, verifying every signature with the standardwebhooks library, and the worker."""

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.live import ROOT, free_port, server_environment


@dataclass
class Received:
    """One request the receiver took, and which of its secrets verified the signature (None: none did)."""

    webhook_id: str
    headers: dict
    body: bytes
    verified_by: str | None
    at: float
    wall: float
    path: str

    @property
    def message(self) -> dict:
        """Return the body as JSON."""
        return json.loads(self.body)


class Receiver:
    """A threaded HTTP server on 127.0.0.1 that records every webhook and answers `answer(received)` (200 by default).

    `answer` returns a status code, or (status code, headers).
    `secrets` are the signing secrets it accepts; `hold(received)` is how many seconds to wait
    before answering (none by default).
    `stop()` and `start()` take it down and up on the same port, as a receiver's outage would.
    """

    def __init__(self):
        self.port = free_port()
        self.secrets: list[str] = []
        self.received: list[Received] = []
        self.answer: Callable[[Received], int] = lambda received: 200
        self.hold: Callable[[Received], float] = lambda received: 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """Return the URL webhooks go to."""
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> "Receiver":
        """Listen (again) on the receiver's port."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received = receiver.take(dict(self.headers), body, self.path)
                time.sleep(receiver.hold(received))
                answer = receiver.answer(received)
                status, headers = answer if isinstance(answer, tuple) else (answer, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                """Keep the test output quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening: connections are refused until start()."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def take(self, headers: dict, body: bytes, path: str = "/hooks") -> Received:
        """Verify and record one request."""
        verified_by = None
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            verified_by = secret
            break
        webhook_id = headers.get("webhook-id", "")
        received = Received(webhook_id, headers, body, verified_by, time.monotonic(), time.time(), path)
        with self._lock:
            self.received.append(received)
        return received

    def ids(self) -> list[str]:
        """Return the webhook-id of every request taken, in order."""
        with self._lock:
            return [received.webhook_id for received in self.received]

    def wait_for(self, done: Callable[["Receiver"], bool], seconds: float = 30) -> bool:
        """Wait until `done(self)` holds, or time runs out; return whether it held."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if done(self):
                return True
            time.sleep(0.05)
        return done(self)


def all_arrived(event_ids: list[int]):
    """Return a check that every event has reached the receiver, verified."""
    wanted = {str(event_id) for event_id in event_ids}
    return lambda receiver: wanted <= {item.webhook_id for item in receiver.received if item.verified_by}


def start_worker(settings: dict, log_file: Path, **overrides) -> subprocess.Popen:
    """Start `flask --app app deliver-webhooks` on the settings' database; wait until it says it is delivering."""
    environment = server_environment({**settings, **overrides}, free_port())
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "deliver-webhooks"],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while "delivering" not in log_file.read_text() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if process.poll() is not None:
        raise RuntimeError(f"the webhook worker exited with {process.returncode}: {log_file.read_text()}")
    return process


def stop_worker(process: subprocess.Popen, sig: int = signal.SIGTERM) -> int:
    """Stop a worker with a signal (SIGTERM: cleanly); return its exit code."""
    if process.poll() is None:
        process.send_signal(sig)
    return process.wait(timeout=30)
