"""What a subscription is sent for one log event: the event, the standings it changed, or both.

The messages of a position come in a fixed order (the event first, then the
standings by country code), so a subscription's cursor can say how many of them
were acknowledged (`part`) and a retry resends exactly the next one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

import msgspec

from service.log.store import LogFilter
from service.projections.standing_changes import StandingChange, StandingChanges
from service.subscribers.cloud_events import (
    STANDING_CHANGED,
    cloud_event,
    notice_id,
    standing_event,
)
from service.subscribers.fanout import LiveEvent, matches

if TYPE_CHECKING:
    from service.log.store import Connection

EVENTS: Final = "events"
STANDINGS: Final = "standings"
TOPICS: Final = (EVENTS, STANDINGS)


class Wants(msgspec.Struct, frozen=True):
    """What a subscription receives: its filters, and which topics."""

    filters: LogFilter
    events: bool = True
    standings: bool = False


def wants(row: Any) -> Wants:
    """What the subscription `row` (types, countries, topics) receives."""
    topics = row["topics"]
    filters = LogFilter(tuple(row["types"]), tuple(row["countries"]))
    return Wants(filters, EVENTS in topics, STANDINGS in topics)


class Message(msgspec.Struct, frozen=True):
    """One POST: the event `live` itself (`change` None) or one standing it changed."""

    live: LiveEvent
    change: StandingChange | None
    index: int  # messages of this position sent to the subscription before this one
    last: bool  # whether it is the position's last message for the subscription

    @property
    def id(self) -> UUID:
        """The webhook-id: the same on every retry, and from every process."""
        event = self.live.event
        return event.id if self.change is None else notice_id(event.id, self.change.country)

    @property
    def type(self) -> str:
        """The CloudEvent's type."""
        return self.live.event.type if self.change is None else STANDING_CHANGED

    @property
    def position(self) -> int:
        """The log position of the event it is about."""
        return self.live.event.position

    def body(self, base: str = "") -> bytes:
        """The CloudEvent it is sent as (a catalogue event's dataschema under `base`)."""
        return (
            cloud_event(self.live, base)
            if self.change is None
            else standing_event(self.live, self.change)
        )


async def messages(
    conn: Connection, live: LiveEvent, wanted: Wants, changes: StandingChanges
) -> list[Message]:
    """The messages of one event for a subscription, in the order they are sent.

    `types` narrows the events whose standings are reported too; `countries` narrows the
    events by the actors they touch, and the standings by the actor that changed.
    """
    if not wanted.standings:
        return event_message(live, wanted)
    filters = wanted.filters
    parts: list[StandingChange | None] = []
    if wanted.events and matches(live, filters):
        parts.append(None)
    if wanted.standings and (not filters.types or live.event.type in filters.types):
        found = await changes.at(conn, live.event.position)
        parts += [c for c in found if not filters.countries or c.country in filters.countries]
    last = len(parts) - 1
    return [Message(live, part, index, index == last) for index, part in enumerate(parts)]


def event_message(live: LiveEvent, wanted: Wants) -> list[Message]:
    """The messages of one event for a subscription without the standings topic: no query
    needed, so the delivery loop calls it without a coroutine per event scanned."""
    if wanted.events and matches(live, wanted.filters):
        return [Message(live, None, 0, True)]
    return []
