"""Keyed fingerprints and k-anonymity prefixes.

Scheme version 1 (``FINGERPRINT_SCHEME``):

* identifier fingerprint = HMAC-SHA256(pepper, kind + "\\x00" + normalised value), 32 bytes;
* leaked-password fingerprint = HMAC-SHA256(pepper, "password\\x00" + UTF-8 password), 32 bytes,
  used only to de-duplicate (the same password seen again is the same exposure);
* k-anonymity prefixes, as Have I Been Pwned defines them: the first 5 hex digits of the
  upper-case SHA-1 of a password, the first 6 of the SHA-1 of a normalised e-mail address.

Stored rows carry the scheme number, so a future scheme can be introduced by a migration that
re-fingerprints (the pepper cannot be recovered from fingerprints, so re-enrolment may be needed).
"""

from __future__ import annotations

import hashlib
import hmac

FINGERPRINT_SCHEME = 1
FINGERPRINT_BYTES = 32  # HMAC-SHA256
PASSWORD_PREFIX_LENGTH = 5
EMAIL_PREFIX_LENGTH = 6
_PEPPER_CHECK_LABEL = b"exposure/pepper-check/v1"


def identifier_fingerprint(pepper: bytes, kind: str, value: str) -> bytes:
    """Keyed fingerprint of a *normalised* identifier of the given kind."""
    return hmac.digest(pepper, f"{kind}\x00{value}".encode(), "sha256")


class KeyedFingerprints:
    """:func:`identifier_fingerprint` and :func:`email_range_key` for one pepper, computed
    from HMAC's two keyed SHA-256 states (RFC 2104), prepared once.

    ``hmac.digest`` sets the key up again on every call, which is two thirds of its cost on
    the short messages here; enrolment fingerprints millions of identifiers with one pepper.
    Results are byte for byte those of the functions.
    """

    __slots__ = ("_inner", "_outer", "_pepper")

    def __init__(self, pepper: bytes) -> None:
        self._pepper = pepper
        block = hashlib.sha256().block_size
        key = hashlib.sha256(pepper).digest() if len(pepper) > block else pepper
        key = key.ljust(block, b"\x00")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def __reduce__(self) -> tuple[type[KeyedFingerprints], tuple[bytes]]:
        # Hash states do not pickle; a worker process prepares its own from the pepper.
        return (KeyedFingerprints, (self._pepper,))

    def _digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def identifier(self, kind: str, value: str) -> bytes:
        """Same as :func:`identifier_fingerprint`."""
        return self._digest(f"{kind}\x00{value}".encode())

    def email_range(self, email_sha1_hex: str) -> bytes:
        """Same as :func:`email_range_key`."""
        return self._digest(b"email-sha1\x00" + email_sha1_hex.upper().encode())


def password_fingerprint(pepper: bytes, password: str) -> bytes:
    """Keyed fingerprint of a leaked password, exactly as leaked (never normalised)."""
    # surrogatepass: a password decoded with odd bytes must still fingerprint, never crash.
    return hmac.digest(
        pepper, b"password\x00" + password.encode("utf-8", "surrogatepass"), "sha256"
    )


def password_sha1(password: str) -> str:
    """Upper-case hex SHA-1 of a password, as in the Pwned Passwords corpus."""
    return (
        hashlib.sha1(password.encode("utf-8", "surrogatepass"), usedforsecurity=False)
        .hexdigest()
        .upper()
    )


def password_range_prefix(password: str) -> str:
    """The 5-hex prefix that may be sent to a Pwned Passwords range API."""
    return password_sha1(password)[:PASSWORD_PREFIX_LENGTH]


def email_sha1(normalised_email: str) -> str:
    """Upper-case hex SHA-1 of a normalised e-mail address, as HIBP's range search expects."""
    return hashlib.sha1(normalised_email.encode(), usedforsecurity=False).hexdigest().upper()


def email_range_prefix(normalised_email: str) -> str:
    """The 6-hex prefix that may be sent to HIBP's breached-account range search."""
    return email_sha1(normalised_email)[:EMAIL_PREFIX_LENGTH]


def email_range_key(pepper: bytes, email_sha1_hex: str) -> bytes:
    """Keyed form of an e-mail's full SHA-1, matched against HIBP range-search suffixes."""
    return hmac.digest(pepper, b"email-sha1\x00" + email_sha1_hex.upper().encode(), "sha256")


def pepper_check(pepper: bytes) -> str:
    """A value stored once per database to detect a changed or lost pepper at start-up."""
    return hmac.digest(pepper, _PEPPER_CHECK_LABEL, "sha256").hex()


def customer_reference(pepper: bytes, customer_id: str) -> str:
    """How the audit log names an offboarded customer: ``cust_`` + 16 hex of
    HMAC-SHA256(pepper, "audit-customer" NUL customer id). Whoever holds the pepper (the
    monitor itself: ``exposure audit --customer ID``) can tell whether a given id was
    deleted; the log alone names no one."""
    digest = hmac.digest(pepper, b"audit-customer\x00" + customer_id.encode(), "sha256")
    return "cust_" + digest[:8].hex()
