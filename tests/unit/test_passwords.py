"""Passwords: hash detection, argon2 PHC validation, pooled verification, password status."""

from __future__ import annotations

import base64
import hashlib
import logging
import random
import threading
import time

import argon2
import pytest
from argon2.low_level import Type, hash_secret

from exposure.domain.policy import PasswordStatus
from exposure.passwords import verifier as passwords
from exposure.passwords.verifier import (
    PasswordVerifier,
    is_argon2_phc,
    looks_like_hash,
    password_status,
)

FAST = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def _fast(password: str) -> str:
    return FAST.hash(password)


def _ldap(scheme: str, digest: bytes) -> str:
    return "{" + scheme + "}" + base64.b64encode(digest).decode()


# --- looks_like_hash ----------------------------------------------------------------------

MD5 = hashlib.md5(b"Sakura#2025").hexdigest()  # noqa: S324 (test data)
SHA1 = hashlib.sha1(b"Sakura#2025").hexdigest()  # noqa: S324 (test data)
BCRYPT = "$2b$12$G4WUB.SwBpf5uTOUvqBoZuz9i24/mDNYGKLXURd716Hn52LG1BT/S"
MD5CRYPT = "$1$69uEqZWF$fS/uCKxpMlE/Oa6PfELvC0"
SHA256CRYPT = "$5$/mEhKX0c22SHKtwu$yqkCAOsA2K.OuYFzjzYI5.sAFAa0Wp5O4fDPYWc5aCB"
SHA512CRYPT = (
    "$6$pPUaY9ZJ7CUCMmSy$DWkOkObvRsKo0msov.LDY1A5qMoKaBrUE2ri6S.x/kaaFUMIBgYtRleBzdvCMei/"
    "CzvGOfj6oKDwK5ZxnYzwo."
)

HASHES = [
    pytest.param(MD5, id="md5"),
    pytest.param(MD5.upper(), id="md5-upper"),
    pytest.param("8846F7EAEE8FB117AD06BDD830B7586C", id="ntlm"),
    pytest.param(SHA1, id="sha1"),
    pytest.param(hashlib.sha224(b"x").hexdigest(), id="sha224"),
    pytest.param(hashlib.sha256(b"x").hexdigest(), id="sha256"),
    pytest.param(hashlib.sha384(b"x").hexdigest(), id="sha384"),
    pytest.param(hashlib.sha512(b"x").hexdigest(), id="sha512"),
    pytest.param(f"  {MD5}\t", id="md5-padded"),
    pytest.param("*" + SHA1.upper(), id="mysql41"),
    pytest.param(BCRYPT, id="bcrypt-2b"),
    pytest.param(BCRYPT.replace("$2b$", "$2a$"), id="bcrypt-2a"),
    pytest.param(BCRYPT.replace("$2b$", "$2y$"), id="bcrypt-2y"),
    pytest.param(FAST.hash("x"), id="argon2id"),
    pytest.param(
        argon2.PasswordHasher(type=Type.I, memory_cost=32, time_cost=1).hash("x"), id="argon2i"
    ),
    pytest.param(
        argon2.PasswordHasher(type=Type.D, memory_cost=32, time_cost=1).hash("x"), id="argon2d"
    ),
    pytest.param(MD5CRYPT, id="md5crypt"),
    pytest.param(MD5CRYPT.replace("$1$", "$apr1$"), id="apr1"),
    pytest.param(SHA256CRYPT, id="sha256crypt"),
    pytest.param(SHA256CRYPT.replace("$5$", "$5$rounds=10000$"), id="sha256crypt-rounds"),
    pytest.param(SHA512CRYPT, id="sha512crypt"),
    pytest.param(
        "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7", id="yescrypt"
    ),
    pytest.param("$P$BYTGhXmwlMNs.Zyo/sV3Qg4p2pCTb30", id="phpass"),
    pytest.param("$S$DdEmiJ3pDFOHkvVWESYrVTRplpmmLUYB6QECUbWzQqgL4N7zYgOy", id="drupal7"),
    pytest.param(_ldap("SHA", hashlib.sha1(b"x").digest()), id="ldap-sha"),  # noqa: S324
    pytest.param(_ldap("SSHA", hashlib.sha1(b"xsalt").digest() + b"salt"), id="ldap-ssha"),  # noqa: S324
    pytest.param(_ldap("SSHA256", hashlib.sha256(b"xs").digest() + b"salt"), id="ldap-ssha256"),
    pytest.param(_ldap("ssha512", hashlib.sha512(b"xs").digest() + b"salt"), id="ldap-lower"),
    pytest.param("{CRYPT}" + SHA512CRYPT, id="ldap-crypt"),
    pytest.param(
        "pbkdf2_sha256$600000$c2FsdHNhbHQ$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo0NTY3OA=",
        id="django-pbkdf2",
    ),
    pytest.param("bcrypt_sha256$" + BCRYPT, id="django-bcrypt"),
    pytest.param(
        "argon2$argon2id$v=19$m=102400,t=2,p=8$c29tZXNhbHQ$aGFzaGhhc2g", id="django-argon2"
    ),
    pytest.param("scrypt$16384$c2FsdA$8$1$YWJjZGVmZ2hpamtsbW5vcA==", id="django-scrypt"),
    pytest.param(
        "$pbkdf2-sha256$29000$N2YuFSE$mPk.ifLLUhAwzoRFmLwr1xfy0Pg5Fm5S6pHI06sNWDI",
        id="passlib-pbkdf2",
    ),
    pytest.param(
        "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
        id="passlib-scrypt",
    ),
    pytest.param(
        "pbkdf2:sha256:600000$GvfjXx5e$" + hashlib.sha256(b"x").hexdigest(), id="werkzeug-pbkdf2"
    ),
    pytest.param(
        "scrypt:32768:8:1$9pm6lBQr$" + hashlib.sha512(b"x").hexdigest(), id="werkzeug-scrypt"
    ),
]

