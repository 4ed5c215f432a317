"""Errors of the password verifier; none carries a password or a hash in it."""

from __future__ import annotations

from exposure.errors import FatalError, RetriableError, SkippableError


class VerifierResourceError(RetriableError):
    """argon2 could not allocate the memory an enrolled hash asks for; retry later."""

    def __init__(self, memory_kib: int) -> None:
        self.memory_kib = memory_kib
        super().__init__(f"argon2 could not allocate {memory_kib} KiB for a verification")


class VerifierSelfTestError(FatalError):
    """The installed argon2-cffi breaks our verification path (see :mod:`.argon2_lanes`)."""

    def __init__(self) -> None:
        super().__init__(
            "argon2 verification self-test failed: install the argon2-cffi version this "
            "release of exposure was tested with"
        )


class UnusableHash(SkippableError):
    """An enrolled hash that was accepted could not be verified against after all (a library
    error); the pair counts as malformed, never as a match."""

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme
        super().__init__(f"the enrolled {scheme} hash could not be verified against")
