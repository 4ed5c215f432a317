"""argon2 on one thread per verification: PHC parsing and the single-threaded lane path.

argon2-cffi releases the GIL, but also runs each call's ``p`` lanes (4 by default) on threads it
creates per call, so a pool of such calls oversubscribes the cores. Each verification here
computes all lanes on the calling thread (``argon2.low_level.core``, ``threads=1``: same
digest), compared in constant time. :func:`self_test` checks this against argon2-cffi; the
verifier refuses to start (:class:`VerifierSelfTestError`) if a new argon2-cffi ever breaks it.

Nothing here logs, stores or raises with a password in it.
"""

from __future__ import annotations

import base64
import hmac
import re
import threading
from dataclasses import dataclass
from typing import Any

import argon2
from argon2 import low_level
from argon2.exceptions import InvalidHashError
from argon2.low_level import core, ffi

from exposure.passwords.errors import UnusableHash, VerifierResourceError, VerifierSelfTestError

# argon2.low_level's own C library handle (argon2.h constants); not in its __all__.
lib = low_level.lib  # type: ignore[attr-defined]


# Field order and syntax as libargon2's decoder accepts them: no leading zeros, m,t,p in that
# order, unpadded standard base64. Anything else fails inside argon2 with "Decoding failed".
_PHC = re.compile(
    r"\$(argon2id|argon2i|argon2d)\$(?:v=(?:16|19)\$)?"
    r"m=[1-9][0-9]{0,9},t=[1-9][0-9]{0,9},p=[1-9][0-9]{0,7}"
    r"\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)"
)
_PHC_MAX_LENGTH = 1024  # far above any real hash; bounds the work spent on garbage


@dataclass(frozen=True, slots=True)
class Phc:
    """A parsed argon2 PHC string within libargon2's limits."""

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


def parse_phc(value: str) -> Phc | None:
    """``$argon2{id,i,d}$[v=16|19$]m=M,t=T,p=P$salt$hash`` as libargon2 decodes it, or None."""
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
    return Phc(params, salt, digest)


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


def verify_single_threaded(phc: Phc, secret: bytes) -> bool:
    """argon2 over all lanes on the calling thread, then a constant-time digest comparison.

    Raises :class:`VerifierResourceError` when the memory cannot be had, :class:`UnusableHash`
    for any other libargon2 error."""
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
        raise UnusableHash("argon2")
    return hmac.compare_digest(bytes(ffi.buffer(out, len(phc.digest))), phc.digest)


def self_test() -> None:
    """Check the single-threaded path against argon2-cffi on a known vector."""
    secret = "self-test あ".encode()
    phc = parse_phc(argon2.PasswordHasher(1, 64, 4).hash(secret))
    try:
        if (
            phc is not None
            and verify_single_threaded(phc, secret)
            and not verify_single_threaded(phc, secret[:-1])
        ):
            return
    except (TypeError, KeyError, AttributeError, UnusableHash):  # argon2-cffi changed
        pass
    raise VerifierSelfTestError
