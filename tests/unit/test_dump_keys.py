"""Keyed identities of inputs: the same bytes are the same input under any name, and keys
computed ahead on a background thread are the keys the ingest would compute itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from exposure.ingest.input_keys import content_key, content_keys_in_background

PEPPER = bytes(range(32))


def test_a_content_key_follows_the_bytes_not_the_name(tmp_path: Path) -> None:
    one, renamed, changed = tmp_path / "one.txt", tmp_path / "two.txt", tmp_path / "three.txt"
    one.write_bytes(b"a@example.jp:pw\n" * 100_000)  # more than one read
    renamed.write_bytes(one.read_bytes())
    changed.write_bytes(one.read_bytes()[:-2] + b"x\n")
    assert content_key(PEPPER, one) == content_key(PEPPER, renamed)
    assert content_key(PEPPER, one) != content_key(PEPPER, changed)
    assert content_key(PEPPER, one) != content_key(bytes(32), one)  # keyed with the pepper


def test_a_folder_key_covers_its_file_names(tmp_path: Path) -> None:
    for folder, name in (("a", "x.txt"), ("b", "y.txt")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_bytes(b"a@example.jp:pw\n")
    assert content_key(PEPPER, tmp_path / "a") != content_key(PEPPER, tmp_path / "b")


def test_background_keys_are_the_inputs_keys_in_order(tmp_path: Path) -> None:
    paths = []
    for n in range(3):
        path = tmp_path / f"dump{n}.txt"
        path.write_bytes(f"user{n}@example.jp:pw{n}\n".encode() * 1000)
        paths.append(path)
    missing = tmp_path / "gone.txt"
    keys = content_keys_in_background(PEPPER, [paths[0], missing, paths[1], paths[2]])
    assert keys[0].result(timeout=30) == content_key(PEPPER, paths[0])
    with pytest.raises(FileNotFoundError):  # that input's ingest reports it; the rest go on
        keys[1].result(timeout=30)
    assert [k.result(timeout=30) for k in keys[2:]] == [content_key(PEPPER, p) for p in paths[1:]]
