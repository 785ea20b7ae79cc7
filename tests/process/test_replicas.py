"""Two `legation serve` processes on one database: shared writes, one projector, one delivery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from standardwebhooks.webhooks import Webhook

from service.projections.projector import PROJECTOR_LOCK
from tests.factories import expulsion, sanctions_round, territorial_control
from tests.http.test_webhooks import Receiver
from tests.servers import Server, start, stop

T = TypeVar("T")
SETTINGS = {"rate_limit": "0", "webhook_allow_private": "true"}
NAMES = ("replica-a", "replica-b")
STANDINGS = (
    "/v1/countries",
    "/v1/countries/RU",
    "/v1/relations/RU/NL",
    "/v1/relations/EU/RU",
    "/v1/territories?country=UA",
)
# Granted holders of the projector's lock in this test's database, by application_name.
HOLDERS = """
SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted
   AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 2
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


@dataclass
class Replica:
    """One server process and a client authorised on it."""

    name: str
    process: Server
    http: httpx.AsyncClient

    async def write(self, report: dict[str, Any]) -> tuple[str, int]:
        """Report an incident; its id and log position."""
        response = await self.http.post("/v1/incidents", json=report)
        assert response.status_code == 201, response.text
        return response.json()["id"], int(response.headers["legation-position"])

    async def read(self, url: str, position: int) -> httpx.Response:
        """GET `url` once this replica's read models include `position`."""
        response = await self.http.get(url, params={"min_position": position})
        assert response.status_code == 200, response.text
        assert int(response.headers["legation-position"]) >= position
        return response


def named(dsn: str, application_name: str) -> str:
    """The DSN with an application_name, so pg_stat_activity tells the replicas apart."""
    parts = urlsplit(dsn)
    query = "&".join(filter(None, (parts.query, f"application_name={application_name}")))
    return urlunsplit(parts._replace(query=query))


async def stop_all(processes: list[Server]) -> None:
    """SIGTERM each at once: a graceful stop takes a while."""
    await asyncio.gather(*(asyncio.to_thread(stop, process) for process in processes))


@asynccontextmanager
async def replicas(dsn: str, key: str) -> AsyncIterator[tuple[Replica, Replica]]:
    """Both servers, started at once (each start costs seconds); stopped on the way out."""
    async with AsyncExitStack() as stack:
        started = await asyncio.gather(
            *(asyncio.to_thread(start, named(dsn, name), SETTINGS) for name in NAMES),
            return_exceptions=True,
        )
        running = [outcome[1] for outcome in started if not isinstance(outcome, BaseException)]
        stack.push_async_callback(stop_all, running)
        made = []
        for name, outcome in zip(NAMES, started, strict=True):
            if isinstance(outcome, BaseException):
                raise outcome
            base, process = outcome
            headers = {"Authorization": f"Bearer {key}"}
            http = httpx.AsyncClient(base_url=base, headers=headers, timeout=20)
            made.append(Replica(name, process, await stack.enter_async_context(http)))
        yield made[0], made[1]


async def eventually(probe: Callable[[], Awaitable[T | None]], within: float = 10.0) -> T:
    """The first non-None answer of `probe`, polled until `within` seconds have passed."""
    async with asyncio.timeout(within):
        while True:
            value = await probe()
            if value is not None:
                return value
            await asyncio.sleep(0.05)


async def holders(dsn: str) -> list[str]:
    """Which replicas hold the projector's lock right now."""
    conn = await asyncpg.connect(dsn)
    try:
        return [row[0] for row in await conn.fetch(HOLDERS, *PROJECTOR_LOCK)]
    finally:
        await conn.close()


async def some_holders(dsn: str) -> list[str] | None:
    return await holders(dsn) or None


def report(i: int) -> tuple[dict[str, Any], str]:
    """The i-th report of the concurrent phase and a standing that must list it."""
    if i % 3 == 0:
        return expulsion(expelled="BE", count=i + 1), "/v1/relations/RU/BE"
    if i % 3 == 1:
        return sanctions_round(round=i), "/v1/relations/EU/RU"
    place = {"name": f"Town {i}", "geonames_id": 9000 + i, "region": "UA-09", "country": "UA"}
    return territorial_control(place=place), "/v1/territories?country=UA"


def listed(standing: dict[str, Any]) -> set[str]:
    """Incident ids a bilateral ledger or a territory list names."""
    if "incidents" in standing:
        return {incident["id"] for incident in standing["incidents"]}
    return {incident for item in standing["items"] for incident in item["incidents"]}


async def write_here_read_there(writer: Replica, reader: Replica, i: int) -> int:
    body, url = report(i)
    incident, position = await writer.write(body)
    assert incident in listed((await reader.read(url, position)).json())
    return position


async def alternate_expulsions(pair: tuple[Replica, Replica], writes: int) -> int:
    """RU expels NL diplomats through each replica in turn; the other reads the exact total."""
    total = 0
    for n in range(writes):
        writer, reader = pair[n % 2], pair[1 - n % 2]
        _, position = await writer.write(expulsion(count=n + 1))
        total += n + 1
        ledger = (await reader.read("/v1/relations/RU/NL", position)).json()
        assert (ledger["position"], ledger["relation"]["expelled_foreign_diplomats"]) == (
            position,
            total,
        )
    return total


