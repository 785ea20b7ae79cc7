"""Where webhooks may go: http(s) URLs whose every address is a public one."""

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from service.problems import FieldError, InvalidInput

METADATA = ipaddress.ip_address("169.254.169.254")


class UnsafeUrl(InvalidInput):
    """A webhook URL that is not http(s) or reaches a non-public address."""


def _refuse(message: str) -> UnsafeUrl:
    return UnsafeUrl(f"url: {message}", errors=[FieldError("url", message)])


def forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, private, link-local (metadata included), unique-local, unspecified..."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address == METADATA
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
    )


async def check_url(url: str, allow_private: bool) -> None:
    """Refuse (422) a URL a webhook must not be sent to; DNS is asked every time."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refuse("must be an http or https URL with a host")
    if allow_private:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, port, type=socket.SOCK_STREAM
        )
    except OSError:
        raise _refuse(f"the host {parts.hostname} does not resolve") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if forbidden(address):
            raise _refuse(f"{parts.hostname} resolves to {address}, which is not a public address")
