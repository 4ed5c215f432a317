"""Matching leaked logins against enrolled customers: the ingestion hot path.

A leaked login field is normalised into every kind it could be (:func:`identity.candidates`),
each key is fingerprinted with the pepper, and the fingerprints are tested against an
in-memory :class:`EnrolledIndex`. The index holds only the first 64 bits of each enrolled
fingerprint in one sorted NumPy array: 8 bytes per identifier (80 MB for ten million), tested
a whole batch at a time. A 64-bit prefix hit is a candidate; the store confirms it against the
full 256-bit fingerprint, so a prefix collision can cost a query but never a false match.

Fingerprints are exactly :func:`exposure.domain.fingerprints.identifier_fingerprint`, inlined on the
hot path. Strict keys are compared with strict keys and variant keys with variant keys: a match is
*strict* when the strict keys are equal, *variant* when only the variant keys are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from exposure.domain.fingerprints import KeyedFingerprints
from exposure.domain.identity import IdentifierKind, candidates
from exposure.dumps.fastpath import LookupTable

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

    __slots__ = ("_prefixes", "_table")

    def __init__(self, prefixes: npt.NDArray[np.uint64]) -> None:
        self._prefixes = prefixes
        self._table: LookupTable | None = None

    @classmethod
    def build(cls, fingerprints: Iterable[bytes]) -> EnrolledIndex:
        return cls(_sorted_unique(_prefixes(fingerprints)))

    @classmethod
    def from_prefixes(cls, joined: bytes) -> EnrolledIndex:
        """From concatenated :data:`PREFIX_BYTES`-byte prefixes."""
        return cls(_sorted_unique(np.frombuffer(joined, dtype=_BIG_ENDIAN_U64).astype(np.uint64)))

    def __len__(self) -> int:
        return int(self._prefixes.size)

    def lookup_table(self) -> LookupTable:
        """The prefixes with a bucket table for the native fast path (built once, 4 bytes per
        identifier at most): ``starts[b]`` is the position of the first prefix whose top
        ``bits`` bits are ``b`` or more. Prefixes are uniform, so a bucket holds about one."""
        if self._table is None:
            size = int(self._prefixes.size)
            bits = min(24, max(1, size.bit_length() - 1))
            edges = np.arange(1 << bits, dtype=np.uint64) << np.uint64(64 - bits)
            starts = np.empty((1 << bits) + 1, dtype=np.uint32)
            starts[:-1] = np.searchsorted(self._prefixes, edges)
            starts[-1] = size
            self._table = LookupTable(self._prefixes, starts, bits)
        return self._table

    @property
    def prefixes(self) -> npt.NDArray[np.uint64]:
        """The sorted, distinct prefixes (read-only when mapped from a file)."""
        return self._prefixes

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


def _sorted_unique(array: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """Sort in place and drop repeats: unlike np.unique (hash-based in NumPy 2), no copy
    several times the size of the index at ten million identifiers."""
    array.sort()
    if array.size > 1:
        keep = np.empty(array.size, dtype=np.bool_)
        keep[0] = True
        np.not_equal(array[1:], array[:-1], out=keep[1:])
        array = array[keep]
    return array


def _prefixes(fingerprints: Iterable[bytes]) -> npt.NDArray[np.uint64]:
    joined = b"".join(fp[:PREFIX_BYTES] for fp in fingerprints)
    return np.frombuffer(joined, dtype=_BIG_ENDIAN_U64).astype(np.uint64)


class Fingerprinter:
    """Turns leaked login fields into fingerprinted keys with one pepper and one set of rules."""

    __slots__ = ("_case_sensitive", "_keyed", "_region")

    def __init__(self, pepper: bytes, *, login_id_case_sensitive: bool, phone_region: str) -> None:
        # HMAC's keyed states prepared once: hmac.digest set the key up again for each of
        # the tens of thousands of candidate keys of a large dump.
        self._keyed = KeyedFingerprints(pepper)
        self._case_sensitive = login_id_case_sensitive
        self._region = phone_region

    def keys(self, record: int, login: str) -> list[LeakedKey]:
        """Every (kind, strength) key the login could match; empty when it is no identifier."""
        meta: list[tuple[int, IdentifierKind, str]] = []
        fingerprints: list[bytes] = []
        self.extend(record, login, meta, fingerprints)
        return [LeakedKey(r, k, s, fp) for (r, k, s), fp in zip(meta, fingerprints, strict=True)]

    def extend(
        self,
        record: int,
        login: str,
        meta: list[tuple[int, IdentifierKind, str]],
        fingerprints: list[bytes],
    ) -> bool:
        """Append the login's keys to two parallel lists (the hot path: no objects per key).

        True when the login reads as at least one identifier.
        """
        fingerprint = self._keyed.identifier
        found = candidates(
            login, login_id_case_sensitive=self._case_sensitive, phone_region=self._region
        )
        for ident in found:
            kind = ident.kind
            meta.append((record, kind, "strict"))
            fingerprints.append(fingerprint(kind, ident.strict))
            if ident.variant is not None:
                meta.append((record, kind, "variant"))
                fingerprints.append(fingerprint(kind, ident.variant))
        return bool(found)


def candidate_keys(
    index: EnrolledIndex, fingerprinter: Fingerprinter, logins: Sequence[str]
) -> tuple[list[LeakedKey], int]:
    """Keys of a batch of logins whose prefix is enrolled, and how many logins were readable.

    Position ``i`` of ``logins`` is ``LeakedKey.record == i``.
    """
    meta: list[tuple[int, IdentifierKind, str]] = []
    fingerprints: list[bytes] = []
    extend = fingerprinter.extend
    readable = sum(
        extend(position, login, meta, fingerprints) for position, login in enumerate(logins)
    )
    if not fingerprints:
        return [], readable
    hits = np.flatnonzero(index.contains(fingerprints)).tolist()
    return [LeakedKey(*meta[i], fingerprints[i]) for i in hits], readable
