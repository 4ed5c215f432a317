"""One root exception, and subclasses grouped by what the caller should do.

* :class:`FatalError`: stop; retrying cannot help (bad configuration, corrupt state).
* :class:`RetriableError`: transient; back off and try again (network, locked database).
* :class:`SkippableError`: this one item is bad; count it, skip it, carry on with the rest.

Context lives in attributes and the message is built by the class, so an error never has
to interpolate a plaintext identifier or password to be useful.
"""

from __future__ import annotations


class ExposureError(Exception):
    """Root of every error this package raises on purpose."""


class FatalError(ExposureError):
    """Stop: retrying cannot help."""


class RetriableError(ExposureError):
    """Transient failure: back off and retry."""


class SkippableError(ExposureError):
    """One input item is bad: count it, skip it, carry on."""


class ConfigurationError(FatalError):
    """A setting is missing or invalid; the message says which and how to fix it."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"{variable}: {problem}")


class InvalidIdentifier(SkippableError):
    """A value cannot be read as an identifier of the given kind.

    The offending value is deliberately not kept: only the kind and a reason code.
    """

    def __init__(self, kind: str, reason: str) -> None:
        self.kind = kind
        self.reason = reason
        super().__init__(f"invalid {kind}: {reason}")


class PepperMismatch(FatalError):
    """The configured pepper is not the one this database's fingerprints were made with."""

    def __init__(self) -> None:
        super().__init__(
            "EXPOSURE_PEPPER does not match the pepper this database was created with; "
            "every stored fingerprint would be unreadable. Restore the original pepper "
            "(from your secret store or the .env you backed up)."
        )
