"""The broker's own domains, and whether a leaked record's site is one of them.

A *broker-site leak* (docs/architecture.md, "Policy") is a record whose site is one of
``EXPOSURE_BROKER_DOMAINS`` or a subdomain of one, by whole labels only:
``mirai-sec.co.jp.evil.example`` is not ``mirai-sec.co.jp``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import idna

from exposure.errors import ConfigurationError

BROKER_DOMAINS_VARIABLE = "EXPOSURE_BROKER_DOMAINS"


@dataclass(frozen=True, slots=True)
class BrokerDomains:
    """The broker's own domains; a site on one of them or a subdomain is a broker site.

    Build it with :meth:`parse`. ``domains`` holds lower-case ASCII (punycode) names without
    leading or trailing dots; constructing it directly with anything else raises
    :class:`~exposure.errors.ConfigurationError`, because such a set would silently never match.
    """

    domains: frozenset[str]

    def __post_init__(self) -> None:
        for domain in self.domains:
            if _canonical_domain(domain) != domain:
                raise ConfigurationError(
                    BROKER_DOMAINS_VARIABLE,
                    f"{_shown(domain)} is not in canonical form; use BrokerDomains.parse",
                )

    @classmethod
    def parse(cls, value: str) -> BrokerDomains:
        """Read a comma-separated list such as ``mirai-sec.co.jp, .Trade.Example., みらい証券.jp``.

        Entries are trimmed and lower-cased; a leading and a trailing dot are dropped; IDN names
        become punycode (IDNA 2008 with UTS 46 mapping, so ``。`` and full-width letters work).
        Empty entries (``a.jp,,b.jp`` or a trailing comma) are ignored and a blank value gives an
        empty set; whether the setting is required is the settings module's call. URLs, ports,
        wildcards, IP addresses and single-label names are rejected with a message saying why.
        """
        entries = (entry.strip() for entry in value.split(","))
        return cls(frozenset(_canonical_domain(entry) for entry in entries if entry))

    def matches(self, site: str | None) -> bool:
        """True if ``site`` (a host name, no port) is a broker domain or a subdomain of one.

        Only whole labels count: ``mirai-sec.co.jp.evil.example`` and ``evilmirai-sec.co.jp``
        are not ``mirai-sec.co.jp``. Case-insensitive, one trailing dot tolerated, Unicode host
        names converted to punycode. Costs one set lookup per label of ``site``.
        """
        if not site or not self.domains:
            return False
        host = site.strip().lower()
        if host.endswith("."):
            host = host[:-1]
        if not host.isascii():
            try:
                host = idna.encode(host, uts46=True).decode("ascii")
            except idna.IDNAError:
                return False  # not a valid host name, so not one of ours
        while True:
            if host in self.domains:
                return True
            dot = host.find(".")
            if dot < 0:
                return False
            host = host[dot + 1 :]


def _shown(entry: str) -> str:
    """An entry quoted for an error message; broker domains are configuration, not secrets."""
    return repr(entry if len(entry) <= 80 else entry[:77] + "...")


def _canonical_domain(entry: str) -> str:
    """One configured broker domain in canonical form, or ConfigurationError saying why not."""

    def reject(problem: str) -> ConfigurationError:
        return ConfigurationError(BROKER_DOMAINS_VARIABLE, f"{_shown(entry)} {problem}")

    if "://" in entry or "/" in entry:
        raise reject("looks like a URL; give bare host names such as mirai-sec.co.jp")
    if "*" in entry:
        raise reject("has a wildcard; subdomains are always included, so drop the '*.'")
    if ":" in entry or "[" in entry:
        raise reject("has a port or an IPv6 literal; give bare domain names")
    if "@" in entry:
        raise reject("looks like an e-mail address; give bare domain names")
    name = entry.strip().lower()
    if name.startswith("."):
        name = name[1:]
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise reject("is empty")
    try:
        ascii_name = idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise reject(f"is not a valid domain name ({type(exc).__name__})") from None
    try:
        ipaddress.ip_address(ascii_name)
    except ValueError:
        pass
    else:
        raise reject("is an IP address; give domain names")
    labels = ascii_name.split(".")
    if len(labels) < 2:
        # A bare label (`jp`, `localhost`) would make every site under it a broker site.
        raise reject("is a single label; give the broker's registered domain")
    if labels[-1].isdigit():
        raise reject("does not end in a top-level domain")
    return ascii_name
