"""Enrolled password hashes: recognise, parse, bound and refuse, and verify one password.

The broker's login system decides the scheme, so every scheme a broker plausibly has is
verified, each with the library that defines or implements it
(``docs/decisions/password-hash-schemes.md`` says why these):

* argon2id, argon2i, argon2d: PHC strings, and Django's ``argon2$argon2id$...``; argon2-cffi.
* bcrypt: ``$2a$``, ``$2b$``, ``$2y$``, and Django's ``bcrypt$$2b$...`` and
  ``bcrypt_sha256$$2b$...``; pyca's ``bcrypt``.
* scrypt: passlib's ``$scrypt$ln=..,r=..,p=..$salt$hash`` and ``$7$``, and Django's
  ``scrypt$N$salt$r$p$hash``; ``hashlib.scrypt`` (OpenSSL), through libpass for its formats.
* PBKDF2-SHA1/SHA256/SHA512: passlib's ``$pbkdf2$``, ``$pbkdf2-sha256$``, ``$pbkdf2-sha512$``
  and Django's ``pbkdf2_sha256$`` and ``pbkdf2_sha1$``; ``hashlib.pbkdf2_hmac`` through libpass.
* sha256_crypt, sha512_crypt: ``$5$`` and ``$6$``, ``rounds=`` optional; libxcrypt
  (:mod:`.sha_crypt`).

Everything else is refused with a :class:`Refusal` reason, and the customer is monitored with
status ``unknown``: fast hashes, salted or not (a stolen monitor database must not hold hashes
that crack at GPU speed), schemes not listed, malformed strings, and parameters beyond
:data:`LIMITS`, so that one absurd row (bcrypt cost 31, PBKDF2 with 10^9 rounds) cannot stall
an ingest. Refusals and the parsed hashes never quote the value.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import bcrypt
from passlib import exc as passlib_exc
from passlib.hash import (
    django_pbkdf2_sha1,
    django_pbkdf2_sha256,
    pbkdf2_sha1,
    pbkdf2_sha256,
    pbkdf2_sha512,
)
from passlib.hash import scrypt as passlib_scrypt

from exposure.passwords import argon2_lanes, sha_crypt
from exposure.passwords.errors import UnusableHash
from exposure.passwords.hash_shapes import FastHash, fast_hash, looks_like_hash

MAX_HASH_LENGTH = 1024  # far above any real hash; bounds the work spent on garbage


@dataclass(frozen=True, slots=True)
class Limits:
    """The largest parameters accepted at enrolment (deterministic, machine-independent).

    Each is at least the strongest setting a mainstream framework or standard ships, with
    headroom, and keeps one verification within a few seconds on one core of the 2-core
    reference machine (about 2.5 s for each bound, argon2's about 5 s).
    """

    argon2_memory_kib: int = 2 << 20  # 2 GiB: RFC 9106's first recommended setting
    argon2_passes_kib: int = 2 << 20  # t x m: RFC 9106's t=1, m=2 GiB
    bcrypt_cost: int = 15  # frameworks ship 10 to 12
    pbkdf2_rounds: tuple[tuple[str, int], ...] = (
        ("sha1", 6_000_000),
        ("sha256", 6_000_000),  # 5x Django 6.0's 1,200,000
        ("sha512", 3_000_000),  # a SHA-512 round costs about twice a SHA-256 one
    )
    # N * r * p: 8x passlib's default (N=2^16, r=8, p=1); bounds memory (128 * N * r) to 512 MiB
    scrypt_work: int = 1 << 22
    sha_crypt_rounds: int = 5_000_000  # 7x passlib's default for sha512_crypt


LIMITS = Limits()


class Refusal(StrEnum):
    """Why an enrolled ``password_hash`` is not kept (the customer is monitored as unknown)."""

    UNSALTED_FAST_HASH = "unsalted_fast_hash"
    SALTED_FAST_HASH = "salted_fast_hash"
    UNSUPPORTED_SCHEME = "unsupported_scheme"
    COST_TOO_HIGH = "cost_too_high"
    MALFORMED = "malformed"
    NOT_A_HASH = "not_a_hash"

    @property
    def message(self) -> str:
        """Why, and what the broker can do instead."""
        return _MESSAGES[self]


_INSTEAD = (
    "enrol the hash your login system keeps once it is argon2, bcrypt, scrypt, PBKDF2 or "
    "sha256/sha512_crypt (most systems re-hash at the customer's next login), or leave the "
    "cell empty; meanwhile the customer is monitored with password status unknown"
)
_MESSAGES = {
    Refusal.UNSALTED_FAST_HASH: "an unsalted fast hash (hex MD5, SHA-1, SHA-2, NTLM, MySQL, "
    "LDAP {SHA}...): refused because a stolen monitor database must not hold hashes that crack "
    "at billions a second; " + _INSTEAD,
    Refusal.SALTED_FAST_HASH: "a salted but fast hash (md5crypt, phpass, LDAP {SSHA}, Django "
    "sha1/md5): refused because a stolen monitor database must not hold hashes that crack at "
    "GPU speed; " + _INSTEAD,
    Refusal.UNSUPPORTED_SCHEME: "a password hash scheme this monitor does not verify; " + _INSTEAD,
    Refusal.COST_TOO_HIGH: "parameters far beyond any login system's (see the README's limits): "
    "refused so that one row cannot stall an ingest; check the export, or " + _INSTEAD,
    Refusal.MALFORMED: "looks like a supported scheme but cannot be parsed (truncated or "
    "altered?); check the export, or " + _INSTEAD,
    Refusal.NOT_A_HASH: "not a password hash (a plaintext password must never be enrolled); "
    + _INSTEAD,
}


@dataclass(frozen=True, slots=True)
class RefusedHash:
    """A ``password_hash`` that is not kept; ``scheme`` names what it was taken for, if known."""

    reason: Refusal
    scheme: str | None = None


class EnrolledHash(ABC):
    """A parsed, accepted hash that :meth:`verify` checks passwords against."""

    scheme: str  # argon2id, bcrypt, scrypt, pbkdf2_sha256, sha512_crypt, ...
    format: str  # phc, modular_crypt, passlib, django

    @abstractmethod
    def verify(self, secret: bytes) -> bool:
        """Whether ``secret`` (the password's exact UTF-8 bytes) is the hashed password.

        Releases the GIL for the expensive part (see the verifier), except sha-crypt's
        pure-Python fallback. Raises :class:`UnusableHash` if the library cannot use the hash,
        :class:`~exposure.passwords.errors.VerifierResourceError` when memory is short.
        """


@dataclass(frozen=True, slots=True)
class _Argon2(EnrolledHash):
    phc: argon2_lanes.Phc
    scheme: str
    format: str

    def verify(self, secret: bytes) -> bool:
        return argon2_lanes.verify_single_threaded(self.phc, secret)


@dataclass(frozen=True, slots=True)
class _Bcrypt(EnrolledHash):
    text: bytes
    format: str
    sha256_first: bool = False  # Django's bcrypt_sha256: bcrypt over the hex SHA-256
    scheme: str = "bcrypt"

    def verify(self, secret: bytes) -> bool:
        if self.sha256_first:
            secret = binascii.hexlify(hashlib.sha256(secret).digest())
        if b"\x00" in secret:
            return False  # C bcrypt stops at NUL; such a password cannot have been set
        try:
            # bcrypt reads 72 bytes; the login system behind the hash accepts any longer
            # password with that prefix (pyca's bcrypt 5 refuses more rather than cut).
            return bcrypt.checkpw(secret[:72], self.text)
        except ValueError:
            raise UnusableHash(self.scheme) from None


@dataclass(frozen=True, slots=True)
class _Passlib(EnrolledHash):
    """A format libpass defines or knows (its handlers compute with ``hashlib``)."""

    handler: Any
    text: str
    scheme: str
    format: str

    def verify(self, secret: bytes) -> bool:
        try:
            return bool(self.handler.verify(secret, self.text))
        except passlib_exc.PasswordSizeError:
            return False  # over 4 KiB: no login form takes it
        except (ValueError, TypeError):
            raise UnusableHash(self.scheme) from None


@dataclass(frozen=True, slots=True)
class _DjangoScrypt(EnrolledHash):
    salt: bytes
    n: int
    r: int
    p: int
    digest: bytes
    scheme: str = "scrypt"
    format: str = "django"

    def verify(self, secret: bytes) -> bool:
        # OpenSSL's own bound (EVP_PBE_scrypt): V and B blocks plus its slack.
        maxmem = 128 * self.r * (self.n + self.p + 2) + (1 << 20)
        try:
            computed = hashlib.scrypt(
                secret,
                salt=self.salt,
                n=self.n,
                r=self.r,
                p=self.p,
                maxmem=maxmem,
                dklen=len(self.digest),
            )
        except ValueError:
            raise UnusableHash(self.scheme) from None
        return hmac.compare_digest(computed, self.digest)


@dataclass(frozen=True, slots=True)
class _ShaCrypt(EnrolledHash):
    text: str
    scheme: str
    format: str = "modular_crypt"

    def verify(self, secret: bytes) -> bool:
        return sha_crypt.verify(self.text, secret)


Classified = EnrolledHash | RefusedHash
Parser = Callable[[str], Classified]


@functools.lru_cache(maxsize=1 << 14)
def classify(value: str) -> Classified:
    """An enrolled ``password_hash`` as an :class:`EnrolledHash`, or why it is refused."""
    if len(value) > MAX_HASH_LENGTH or not value.isascii() or not value.isprintable():
        return RefusedHash(Refusal.NOT_A_HASH)
    for prefix, parse in _PARSERS:
        if value.startswith(prefix):
            return parse(value)
    fast = fast_hash(value)
    if fast is FastHash.UNSALTED:
        return RefusedHash(Refusal.UNSALTED_FAST_HASH)
    if fast is FastHash.SALTED:
        return RefusedHash(Refusal.SALTED_FAST_HASH)
    if looks_like_hash(value) or _MODULAR_CRYPT.fullmatch(value):
        return RefusedHash(Refusal.UNSUPPORTED_SCHEME)
    return RefusedHash(Refusal.NOT_A_HASH)


def is_verifiable(value: str) -> bool:
    """True if ``value`` is an enrolled hash the verifier checks passwords against."""
    return isinstance(classify(value), EnrolledHash)


# $id$... or {SCHEME}...: the shapes of hash strings in general (yescrypt, Drupal, ...).
_MODULAR_CRYPT = re.compile(r"\$[0-9A-Za-z_.-]{1,32}\$\S{8,}|\{[A-Za-z0-9._-]{2,32}\}\S{8,}")


def _argon2(value: str, *, django: bool = False) -> Classified:
    phc = argon2_lanes.parse_phc(value)
    scheme = value.split("$", 2)[1] if value.count("$") >= 2 else "argon2"
    if phc is None:
        return RefusedHash(Refusal.MALFORMED, "argon2")
    params = phc.params
    if (
        params.memory_cost > LIMITS.argon2_memory_kib
        or params.memory_cost * params.time_cost > LIMITS.argon2_passes_kib
    ):
        return RefusedHash(Refusal.COST_TOO_HIGH, scheme)
    return _Argon2(phc, scheme, "django" if django else "phc")


def _django_argon2(value: str) -> Classified:
    return _argon2(value.removeprefix("argon2"), django=True)


_BCRYPT = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")


def _bcrypt(value: str, *, form: str = "modular_crypt", sha256_first: bool = False) -> Classified:
    shape = _BCRYPT.fullmatch(value)
    if shape is None:
        unsupported = re.match(r"\$2x?\$", value)  # crypt_blowfish's buggy and original forms
        reason = Refusal.UNSUPPORTED_SCHEME if unsupported else Refusal.MALFORMED
        return RefusedHash(reason, "bcrypt")
    cost = int(shape.group(1))
    if not 4 <= cost <= 31:
        return RefusedHash(Refusal.MALFORMED, "bcrypt")
    if cost > LIMITS.bcrypt_cost:
        return RefusedHash(Refusal.COST_TOO_HIGH, "bcrypt")
    return _Bcrypt(value.encode("ascii"), form, sha256_first)


def _passlib(handler: Any, scheme: str, form: str) -> Parser:
    """A parser for one of libpass's handlers (its types are not annotated: ``Any``)."""

    def parse(value: str) -> Classified:
        try:
            parsed = handler.from_string(value)
        except (ValueError, TypeError):
            return RefusedHash(Refusal.MALFORMED, scheme)
        if scheme == "scrypt":
            n, r, p = 1 << parsed.rounds, parsed.block_size, parsed.parallelism
            if _scrypt_too_costly(n, r, p):
                return RefusedHash(Refusal.COST_TOO_HIGH, scheme)
        elif parsed.rounds > dict(LIMITS.pbkdf2_rounds)[scheme.removeprefix("pbkdf2_")]:
            return RefusedHash(Refusal.COST_TOO_HIGH, scheme)
        return _Passlib(handler, value, scheme, form)

    return parse


def _scrypt_too_costly(n: int, r: int, p: int) -> bool:
    return n * r * p > LIMITS.scrypt_work


_DJANGO_SCRYPT = re.compile(
    r"scrypt\$(\d{1,10})\$([^$]{1,128})\$(\d{1,4})\$(\d{1,4})\$([A-Za-z0-9+/=]+)"
)


def _django_scrypt(value: str) -> Classified:
    shape = _DJANGO_SCRYPT.fullmatch(value)
    if shape is None:
        return RefusedHash(Refusal.MALFORMED, "scrypt")
    n, r, p = int(shape.group(1)), int(shape.group(3)), int(shape.group(4))
    try:
        digest = base64.b64decode(shape.group(5), validate=True)
    except binascii.Error:
        return RefusedHash(Refusal.MALFORMED, "scrypt")
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or not 16 <= len(digest) <= 128:
        return RefusedHash(Refusal.MALFORMED, "scrypt")
    if _scrypt_too_costly(n, r, p):
        return RefusedHash(Refusal.COST_TOO_HIGH, "scrypt")
    return _DjangoScrypt(shape.group(2).encode("ascii"), n, r, p, digest)


_SHA_CRYPT = re.compile(
    r"\$([56])\$(?:rounds=([1-9][0-9]{0,9})\$)?[./0-9A-Za-z]{0,16}\$([./0-9A-Za-z]+)"
)


def _sha_crypt(value: str) -> Classified:
    shape = _SHA_CRYPT.fullmatch(value)
    scheme = "sha256_crypt" if value.startswith("$5$") else "sha512_crypt"
    if shape is None or len(shape.group(3)) != (43 if scheme == "sha256_crypt" else 86):
        return RefusedHash(Refusal.MALFORMED, scheme)
    rounds = int(shape.group(2) or 5000)
    if rounds < 1000:  # the specification raises it to 1000 and writes that into the hash
        return RefusedHash(Refusal.MALFORMED, scheme)
    if rounds > LIMITS.sha_crypt_rounds:
        return RefusedHash(Refusal.COST_TOO_HIGH, scheme)
    return _ShaCrypt(value, scheme)


_PARSERS: tuple[tuple[str, Parser], ...] = (
    ("$argon2", _argon2),
    ("argon2$argon2", _django_argon2),
    ("$2", _bcrypt),
    ("bcrypt$$2", lambda v: _bcrypt(v.removeprefix("bcrypt$"), form="django")),
    (
        "bcrypt_sha256$$2",
        lambda v: _bcrypt(v.removeprefix("bcrypt_sha256$"), form="django", sha256_first=True),
    ),
    ("$pbkdf2-sha256$", _passlib(pbkdf2_sha256, "pbkdf2_sha256", "passlib")),
    ("$pbkdf2-sha512$", _passlib(pbkdf2_sha512, "pbkdf2_sha512", "passlib")),
    ("$pbkdf2$", _passlib(pbkdf2_sha1, "pbkdf2_sha1", "passlib")),
    ("pbkdf2_sha256$", _passlib(django_pbkdf2_sha256, "pbkdf2_sha256", "django")),
    ("pbkdf2_sha1$", _passlib(django_pbkdf2_sha1, "pbkdf2_sha1", "django")),
    ("$scrypt$", _passlib(passlib_scrypt, "scrypt", "passlib")),
    ("$7$", _passlib(passlib_scrypt, "scrypt", "modular_crypt")),
    ("scrypt$", _django_scrypt),
    ("$5$", _sha_crypt),
    ("$6$", _sha_crypt),
)
