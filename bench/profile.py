"""Profile gunicorn workers under load with py-spy and say where each request's time goes.

py-spy samples every worker's Python stack (wall clock, idle included, so time spent waiting on a
database round trip counts). Each sample of a worker that is serving a request is put in the first
category below whose marker it contains, in order: the database categories come first, so e.g. the
ping that `pool.get_connection()` sends is counted as "pool checkout" even though it runs under the
route function.
"""

import re
import subprocess
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY_SPY = ROOT / ".venv" / "bin" / "py-spy"
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")

# (category, [(function or None, file fragment)]): a sample goes to the first category with a frame
# matching one of its markers.
CATEGORIES = (
    ("idle: worker waiting for a connection", [("wait", "/gunicorn/workers/")]),
    ("DB: pool acquire/release (db.py, idle ping included)", [("acquire", "/db.py"), ("release", "/db.py")]),
    ("DB: pool checkout (is_connected ping)", [("get_connection", "/mysql/connector/pooling.py")]),
    ("DB: connection back to the pool", [("close", "/mysql/connector/pooling.py"), ("add_connection", "/mysql/")]),
    ("DB: cursor() (is_connected ping)", [("cursor", "/mysql/connector/connection")]),
    ("DB: cursor creation (db.py dict_cursor)", [("dict_cursor", "/db.py")]),
    ("DB: START TRANSACTION", [("start_transaction", "/mysql/connector/")]),
    ("DB: COMMIT (durable)", [("commit", "/mysql/connector/connection")]),
    ("DB: ROLLBACK", [("rollback", "/mysql/connector/connection")]),
    # db.py's fetchall() reads rows from the driver's C layer itself: its samples are fetching rows too.
    ("DB: query round trip and rows", [(None, "/mysql/connector/"), ("fetchall", "/db.py")]),
    ("rows: text columns parsed (models.parsed_rows)", [("parsed_rows", "/models/")]),
    ("crypto: AES-GCM (pycryptodome)", [(None, "/Crypto/")]),
    ("crypto: HMAC fingerprint", [("fingerprint_card", ""), (None, "/hmac.py")]),
    ("access log line (JSON to stderr)", [(None, "/utils/logs.py"), (None, "/logging/")]),
    ("request body JSON parse", [("json_body", "")]),
    ("dump_* (row to response dict)", [("dump_payment", ""), ("dump_user", "")]),
    ("validation (schemas/)", [(None, "/schemas/"), (None, "/email_validator/")]),
    ("JSON encode (jsonify)", [("jsonify", ""), (None, "/json/")]),
    ("url_for (Location / Link)", [("url_for", "")]),
    ("request id (uuid4)", [("uuid4", "")]),
    ("Flask / Werkzeug", [(None, "/flask/"), (None, "/werkzeug/")]),
    ("gunicorn: HTTP parse, write, graceful close", [(None, "/gunicorn/")]),
)
PROJECT = ("/app.py", "/db.py", "/config.py", "/routes/", "/models/", "/schemas/", "/services/", "/web/", "/utils/")
LIBRARIES = ("/mysql/connector/", "/Crypto/", "/logging/", "/json/", "/hmac.py")


def record(master_pid: int, seconds: int, rate: int, output: Path) -> None:
    """Sample the master and all its workers for `seconds` into a collapsed-stack file."""
    cmd = [
        str(PY_SPY), "record", "--pid", str(master_pid), "--subprocesses", "--idle", "--nonblocking",
        "--rate", str(rate), "--duration", str(seconds), "--format", "raw", "--output", str(output),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=seconds + 60)


def parse_frames(stack: str) -> list[tuple[str, str]]:
    """Split a collapsed stack into (function, /file) pairs, root first; py-spy gives paths from sys.path."""
    frames = []
    for text in stack.split(";"):
        match = _FRAME.match(text)
        if match:
            file = match.group("file")
            frames.append((match.group("func"), file if file.startswith("/") else "/" + file))
        else:
            frames.append((text, ""))
    return frames


def categorise(frames: list[tuple[str, str]]) -> str:
    """Return the category of one sample."""
    for category, markers in CATEGORIES:
        for func, fragment in markers:
            if any(_matches(name, file, func, fragment) for name, file in frames):
                return category
    return "other"


def _matches(name: str, file: str, func: str | None, fragment: str) -> bool:
    """Say whether a frame (Class.method or function) matches a category marker."""
    return fragment in file and (func is None or name.rsplit(".", 1)[-1].startswith(func))


def load(path: Path, master_pid: int) -> list[tuple[list[tuple[str, str]], int]]:
    """Read a raw py-spy file: (frames, count) per distinct worker stack, the master's left out."""
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():  # a frame name with a line break in it: skip its pieces
            continue
        processes = [frame for frame in stack.split(";") if frame.startswith("process ")]
        if not stack or not processes or processes[-1].startswith(f"process {master_pid}:"):
            continue
        frames = [frame for frame in parse_frames(stack) if not frame[0].startswith(("process ", "thread "))]
        stacks.append((frames, int(count)))
    return stacks


def summarise(path: Path, master_pid: int, rate: int, requests: float) -> dict:
    """Return the time per category (share of busy time, and µs per request) and the top functions."""
    categories, functions, leaves = Counter(), Counter(), Counter()
    for frames, count in load(path, master_pid):
        category = categorise(frames)
        categories[category] += count
        if category.startswith("idle"):
            continue
        if frames:
            leaves[_short(frames[-1])] += count
        for frame in {_short(frame) for frame in frames if _interesting(frame)}:
            functions[frame] += count
    idle = sum(count for name, count in categories.items() if name.startswith("idle"))
    busy = sum(categories.values()) - idle
    per_request = 1e6 / rate / requests if requests else 0.0
    return {
        "busy_samples": busy,
        "idle_share": idle / max(busy + idle, 1),
        "categories": [
            {"name": name, "share": count / max(busy, 1), "us_per_request": count * per_request}
            for name, count in categories.most_common()
            if not name.startswith("idle")
        ],
        "functions": [{"name": name, "share": count / max(busy, 1)} for name, count in functions.most_common(12)],
        "leaves": [{"name": name, "share": count / max(busy, 1)} for name, count in leaves.most_common(8)],
    }


def _short(frame: tuple[str, str]) -> str:
    """Name a frame as function (file)."""
    func, file = frame
    return f"{func} ({file.lstrip('/')})"


def _interesting(frame: tuple[str, str]) -> bool:
    """Keep the project's own functions and the libraries a request spends time in."""
    func, file = frame
    return file.startswith(PROJECT + LIBRARIES) and func != "<module>"
