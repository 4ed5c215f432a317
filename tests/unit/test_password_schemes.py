"""Enrolled hash schemes: every format made by its reference library verifies through the pool;
fast hashes, unknown schemes, malformed strings and absurd parameters are refused, saying why."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable

import argon2
import bcrypt
import pytest
from argon2.low_level import Type
from django.conf import settings as django_settings
from passlib import hash as passlib_hash

from exposure.passwords import sha_crypt
from exposure.passwords.hash_shapes import FastHash, fast_hash
from exposure.passwords.schemes import (
    LIMITS,
    EnrolledHash,
    Refusal,
    RefusedHash,
    classify,
    is_verifiable,
)
from exposure.passwords.verifier import PasswordVerifier

if not django_settings.configured:
    django_settings.configure()
from django.contrib.auth import hashers as django_hashers  # needs the settings first

PASSWORD = "Sakura#2025 さくら"  # non-ASCII and a space: exact UTF-8 bytes are what count
WRONG = ["sakura#2025 さくら", "Sakura#2025", "Sakura#2025 さくら ", "Sakura#2026 さくら"]


class _DjangoArgon2(django_hashers.Argon2PasswordHasher):
    time_cost, memory_cost, parallelism = 1, 64, 2


class _DjangoBcryptSha256(django_hashers.BCryptSHA256PasswordHasher):
    rounds = 4


class _DjangoBcrypt(django_hashers.BCryptPasswordHasher):
    rounds = 4


def _django(hasher: django_hashers.BasePasswordHasher, **params: int) -> Callable[[str], str]:
    return lambda password: str(hasher.encode(password, hasher.salt(), **params))


# scheme, format, and a reference library's hasher, at low cost so the tests stay quick.
REFERENCE: list[tuple[str, str, Callable[[str], str]]] = [
    ("argon2id", "phc", argon2.PasswordHasher(1, 64, 2).hash),
    ("argon2i", "phc", argon2.PasswordHasher(1, 64, 2, type=Type.I).hash),
    ("argon2d", "phc", argon2.PasswordHasher(1, 64, 2, type=Type.D).hash),
    ("argon2id", "django", _django(_DjangoArgon2())),
    ("bcrypt", "modular_crypt", lambda p: bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode()),
    (
        "bcrypt",
        "modular_crypt",
        lambda p: bcrypt.hashpw(p.encode(), bcrypt.gensalt(4, b"2a")).decode(),
    ),
    (
        "bcrypt",
        "modular_crypt",  # PHP's $2y$: the same algorithm as $2b$
        lambda p: "$2y$" + bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode()[4:],
    ),
    ("bcrypt", "django", _django(_DjangoBcrypt())),
    ("bcrypt", "django", _django(_DjangoBcryptSha256())),
    ("scrypt", "passlib", passlib_hash.scrypt.using(rounds=8).hash),
    ("scrypt", "modular_crypt", passlib_hash.scrypt.using(rounds=8, ident="$7$").hash),
    ("scrypt", "django", _django(django_hashers.ScryptPasswordHasher(), n=1024, r=8, p=2)),
    ("pbkdf2_sha1", "passlib", passlib_hash.pbkdf2_sha1.using(rounds=1000).hash),
    ("pbkdf2_sha256", "passlib", passlib_hash.pbkdf2_sha256.using(rounds=1000).hash),
    ("pbkdf2_sha512", "passlib", passlib_hash.pbkdf2_sha512.using(rounds=1000).hash),
    ("pbkdf2_sha256", "django", _django(django_hashers.PBKDF2PasswordHasher(), iterations=1000)),
    (
        "pbkdf2_sha1",
        "django",
        _django(django_hashers.PBKDF2SHA1PasswordHasher(), iterations=1000),
    ),
    ("sha256_crypt", "modular_crypt", passlib_hash.sha256_crypt.using(rounds=5000).hash),
    ("sha512_crypt", "modular_crypt", passlib_hash.sha512_crypt.using(rounds=1000).hash),
    ("sha512_crypt", "modular_crypt", passlib_hash.sha512_crypt.using(rounds=5000).hash),
]
IDS = [f"{scheme}-{form}-{i}" for i, (scheme, form, _) in enumerate(REFERENCE)]


@pytest.mark.parametrize(("scheme", "form", "make"), REFERENCE, ids=IDS)
async def test_reference_hashes_verify_through_the_pool(
    scheme: str, form: str, make: Callable[[str], str]
) -> None:
    enrolled = make(PASSWORD)
    parsed = classify(enrolled)
    assert isinstance(parsed, EnrolledHash), parsed
    assert (parsed.scheme, parsed.format) == (scheme, form)
    assert is_verifiable(enrolled)
    with PasswordVerifier(workers=2) as verifier:
        results = await verifier.verify_many([(enrolled, c) for c in [PASSWORD, *WRONG]])
    assert results == [True] + [False] * len(WRONG)
    assert verifier.verified == 1 + len(WRONG) and verifier.malformed == 0


def test_implicit_rounds_sha_crypt_is_accepted() -> None:
    """``$6$salt$...`` without ``rounds=`` means 5,000 rounds (glibc's and /etc/shadow's)."""
    enrolled = passlib_hash.sha512_crypt.using(rounds=5000).hash(PASSWORD)
    assert "rounds=" not in enrolled
    assert isinstance(classify(enrolled), EnrolledHash)


@pytest.mark.parametrize("make", [passlib_hash.sha256_crypt, passlib_hash.sha512_crypt])
@pytest.mark.parametrize("secret", [PASSWORD, "x", "パスワード" * 30, "tab\there"])
def test_libxcrypt_and_the_pure_python_fallback_agree(make: object, secret: str) -> None:
    assert sha_crypt.backend() == "libxcrypt"  # this machine's libcrypt is in use
    enrolled = make.using(rounds=1000).hash(secret)  # type: ignore[attr-defined]
    for candidate in (secret, secret + "!"):
        fast = sha_crypt.verify(enrolled, candidate.encode())
        pure = sha_crypt.verify(enrolled, candidate.encode(), use_libcrypt=False)
        assert fast == pure == (candidate == secret)


def test_bcrypt_reads_72_bytes_like_the_login_system_behind_it() -> None:
    long = "長いパスワード" * 5  # 105 bytes in UTF-8
    enrolled = bcrypt.hashpw(long.encode()[:72], bcrypt.gensalt(4)).decode()
    parsed = classify(enrolled)
    assert isinstance(parsed, EnrolledHash)
    assert parsed.verify(long.encode())  # the login form takes it: live
    assert not parsed.verify(long.encode()[:71])
    assert not parsed.verify(b"a\x00b")  # C bcrypt stops at NUL: no such password was set


def test_an_oversized_password_is_a_mismatch_not_an_error() -> None:
    parsed = classify(passlib_hash.pbkdf2_sha256.using(rounds=1000).hash("pw"))
    assert isinstance(parsed, EnrolledHash)
    assert parsed.verify(b"x" * 5000) is False


# --- refusals ----------------------------------------------------------------------------

MD5 = hashlib.md5(b"Sakura#2025").hexdigest()  # noqa: S324 (test data)
SHA1 = hashlib.sha1(b"x")  # noqa: S324 (test data)
REAL_BCRYPT = bcrypt.hashpw(b"x", bcrypt.gensalt(4)).decode()
REAL_PBKDF2 = passlib_hash.pbkdf2_sha256.using(rounds=1000).hash("x")


def _ldap(scheme: str, digest: bytes) -> str:
    return "{" + scheme + "}" + base64.b64encode(digest).decode()


REFUSED = [
    pytest.param(MD5, Refusal.UNSALTED_FAST_HASH, id="md5"),
    pytest.param(MD5.upper(), Refusal.UNSALTED_FAST_HASH, id="md5-upper"),
    pytest.param(SHA1.hexdigest(), Refusal.UNSALTED_FAST_HASH, id="sha1"),
    pytest.param(hashlib.sha256(b"x").hexdigest(), Refusal.UNSALTED_FAST_HASH, id="sha256"),
    pytest.param(hashlib.sha512(b"x").hexdigest(), Refusal.UNSALTED_FAST_HASH, id="sha512"),
    pytest.param("8846F7EAEE8FB117AD06BDD830B7586C", Refusal.UNSALTED_FAST_HASH, id="ntlm"),
    pytest.param("*" + SHA1.hexdigest().upper(), Refusal.UNSALTED_FAST_HASH, id="mysql"),
    pytest.param(_ldap("SHA", SHA1.digest()), Refusal.UNSALTED_FAST_HASH, id="ldap-sha"),
    pytest.param(
        _ldap("SSHA", hashlib.sha1(b"xs").digest() + b"salt"),  # noqa: S324
        Refusal.SALTED_FAST_HASH,
        id="ldap-ssha",
    ),
    pytest.param("$1$69uEqZWF$fS/uCKxpMlE/Oa6PfELvC0", Refusal.SALTED_FAST_HASH, id="md5crypt"),
    pytest.param("$P$BYTGhXmwlMNs.Zyo/sV3Qg4p2pCTb30", Refusal.SALTED_FAST_HASH, id="phpass"),
    pytest.param("sha1$salt$" + SHA1.hexdigest(), Refusal.SALTED_FAST_HASH, id="django-sha1"),
    pytest.param(
        "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7",
        Refusal.UNSUPPORTED_SCHEME,
        id="yescrypt",
    ),
    pytest.param(
        "$S$DdEmiJ3pDFOHkvVWESYrVTRplpmmLUYB6QECUbWzQqgL4N7zYgOy",
        Refusal.UNSUPPORTED_SCHEME,
        id="drupal7",
    ),
    pytest.param("$2x$" + REAL_BCRYPT[4:], Refusal.UNSUPPORTED_SCHEME, id="bcrypt-2x-buggy"),
    pytest.param(
        "pbkdf2:sha256:600000$GvfjXx5e$" + hashlib.sha256(b"x").hexdigest(),
        Refusal.UNSUPPORTED_SCHEME,
        id="werkzeug",
    ),
    pytest.param(REAL_BCRYPT[:-3], Refusal.MALFORMED, id="bcrypt-truncated"),
    pytest.param(REAL_BCRYPT.replace("$04$", "$03$"), Refusal.MALFORMED, id="bcrypt-cost-3"),
    pytest.param(REAL_PBKDF2[:-10], Refusal.MALFORMED, id="pbkdf2-truncated"),
    pytest.param("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$eA", Refusal.MALFORMED, id="argon2-bad"),
    pytest.param("$6$rounds=999$salt$" + "a" * 86, Refusal.MALFORMED, id="sha512-rounds-999"),
    pytest.param("$6$salt$" + "a" * 43, Refusal.MALFORMED, id="sha512-short-digest"),
    pytest.param("scrypt$1000$salt$8$1$" + "A" * 88, Refusal.MALFORMED, id="django-scrypt-n"),
    pytest.param("Sakura#2025", Refusal.NOT_A_HASH, id="plaintext"),
    pytest.param("パスワード", Refusal.NOT_A_HASH, id="plaintext-japanese"),
    pytest.param("x" * 2000, Refusal.NOT_A_HASH, id="huge"),
]


@pytest.mark.parametrize(("value", "reason"), REFUSED)
def test_refused_with_a_reason(value: str, reason: Refusal) -> None:
    verdict = classify(value)
    assert isinstance(verdict, RefusedHash)
    assert verdict.reason is reason
    assert not is_verifiable(value)


def _bcrypt_cost(cost: int) -> str:
    return REAL_BCRYPT.replace("$04$", f"${cost:02d}$")


def _rounds(handler: object, rounds: int) -> str:
    return str(handler.using(rounds=1000).hash("x")).replace("1000", str(rounds), 1)  # type: ignore[attr-defined]


def _argon2(m: int, t: int) -> str:
    return argon2.PasswordHasher(1, 8, 1).hash("x").replace("m=8,t=1", f"m={m},t={t}")


def _sha512_crypt(rounds: int) -> str:
    enrolled = passlib_hash.sha512_crypt.using(rounds=1000).hash("x")
    return enrolled.replace("rounds=1000", f"rounds={rounds}")


def _scrypt(ln: int, r: int, p: int) -> str:
    enrolled = passlib_hash.scrypt.using(rounds=4).hash("x")
    return enrolled.replace("ln=4,r=8,p=1", f"ln={ln},r={r},p={p}")


# (at the limit: accepted, just past it or absurd: refused); never hashed here.
LIMIT_CASES = [
    pytest.param(_bcrypt_cost(LIMITS.bcrypt_cost), _bcrypt_cost(31), id="bcrypt"),
    pytest.param(
        _bcrypt_cost(LIMITS.bcrypt_cost), _bcrypt_cost(LIMITS.bcrypt_cost + 1), id="bcrypt-16"
    ),
    pytest.param(
        _rounds(passlib_hash.pbkdf2_sha256, 6_000_000),
        _rounds(passlib_hash.pbkdf2_sha256, 10**9),
        id="pbkdf2-sha256",
    ),
    pytest.param(
        _rounds(passlib_hash.pbkdf2_sha512, 3_000_000),
        _rounds(passlib_hash.pbkdf2_sha512, 3_000_001),
        id="pbkdf2-sha512",
    ),
    pytest.param(
        _rounds(passlib_hash.django_pbkdf2_sha256, 6_000_000),
        _rounds(passlib_hash.django_pbkdf2_sha256, 6_000_001),
        id="django-pbkdf2",
    ),
    pytest.param(_sha512_crypt(5_000_000), _sha512_crypt(999_999_999), id="sha512-crypt"),
    pytest.param(_argon2(2 << 20, 1), _argon2(4 << 20, 1), id="argon2-memory"),
    pytest.param(_argon2(1 << 20, 2), _argon2(1 << 20, 3), id="argon2-passes"),
    pytest.param(_scrypt(19, 8, 1), _scrypt(20, 8, 1), id="scrypt-memory"),
    pytest.param(_scrypt(16, 8, 8), _scrypt(16, 8, 9), id="scrypt-work"),
]


@pytest.mark.parametrize(("at_limit", "beyond"), LIMIT_CASES)
def test_absurd_parameters_are_refused_at_enrolment(at_limit: str, beyond: str) -> None:
    assert isinstance(classify(at_limit), EnrolledHash)
    verdict = classify(beyond)
    assert isinstance(verdict, RefusedHash)
    assert verdict.reason is Refusal.COST_TOO_HIGH


def test_every_refusal_says_why_and_what_to_do() -> None:
    for reason in Refusal:
        assert "unknown" in reason.message  # what happens meanwhile
        assert "argon2, bcrypt, scrypt, PBKDF2" in reason.message  # what to enrol instead
    assert "stolen monitor database" in Refusal.UNSALTED_FAST_HASH.message
    assert "stolen monitor database" in Refusal.SALTED_FAST_HASH.message


def test_fast_hash_shapes() -> None:
    assert fast_hash(MD5) is FastHash.UNSALTED
    assert fast_hash("{CRYPT}$1$69uEqZWF$fS/uCKxpMlE/Oa6PfELvC0") is FastHash.SALTED
    assert fast_hash("1" * 32) is None  # all digits: could be a password
    assert fast_hash(REAL_BCRYPT) is None


async def test_refused_hashes_are_counted_malformed_and_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with PasswordVerifier(workers=2) as verifier:
        results = await verifier.verify_many(
            [(MD5, "Sakura#2025"), (_bcrypt_cost(31), "Secret#1"), (REAL_BCRYPT, "x")]
        )
    assert results == [False, False, True]
    assert verifier.malformed == 2 and verifier.verified == 1
    assert "Sakura#2025" not in caplog.text and "Secret#1" not in caplog.text
