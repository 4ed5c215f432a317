"""Matching leaked logins against enrolled customers: the ingestion hot path.

A leaked login field is normalised into every kind it could be (:func:`identity.candidates`),
each key is fingerprinted with the pepper, and the fingerprints are tested against an
in-memory :class:`EnrolledIndex`. The index holds only the first 64 bits of each enrolled
fingerprint in one sorted NumPy array: 8 bytes per identifier (80 MB for ten million), tested
a whole batch at a time. A 64-bit prefix hit is a candidate; the store confirms it against the
full 256-bit fingerprint, so a prefix collision can cost a query but never a false match.

Strict keys are compared with strict keys and variant keys with variant keys: a match is
*strict* when the strict keys are equal, *variant* when only the variant keys are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from exposure.hashing import identifier_fingerprint
from exposure.identity import IdentifierKind, candidates

PREFIX_BYTES = 8
_BIG_ENDIAN_U64 = np.dtype(">u8")


@dataclass(frozen=True, slots=True)
class LeakedKey:
    """One fingerprinted reading of a leaked login: which kind, which key, which record."""

    record: int  # position of the record in the batch
    kind: IdentifierKind
    strength: str  # "strict" or "variant"
    fingerprint: bytes = field(repr=False)


class EnrolledIndex:
    """Sorted 64-bit prefixes of every enrolled fingerprint (strict and variant)."""

    __slots__ = ("_prefixes",)

    def __init__(self, prefixes: npt.NDArray[np.uint64]) -> None:
        self._prefixes = prefixes

    @classmethod
    def build(cls, fingerprints: Iterable[bytes]) -> EnrolledIndex:
        return cls(np.unique(_prefixes(fingerprints)))

    def __len__(self) -> int:
        return int(self._prefixes.size)

    @property
    def nbytes(self) -> int:
        return int(self._prefixes.nbytes)

    def contains(self, fingerprints: Sequence[bytes]) -> npt.NDArray[np.bool_]:
        """Vectorised membership test: one boolean per fingerprint."""
        if not fingerprints or not self._prefixes.size:
            return np.zeros(len(fingerprints), dtype=np.bool_)
        wanted = _prefixes(fingerprints)
        positions = np.searchsorted(self._prefixes, wanted)
        positions[positions == self._prefixes.size] = 0
        found: npt.NDArray[np.bool_] = self._prefixes[positions] == wanted
        return found


def _prefixes(fingerprints: Iterable[bytes]) -> npt.NDArray[np.uint64]:
    joined = b"".join(fp[:PREFIX_BYTES] for fp in fingerprints)
    return np.frombuffer(joined, dtype=_BIG_ENDIAN_U64).astype(np.uint64)


class Fingerprinter:
    """Turns leaked login fields into fingerprinted keys with one pepper and one set of rules."""

    __slots__ = ("_case_sensitive", "_pepper", "_region")

    def __init__(self, pepper: bytes, *, login_id_case_sensitive: bool, phone_region: str) -> None:
        self._pepper = pepper
        self._case_sensitive = login_id_case_sensitive
        self._region = phone_region

    def keys(self, record: int, login: str) -> list[LeakedKey]:
        """Every (kind, strength) key the login could match; empty when it is no identifier."""
        keys: list[LeakedKey] = []
        pepper = self._pepper
        for ident in candidates(
            login, login_id_case_sensitive=self._case_sensitive, phone_region=self._region
        ):
            keys.append(
                LeakedKey(
                    record,
                    ident.kind,
                    "strict",
                    identifier_fingerprint(pepper, ident.kind, ident.strict),
                )
            )
            if ident.variant is not None:
                keys.append(
                    LeakedKey(
                        record,
                        ident.kind,
                        "variant",
                        identifier_fingerprint(pepper, ident.kind, ident.variant),
                    )
                )
        return keys


def candidate_keys(
    index: EnrolledIndex, fingerprinter: Fingerprinter, logins: Sequence[str]
) -> tuple[list[LeakedKey], int]:
    """Keys of a batch of logins whose prefix is enrolled, and how many logins were readable.

    Position ``i`` of ``logins`` is ``LeakedKey.record == i``.
    """
    keys: list[LeakedKey] = []
    readable = 0
    for position, login in enumerate(logins):
        found = fingerprinter.keys(position, login)
        if found:
            readable += 1
            keys.extend(found)
    if not keys:
        return [], readable
    hits = index.contains([key.fingerprint for key in keys])
    return [key for key, hit in zip(keys, hits.tolist(), strict=True) if hit], readable
