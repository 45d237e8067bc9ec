"""Start and stop the HTTP servers the benchmark measures, and read their workers' memory.

Every server is one master process (its own process group) with worker processes under it:
gunicorn, granian and uWSGI alike. `COMMANDS` holds how each candidate server is started; the
fixed yardstick of SPEC §7 is `yardstick`.
"""

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
GUNICORN = BIN / "gunicorn"
CORES = os.cpu_count() or 1
# gunicorn's own advice, and the yardstick's worker count: 2 × cores + 1.
SYNC_WORKERS = 2 * CORES + 1


@dataclass(frozen=True)
class Flavour:
    """One way to serve a WSGI app: a name, how many worker processes, and its command line."""

    name: str
    workers: int
    command: Callable[[str, int, int], list[str]]  # (app "module:factory()", port, workers) -> argv
    cwd: Path = ROOT


def _gunicorn(*options: str) -> Callable[[str, int, int], list[str]]:
    """Return gunicorn under the project's gunicorn.conf.py, with more options."""
    return lambda app, port, workers: [str(GUNICORN), "-c", "gunicorn.conf.py", *options, app]


def _granian(*options: str) -> Callable[[str, int, int], list[str]]:
    """Return granian serving the app's factory over WSGI, with more options."""

    def command(app: str, port: int, workers: int) -> list[str]:
        module, factory = app.removesuffix("()").split(":")
        return [
            str(BIN / "granian"), "--interface", "wsgi", "--factory", "--no-ws", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), *options, f"{module}:{factory}",
        ]  # fmt: skip

    return command


def _uwsgi(app: str, port: int, workers: int) -> list[str]:
    """Return uWSGI (the pyuwsgi wheel) as `make run` starts it (web/serve.py, uwsgi.ini), serving `app`."""
    return [str(BIN / "python"), "-m", "web.serve", "--module", app]


def _bare_gunicorn(app: str, port: int, workers: int) -> list[str]:
    """Return gunicorn with its defaults (sync worker) and only a worker count and an address."""
    return [str(GUNICORN), "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--pythonpath", str(ROOT), app]


# The fixed yardstick's server: run from / so that gunicorn finds no config file (gunicorn.conf.py).
YARDSTICK = Flavour("gunicorn defaults", SYNC_WORKERS, _bare_gunicorn, Path("/"))
COMMANDS = {
    "gunicorn-sync": Flavour("gunicorn sync, gunicorn.conf.py", SYNC_WORKERS, _gunicorn()),
    "gunicorn-gthread": Flavour(
        "gunicorn gthread, 4 threads", SYNC_WORKERS, _gunicorn("--worker-class", "gthread", "--threads", "4")
    ),
    "granian": Flavour("granian (WSGI)", CORES, _granian()),
    # One Python thread a worker, as a sync worker: no contention for the GIL among a worker's
    # threads, but a request that waits holds up every connection its worker has accepted.
    "granian-1-thread": Flavour(
        "granian (WSGI), 1 thread a worker", CORES + 1, _granian("--blocking-threads", "1", "--backpressure", "1")
    ),
    "uwsgi": Flavour("uWSGI, uwsgi.ini", SYNC_WORKERS, _uwsgi),
}
# The server the Procfile's `web` process runs (`make run`): chosen by this comparison, see docs/performance.md.
PRODUCTION = "uwsgi"


def production() -> Flavour:
    """Return how the API is served in production, with WEB_CONCURRENCY workers when it is set."""
    workers = int(os.environ.get("WEB_CONCURRENCY") or COMMANDS[PRODUCTION].workers)
    return replace(COMMANDS[PRODUCTION], workers=workers)


class Server:
    """One server master (its own process group) with its workers, serving one app on one port."""

    def __init__(self, name: str, app: str, port: int, env: dict, log_dir: Path, flavour: Flavour):
        self.name, self.app, self.port, self.env = name, app, port, env
        self.log_dir, self.flavour = log_dir, flavour
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        """Return the server's address."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_path: str) -> None:
        """Start the server and wait until it answers with all its workers up."""
        refuse_busy_port(self.port)
        env = {**self.env, "PORT": str(self.port), "WEB_CONCURRENCY": str(self.flavour.workers)}
        cmd = self.flavour.command(self.app, self.port, self.flavour.workers)
        log = open(self.log_dir / f"{self.name}.log", "a")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(
            cmd, cwd=self.flavour.cwd, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        _remember_pid(self.log_dir, self.process.pid)
        self._wait_ready(ready_path)

    def _wait_ready(self, path: str) -> None:
        """Poll the server until it answers 200, or fail when it exits or 60 s pass."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited while starting; see {self.log_dir / (self.name + '.log')}")
            try:
                with urllib.request.urlopen(self.base_url + path, timeout=2) as response:
                    if response.status == 200 and len(self.worker_pids()) >= self.flavour.workers:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer on {self.base_url + path} within 60 s")

    def worker_pids(self) -> list[int]:
        """Return the pids of the master's worker processes."""
        if self.process is None:
            return []
        pid = self.process.pid
        try:
            return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []

    def stop(self) -> None:
        """Stop the server gracefully, then its whole process group if it lingers."""
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        _forget_pid(self.log_dir, process.pid)


def refuse_busy_port(port: int) -> None:
    """Stop if something already listens on the port (a clash, not ours to kill)."""
    import socket

    with socket.socket() as probe:
        probe.settimeout(0.5)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise RuntimeError(f"port {port} is already in use; set the BENCH_*_PORT settings (bench/README.md)")


def _pid_file(log_dir: Path) -> Path:
    """Return the file that lists running server masters, for run.sh's exit trap."""
    return log_dir.parent / "servers.pids"


def _remember_pid(log_dir: Path, pid: int) -> None:
    """Record a master's pid (also its process group id)."""
    with open(_pid_file(log_dir), "a") as pids:
        pids.write(f"{pid}\n")


def _forget_pid(log_dir: Path, pid: int) -> None:
    """Remove a stopped master from the pid file."""
    path = _pid_file(log_dir)
    if path.exists():
        kept = [line for line in path.read_text().split() if line != str(pid)]
        path.write_text("".join(f"{line}\n" for line in kept))


def memory_kib(pid: int) -> dict:
    """Return a process's resident (RSS) and proportional (PSS) memory in KiB."""
    rss = pss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return {"pid": pid, "rss_kib": rss, "pss_kib": pss}
