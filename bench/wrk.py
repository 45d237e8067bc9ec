"""Run wrk and parse its report."""

import re
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

LUA = Path(__file__).with_name("lua")
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
_PERCENTILE = re.compile(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$")
# Headers every request carries (the benchmark's API key), as wrk's -H; the Lua scripts keep them.
HEADERS: dict[str, str] = {}
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


@dataclass
class Load:
    """What to send: a fixed path, or a Lua script with its arguments."""

    path: str = "/"
    script: str | None = None
    args: tuple = ()


@dataclass
class Result:
    """One wrk run."""

    label: str
    rps: float
    requests: int
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    extra: dict = field(default_factory=dict)

    @property
    def errors(self) -> int:
        """Return non-2xx responses plus socket errors."""
        return self.non_2xx + self.socket_errors


def parse(label: str, text: str) -> Result:
    """Parse the text wrk prints (with --latency)."""
    percentiles = {}
    extra = {}
    rps = requests = non_2xx = socket_errors = 0
    for line in text.splitlines():
        match = _PERCENTILE.match(line)
        if match:
            percentiles[match.group(1)] = float(match.group(2)) * _UNITS_MS[match.group(3)]
        elif line.startswith("Requests/sec:"):
            rps = float(line.split()[1])
        elif re.match(r"^\s*\d+ requests in ", line):
            requests = int(line.split()[0])
        elif "Non-2xx or 3xx responses:" in line:
            non_2xx = int(line.rsplit(":", 1)[1])
        elif _SOCKET.search(line):
            socket_errors = sum(int(number) for number in _SOCKET.search(line).groups())
        elif re.match(r"^put_(next|overflow) \d+$", line):
            name, value = line.split()
            extra[name] = int(value)
    if not percentiles:
        raise RuntimeError(f"wrk printed no latency distribution for {label}:\n{text}")
    return Result(
        label, rps, requests, *(percentiles[p] for p in ("50", "75", "90", "99")), non_2xx, socket_errors, extra
    )


def command(base_url: str, load: Load, duration: float, connections: int, threads: int) -> list[str]:
    """Return the wrk command line for a load."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    for name, value in HEADERS.items():
        cmd += ["-H", f"{name}: {value}"]
    if load.script:
        return [*cmd, "-s", str(LUA / load.script), base_url + load.path, "--", *map(str, load.args)]
    return [*cmd, base_url + load.path]


def run(label: str, base_url: str, load: Load, duration: float, connections: int, threads: int, log_dir: Path):
    """Run wrk once, keep its raw output, and return the parsed result."""
    cmd = command(base_url, load, duration, connections, threads)
    completed = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    with open(log_dir / "wrk.log", "a") as log:
        log.write(f"### {label}\n$ {' '.join(cmd)}\n{completed.stdout}{completed.stderr}\n")
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed for {label}: {completed.stderr.strip() or completed.stdout.strip()}")
    return parse(label, completed.stdout)


def spread(values: list[float]) -> dict:
    """Return the median, min and max of some figures."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}
