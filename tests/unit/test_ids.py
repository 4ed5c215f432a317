"""Random row identifiers: canonical version-4 UUIDs, as ``str(uuid.uuid4())`` writes them."""

from __future__ import annotations

import uuid

from exposure.store.ids import random_uuids


def test_random_uuids_are_canonical_distinct_version_4_uuids() -> None:
    ids = random_uuids(5000)
    assert len(ids) == len(set(ids)) == 5000
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # canonical: lower case, dashes where uuid puts them
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
    # Every variant digit turns up (the two random bits under the fixed ones are kept).
    assert {text[19] for text in ids} == set("89ab")
    assert random_uuids(0) == []
