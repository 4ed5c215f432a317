"""Stealer-log trees: which folders of an input are infected-machine logs, and which of their
files carry credentials.

A stealer log is a folder per infected machine (``JP[HWID] [timestamp]/``) holding much more
than credentials: ``ImportantAutofills.txt`` and ``Autofills/`` (form fields such as
``email: hanako@example.jp``), ``History``, ``Downloads/``, ``UserAgents/``,
``ProcessList.txt``, ``InstalledSoftware.txt``, macOS ``keychain.txt``, wallet extension
``LOG`` files, ``copyright.txt``, seller readme files. Read as combo lists, those files give
false records (``email`` as a login). So inside a recognised tree only the password files
(every dialect, also ``Passwords/`` folders) and the cookie files (``Cookies/``, ``*Cookies*.txt``)
are read; every other file is skipped with the reason ``not_credentials``.

**Recognising a tree.** A folder is a tree's root when its direct children show at least two
different kinds of stealer marker: a password file, a cookie folder or file, an autofill
folder or file, a system-information file (``UserInformation.txt``, ``information.txt``,
``System.txt``, ``system_info.txt``), or another stealer artefact (``ProcessList.txt``,
``keychain.txt``, ``copyright.txt``, ``History/``, ``Downloads/``, ``Wallets/``, ...). One
marker alone is not enough: a folder of combo lists may well hold a ``passwords.txt``.
Everything below a root belongs to its tree; the outermost root wins.

The container walk reports each folder's and each zip or 7z archive's listing before it yields
their members (:func:`~exposure.dumps.containers.iter_members`'s ``on_listing``), so a tree is
known before its first file is read. A tar is streamed without a listing: its members are
read as lone files. Why: ``docs/decisions/stealer-log-trees.md``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

__all__ = ["COOKIES", "PASSWORDS", "PASSWORD_FILE", "TreeIndex", "member_role"]

PASSWORDS, COOKIES = "passwords", "cookies"

PASSWORD_FILE = re.compile(
    r"_?(?:all[\s_-]*)?passwords?(?:[\s_-]*list)?(?:\s*[\[(][^\])]*[\])]|[\s_-][\w\s-]*)?\.txt",
    re.IGNORECASE,
)
"""Password files: ``Passwords.txt``, ``All Passwords.txt``, ``passwords[Chrome].txt``,
``_AllPasswords_list.txt``."""

_COOKIE_LIST = re.compile(r"cookies?[\s_-]*list.*", re.IGNORECASE)  # domain names, no cookies
_ARCHIVE_SUFFIXES = re.compile(r"(\.(zip|7z|rar|tar|tgz|gz|bz2|xz|zst))+$", re.IGNORECASE)

_SYSTEM_FILES = frozenset(
    """userinformation.txt user_information.txt information.txt system.txt system_info.txt
    systeminfo.txt sysinfo.txt""".split()
) | {"system info.txt", "user information.txt"}
_ARTEFACT_FILES = frozenset(
    """processlist.txt processes.txt installedsoftware.txt installedbrowsers.txt software.txt
    domaindetects.txt keychain.txt copyright.txt brute.txt googletokens.txt steam_tokens.txt
    cookie_list.txt clipboard.txt screenshot.jpg screenshot.png screen.jpg screen.jpeg
    screen.png ip.txt""".split()
)
_ARTEFACT_FOLDERS = frozenset(
    """history downloads useragents wallets plugins filegrabber files restore browsers soft cc
    creditcards screenshots steam telegram discord ftp vpn extensions grabber""".split()
) | {"important files"}


def _marker(child: str) -> str | None:
    """The kind of stealer marker a folder's direct child is (``name/`` for a folder)."""
    name = child.lower()
    if name.endswith("/"):
        folder = _ARCHIVE_SUFFIXES.sub("", name[:-1])
        if folder == COOKIES:
            return COOKIES
        if folder in ("autofill", "autofills"):
            return "autofill"
        if folder == PASSWORDS:
            return PASSWORDS
        return "artefact" if folder in _ARTEFACT_FOLDERS else None
    if PASSWORD_FILE.fullmatch(name):
        return PASSWORDS
    if name in _SYSTEM_FILES:
        return "system"
    if name in _ARTEFACT_FILES:
        return "artefact"
    if "autofill" in name:
        return "autofill"
    if "cookie" in name:
        return COOKIES
    return None


def member_role(relative: str) -> str | None:
    """What a file of a tree holds, from its path below the root: :data:`PASSWORDS`,
    :data:`COOKIES`, or ``None`` (no credentials: skip it)."""
    parts = [p for p in re.split(r"[/!]", relative) if p]
    if not parts:
        return None
    base = parts[-1].lower()
    folders = {_ARCHIVE_SUFFIXES.sub("", p).lower() for p in parts[:-1]}
    if COOKIES in folders or ("cookie" in base and not _COOKIE_LIST.fullmatch(base)):
        return COOKIES
    if PASSWORDS in folders or PASSWORD_FILE.fullmatch(base):
        return PASSWORDS
    return None


class TreeIndex:
    """The tree roots found so far in one input, fed by the walk's listings."""

    def __init__(self) -> None:
        self.roots: set[str] = set()

    def add_listing(self, prefix: str, names: Iterable[str]) -> None:
        """Learn the roots among the folders that ``names`` (paths relative to ``prefix``; a
        folder ends with ``/`` or shows as the parent of a deeper path) reveal."""
        children: defaultdict[str, set[str]] = defaultdict(set)
        for name in names:
            parts = name.split("/")
            for depth, part in enumerate(parts):
                if not part:
                    continue
                folder = prefix + "".join(p + "/" for p in parts[:depth])
                last = depth == len(parts) - 1
                children[folder].add(part if last else part + "/")
        for folder, kids in children.items():
            kinds = {_marker(kid) for kid in kids} - {None}
            if len(kinds) >= 2:
                self.roots.add(folder)

    def root_of(self, name: str) -> str | None:
        """The outermost root ``name`` (a member's full name) lies under, or ``None``."""
        if not self.roots:
            return None
        if "" in self.roots:
            return ""
        for m in re.finditer(r"[/!]", name):
            prefix = name[: m.end()]
            if prefix in self.roots:
                return prefix
        return None
