"""One sample stealer-log tree per family layout (tests/samples/stealer_trees, invented values
only), read as a folder and zipped: exactly the records its expected.json lists, from the
password and cookie files alone; every other file skipped and named."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from exposure.dumps.containers import MemberProblem
from exposure.dumps.reader import MemberSkipped, MemberStart, read_dump
from exposure.dumps.records import LeakRecord
from exposure.dumps.trees import TreeIndex, member_role

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "stealer_trees"
FAMILIES = sorted(p.name for p in SAMPLES.iterdir() if p.is_dir())


def expected(family: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / family / "expected.json").read_text("utf-8"))
    return data


def as_input(family: str, tmp_path: Path, zipped: bool) -> tuple[Path, str]:
    """The family's tree as a folder or a zip in ``tmp_path``, and the prefix its members'
    names get (``name.zip!`` for a zip, nothing for a folder)."""
    tree = SAMPLES / family / "tree"
    if not zipped:
        return Path(shutil.copytree(tree, tmp_path / family)), ""
    path = tmp_path / f"{family}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(tree.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(tree).as_posix())
    return path, f"{family}.zip!"


def read(path: Path, prefix: str, broker: set[str]) -> dict[str, Any]:
    records, skipped, problems, member = [], [], [], ""
    for event in read_dump(path, is_broker_site=lambda site: site in broker):
        if isinstance(event, MemberStart):
            member = event.name.removeprefix(prefix)
        elif isinstance(event, LeakRecord):
            records.append(
                {
                    "file": member,
                    "line": event.line_no,
                    "leak_type": str(event.leak_type),
                    "login": event.login,
                    "password": event.password,
                    "site": event.site,
                }
            )
        elif isinstance(event, MemberSkipped):
            assert event.reason == "not_credentials"
            skipped.append(event.name.removeprefix(prefix))
        elif isinstance(event, MemberProblem):
            problems.append((event.name, event.reason))
    return {"records": records, "skipped": skipped, "problems": problems}


def _key(record: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(record[k]) for k in ("file", "line", "leak_type", "login", "password"))


@pytest.mark.parametrize("zipped", [False, True], ids=["folder", "zip"])
@pytest.mark.parametrize("family", FAMILIES)
def test_a_tree_gives_exactly_its_credential_and_cookie_records(
    family: str, zipped: bool, tmp_path: Path
) -> None:
    want = expected(family)
    path, prefix = as_input(family, tmp_path, zipped)
    got = read(path, prefix, set(want["broker_domains"]))
    assert got["problems"] == []
    assert sorted(got["records"], key=_key) == sorted(want["records"], key=_key)
    assert sorted(got["skipped"]) == want["skipped"]
    assert want["skipped_files"] == {"not_credentials": len(want["skipped"])}


def test_the_sample_set_covers_every_family_and_the_files_a_tree_carries() -> None:
    assert FAMILIES == sorted(
        ["redline", "meta", "stealc", "lumma", "vidar", "raccoon", "atomic", "bradmax", "manticore"]
    )
    skipped = " ".join(n for f in FAMILIES for n in expected(f)["skipped"]).lower()
    for kind in (
        "importantautofills.txt",
        "autofills/",
        "keychain.txt",
        "downloads/",
        "useragents/",
        "copyright.txt",
        "/log",
        "history",
        "processlist.txt",
        "installedsoftware.txt",
        "readme",
    ):
        assert kind in skipped, kind
    for family in FAMILIES:
        records = expected(family)["records"]
        assert any(r["leak_type"] == "stealer_log" for r in records), family
        assert any(r["leak_type"] == "session_cookie" for r in records), family


def test_outside_a_tree_a_lone_file_is_still_detected(tmp_path: Path) -> None:
    """A folder of combo lists with one passwords.txt is no stealer log: nothing is skipped."""
    (tmp_path / "passwords.txt").write_text("taro@example.jp:Sakura#2025\n")
    (tmp_path / "more.txt").write_text("hanako@example.jp:Momiji!77\n")
    got = read(tmp_path, "", set())
    assert got["skipped"] == [] and len(got["records"]) == 2


@pytest.mark.parametrize(
    ("names", "roots"),
    [
        (["Passwords.txt", "UserInformation.txt"], {""}),
        (["passwords.txt", "combo.txt", "more.txt"], set()),
        (["a/Passwords.txt", "a/Cookies/x.txt", "b/list.txt"], {"a/"}),
        (["JP/All Passwords.txt", "JP/System.txt", "JP/Chrome/Default/Passwords.txt"], {"JP/"}),
        (["Cookies/", "Autofills/"], {""}),
    ],
)
def test_tree_roots_need_two_kinds_of_marker(names: list[str], roots: set[str]) -> None:
    index = TreeIndex()
    index.add_listing("", names)
    assert {index.root_of(name) for name in names} - {None} == roots


@pytest.mark.parametrize(
    ("relative", "role"),
    [
        ("Passwords.txt", "passwords"),
        ("All Passwords.txt", "passwords"),
        ("Chrome/Default/Passwords.txt", "passwords"),
        ("Passwords/Chrome_Default.txt", "passwords"),
        ("Cookies/cookies_Mozilla Firefox_x1", "cookies"),
        ("Chrome/Default/Cookies_dev.txt", "cookies"),
        ("Restore/Google Fresh Cookies.txt", "cookies"),
        ("cookie_list.txt", None),
        ("ImportantAutofills.txt", None),
        ("Autofills/Google_[Chrome]_Default.txt", None),
        ("keychain.txt", None),
        ("Wallets/MetaMask/LOG", None),
        ("Downloads/Google Chrome_Default.txt", None),
    ],
)
def test_member_roles(relative: str, role: str | None) -> None:
    assert member_role(relative) == role
