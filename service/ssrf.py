"""Where webhooks may go: http(s) URLs whose every address is a public one.

The address checked is the address connected to: `pinned` resolves the host
once, checks every address, and gives back the URL with the host replaced by
an address that passed (Host and TLS server name keep the original name), so a
second DNS answer cannot send the request elsewhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Final

import httpx
import msgspec

from service.problems import FieldError, InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64: Final = ipaddress.ip_network("64:ff9b::/96")


class UnsafeUrl(InvalidInput):
    """A webhook URL that is not http(s) or reaches a non-public address."""


class Pinned(msgspec.Struct, frozen=True):
    """A URL to connect to, with the Host header and TLS name the original one had."""

    url: str
    host: str
    server_name: str | None


def _refuse(message: str) -> UnsafeUrl:
    return UnsafeUrl(f"url: {message}", errors=[FieldError("url", message)])


def _embedded(address: IPAddress) -> IPAddress | None:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def forbidden(address: IPAddress) -> bool:
    """Anything but a globally routable unicast address (metadata, CGNAT and NAT64 included)."""
    inner = _embedded(address)
    if inner is not None:
        return forbidden(inner)
    return not address.is_global or address.is_multicast


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
    if allow_private:
        return Pinned(str(parsed), authority, None)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise _refuse(f"the host {host} does not resolve") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for address in addresses:
        if forbidden(address):
            raise _refuse(f"{host} resolves to {address}, which is not a public address")
    target = parsed.copy_with(host=str(addresses[0]))
    server_name = host if parsed.scheme == "https" else None
    return Pinned(str(target), authority, server_name)


async def check_url(url: str, allow_private: bool) -> None:
    """Refuse (422) a URL a webhook must not be sent to; DNS is asked every time."""
    await pinned(url, allow_private)
