"""Card data protection: AES-256-GCM encryption, keyed fingerprints and masking."""

import base64
import binascii
import functools
import hashlib
import hmac
import os
from dataclasses import dataclass

from Crypto.Cipher import AES

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
HEADER_BYTES = 1  # the key version


MISSING_KEY_HINT = "an existing .env is never rewritten: add the key, or move .env aside and run `make run` again"


class KeyConfigError(ValueError):
    """A key variable is missing or malformed."""


class DecryptionError(ValueError):
    """A stored value failed its authentication tag or names an unknown key."""


@dataclass(frozen=True)
class Keyring:
    """AES keys by version; the highest version encrypts, every version decrypts."""

    keys: dict[int, bytes]

    @property
    def current_version(self) -> int:
        """Return the version that new values are encrypted under."""
        return max(self.keys)

    def encrypt(self, plaintext: str, context: bytes) -> bytes:
        """Encrypt under the newest key, binding the value to `context`."""
        version = self.current_version
        nonce = os.urandom(NONCE_BYTES)
        cipher = AES.new(self.keys[version], AES.MODE_GCM, nonce=nonce)
        cipher.update(_associated_data(version, context))
        ciphertext, tag = cipher.encrypt_and_digest(plaintext.encode())
        return bytes([version]) + nonce + tag + ciphertext

    def decrypt(self, stored: bytes, context: bytes) -> str:
        """Decrypt a value made by `encrypt` with the same context, checking its tag."""
        stored = bytes(stored)
        if len(stored) < HEADER_BYTES + NONCE_BYTES + TAG_BYTES:
            raise DecryptionError("stored value is too short")
        version = stored[0]
        key = self.keys.get(version)
        if key is None:
            raise DecryptionError(f"no key configured for version {version}")
        nonce = stored[1 : 1 + NONCE_BYTES]
        tag = stored[1 + NONCE_BYTES : 1 + NONCE_BYTES + TAG_BYTES]
        cipher = AES.new(key, AES.MODE_GCM, nonce=nonce)
        cipher.update(_associated_data(version, context))
        try:
            return cipher.decrypt_and_verify(stored[HEADER_BYTES + NONCE_BYTES + TAG_BYTES :], tag).decode()
        except ValueError as error:
            raise DecryptionError("authentication tag check failed") from error

    @staticmethod
    def version_of(stored: bytes) -> int:
        """Return the key version a stored value was encrypted under."""
        return bytes(stored)[0]


def _associated_data(version: int, context: bytes) -> bytes:
    """Return the GCM associated data: the key version and the value's context."""
    return b"v%d|" % version + context


def parse_keyring(name: str, value: str | None) -> Keyring:
    """Parse `version:base64key[,version:base64key…]` into a Keyring."""
    if not value or not value.strip():
        raise KeyConfigError(f"{name} is not set in the environment or .env ({MISSING_KEY_HINT}).")
    keys = {}
    for item in value.split(","):
        version_text, _, key_text = item.strip().partition(":")
        if not version_text.isdigit() or not 1 <= int(version_text) <= 255:
            raise KeyConfigError(f"{name}: each entry must be `version:base64key`, version 1-255.")
        if int(version_text) in keys:
            raise KeyConfigError(f"{name} gives key version {version_text} twice.")
        keys[int(version_text)] = parse_key(name, key_text)
    return Keyring(keys)


def parse_key(name: str, value: str | None) -> bytes:
    """Decode one base64 key of exactly 32 bytes."""
    try:
        key = base64.b64decode((value or "").strip(), validate=True)
    except binascii.Error:
        key = b""
    if len(key) != KEY_BYTES:
        raise KeyConfigError(
            f"{name} must hold base64-encoded {KEY_BYTES}-byte keys (replace any REPLACE_WITH_… placeholder;"
            ' generate one with: python -c "import base64,os;print(base64.b64encode(os.urandom(32)).decode())").'
        )
    return key


def generate_key() -> str:
    """Return a fresh random key, base64-encoded."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def key_check_value(key: bytes) -> bytes:
    """Return a value that tells whether two keys are the same without revealing either (HMAC of a label)."""
    return hmac.new(key, b"payments-api key check value", hashlib.sha256).digest()


@functools.cache
def derive_key(key: bytes, purpose: bytes) -> bytes:
    """Return a subkey of `key` for one purpose (HMAC-SHA-256 of the purpose's label), so one key serves several."""
    return hmac.new(key, purpose, hashlib.sha256).digest()


def fingerprint_card(card_number: str, key: bytes) -> str:
    """Return the keyed fingerprint (HMAC-SHA-256, hex) of a card number."""
    # surrogatepass: an idempotency hash fingerprints `card_no` before validation refuses a lone surrogate.
    return hmac.new(key, card_number.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def mask_card(last4: str) -> str:
    """Return the masked form of a card number from its last four digits."""
    return f"XXXX-XXXX-XXXX-{last4}"