PASSWORDS = [
    pytest.param("Sakura#2025", id="ordinary"),
    pytest.param("パスワード2025", id="japanese"),
    pytest.param("", id="empty"),
    pytest.param(MD5[:-1], id="hex-31"),
    pytest.param(MD5 + "a", id="hex-33"),
    pytest.param(SHA1[:-1], id="hex-39"),
    pytest.param("DeadBeef" * 4, id="hex-mixed-case"),
    pytest.param("1" * 32, id="hex-all-digits"),
    pytest.param("12345678901234567890123456789012", id="digits-32"),
    pytest.param("abcdefabcdefabcdefabcdefabcdefab", id="hex-no-digit"),
    pytest.param(MD5[:-1] + "g", id="md5-with-non-hex"),
    pytest.param("*" + SHA1[:-1], id="mysql41-short"),
    pytest.param("#" + SHA1.upper(), id="mysql41-wrong-prefix"),
    pytest.param("$2b$12$short", id="bcrypt-short"),
    pytest.param("$2b$12$" + "!" * 53, id="bcrypt-bad-alphabet"),
    pytest.param("$argon2id$hunter2", id="argon2-prefix-only"),
    pytest.param("$1$abc", id="md5crypt-short"),
    pytest.param("$1$69uEqZWF$fS/uCKxpMlE", id="md5crypt-truncated"),
    pytest.param("$5$salt$short", id="sha256crypt-short"),
    pytest.param(SHA512CRYPT[:-2], id="sha512crypt-truncated"),
    pytest.param("$y$j9T$", id="yescrypt-short"),
    pytest.param("$P$short", id="phpass-short"),
    pytest.param("$S$short", id="drupal-short"),
    pytest.param("{SHA}password", id="ldap-sha-not-base64-digest"),
    pytest.param(_ldap("SHA", b"too short"), id="ldap-sha-wrong-size"),
    pytest.param(_ldap("SSHA", hashlib.sha1(b"x").digest()), id="ldap-ssha-no-salt"),  # noqa: S324
    pytest.param(_ldap("ROT13", b"x" * 20), id="ldap-unknown-scheme"),
    pytest.param("{CRYPT}hunter2", id="ldap-crypt-plain"),
    pytest.param("pbkdf2_sha256$", id="django-pbkdf2-truncated"),
    pytest.param("scrypt$abc", id="django-scrypt-bad"),
    pytest.param("$pbkdf2-sha256$", id="passlib-truncated"),
    pytest.param("pbkdf2:sha256:600000$salt$nothex", id="werkzeug-bad"),
    pytest.param("P@ss$2025$word", id="dollars"),
    pytest.param("ＭＤ５" + MD5[4:], id="full-width"),
]


