"""Stream messages and webhook deliveries name the schema their data was written under."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import msgspec
import pytest

from service.config import InvalidSettings, settings_from_env
from service.log.envelope import RecordedEvent
from service.subscribers.cloud_events import cloud_event
from service.subscribers.fanout import LiveEvent, sse_frame
from service.subscribers.webhook_messages import Message


def old_expulsion() -> RecordedEvent:
    """An expulsion appended before version 2 of its schema."""
    return RecordedEvent(
        position=7,
        id=uuid.uuid4(),
        stream=f"incident-{uuid.uuid4()}",
        version=1,
        type="expulsion.reported",
        schema_version=1,
        occurred_on=None,
        recorded_at=datetime(2022, 4, 19, 9, 30, tzinfo=UTC),
        data=msgspec.Raw(b'{"kind":"expulsion","count":15}'),
        metadata=msgspec.Raw(b"{}"),
    )


def test_a_stream_message_is_the_logged_event_with_its_dataschema() -> None:
    event = old_expulsion()
    frame = sse_frame(event)
    assert frame.startswith(b"id: 7\nevent: expulsion.reported\ndata: ")
    sent = json.loads(frame.split(b"data: ", 1)[1])
    assert sent.pop("dataschema") == "/v1/schemas/expulsion.reported?version=1"
    assert sent == json.loads(msgspec.json.encode(event))


def test_a_delivery_names_the_version_its_event_was_written_under() -> None:
    event = old_expulsion()
    delivered = json.loads(cloud_event(LiveEvent(event, ("RU",), sse_frame(event))))
    assert delivered["dataschema"] == "/v1/schemas/expulsion.reported?version=1"
    assert delivered["data"] == {"kind": "expulsion", "count": 15}


def test_under_a_public_url_a_delivery_names_its_schema_by_an_absolute_uri() -> None:
    # CloudEvents' dataschema is of type URI: absolute, which a relative path is not.
    settings = settings_from_env({"LEGATION_PUBLIC_URL": "https://legation.example.org/api/"})
    assert settings.public_url == "https://legation.example.org/api"
    event = old_expulsion()
    message = Message(LiveEvent(event, ("RU",), sse_frame(event)), None, 0, True)
    delivered = json.loads(message.body(settings.public_url))
    assert delivered["dataschema"] == (
        "https://legation.example.org/api/v1/schemas/expulsion.reported?version=1"
    )
    assert json.loads(message.body())["dataschema"] == "/v1/schemas/expulsion.reported?version=1"


@pytest.mark.parametrize(
    "value",
    ["legation.example.org", "ftp://legation.example.org", "https://", "https://a.org/?x=1"],
)
def test_a_public_url_that_is_not_an_http_base_is_refused_by_name(value: str) -> None:
    with pytest.raises(InvalidSettings, match="LEGATION_PUBLIC_URL"):
        settings_from_env({"LEGATION_PUBLIC_URL": value})
