"""Two `legation serve` processes on one database: each standing notification is made and
sent once, only once readable, whichever replica writes, projects or delivers."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import msgspec

from tests.factories import expulsion, sanctions_round
from tests.http.test_webhooks import Receiver
from tests.process.test_replicas import Replica, delivered_through, replicas


class ReadingReceiver(Receiver):
    """Records each notification and, before answering it, reads the standing it describes
    from `reader` with min_position: what it was told must be readable at once."""

    def __init__(self) -> None:
        super().__init__()
        self.reader = ""  # base URL of the replica to read from
        self.reads: list[tuple[int, Any]] = []
        handler = self.server.RequestHandlerClass
        do_post = handler.do_POST  # type: ignore[attr-defined]
        receiving = self
        lock = threading.Lock()

        def reading_post(request: Any) -> None:
            length = int(request.headers["content-length"])
            body = request.rfile.read(length)
            data = msgspec.json.decode(body)["data"]
            read = httpx.get(
                f"{receiving.reader}/v1/countries/{data['country']}",
                params={"min_position": data["position"]},
                timeout=10,
            )
            with lock:
                receiving.reads.append((read.status_code, read.json()))
            request.rfile = _Replay(body)
            do_post(request)

        handler.do_POST = reading_post  # type: ignore[attr-defined]


class _Replay:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def read(self, _: int) -> bytes:
        return self.body


async def countries_at(replica: Replica, position: int) -> dict[str, Any]:
    """Every actor's standing at `position`, by code, without the position itself."""
    response = await replica.http.get("/v1/countries", params={"known_at": position, "limit": 500})
    assert response.status_code == 200, response.text
    return {item["code"]: item | {"position": 0} for item in response.json()["items"]}


async def expected(replica: Replica, head: int) -> list[tuple[int, str]]:
    """(position, code) of every standing that differs from the position before."""
    changed, before = [], await countries_at(replica, 0)
    for position in range(1, head + 1):
        after = await countries_at(replica, position)
        changed += [
            (position, code)
            for code in sorted(before.keys() | after.keys())
            if before.get(code) != after.get(code)
        ]
        before = after
    return changed


async def test_each_standing_notification_is_sent_once_and_readable_when_told(
    dsn: str, admin_key: str
) -> None:
    receiver = ReadingReceiver()
    try:
        async with replicas(dsn, admin_key) as pair:
            receiver.reader = str(pair[1].http.base_url).rstrip("/")
            created = await pair[0].http.post(
                "/v1/subscriptions",
                json={"url": receiver.url, "after": 0, "topics": ["standings"]},
            )
            assert created.status_code == 201, created.text
            subscription = created.json()
            reports = [
                expulsion(count=n + 1) if n % 3 else sanctions_round(round=n + 1) for n in range(8)
            ]
            written = await asyncio.gather(
                *(pair[n % 2].write(report) for n, report in enumerate(reports))
            )
            head = max(position for _, position in written)
            await delivered_through(pair[1], subscription, head)
            await asyncio.sleep(0.3)
            wanted = await expected(pair[0], head)
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    told = [(int(e["sequence"]), e["subject"]) for e in receiver.events()]
    assert told == wanted  # each once, in log order, none missing
    ids = [headers["webhook-id"] for headers, _ in receiver.received]
    assert len(set(ids)) == len(ids)
    assert [status for status, _ in receiver.reads] == [200] * len(told)
    for event, (_, read) in zip(receiver.events(), receiver.reads, strict=True):
        assert read["position"] >= event["data"]["position"]
