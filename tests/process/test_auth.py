"""Rate limits behind proxies, through a real `legation serve` (a real peer address)."""

from __future__ import annotations

import httpx

from tests.servers import serving


def forwarded_statuses(base: str, forwarded_for: list[str]) -> list[int]:
    """The statuses of one GET per X-Forwarded-For value, in order."""
    with httpx.Client(base_url=base, timeout=10) as http:
        return [
            http.get("/v1/events", headers={"X-Forwarded-For": value}).status_code
            for value in forwarded_for
        ]


def test_x_forwarded_for_from_an_untrusted_peer_does_not_lift_the_limit(dsn: str) -> None:
    with serving(dsn, rate_limit="1", rate_burst="3") as base:
        statuses = forwarded_statuses(base, [f"203.0.113.{n}" for n in range(20)])
    # All from 127.0.0.1 as far as the server knows: 3 pass, then about one a second.
    assert statuses[:3] == [200, 200, 200]
    assert statuses.count(429) >= 10


def test_a_trusted_proxy_gives_each_forwarded_client_its_own_bucket(dsn: str) -> None:
    with serving(
        dsn, rate_limit="1", rate_burst="3", trusted_proxies="127.0.0.0/8, 10.0.0.0/8"
    ) as base:
        distinct = forwarded_statuses(base, [f"203.0.113.{n}" for n in range(20)])
        # Behind a chain of trusted proxies the right-most untrusted address is the
        # client: what it put left of itself is its own say-so and changes nothing.
        chained = forwarded_statuses(
            base, [f"192.0.2.{n}, 198.51.100.7, 10.1.1.1" for n in range(20)]
        )
    assert distinct == [200] * 20
    assert chained[:3] == [200, 200, 200]
    assert chained.count(429) >= 10