@pytest.mark.parametrize("value", HASHES)
def test_looks_like_hash_positive(value: str) -> None:
    assert looks_like_hash(value)


@pytest.mark.parametrize("value", PASSWORDS)
def test_looks_like_hash_negative(value: str) -> None:
    assert not looks_like_hash(value)


# --- is_argon2_phc ------------------------------------------------------------------------

VALID_PHC = [
    pytest.param(_fast("x"), id="fast"),
    pytest.param(argon2.PasswordHasher().hash("x"), id="library-defaults"),
    pytest.param(
        argon2.PasswordHasher(type=Type.I, time_cost=1, memory_cost=32).hash("x"), id="argon2i"
    ),
    pytest.param(hash_secret(b"x", b"saltsalt", 1, 8, 1, 32, Type.D).decode(), id="argon2d"),
    pytest.param(
        hash_secret(b"x", b"saltsalt", 1, 8, 1, 32, Type.ID, version=16).decode(), id="v16"
    ),
    pytest.param("$argon2i$m=8,t=1,p=1$c2FsdHNhbHQ$YWJjZGVmZ2hpamtsbW5vcA", id="no-version"),
    pytest.param("$argon2id$v=19$m=32,t=1,p=4$c2FsdHNhbHQ$YWJjZA", id="short-digest"),
]
_GOOD = (
    "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$"
    "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXowMTIzNDU"
)
INVALID_PHC = [
    pytest.param("", id="empty"),
    pytest.param("argon2", id="word"),
    pytest.param(BCRYPT, id="bcrypt"),
    pytest.param(_GOOD.replace("argon2id", "argon2x"), id="bad-type"),
    pytest.param(_GOOD.replace("v=19", "v=18"), id="bad-version"),
    pytest.param(_GOOD.replace("m=65536,t=3", "t=3,m=65536"), id="field-order"),
    pytest.param(_GOOD.replace("m=65536", "m=065536"), id="leading-zero"),
    pytest.param(_GOOD.replace(",p=4", ""), id="missing-p"),
    pytest.param(_GOOD.replace("p=4", "p=4,keyid=x"), id="extra-param"),
    pytest.param(_GOOD.replace("m=65536", "m=16"), id="memory-below-8p"),
    pytest.param(_GOOD.replace("t=3", "t=0"), id="zero-time"),
    pytest.param(_GOOD.replace("c29tZXNhbHRzb21lc2FsdA", "c2FsdA"), id="salt-under-8-bytes"),
    pytest.param(_GOOD.replace("c29tZXNhbHRzb21lc2FsdA", "c29tZXNhbHRzb21lc2FsdA=="), id="padded"),
    pytest.param(
        _GOOD.replace("c29tZXNhbHRzb21lc2FsdA", "c29tZXNhbHRzb21lc2FsdB"), id="non-canonical-base64"
    ),
    pytest.param(_GOOD.replace("YWJj", "YW-j"), id="urlsafe-char"),
    pytest.param(_GOOD + "AA", id="digest-length-impossible-in-base64"),
    pytest.param(_GOOD.rsplit("$", 1)[0], id="no-digest"),
    pytest.param(_GOOD + "$extra", id="extra-field"),
    pytest.param(" " + _GOOD, id="leading-space"),
    pytest.param(_GOOD + "\n", id="trailing-newline"),
    pytest.param(_GOOD.replace("YWJj", "ＹWJj"), id="non-ascii"),
    pytest.param(_GOOD.upper(), id="upper-case"),
]


@pytest.mark.parametrize("value", VALID_PHC)
def test_is_argon2_phc_valid(value: str) -> None:
    assert is_argon2_phc(value)
    # What we accept, argon2 itself can decode: it verifies or mismatches, never "bad hash".
    with pytest.raises(argon2.exceptions.VerifyMismatchError):
        argon2.PasswordHasher().verify(value, "not the password")


@pytest.mark.parametrize("value", INVALID_PHC)
def test_is_argon2_phc_invalid(value: str) -> None:
    assert not is_argon2_phc(value)


