"""AES-GCM card encryption, keys, fingerprints and masking (Luhn and brands: tests/test_cards.py)."""

import pytest

from utils.crypto_utils import (
    DecryptionError,
    KeyConfigError,
    Keyring,
    fingerprint_card,
    generate_key,
    mask_card,
    parse_key,
    parse_keyring,
)

CONTEXT = b"payments.card_no|fingerprint"


@pytest.fixture
def keyring():
    return parse_keyring("TEST_KEYS", f"1:{generate_key()}")


def test_a_value_round_trips(keyring):
    stored = keyring.encrypt("4111111111111111", CONTEXT)
    assert keyring.decrypt(stored, CONTEXT) == "4111111111111111"


def test_the_ciphertext_holds_no_plaintext_and_differs_each_time(keyring):
    first = keyring.encrypt("4111111111111111", CONTEXT)
    second = keyring.encrypt("4111111111111111", CONTEXT)
    assert first != second
    assert b"4111" not in first
    assert len(first) == 1 + 12 + 16 + 16


def test_a_tampered_ciphertext_fails_its_tag(keyring):
    stored = bytearray(keyring.encrypt("4111111111111111", CONTEXT))
    stored[-1] ^= 0x01
    with pytest.raises(DecryptionError):
        keyring.decrypt(bytes(stored), CONTEXT)


def test_a_tampered_nonce_fails_its_tag(keyring):
    stored = bytearray(keyring.encrypt("4111111111111111", CONTEXT))
    stored[3] ^= 0x01
    with pytest.raises(DecryptionError):
        keyring.decrypt(bytes(stored), CONTEXT)


def test_the_wrong_key_cannot_decrypt(keyring):
    stored = keyring.encrypt("4111111111111111", CONTEXT)
    other = parse_keyring("OTHER", f"1:{generate_key()}")
    with pytest.raises(DecryptionError):
        other.decrypt(stored, CONTEXT)


def test_a_value_moved_to_another_column_fails_to_decrypt(keyring):
    stored = keyring.encrypt("123", b"payments.card_cvc|fingerprint")
    with pytest.raises(DecryptionError):
        keyring.decrypt(stored, b"payments.card_no|fingerprint")


def test_a_value_moved_to_another_card_fails_to_decrypt(keyring):
    stored = keyring.encrypt("123", b"payments.card_cvc|card-a")
    with pytest.raises(DecryptionError):
        keyring.decrypt(stored, b"payments.card_cvc|card-b")


def test_the_newest_key_encrypts_and_an_old_version_still_decrypts():
    old_key, new_key = generate_key(), generate_key()
    old_ring = parse_keyring("KEYS", f"1:{old_key}")
    stored_under_old = old_ring.encrypt("5555555555554444", CONTEXT)
    rotated = parse_keyring("KEYS", f"1:{old_key},2:{new_key}")
    assert rotated.current_version == 2
    assert Keyring.version_of(rotated.encrypt("5555555555554444", CONTEXT)) == 2
    assert rotated.decrypt(stored_under_old, CONTEXT) == "5555555555554444"


def test_a_value_under_a_removed_key_version_is_reported():
    stored = parse_keyring("KEYS", f"1:{generate_key()}").encrypt("x", CONTEXT)
    with pytest.raises(DecryptionError, match="version 1"):
        parse_keyring("KEYS", f"2:{generate_key()}").decrypt(stored, CONTEXT)


def test_a_truncated_value_is_reported(keyring):
    with pytest.raises(DecryptionError):
        keyring.decrypt(b"\x01short", CONTEXT)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "no-version",
        "1:notbase64!!",
        "1:" + "QUJD",
        "0:" + "A" * 44,
        "256:" + "A" * 44,
        "x:" + "A" * 44,
    ],
)
def test_a_missing_or_malformed_keyring_is_refused(value):
    with pytest.raises(KeyConfigError):
        parse_keyring("CARD_NUMBER_KEYS", value)


def test_a_short_fingerprint_key_is_refused():
    with pytest.raises(KeyConfigError, match="CARD_FINGERPRINT_KEY"):
        parse_key("CARD_FINGERPRINT_KEY", "QUJD")


def test_the_fingerprint_is_stable_per_card_and_key():
    key = parse_key("K", generate_key())
    assert fingerprint_card("4111111111111111", key) == fingerprint_card("4111111111111111", key)
    assert fingerprint_card("4111111111111111", key) != fingerprint_card("5555555555554444", key)
    other_key = parse_key("K", generate_key())
    assert fingerprint_card("4111111111111111", key) != fingerprint_card("4111111111111111", other_key)
    assert len(fingerprint_card("4111111111111111", key)) == 64


def test_masking_shows_only_the_last_four_digits():
    assert mask_card("1234") == "XXXX-XXXX-XXXX-1234"


def test_a_key_version_given_twice_is_refused():
    with pytest.raises(KeyConfigError, match="twice"):
        parse_keyring("CARD_NUMBER_KEYS", f"1:{generate_key()},1:{generate_key()}")
