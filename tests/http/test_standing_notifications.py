"""`"topics": ["standings"]`: a legation.standing.changed CloudEvent per actor whose standing
an event changed, with the standing before and after, once the read models include it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from standardwebhooks.webhooks import Webhook

from service.app import create_app
from service.config import Settings
from service.projections.projector import project_batch
from tests.conftest import authorised
from tests.factories import expulsion, territorial_control
from tests.http import test_webhooks
from tests.http.test_webhooks import Client, Receiver, as_documented, subscribe, until

hooks, receiver = test_webhooks.hooks, test_webhooks.receiver  # fixtures shared with them


async def post(client: Client, url: str, body: dict[str, Any]) -> int:
    response = await client.post(url, json=body)
    assert response.status_code in (200, 201), response.text
    return int(response.headers["legation-position"])


def notices(receiver: Receiver) -> list[tuple[int, str, str]]:
    """(sequence, type, subject) of each delivery, as received."""
    return [(int(e["sequence"]), e["type"], e["subject"]) for e in receiver.events()]


async def standing(client: Client, code: str, known_at: int) -> Any:
    response = await client.get(f"/v1/countries/{code}", params={"known_at": known_at})
    assert response.status_code == 200, response.text
    return response.json()


async def test_each_changed_standing_is_sent_with_its_figures_before_and_after(
    hooks: Client, receiver: Receiver
) -> None:
    subscription = await subscribe(hooks, receiver.url, topics=["standings"])
    first = await post(hooks, "/v1/incidents", expulsion(count=15))
    await until(lambda: len(receiver.received) == 2)
    assert notices(receiver) == [
        (first, "legation.standing.changed", "NL"),
        (first, "legation.standing.changed", "RU"),
    ]
    verifier = Webhook(subscription["secret"])
    for (headers, body), code in zip(receiver.received, ("NL", "RU"), strict=True):
        notice = verifier.verify(body, headers)
        assert as_documented(body) == notice
        assert notice["id"] == headers["webhook-id"]
        assert notice["source"] == f"/v1/countries/{code}"
        data = notice["data"]
        assert (data["country"], data["position"], data["event_type"]) == (
            code,
            first,
            "expulsion.reported",
        )
        # Exactly what GET /v1/countries/{code} answers at the position before and at it.
        assert data["before"] == await standing(hooks, code, first - 1)
        assert data["after"] == await standing(hooks, code, first)
    russia = receiver.events()[1]["data"]
    assert russia["before"]["expulsions"]["expelled_foreign_diplomats"] == 0
    assert russia["after"]["expulsions"]["expelled_foreign_diplomats"] == 15


async def test_what_changes_nothing_sends_nothing_and_a_correction_sends_both_sides(
    hooks: Client, receiver: Receiver
) -> None:
    await subscribe(hooks, receiver.url, topics=["standings"])
    created = await hooks.post("/v1/incidents", json=expulsion(count=15))
    incident = f"/v1/incidents/{created.json()['id']}"
    await until(lambda: len(receiver.received) == 2)
    await post(hooks, f"{incident}/sources", {"outlet": "Reuters"})  # no figure moves
    corrected = await post(hooks, f"{incident}/corrections", {"changes": {"count": 12}})
    await until(lambda: len(receiver.received) == 4)
    await asyncio.sleep(0.2)
    assert [n[0] for n in notices(receiver)] == [1, 1, corrected, corrected]
    netherlands = receiver.events()[2]["data"]
    assert netherlands["before"]["expulsions"]["own_diplomats_expelled"] == 15
    assert netherlands["after"]["expulsions"]["own_diplomats_expelled"] == 12


async def test_an_actor_the_event_does_not_name_is_told_when_its_standing_moves(
    hooks: Client, receiver: Receiver
) -> None:
    place = {"name": "Kreminna", "geonames_id": 704138, "region": "UA-09", "country": "UA"}
    await subscribe(hooks, receiver.url, topics=["standings"])
    first = territorial_control(
        place=place, controller="RU", previous_controller=None, occurred_on="2022-04-01"
    )
    await post(hooks, "/v1/incidents", first)
    await post(
        hooks,
        "/v1/incidents",
        territorial_control(
            place=place, controller="PL", previous_controller=None, occurred_on="2022-04-20"
        ),
    )
    # Reported late, dated between them: the PL report now moved the place from BY, not RU.
    late = await post(
        hooks,
        "/v1/incidents",
        territorial_control(
            place=place, controller="BY", previous_controller="UA", occurred_on="2022-04-10"
        ),
    )
    await until(lambda: any(n[0] == late for n in notices(receiver)))
    await asyncio.sleep(0.2)
    told = {n[2]: e["data"] for n, e in zip(notices(receiver), receiver.events(), strict=True)
            if n[0] == late}  # fmt: skip
    assert "RU" in told  # not named by the late report
    assert told["RU"]["before"]["territory"]["places_lost"] == 1
    assert told["RU"]["after"]["territory"]["places_lost"] == 0
    assert told["RU"]["after"] == await standing(hooks, "RU", late)


async def test_events_and_standings_come_in_log_order_and_filters_narrow_both(
    hooks: Client, receiver: Receiver
) -> None:
    await subscribe(hooks, receiver.url, topics=["events", "standings"])
    other = Receiver()
    try:
        await subscribe(hooks, other.url, topics=["standings"], countries=["nld"])
        one = await post(hooks, "/v1/incidents", expulsion(count=15))
        two = await post(hooks, "/v1/incidents", expulsion(expelled="BE", count=3))
        await until(lambda: len(receiver.received) == 6 and len(other.received) == 1)
        await asyncio.sleep(0.2)
        assert [(n[0], n[2]) for n in notices(other)] == [(one, "NL")]
    finally:
        other.server.shutdown()
        other.server.server_close()
    assert [(n[0], n[1].split(".")[0], n[2]) for n in notices(receiver)] == [
        (one, "expulsion", receiver.events()[0]["subject"]),
        (one, "legation", "NL"),
        (one, "legation", "RU"),
        (two, "expulsion", receiver.events()[3]["subject"]),
        (two, "legation", "BE"),
        (two, "legation", "RU"),
    ]


async def test_a_failing_notification_is_retried_alone_within_its_position(
    hooks: Client, receiver: Receiver, pool: asyncpg.Pool[Any]
) -> None:
    receiver.statuses = [200, 500]  # NL taken, RU refused once
    subscription = await subscribe(hooks, receiver.url, topics=["standings"])
    await post(hooks, "/v1/incidents", expulsion(count=15))
    await until(lambda: len(receiver.received) == 3)
    await asyncio.sleep(0.3)
    assert [n[2] for n in notices(receiver)] == ["NL", "RU", "RU"]
    ids = [headers["webhook-id"] for headers, _ in receiver.received]
    assert ids[1] == ids[2] != ids[0]
    rows = await pool.fetch(
        "SELECT type, message_id, attempt, status_code FROM deliveries"
        " WHERE subscription_id = $1 ORDER BY id",
        uuid.UUID(subscription["id"]),
    )
    assert [(r["attempt"], r["status_code"], str(r["message_id"])) for r in rows] == [
        (1, 200, ids[0]),
        (1, 500, ids[1]),
        (2, 200, ids[1]),
    ]
    listed = (await hooks.get(f"/v1/subscriptions/{subscription['id']}/deliveries")).json()
    assert {d["type"] for d in listed["items"]} == {"legation.standing.changed"}
    assert (await hooks.get(f"/v1/subscriptions/{subscription['id']}")).json()["position"] == 1


@pytest.fixture
async def unprojected(dsn: str, admin_key: str) -> AsyncIterator[Client]:
    """An app whose read models stay put: nobody projects (as if `legation project` lagged)."""
    settings = Settings(
        database_url=dsn,
        webhook_allow_private=True,
        webhook_retry_scale=0.01,
        projector="separate",
        read_wait_seconds=0.05,
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield authorised(client, admin_key)


async def test_a_standing_is_told_only_once_the_read_models_include_its_event(
    unprojected: Client, receiver: Receiver, pool: asyncpg.Pool[Any]
) -> None:
    events, standings = Receiver(), receiver
    try:
        await subscribe(unprojected, events.url)
        await subscribe(unprojected, standings.url, topics=["standings"])
        position = await post(unprojected, "/v1/incidents", expulsion(count=15))
        await until(lambda: len(events.received) == 1)  # events do not wait for projection
        await asyncio.sleep(0.5)
        assert standings.received == []
        behind = await unprojected.get("/v1/countries/RU", params={"min_position": position})
        assert behind.status_code == 503  # not readable yet: so not told yet
        async with pool.acquire() as conn:
            assert await project_batch(conn) == position
        await until(lambda: len(standings.received) == 2)
        read = await unprojected.get("/v1/countries/RU", params={"min_position": position})
        assert read.status_code == 200
        assert standings.events()[1]["data"]["after"] == read.json()
    finally:
        events.server.shutdown()
        events.server.server_close()


async def test_two_instances_send_each_notification_once(
    dsn: str, hooks: Client, receiver: Receiver, admin_key: str
) -> None:
    second_app = create_app(
        Settings(database_url=dsn, webhook_allow_private=True, webhook_retry_scale=0.01)
    )
    async with AsyncTestClient(app=second_app) as second:
        authorised(second, admin_key)
        await subscribe(hooks, receiver.url, topics=["standings"])
        for n in range(6):
            target = hooks if n % 2 else second
            await post(target, "/v1/incidents", expulsion(count=n + 1))
        await until(lambda: len(receiver.received) >= 12)
        await asyncio.sleep(0.5)
    assert [(n[0], n[2]) for n in notices(receiver)] == [
        (position, code) for position in range(1, 7) for code in ("NL", "RU")
    ]
    ids = [headers["webhook-id"] for headers, _ in receiver.received]
    assert len(set(ids)) == 12


async def test_topics_default_to_events_and_an_unknown_one_is_422(
    hooks: Client, receiver: Receiver
) -> None:
    made = await subscribe(hooks, receiver.url)
    assert made["topics"] == ["events"]
    both = await subscribe(hooks, receiver.url, topics=["standings", "events"])
    assert both["topics"] == ["standings", "events"]
    twice = await subscribe(hooks, receiver.url, topics=["events", "events"])
    assert twice["topics"] == ["events"]
    for topics, field in ((["weather"], "topics[0]"), ([], "topics"), ("events", "topics")):
        refused = await hooks.post(
            "/v1/subscriptions", json={"url": receiver.url, "topics": topics}
        )
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == [field]
