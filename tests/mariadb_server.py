"""A dedicated, throwaway MariaDB server for tests that must stop and restart the database.

The suite's normal server is shared; a test that takes the database down runs its own:

    server = MariaDBServer()
    server.start()  # initialises a fresh datadir on first start (1-3 s), then starts (under a second)
    server.stop()  # SIGTERM, a clean shutdown
    server.start()  # the same datadir, the same port
    server.cleanup()  # stop it and delete its files

Root keeps normal authentication (no password over TCP from 127.0.0.1), as on a fresh install.
"""

import atexit
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import mysql.connector

from tests.live import free_port

# mariadbd and mariadb-install-db live in sbin, often not on PATH.
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin"])
# Small and quick for a test: no buffer-pool dump, one small log, no name lookups.
FAST_SETTINGS = (
    "--innodb-buffer-pool-size=64M",
    "--innodb-log-file-size=16M",
    "--innodb-buffer-pool-dump-at-shutdown=OFF",
    "--innodb-buffer-pool-load-at-startup=OFF",
    "--skip-name-resolve",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_unicode_ci",
    "--loose-performance-schema=OFF",
)


class MariaDBUnavailable(RuntimeError):
    """MariaDB is not installed, or the dedicated server could not be started."""


def find_program(name: str) -> str:
    """Return the path of a MariaDB program, or raise with what to install."""
    path = shutil.which(name, path=SEARCH_PATH)
    if path is None:
        raise MariaDBUnavailable(
            f"{name} was not found (looked on PATH and in /usr/sbin, /usr/local/sbin). The outage tests "
            "start a dedicated MariaDB server of their own and need the MariaDB server programs: install "
            "them (Debian/Ubuntu: apt-get install mariadb-server) and run the tests again."
        )
    return path


def server_user() -> str | None:
    """Return the account mariadbd must run as: mysql when we are root (it refuses root), else None."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("mysql")
    except KeyError:
        raise MariaDBUnavailable("running as root, but there is no 'mysql' account to run mariadbd as") from None
    return "mysql"


class MariaDBServer:
    """One private mariadbd process: its own datadir, socket and port, all under a temporary folder."""

    host = "127.0.0.1"
    user = "root"
    password = ""

    def __init__(self, port: int | None = None):
        self.mariadbd = find_program("mariadbd")
        self.install_db = find_program("mariadb-install-db")
        self.run_as = server_user()
        self.port = port or free_port()
        # Short and outside pytest's 0700 tmp folders: mysql must reach it, and socket paths are limited.
        self.base = Path(tempfile.mkdtemp(prefix="mariadb-test-"))
        self.datadir = self.base / "data"
        self.socket = self.base / "mysqld.sock"
        self.pid_file = self.base / "mysqld.pid"
        self.log_file = self.base / "mysqld.err"
        self.process: subprocess.Popen | None = None
        if self.run_as:
            shutil.chown(self.base, self.run_as, self.run_as)
        atexit.register(self.cleanup)

    def connection_settings(self) -> dict:
        """Return mysql-connector arguments for root on this server."""
        return {"host": self.host, "port": self.port, "user": self.user, "password": self.password}

    def is_running(self) -> bool:
        """Return whether the mariadbd process is alive."""
        return self.process is not None and self.process.poll() is None

    def initialise(self) -> None:
        """Create the system tables in a fresh datadir (once)."""
        command = [self.install_db, "--no-defaults", f"--datadir={self.datadir}", "--skip-test-db"]
        command += ["--auth-root-authentication-method=normal", *FAST_SETTINGS]
        if self.run_as:
            command.append(f"--user={self.run_as}")
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise MariaDBUnavailable(f"mariadb-install-db failed:\n{result.stdout}\n{result.stderr}")

    def start(self, timeout: float = 30) -> None:
        """Start mariadbd (initialising the datadir first if needed) and wait until it answers."""
        if self.is_running():
            return
        if not (self.datadir / "mysql").is_dir():
            self.initialise()
        # --no-defaults: the system's my.cnf points at its own socket, port and datadir.
        command = [
            self.mariadbd,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.socket}",
            f"--port={self.port}",
            f"--bind-address={self.host}",
            f"--pid-file={self.pid_file}",
            f"--log-error={self.log_file}",
            *FAST_SETTINGS,
        ]
        if self.run_as:
            command.append(f"--user={self.run_as}")
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        self.wait_until_ready(timeout)

    def wait_until_ready(self, timeout: float) -> None:
        """Poll until root can log in over TCP, or raise with the end of the server's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_running():
                raise MariaDBUnavailable(f"mariadbd exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                mysql.connector.connect(**self.connection_settings(), connection_timeout=1).close()
                return
            except mysql.connector.Error:
                time.sleep(0.05)
        raise MariaDBUnavailable(f"mariadbd did not answer within {timeout} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 30) -> None:
        """Shut the server down cleanly (SIGTERM) and wait until the process is gone."""
        if not self.is_running():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise MariaDBUnavailable(f"mariadbd did not stop within {timeout} s; killed it") from None

    def cleanup(self) -> None:
        """Stop the server if it runs (killing it if it must) and delete all its files."""
        try:
            self.stop()
        except MariaDBUnavailable:
            pass
        shutil.rmtree(self.base, ignore_errors=True)
        atexit.unregister(self.cleanup)

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines of the server's error log."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no error log)"

    def __enter__(self) -> "MariaDBServer":
        """Start the server."""
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        """Stop the server and delete its files."""
        self.cleanup()