async def same_bodies(pair: tuple[Replica, Replica], head: int) -> dict[str, Any]:
    """Each standing read from both replicas at `head`: byte for byte the same."""
    bodies = {}
    for url in STANDINGS:
        one, two = [await replica.read(url, head) for replica in pair]
        assert one.content == two.content, url
        assert one.headers["legation-position"] == str(head)
        bodies[url] = one.json()
    return bodies


def check_totals(bodies: dict[str, Any], nl_expelled: int, reports: int) -> None:
    """The standings the writes imply."""
    kinds = [i % 3 for i in range(reports)]
    be_expelled = sum(i + 1 for i in range(reports) if i % 3 == 0)
    russia = bodies["/v1/countries/RU"]
    assert russia["expulsions"]["expelled_foreign_diplomats"] == nl_expelled + be_expelled
    assert russia["sanctions"]["rounds_received"] == kinds.count(1)
    assert russia["territory"]["places_controlled"] == kinds.count(2)
    assert russia["territory"]["places_gained"] == kinds.count(2)
    eu = bodies["/v1/relations/EU/RU"]["relation"]
    assert eu["sanctions_rounds_imposed"] == kinds.count(1)
    territories = bodies["/v1/territories?country=UA"]["items"]
    places = {(item["place"]["name"], item["controller"]) for item in territories}
    assert places == {(f"Town {i}", "RU") for i in range(reports) if i % 3 == 2}
    codes = [item["code"] for item in bodies["/v1/countries"]["items"]]
    assert codes == ["BE", "EU", "NL", "RU", "UA"]


async def subscribe(replica: Replica, url: str) -> dict[str, Any]:
    """A webhook subscription to every event from the start of the log."""
    created = await replica.http.post("/v1/subscriptions", json={"url": url, "after": 0})
    assert created.status_code == 201, created.text
    subscription: dict[str, Any] = created.json()
    return subscription


async def delivered_through(replica: Replica, subscription: dict[str, Any], head: int) -> None:
    """Wait until the subscription has acknowledged every event up to `head`."""
    # Each POST is made under the subscription's lease, before its position
    # moves: once the position is at the head, no delivery is in flight or to come.

    async def acknowledged() -> bool | None:
        read = await replica.http.get(f"/v1/subscriptions/{subscription['id']}")
        assert read.status_code == 200, read.text
        return True if read.json()["position"] == head else None

    await eventually(acknowledged, 20)


def check_deliveries(receiver: Receiver, log: list[dict[str, Any]], secret: str) -> None:
    """Each event of the log received once, in log order, signed with the subscription's secret."""
    assert [headers["webhook-id"] for headers, _ in receiver.received] == [e["id"] for e in log]
    assert [int(event["sequence"]) for event in receiver.events()] == [e["position"] for e in log]
    verifier = Webhook(secret)
    for headers, body in receiver.received:
        verifier.verify(body, headers)  # raises unless signed with this secret


async def take_over(pair: tuple[Replica, Replica], holder: str, nl_expelled: int) -> Replica:
    """SIGKILL the active projector's replica; the survivor must project its own next write."""
    victim, survivor = pair if pair[0].name == holder else pair[::-1]
    victim.process.kill()
    victim.process.wait()
    _, position = await survivor.write(expulsion(count=100))
    ledger = (await survivor.read("/v1/relations/RU/NL", position)).json()
    assert ledger["relation"]["expelled_foreign_diplomats"] == nl_expelled + 100
    return survivor


async def test_two_replicas_share_writes_standings_projector_and_deliveries(
    dsn: str, admin_key: str
) -> None:
    receiver = Receiver()
    try:
        async with replicas(dsn, admin_key) as pair:
            subscription = await subscribe(pair[0], receiver.url)
            holder = await eventually(lambda: some_holders(dsn))
            assert holder in [[name] for name in NAMES]
            nl_expelled = await alternate_expulsions(pair, 6)
            positions = await asyncio.gather(
                *(write_here_read_there(pair[i % 2], pair[1 - i % 2], i) for i in range(12))
            )
            check_totals(await same_bodies(pair, max(positions)), nl_expelled, 12)
            # A live holder must keep the lock through the load: no hand-over, no second holder.
            assert await holders(dsn) == holder
            # Killed with a delivery in flight, a replica would rightly cause a redelivery.
            await delivered_through(pair[1], subscription, max(positions))
            survivor = await take_over(pair, holder[0], nl_expelled)
            assert await holders(dsn) == [survivor.name]
            await delivered_through(survivor, subscription, max(positions) + 1)
            log = (await survivor.http.get("/v1/events", params={"limit": 100})).json()["items"]
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    assert [event["position"] for event in log] == list(range(1, 20))
    check_deliveries(receiver, log, subscription["secret"])
