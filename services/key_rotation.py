"""Re-encrypting stored card data under the newest keys, in batches, while the API serves."""

from collections.abc import Callable
from dataclasses import dataclass, field

from models import payment_model
from services.payments import card_context
from utils.crypto_utils import DecryptionError, Keyring

# Each ciphertext column, the keyring that encrypts it, and its associated-data name.
COLUMNS = (("card_no_encrypted", "card_number", "card_no"), ("card_cvc_encrypted", "card_cvc", "card_cvc"))


@dataclass
class RotationReport:
    """What a rotation run did."""

    rotated: int = 0
    current: int = 0
    skipped_changed: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)
    last_id: int = 0


def rotate_keys(
    transaction: Callable, keys: dict, *, after: int = 0, batch_size: int = 500, progress=None
) -> RotationReport:
    """Re-encrypt every ciphertext not under the newest key version, batch by batch from `after`."""
    report = RotationReport(last_id=after)
    while True:
        with transaction() as cursor:
            rows = payment_model.encrypted_batch(cursor, report.last_id, batch_size)
            for row in rows:
                _rotate_row(cursor, row, keys, report)
        if not rows:
            return report
        report.last_id = rows[-1]["id"]
        if progress:
            progress(report)


def _rotate_row(cursor, row: dict, keys: dict, report: RotationReport) -> None:
    """Re-encrypt one row's ciphertexts under an old key version; check the current ones too."""
    for column, keyring_name, context_name in COLUMNS:
        stored = row[column]
        if stored is None:
            continue
        keyring: Keyring = keys[keyring_name]
        context = card_context(context_name, row["card_fingerprint"])
        try:
            plaintext = keyring.decrypt(stored, context)
        except DecryptionError:
            report.failed.append((row["id"], column))
            continue
        if Keyring.version_of(stored) == keyring.current_version:
            report.current += 1
        # Conditional: a value the API changed or erased meanwhile is left as the API wrote it.
        elif payment_model.replace_ciphertext(cursor, row["id"], column, stored, keyring.encrypt(plaintext, context)):
            report.rotated += 1
        else:
            report.skipped_changed += 1
