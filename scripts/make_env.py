#!/usr/bin/env python3
"""Create .env with fresh random card keys, unless it already exists.

Standard library only, so it runs before any dependency is installed, on any OS.
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


def env_text() -> str:
    """Return the contents of a new .env file."""
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    keys = [
        f"CARD_NUMBER_KEYS=1:{new_key()}",
        f"CARD_CVC_KEYS=1:{new_key()}",
        f"CARD_FINGERPRINT_KEY={new_key()}",
    ]
    return HEADER.format(date=date) + "\n".join(keys) + "\n"


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
    """Create .env if missing and say what was done."""
    if write_env(ENV_PATH):
        print(f"make_env: created {ENV_PATH.name} with fresh random card keys")
    else:
        print(f"make_env: {ENV_PATH.name} exists, left unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
