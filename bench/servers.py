"""Start and stop gunicorn under the project's gunicorn.conf.py, and read its workers' memory."""

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"


class Server:
    """One gunicorn master (its own process group) with its workers."""

    def __init__(self, name: str, app: str, port: int, env: dict, log_dir: Path, extra_args: tuple = ()):
        self.name, self.app, self.port, self.env = name, app, port, env
        self.log_dir, self.extra_args = log_dir, tuple(extra_args)
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        """Return the server's address."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_path: str) -> None:
        """Start gunicorn with the project's config file and wait until it answers."""
        refuse_busy_port(self.port)
        env = {**self.env, "PORT": str(self.port)}
        cmd = [str(GUNICORN), "-c", "gunicorn.conf.py", *self.extra_args, self.app]
        log = open(self.log_dir / f"{self.name}.log", "a")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
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
                    if response.status == 200 and len(self.worker_pids()) >= self.expected_workers():
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer on {self.base_url + path} within 60 s")

    def expected_workers(self) -> int:
        """Return the worker count gunicorn.conf.py takes from WEB_CONCURRENCY."""
        return int(self.env["WEB_CONCURRENCY"])

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
        """Stop gunicorn gracefully, then its whole process group if it lingers."""
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
            raise RuntimeError(f"port {port} is already in use; set BENCH_API_PORT / BENCH_CEILING_PORT")


def _pid_file(log_dir: Path) -> Path:
    """Return the file that lists running gunicorn masters, for run.sh's exit trap."""
    return log_dir.parent / "gunicorn.pids"


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


def cpu_ticks(pid: int) -> int:
    """Return a process's user + system CPU time, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])
