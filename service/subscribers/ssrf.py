"""Where webhooks may go: http(s) URLs whose every address is a public one.

The address checked is the address connected to: `pinned` resolves the host
once, checks every address, and gives back the URL with the host replaced by
an address that passed (Host and TLS server name keep the original name), so a
second DNS answer cannot send the request elsewhere.

Public means: an IPv4 address Python calls global, outside the special-purpose
blocks it misses; an IPv6 address that carries an IPv4 one (mapped, compatible,
translated, well-known NAT64, 6to4) is judged by the IPv4 address it reaches;
any other IPv6 address must be global unicast (2000::/3) outside the IANA
special-purpose blocks. The local-use NAT64 prefix 64:ff9b:1::/48 (outside
2000::/3) and Teredo 2001::/32 (inside 2001::/23) are refused whatever IPv4
address they carry: neither is globally reachable. Python 3.11's `is_global`
calls ::127.0.0.1, fec0::/10 and 64:ff9b:1::/48 global, hence the tables.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from typing import Final

import httpx
import msgspec

from service.incidents.errors import FieldError, Invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_v4, _v6 = ipaddress.IPv4Network, ipaddress.IPv6Network

# IPv4 blocks `is_global` lets through that no receiver should be in.
IPV4_REFUSED: Final = tuple(
    _v4(block)
    for block in (
        "192.0.0.0/24",  # IETF protocol assignments (PCP and TURN anycast, ...)
        "192.31.196.0/24",  # AS112
        "192.52.193.0/24",  # AMT
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.175.48.0/24",  # AS112 direct delegation
        "224.0.0.0/4",  # multicast
    )
)
GLOBAL_UNICAST: Final = _v6("2000::/3")
# Special-purpose blocks inside 2000::/3 (2002::/16, 6to4, is decoded instead).
IPV6_REFUSED: Final = tuple(
    _v6(block)
    for block in (
        "2001::/23",  # IETF protocol assignments: Teredo, benchmarking, AMT, ORCHID, ...
        "2001:db8::/32",  # documentation
        "2620:4f:8000::/48",  # AS112
        "3fff::/20",  # documentation
    )
)
# Prefixes whose last 32 bits are the IPv4 address they reach.
IPV4_IN_LAST_32: Final = tuple(
    _v6(block)
    for block in (
        "::ffff:0:0/96",  # IPv4-mapped
        "::/96",  # IPv4-compatible (deprecated; :: and ::1 decode to 0.0.0.x)
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
        "64:ff9b::/96",  # NAT64, well-known
    )
)


class UnsafeUrl(Invalid):
    """A webhook URL that is not http(s) or reaches a non-public address."""


class Pinned(msgspec.Struct, frozen=True):
    """A URL to connect to, with the Host header and TLS name the original one had."""

    url: str
    host: str
    server_name: str | None
    address: str  # what to connect to: the pinned address (the host when not pinned)
    port: int
    tls: bool
    target: str  # the request line's: path and query


def _refuse(message: str) -> UnsafeUrl:
    return UnsafeUrl(f"url: {message}", errors=[FieldError("url", message)])


def carried(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches through translation or a tunnel, if any."""
    if any(address in block for block in IPV4_IN_LAST_32):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def forbidden(address: IPAddress) -> bool:
    """Anything but a public unicast address (metadata, CGNAT and translated ones included)."""
    if isinstance(address, ipaddress.IPv4Address):
        return not address.is_global or any(address in block for block in IPV4_REFUSED)
    inner = carried(address)
    if inner is not None:
        return forbidden(inner)
    return (
        address not in GLOBAL_UNICAST
        or not address.is_global
        or any(address in block for block in IPV6_REFUSED)
    )


@functools.lru_cache(maxsize=1024)  # a subscription's URL is parsed once, not every delivery
def parse(url: str) -> httpx.URL:
    """The URL as httpx will use it; 422 unless it is http(s) with a host."""
    try:
        parsed = httpx.URL(url)
        port = parsed.port
    except (httpx.InvalidURL, ValueError):
        raise _refuse("is not a valid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise _refuse("must be an http or https URL with a host")
    if port is not None and not 0 < port < 65536:
        raise _refuse("has no valid port")
    return parsed


async def pinned(url: str, allow_private: bool) -> Pinned:
    """Check a webhook URL (422 when it must not be used) and pin it to a checked address."""
    parsed = parse(url)
    host = parsed.host
    authority = parsed.netloc.decode("ascii").rpartition("@")[2]
    tls = parsed.scheme == "https"
    port = parsed.port or (443 if tls else 80)
    path = parsed.raw_path.decode("ascii")
    if allow_private:
        return Pinned(str(parsed), authority, None, host, port, tls, path)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise _refuse(f"the host {host} does not resolve") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for address in addresses:
        if forbidden(address):
            raise _refuse(f"{host} resolves to {address}, which is not a public address")
    target = parsed.copy_with(host=str(addresses[0]))
    server_name = host if tls else None
    return Pinned(str(target), authority, server_name, str(addresses[0]), port, tls, path)


async def check_url(url: str, allow_private: bool) -> None:
    """Refuse (422) a URL a webhook must not be sent to; DNS is asked every time."""
    await pinned(url, allow_private)
