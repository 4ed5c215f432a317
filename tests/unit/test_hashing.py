from __future__ import annotations

import hashlib
import hmac

from exposure.domain.fingerprints import (
    email_range_prefix,
    identifier_fingerprint,
    password_fingerprint,
    password_range_prefix,
    password_sha1,
    pepper_check,
)

PEPPER = bytes.fromhex("00112233445566778899aabbccddeeff" * 2)


def test_identifier_fingerprint_is_the_documented_hmac() -> None:
    expected = hmac.new(PEPPER, b"email\x00taro@example.jp", hashlib.sha256).digest()
    assert identifier_fingerprint(PEPPER, "email", "taro@example.jp") == expected
    assert len(expected) == 32


def test_kind_separates_fingerprints_of_the_same_text() -> None:
    assert identifier_fingerprint(PEPPER, "login_id", "12345678") != identifier_fingerprint(
        PEPPER, "phone", "12345678"
    )


def test_pepper_changes_every_fingerprint() -> None:
    other = bytes(32)
    assert identifier_fingerprint(PEPPER, "email", "a@b.jp") != identifier_fingerprint(
        other, "email", "a@b.jp"
    )
    assert pepper_check(PEPPER) != pepper_check(other)


def test_password_fingerprint_uses_exact_bytes() -> None:
    assert password_fingerprint(PEPPER, "Sakura#2025") != password_fingerprint(
        PEPPER, "Sakura#2025 "
    )
    assert password_fingerprint(PEPPER, "Sakura#2025") != identifier_fingerprint(
        PEPPER, "password", "Sakura#2025x"
    )


def test_password_fingerprint_survives_lone_surrogates() -> None:
    assert len(password_fingerprint(PEPPER, "bad\udcff")) == 32


def test_pwned_passwords_prefix_matches_the_published_example() -> None:
    # SHA-1("password") is the example in the Pwned Passwords API documentation.
    assert password_sha1("password") == "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8"
    assert password_range_prefix("password") == "5BAA6"


def test_email_prefix_is_six_hex_of_sha1() -> None:
    expected = hashlib.sha1(b"test@example.com", usedforsecurity=False).hexdigest().upper()[:6]
    assert email_range_prefix("test@example.com") == expected
    assert len(expected) == 6
