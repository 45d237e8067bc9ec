#!/usr/bin/env python3
"""Create .env with fresh random keys, or add to an existing one the keys a newer version needs.

An existing .env is never rewritten: a missing key is appended, with a comment, and every line
already there stays as it is. Card keys are never added to an existing .env, since fresh ones
could not read card data stored under the old. Standard library only, so it runs before any
dependency is installed, on any OS.
"""

import base64
import os
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path

ENV_PATH = Path(__file__).resolve().parent.parent / ".env"

HEADER = """\
# Created by scripts/make_env.py on {date} with fresh random keys.
# Keep this file secret, and keep it with the database: without these keys the
# stored card data cannot be decrypted. .env.example describes every variable.
# Key lists are comma-separated "version:base64key" pairs; the highest version encrypts.
"""


def new_key() -> str:
    """Return a fresh random 256-bit key, base64-encoded."""
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def card_keys() -> dict[str, str]:
    """Return fresh card keys, by variable."""
    return {"CARD_NUMBER_KEYS": f"1:{new_key()}", "CARD_CVC_KEYS": f"1:{new_key()}", "CARD_FINGERPRINT_KEY": new_key()}


def added_keys() -> dict[str, tuple[str, str]]:
    """Return fresh keys that an existing .env gets when it lacks them: variable -> (value, what it is for)."""
    return {
        "JWT_SIGNING_KEYS": (f"1:{new_key()}", "signs user tokens (JWT); version:key pairs, the highest signs"),
        "WEBHOOK_SECRET_KEYS": (
            f"1:{new_key()}",
            "encrypts webhook signing secrets; version:key pairs like the card keys",
        ),
    }


def today() -> str:
    """Return today's date (UTC) for the comments written into .env."""
    return datetime.now(UTC).strftime("%Y-%m-%d")


def env_text() -> str:
    """Return the contents of a new .env file."""
    keys = {**card_keys(), **{name: value for name, (value, _) in added_keys().items()}}
    return HEADER.format(date=today()) + "".join(f"{name}={value}\n" for name, value in keys.items())


def defined_names(text: str) -> set[str]:
    """Return the variables a .env file sets (python-dotenv's syntax: NAME=…, optionally after `export`)."""
    names = set()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            names.add(line.split("=", 1)[0].removeprefix("export ").strip())
    return names


def add_missing_keys(path: Path) -> list[str]:
    """Append to an existing .env the keys it lacks (and the environment does not set); return their names."""
    text = path.read_text(encoding="utf-8")
    missing = {
        name: entry
        for name, entry in added_keys().items()
        if name not in defined_names(text) and not os.environ.get(name)
    }
    if not missing:
        return []
    lines = [] if text.endswith("\n") or not text else [""]
    for name, (value, purpose) in missing.items():
        lines += [f"# Added by scripts/make_env.py on {today()}: {purpose}.", f"{name}={value}"]
    with path.open("a", encoding="utf-8", newline="\n") as file:
        file.write("\n".join(lines) + "\n")
    return list(missing)


def write_env(path: Path) -> bool:
    """Write a new .env at path; return False if one already exists."""
    try:
        # O_EXCL: never overwrite an existing file, even one created a moment ago.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as file:
        file.write(env_text())
    return True


def main() -> int:
    """Create .env if missing, or add the keys it lacks, and say what was done."""
    if write_env(ENV_PATH):
        print(f"make_env: created {ENV_PATH.name} with fresh random keys")
        return 0
    added = add_missing_keys(ENV_PATH)
    if added:
        print(f"make_env: added {', '.join(added)} to {ENV_PATH.name} (a key this version needs); nothing else changed")
    else:
        print(f"make_env: {ENV_PATH.name} exists, left unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
