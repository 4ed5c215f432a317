"""Leaked passwords against enrolled argon2 hashes: hash detection, verification, status.

Nothing here logs, stores or raises with a password or an identifier in it.

**Hashes.** A leaked value that :func:`looks_like_hash` is never verified as the plaintext, and
its status is ``absent`` (the contract's "the leak carries no password"), not ``unknown`` (which
means "no hash enrolled" and would make every hashed third-party dump a ``notify``); a broker-site
hash leak is still ``force_reset``. Bare hex of a digest length (32/40/56/64/96/128), single-case,
with a digit and a letter, counts as a hash: a real password of that shape is then ``absent``, a
missed reset we accept so that a dumped MD5 is never called "not the current password".
Not detected: 16-hex MySQL 3.23 and 13-character DES crypt, short enough to be passwords.

**Verification.** argon2-cffi releases the GIL, but also runs each call's ``p`` lanes (4 by
default) on threads it creates per call, so a pool of such calls oversubscribes the cores. Each
worker instead computes all lanes on its own thread (``argon2.low_level.core``, ``threads=1``:
same digest), compared in constant time. A self-test at start-up checks this against argon2-cffi
and refuses to start (:class:`VerifierSelfTestError`) if a new argon2-cffi ever breaks it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import os
import re
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from typing import Any, Self

import argon2
from argon2 import low_level
from argon2.exceptions import InvalidHashError
from argon2.low_level import core, ffi

from exposure.domain.policy import PasswordStatus
from exposure.errors import FatalError, RetriableError

# argon2.low_level's own C library handle (argon2.h constants); not in its __all__.
lib = low_level.lib  # type: ignore[attr-defined]


_HEX_DIGEST_LENGTHS = frozenset({32, 40, 56, 64, 96, 128})  # MD5/NTLM, SHA-1, SHA-2 family
_HEX = re.compile(r"[0-9a-f]+|[0-9A-F]+")  # digest encoders never mix case
_C64 = r"[./0-9A-Za-z]"  # crypt(3) alphabet
_B64 = r"[A-Za-z0-9+/]"
_AB64 = r"[./+A-Za-z0-9]"  # passlib's adapted base64 ('.' for '+'), and plain base64
_HASH_PATTERNS = re.compile(
    "|".join(
        (
            r"\*[0-9A-Fa-f]{40}",  # MySQL 4.1+ PASSWORD()
            rf"\$2[abxy]?\$\d\d\${_C64}{{53}}",  # bcrypt
            rf"\$argon2(?:id|i|d)\$(?:v=\d+\$)?m=\d+,t=\d+,p=\d+\${_B64}+\${_B64}+",  # argon2 PHC
            rf"\$1\${_C64}{{0,8}}\${_C64}{{22}}",  # md5crypt
            rf"\$apr1\${_C64}{{0,8}}\${_C64}{{22}}",  # Apache md5crypt
            rf"\$5\$(?:rounds=\d+\$)?{_C64}{{0,16}}\${_C64}{{43}}",  # sha256crypt
            rf"\$6\$(?:rounds=\d+\$)?{_C64}{{0,16}}\${_C64}{{86}}",  # sha512crypt
            rf"\$g?y\$[./A-Za-z0-9]+\${_C64}+\${_C64}{{43}}",  # yescrypt
            rf"\$[PH]\${_C64}{{31}}",  # phpass (WordPress, phpBB)
            rf"\$S\${_C64}{{52}}",  # Drupal 7
            r"pbkdf2_sha(?:1|256)\$\d+\$[^$]+\$[A-Za-z0-9+/=]+",  # Django PBKDF2
            r"(?:bcrypt_sha256|bcrypt)\$\$2[abxy]?\$.+",  # Django bcrypt wrappers
            r"argon2\$argon2(?:id|i|d)\$.+",  # Django argon2 wrapper
            r"scrypt\$\d+\$[^$]+\$\d+\$\d+\$[A-Za-z0-9+/=]+",  # Django scrypt
            r"(?:sha1|md5)\$[^$]*\$[0-9a-f]{32,40}",  # Django legacy salted digests
            rf"\$pbkdf2(?:-sha(?:256|512))?\$\d+\${_AB64}+\${_AB64}+",  # passlib PBKDF2
            rf"\$scrypt\$ln=\d+,r=\d+,p=\d+\${_AB64}+\${_AB64}+",  # passlib scrypt
            r"(?:pbkdf2:sha\d+(?::\d+)?|scrypt:\d+:\d+:\d+)\$[^$]+\$[0-9a-f]{32,}",  # Werkzeug
        )
    )
)
# LDAP RFC 2307 schemes: {SCHEME}base64(digest), {SSCHEME}base64(digest + salt).
_LDAP = re.compile(r"\{([A-Za-z0-9]+)\}([A-Za-z0-9+/]+=*)")
_LDAP_DIGEST_BYTES = {"MD5": 16, "SHA": 20, "SHA256": 32, "SHA384": 48, "SHA512": 64}


def looks_like_hash(value: str) -> bool:
    """True if ``value`` is itself a password hash and must never be verified as a password.

    Hex digests (MD5/NTLM, SHA-1, SHA-2; see the module docstring), MySQL 4.1, bcrypt, argon2,
    crypt ``$1$ $apr1$ $5$ $6$ $y$``, phpass, Drupal 7, LDAP ``{SHA}``/``{SSHA}``/... and
    ``{CRYPT}``, Django/passlib/Werkzeug formats. Surrounding whitespace is ignored here only.
    """
    text = value.strip()
    if not text or not text.isascii():
        return False
    if len(text) in _HEX_DIGEST_LENGTHS and _HEX.fullmatch(text):
        has_digit = any(c.isdigit() for c in text)
        return has_digit and not text.isdigit()
    if _HASH_PATTERNS.fullmatch(text):
        return True
    ldap = _LDAP.fullmatch(text)
    if ldap:
        return _is_ldap_hash(ldap.group(1).upper(), ldap.group(2))
    if text[:7].upper() == "{CRYPT}":
        return looks_like_hash(text[7:])
    return False


def _is_ldap_hash(scheme: str, payload: str) -> bool:
    salted = scheme not in _LDAP_DIGEST_BYTES and scheme.startswith("S")
    size = _LDAP_DIGEST_BYTES.get(scheme[1:] if salted else scheme)
    if size is None:
        return False
    try:
        raw = base64.b64decode(payload, validate=True)
    except binascii.Error:
        return False
    return len(raw) > size if salted else len(raw) == size


# Field order and syntax as libargon2's decoder accepts them: no leading zeros, m,t,p in that
# order, unpadded standard base64. Anything else fails inside argon2 with "Decoding failed".
_PHC = re.compile(
    r"\$(argon2id|argon2i|argon2d)\$(?:v=(?:16|19)\$)?"
    r"m=[1-9][0-9]{0,9},t=[1-9][0-9]{0,9},p=[1-9][0-9]{0,7}"
    r"\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)"
)
_PHC_MAX_LENGTH = 1024  # far above any real hash; bounds the work spent on garbage


@dataclass(frozen=True, slots=True)
class _Phc:
    params: argon2.Parameters
    salt: bytes
    digest: bytes


def _b64_unpadded(text: str) -> bytes | None:
    """Decode unpadded base64 the way libargon2 does: canonical encodings only."""
    if len(text) % 4 == 1:
        return None
    raw = base64.b64decode(text + "=" * (-len(text) % 4))
    # Non-zero trailing bits decode in Python but not in libargon2.
    if base64.b64encode(raw).rstrip(b"=").decode("ascii") != text:
        return None
    return raw


def _parse_phc(value: str) -> _Phc | None:
    if len(value) > _PHC_MAX_LENGTH or not value.isascii():
        return None
    shape = _PHC.fullmatch(value)
    if shape is None:
        return None
    try:
        params = argon2.extract_parameters(value)
    except InvalidHashError:
        return None
    salt = _b64_unpadded(shape.group(2))
    digest = _b64_unpadded(shape.group(3))
    if salt is None or digest is None:
        return None
    # libargon2's own limits (argon2.h); a hash outside them can never verify.
    if not (
        lib.ARGON2_MIN_SALT_LENGTH <= len(salt) <= lib.ARGON2_MAX_SALT_LENGTH
        and lib.ARGON2_MIN_OUTLEN <= len(digest) <= lib.ARGON2_MAX_OUTLEN
        and lib.ARGON2_MIN_LANES <= params.parallelism <= lib.ARGON2_MAX_LANES
        and lib.ARGON2_MIN_TIME <= params.time_cost <= lib.ARGON2_MAX_TIME
        and 8 * params.parallelism <= params.memory_cost <= lib.ARGON2_MAX_MEMORY
    ):
        return None
    return _Phc(params, salt, digest)


def is_argon2_phc(value: str) -> bool:
    """True if ``value`` is an argon2 PHC string that argon2 can verify against.

    ``$argon2{id,i,d}$[v=16|19$]m=M,t=T,p=P$salt$hash`` with canonical unpadded base64, salt of
    at least 8 bytes, hash of at least 4 bytes and parameters within libargon2's limits. Used to
    validate enrolment; a hash that passes never fails to *decode* in verification.
    """
    return _parse_phc(value) is not None


class VerifierResourceError(RetriableError):
    """argon2 could not allocate the memory an enrolled hash asks for; retry later."""

    def __init__(self, memory_kib: int) -> None:
        self.memory_kib = memory_kib
        super().__init__(f"argon2 could not allocate {memory_kib} KiB for a verification")


class _Outcome(Enum):
    MATCH = "match"
    MISMATCH = "mismatch"
    MALFORMED = "malformed"  # the enrolled hash cannot be verified against
    SKIPPED = "skipped"  # the leaked value is empty or a hash: never verified


# argon2 allocates its m KiB per call; a fresh mmap each time costs ~20% in page faults, and
# concurrent faults contend on the process's memory map lock. Each worker thread keeps one
# buffer (grown to the largest m seen) and lends it to argon2, which wipes it after each use.
_scratch = threading.local()
_raw = ffi.new_allocator(should_clear_after_alloc=False)


def _lend_buffer(memory: Any, size: int) -> int:
    buffer = getattr(_scratch, "buffer", None)
    if buffer is None or len(buffer) < size:
        _scratch.buffer = buffer = _raw("uint8_t[]", size)
    memory[0] = buffer
    return int(lib.ARGON2_OK)


try:
    # A raising callback (MemoryError) returns `error` to argon2, not a garbage pointer.
    _LEND = ffi.callback("allocate_fptr", _lend_buffer, error=lib.ARGON2_MEMORY_ALLOCATION_ERROR)
    _KEEP = ffi.callback("deallocate_fptr", lambda memory, size: None)
except MemoryError:  # no executable memory for callbacks (hardened kernel): argon2 mallocs
    _LEND = _KEEP = ffi.NULL


def _verify_single_threaded(phc: _Phc, secret: bytes) -> _Outcome:
    """argon2 over all lanes on the calling thread, then a constant-time digest comparison."""
    out = ffi.new("uint8_t[]", len(phc.digest))
    pwd = ffi.new("uint8_t[]", secret)
    salt = ffi.new("uint8_t[]", phc.salt)
    params = phc.params
    ctx = ffi.new("argon2_context *")  # zero-filled: no secret key, no associated data
    ctx.out, ctx.outlen = out, len(phc.digest)
    ctx.pwd, ctx.pwdlen = pwd, len(secret)
    ctx.salt, ctx.saltlen = salt, len(phc.salt)
    ctx.t_cost, ctx.m_cost, ctx.lanes = params.time_cost, params.memory_cost, params.parallelism
    ctx.threads, ctx.version = 1, params.version
    ctx.allocate_cbk, ctx.free_cbk = _LEND, _KEEP
    ctx.flags = lib.ARGON2_FLAG_CLEAR_PASSWORD  # argon2 zeroes its copy once absorbed
    rc = core(ctx, params.type.value)
    if rc == lib.ARGON2_MEMORY_ALLOCATION_ERROR:
        raise VerifierResourceError(params.memory_cost)
    if rc != lib.ARGON2_OK:
        return _Outcome.MALFORMED
    same = hmac.compare_digest(bytes(ffi.buffer(out, len(phc.digest))), phc.digest)
    return _Outcome.MATCH if same else _Outcome.MISMATCH


class VerifierSelfTestError(FatalError):
    """The installed argon2-cffi breaks our verification path (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(
            "argon2 verification self-test failed: install the argon2-cffi version this "
            "release of exposure was tested with"
        )


def _self_test() -> None:
    """Check the single-threaded path against argon2-cffi on a known vector."""
    secret = "self-test あ".encode()
    phc = _parse_phc(argon2.PasswordHasher(1, 64, 4).hash(secret))
    try:
        if (
            phc is not None
            and _verify_single_threaded(phc, secret) is _Outcome.MATCH
            and _verify_single_threaded(phc, secret[:-1]) is _Outcome.MISMATCH
        ):
            return
    except (TypeError, KeyError, AttributeError):  # argon2-cffi changed its context struct
        pass
    raise VerifierSelfTestError


def _verify_one(phc_hash: str, leaked: str) -> _Outcome:
    if not leaked or looks_like_hash(leaked):
        return _Outcome.SKIPPED
    phc = _parse_phc(phc_hash)
    if phc is None:
        return _Outcome.MALFORMED
    try:
        secret = leaked.encode("utf-8")  # exact bytes: never normalised, never stripped
    except UnicodeEncodeError:
        # Lone surrogates (undecodable input) cannot equal any valid-Unicode password; caught
        # here so the exception, which holds the string, goes no further.
        return _Outcome.MISMATCH
    return _verify_single_threaded(phc, secret)


def _default_workers() -> int:
    # The CPUs this process may run on (container limits via affinity), else all of them.
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


class PasswordVerifier:
    """Verifies leaked passwords against enrolled argon2 hashes on a worker pool that keeps
    every core busy (argon2-cffi releases the GIL, so threads scale).

    ``workers`` defaults to the CPUs available to this process. Each worker keeps a buffer of
    the largest ``m`` KiB it has seen (64 MiB with argon2-cffi defaults). Counters
    :attr:`verified`, :attr:`malformed` and :attr:`skipped` accumulate for the ingestion summary.
    Use as a (sync or async) context manager or call :meth:`close`.
    """

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers or _default_workers()
        _self_test()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="argon2-verify")
        self.verified = 0  # pairs checked: match or mismatch
        self.malformed = 0  # enrolled hashes that could not be used
        self.skipped = 0  # leaked values not verified: empty or a hash

    async def verify_many(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        """``(phc_hash, leaked_password)`` pairs -> whether each verifies, in input order.

        A malformed enrolled hash gives ``False`` and is counted in :attr:`malformed`; an empty
        or hash-looking leaked value gives ``False`` without running argon2 (:attr:`skipped`).
        """
        loop = asyncio.get_running_loop()
        outcomes = [_Outcome.SKIPPED] * len(pairs)
        todo = iter(enumerate(pairs))

        async def feed() -> None:
            # Shared iterator: each feeder takes the next pair when its previous one is done.
            for index, (phc_hash, leaked) in todo:
                outcomes[index] = await loop.run_in_executor(
                    self._pool, _verify_one, phc_hash, leaked
                )

        # Two feeders per worker keep a job queued behind each running one, so no core idles
        # while the event loop gets round to submitting the next; memory stays bounded.
        count = min(len(pairs), 2 * self.workers)
        feeders = [asyncio.ensure_future(feed()) for _ in range(count)]
        try:
            await asyncio.gather(*feeders)
        except BaseException:
            # One failure (or our cancellation) stops the other feeders submitting more.
            for feeder in feeders:
                feeder.cancel()
            raise
        counts = Counter(outcomes)
        self.malformed += counts[_Outcome.MALFORMED]
        self.skipped += counts[_Outcome.SKIPPED]
        self.verified += counts[_Outcome.MATCH] + counts[_Outcome.MISMATCH]
        return [outcome is _Outcome.MATCH for outcome in outcomes]

    def close(self) -> None:
        """Wait for running verifications, drop queued ones, stop the threads. Idempotent."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # Joining threads blocks until running hashes finish: do it off the event loop.
        await asyncio.to_thread(self.close)


def password_status(
    enrolled_hash: str | None, leaked_password: str | None, verified: bool | None
) -> PasswordStatus:
    """The contract's ``password_status`` for one leaked record against one customer.

    * ``live``: password and hash present and ``verified`` (proof beats every heuristic below).
    * ``absent``: no password, an empty one, or one that :func:`looks_like_hash`.
    * ``unknown``: no enrolled hash, or not a usable argon2 PHC string (``stale`` would
      under-react to a hash we simply cannot check).
    * ``stale``: otherwise, when ``verified`` is False.

    Raises ``ValueError`` when a check was possible but ``verified`` is None (a caller bug).
    """
    if verified and leaked_password and enrolled_hash:
        return PasswordStatus.LIVE
    if not leaked_password or looks_like_hash(leaked_password):
        return PasswordStatus.ABSENT
    if enrolled_hash is None or not is_argon2_phc(enrolled_hash):
        return PasswordStatus.UNKNOWN
    if verified is None:
        raise ValueError("password_status needs the verification result for this pair")
    return PasswordStatus.STALE
