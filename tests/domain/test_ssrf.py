"""Webhook addresses: every IPv4-carrying IPv6 form and every special-purpose block is refused
by the address filter (tests/http/test_ssrf.py tries them over HTTP).
"""

from __future__ import annotations

import ipaddress

import pytest

from service.subscribers.ssrf import forbidden

REFUSED = [
    "::127.0.0.1",  # IPv4-compatible loopback
    "::a9fe:a9fe",  # IPv4-compatible 169.254.169.254 (cloud metadata)
    "::ffff:0:127.0.0.1",  # IPv4-translated loopback
    "::ffff:0:a9fe:a9fe",  # IPv4-translated metadata
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:10.0.0.1",  # IPv4-mapped private
    "64:ff9b::7f00:1",  # NAT64 of loopback
    "64:ff9b::a9fe:a9fe",  # NAT64 of metadata
    "64:ff9b:1::a00:1",  # local-use NAT64 (RFC 8215)
    "64:ff9b:1:808:8:800::",  # local-use NAT64 even of 8.8.8.8
    "2002:7f00:1::",  # 6to4 of loopback
    "2002:a9fe:a9fe::1",  # 6to4 of metadata
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    "2001:0:808:808::1",  # Teredo even with a public server
    "fec0::1",  # site-local
    "fc00::1",  # unique local
    "fd12:3456::1",  # unique local
    "fe80::1",  # link-local
    "ff02::1",  # multicast, link
    "ff0e::1",  # multicast, global scope
    "::1",  # loopback
    "::",  # unspecified
    "100::1",  # discard-only
    "4000::1",  # outside global unicast
    "5f00::1",  # SRv6 SIDs
    "2001:db8::1",  # documentation
    "3fff::1",  # documentation (RFC 9637)
    "2001:2::1",  # benchmarking
    "2001:10::1",  # ORCHID
    "2001:20::1",  # ORCHIDv2
    "2001:3::1",  # AMT
    "2620:4f:8000::1",  # AS112
    "127.0.0.1",
    "10.1.2.3",
    "169.254.169.254",
    "100.64.0.1",  # CGNAT
    "0.0.0.0",
    "192.0.0.9",  # PCP anycast
    "192.0.2.1",  # documentation
    "192.88.99.1",  # 6to4 relay anycast
    "198.18.0.1",  # benchmarking
    "224.0.0.1",  # multicast
    "239.255.255.250",  # multicast
    "240.0.0.1",  # reserved
    "255.255.255.255",
]
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",  # IPv4-mapped public
    "64:ff9b::808:808",  # NAT64 of a public address
    "2002:808:808::1",  # 6to4 of a public address
]


@pytest.mark.parametrize("address", REFUSED)
def test_special_addresses_are_forbidden(address: str) -> None:
    assert forbidden(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert not forbidden(ipaddress.ip_address(address))