def test_is_argon2_phc_agrees_with_argon2_on_mutations() -> None:
    """Random edits of a real hash: whatever we accept, argon2 can decode."""
    base = _fast("pw")
    rnd = random.Random(7)
    alphabet = "$=,0123456789abcdefmptvAZ+/"
    accepted = 0
    for _ in range(2000):
        chars = list(base)
        index = rnd.randrange(len(chars))
        chars[index] = rnd.choice(alphabet)
        mutated = "".join(chars)
        if not is_argon2_phc(mutated):
            continue
        accepted += 1
        try:
            FAST.verify(mutated, "pw")  # raises VerificationError if argon2 cannot decode it
        except argon2.exceptions.VerifyMismatchError:
            pass
    assert accepted > 100  # the loop did exercise accepted hashes


# --- PasswordVerifier ---------------------------------------------------------------------


async def test_verify_correct_incorrect_exact_bytes() -> None:
    ascii_hash = _fast("Sakura#2025")
    unicode_hash = _fast("パスワード２０２５")
    spaced_hash = _fast("Sakura#2025 ")
    pairs = [
        (ascii_hash, "Sakura#2025"),
        (ascii_hash, "sakura#2025"),
        (ascii_hash, "Sakura#2025 "),  # trailing space is part of the password
        (ascii_hash, " Sakura#2025"),
        (ascii_hash, "Sakura#2025\n"),
        (unicode_hash, "パスワード２０２５"),
        (unicode_hash, "パスワード2025"),  # NFKC form: passwords are never normalised
        (unicode_hash, "ﾊﾟｽﾜｰﾄﾞ２０２５"),
        (spaced_hash, "Sakura#2025 "),
        (spaced_hash, "Sakura#2025"),
    ]
    with PasswordVerifier(workers=2) as verifier:
        results = await verifier.verify_many(pairs)
    assert results == [True, False, False, False, False, True, False, False, True, False]


async def test_verify_hash_made_with_library_defaults() -> None:
    default_hash = argon2.PasswordHasher().hash("Momiji!77")
    async with PasswordVerifier() as verifier:
        assert await verifier.verify_many([(default_hash, "Momiji!77"), (default_hash, "x")]) == [
            True,
            False,
        ]
        assert verifier.workers >= 1


@pytest.mark.parametrize(
    ("type_", "version", "parallelism"),
    [(t, v, p) for t in Type for v in (16, 19) for p in (1, 3, 4)],
)
async def test_agrees_with_argon2_cffi(type_: Type, version: int, parallelism: int) -> None:
    """Our single-threaded lane computation gives the library's answer for every variant."""
    phc = hash_secret(
        b"Fuji-San_3776", b"saltsalt1", 2, 8 * parallelism, parallelism, 24, type_, version=version
    ).decode()
    candidates = ["Fuji-San_3776", "Fuji-San_3777"]
    expected: list[bool] = []
    for candidate in candidates:
        try:
            expected.append(argon2.PasswordHasher().verify(phc, candidate))
        except argon2.exceptions.VerifyMismatchError:
            expected.append(False)
    assert expected == [True, False]
    with PasswordVerifier(workers=2) as verifier:
        assert await verifier.verify_many([(phc, c) for c in candidates]) == expected


def test_self_test_fails_loudly_when_the_verification_path_breaks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passwords._self_test()  # the installed argon2-cffi works with our path
    # Simulate an argon2-cffi whose context struct lost a field.
    monkeypatch.setattr(passwords, "_LEND", "not a callback")
    with pytest.raises(passwords.VerifierSelfTestError):
        PasswordVerifier(workers=1)


async def test_malformed_hash_is_false_and_counted() -> None:
    good = _fast("pw")
    pairs = [
        ("not a hash", "pw"),
        (good.replace("m=8", "m=08"), "pw"),
        (good[:-2], "pw"),  # truncated digest: a length base64 cannot produce
        (BCRYPT, "pw"),
        ("", "pw"),
        (good, "pw"),
    ]
    with PasswordVerifier(workers=2) as verifier:
        results = await verifier.verify_many(pairs)
    assert results == [False, False, False, False, False, True]
    assert verifier.malformed == 5
    assert verifier.verified == 1


async def test_hash_like_and_empty_leaked_values_are_never_verified() -> None:
    # The customer's password literally is an MD5 string: still not verified (documented).
    md5_password = hashlib.md5(b"x").hexdigest()  # noqa: S324 (test data)
    enrolled = _fast(md5_password)
    with PasswordVerifier(workers=2) as verifier:
        results = await verifier.verify_many([(enrolled, md5_password), (_fast(""), "")])
    assert results == [False, False]
    assert verifier.skipped == 2
    assert verifier.verified == 0


