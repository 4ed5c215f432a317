from __future__ import annotations

import numpy as np

from exposure.domain.fingerprints import identifier_fingerprint
from exposure.domain.identity import IdentifierKind
from exposure.ingest.matching import EnrolledIndex, Fingerprinter, candidate_keys

PEPPER = bytes(range(32))
FINGERPRINTER = Fingerprinter(PEPPER, login_id_case_sensitive=False, phone_region="JP")


def test_keys_are_the_documented_fingerprints() -> None:
    keys = FINGERPRINTER.keys(0, "Taro.Yamada@GMAIL.com")
    assert [(k.kind, k.strength) for k in keys] == [
        (IdentifierKind.EMAIL, "strict"),
        (IdentifierKind.EMAIL, "variant"),
    ]
    assert keys[0].fingerprint == identifier_fingerprint(PEPPER, "email", "taro.yamada@gmail.com")
    assert keys[1].fingerprint == identifier_fingerprint(PEPPER, "email", "taroyamada@gmail.com")


def test_digits_are_tried_as_login_id_and_phone() -> None:
    kinds = {k.kind for k in FINGERPRINTER.keys(3, "090-1234-5678")}
    assert kinds == {IdentifierKind.LOGIN_ID, IdentifierKind.PHONE}


def test_candidate_keys_returns_only_index_hits_with_positions() -> None:
    enrolled = [
        identifier_fingerprint(PEPPER, "email", "hanako@example.jp"),
        identifier_fingerprint(PEPPER, "login_id", "abcd1234"),
    ]
    index = EnrolledIndex.build(enrolled)
    logins = ["nobody@example.jp", "HANAKO@example.jp", "not an id at all", "ＡＢＣＤ１２３４"]
    keys, readable = candidate_keys(index, FINGERPRINTER, logins)
    assert readable == 3
    assert [(k.record, k.kind, k.strength) for k in keys] == [
        (1, IdentifierKind.EMAIL, "strict"),
        (3, IdentifierKind.LOGIN_ID, "strict"),
    ]
    assert keys[0].fingerprint == enrolled[0]


def test_index_membership_and_size() -> None:
    fingerprints = [bytes([i]) * 32 for i in range(1, 200)]
    index = EnrolledIndex.build(fingerprints * 2)  # duplicates collapse
    assert len(index) == 199 and index.nbytes == 199 * 8
    probe = [fingerprints[5], bytes(32), b"\xff" * 32, fingerprints[-1]]
    assert index.contains(probe).tolist() == [True, False, False, True]
    assert EnrolledIndex(np.zeros(0, dtype=np.uint64)).contains(probe).tolist() == [False] * 4


def test_index_from_prefixes_matches_build() -> None:
    fingerprints = [identifier_fingerprint(PEPPER, "email", f"u{i}@example.jp") for i in range(50)]
    joined = b"".join(fp[:8] for fp in fingerprints)
    assert EnrolledIndex.from_prefixes(joined).contains(fingerprints).all()


def test_lookup_table_buckets_hold_exactly_their_prefixes() -> None:
    fingerprints = [
        identifier_fingerprint(PEPPER, "email", f"u{i}@example.jp") for i in range(5000)
    ]
    index = EnrolledIndex.build(fingerprints)
    table = index.lookup_table()
    assert table.bits == 12 and table.starts.size == 2**12 + 1 and table.starts[-1] == len(index)
    top = (table.prefixes >> np.uint64(64 - table.bits)).astype(np.int64)
    for bucket in range(2**table.bits):
        inside = top[table.starts[bucket] : table.starts[bucket + 1]]
        assert (inside == bucket).all()
    assert np.array_equal(np.bincount(top, minlength=2**12), np.diff(table.starts))