async def test_lone_surrogate_is_a_mismatch_not_an_exception() -> None:
    with PasswordVerifier(workers=1) as verifier:
        assert await verifier.verify_many([(_fast("ab"), "a\udcffb")]) == [False]


async def test_results_follow_input_order_under_concurrency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_verify_one = passwords._verify_one
    lock = threading.Lock()
    running = 0
    peak = 0
    thread_names: set[str] = set()
    rnd = random.Random(3)

    def observed(*args: object) -> object:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            thread_names.add(threading.current_thread().name)
            delay = rnd.uniform(0, 0.01)
        time.sleep(delay)  # random durations: completions arrive out of input order
        try:
            return real_verify_one(*args)  # type: ignore[arg-type]
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(passwords, "_verify_one", observed)
    pairs = []
    expected = []
    for i in range(48):
        correct = i % 3 != 0
        pairs.append((_fast(f"pw-{i}"), f"pw-{i}" if correct else f"pw-{i}x"))
        expected.append(correct)
    with PasswordVerifier(workers=4) as verifier:
        results = await verifier.verify_many(pairs)
        assert await verifier.verify_many([]) == []
    assert results == expected
    assert verifier.verified == 48
    assert peak > 1
    assert len(thread_names) > 1
    assert all(name.startswith("argon2-verify") for name in thread_names)


async def test_verify_after_close_raises_without_secrets() -> None:
    verifier = PasswordVerifier(workers=1)
    verifier.close()
    verifier.close()  # idempotent
    with pytest.raises(RuntimeError) as caught:
        await verifier.verify_many([(_fast("pw"), "Secret#123")])
    assert "Secret#123" not in str(caught.value)


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="workers"):
        PasswordVerifier(workers=0)


async def test_nothing_secret_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with PasswordVerifier(workers=2) as verifier:
        await verifier.verify_many([(_fast("Secret#123"), "Secret#123"), ("junk", "Secret#456")])
    assert "Secret#" not in caplog.text


# --- password_status ----------------------------------------------------------------------

ENROLLED = _fast("Sakura#2025")


@pytest.mark.parametrize(
    ("enrolled", "leaked", "verified", "expected"),
    [
        (ENROLLED, "Sakura#2025", True, PasswordStatus.LIVE),
        (ENROLLED, "Momiji!77", False, PasswordStatus.STALE),
        (None, "Momiji!77", None, PasswordStatus.UNKNOWN),
        (None, "Momiji!77", False, PasswordStatus.UNKNOWN),
        ("not-argon2", "Momiji!77", False, PasswordStatus.UNKNOWN),  # unusable hash
        (BCRYPT, "Momiji!77", False, PasswordStatus.UNKNOWN),
        (ENROLLED, None, None, PasswordStatus.ABSENT),
        (None, None, None, PasswordStatus.ABSENT),
        (ENROLLED, "", False, PasswordStatus.ABSENT),
        (ENROLLED, MD5, False, PasswordStatus.ABSENT),  # a hash is not the password
        (None, MD5, None, PasswordStatus.ABSENT),
        (ENROLLED, BCRYPT, None, PasswordStatus.ABSENT),
        (ENROLLED, MD5, True, PasswordStatus.LIVE),  # a verified match is proof
        (ENROLLED, " ", False, PasswordStatus.STALE),  # whitespace is a password
    ],
)
def test_password_status(
    enrolled: str | None, leaked: str | None, verified: bool | None, expected: PasswordStatus
) -> None:
    assert password_status(enrolled, leaked, verified) is expected


def test_password_status_needs_a_verification_result() -> None:
    with pytest.raises(ValueError, match="verification result") as caught:
        password_status(ENROLLED, "Secret#789", None)
    assert "Secret#789" not in str(caught.value)


async def test_status_from_verifier_end_to_end() -> None:
    leaked = ["Sakura#2025", "Momiji!77", MD5]
    with PasswordVerifier(workers=2) as verifier:
        verified = await verifier.verify_many([(ENROLLED, p) for p in leaked])
    statuses = [password_status(ENROLLED, p, v) for p, v in zip(leaked, verified, strict=True)]
    assert statuses == [PasswordStatus.LIVE, PasswordStatus.STALE, PasswordStatus.ABSENT]
