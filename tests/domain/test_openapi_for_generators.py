"""The committed openapi.json reads well to client generators: names, keys, headers, payloads."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import msgspec

from service.app import create_app
from service.config import Settings
from service.http.route_meta import meta_of
from service.incidents.catalogue import CATALOGUE
from service.ops.contracts import OPENAPI_FILE
from service.subscribers.cloud_events import CloudEvent, Ping, StandingChanged

DOCUMENT: dict[str, Any] = json.loads(OPENAPI_FILE.read_bytes())
METHODS = ("get", "put", "post", "patch", "delete")
OPERATION_ID = re.compile(r"^[a-z][A-Za-z]+$")


def operations(section: str = "paths") -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in DOCUMENT[section].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def operation(operation_id: str) -> dict[str, Any]:
    return next(op for *_, op in operations() if op["operationId"] == operation_id)


def every_operation() -> list[tuple[str, str, dict[str, Any]]]:
    return [*operations(), *operations("webhooks")]


def test_every_operation_has_a_readable_unique_operation_id_and_declares_security() -> None:
    ids = [op.get("operationId", "") for *_, op in every_operation()]
    assert [name for name in ids if not OPERATION_ID.match(name)] == []
    assert len(ids) == len(set(ids))
    assert [(path, method) for path, method, op in every_operation() if "security" not in op] == []
    assert {"reportIncident", "correctIncident", "getCountryStanding", "getEventSchema"} <= set(ids)


def test_every_route_names_its_operation_itself() -> None:
    app = create_app(Settings(database_url="postgresql://unused@localhost/unused"))
    ours = [
        handler
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if meta_of(handler) is not None and handler.include_in_schema is not False
    ]
    assert len(ours) == len(list(operations()))
    assert [h for h in ours if not isinstance(h.operation_id, str)] == []


def test_security_is_the_scope_auth_enforces_and_reads_may_go_without() -> None:
    scheme = DOCUMENT["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert operation("reportIncident")["security"] == [{"bearerAuth": ["write"]}]
    assert operation("createSubscription")["security"] == [{"bearerAuth": ["subscribe"]}]
    assert operation("getCountryStanding")["security"] == [{}, {"bearerAuth": ["read"]}]
    assert operation("getEventSchema")["security"] == []
    assert operation("getHealth")["security"] == []
    for _, _, op in operations():
        if op["security"]:
            assert {"401", "403"} <= set(op["responses"]), op["operationId"]


def headers_of(operation_id: str, status: str) -> dict[str, Any]:
    named = operation(operation_id)["responses"][status]["headers"]
    defined = DOCUMENT["components"]["headers"]
    return {name: defined[ref["$ref"].rsplit("/", 1)[1]] for name, ref in named.items()}


def test_the_headers_that_if_match_and_read_your_write_need_are_documented() -> None:
    created = headers_of("reportIncident", "201")
    assert {"ETag", "Location", "Legation-Position", "X-Request-ID"} <= set(created)
    assert all(created[name]["required"] for name in ("ETag", "Location", "Legation-Position"))
    standing = headers_of("getCountryStanding", "200")
    assert {"ETag", "Legation-Position", "Link", "Memento-Datetime"} <= set(standing)
    assert [name for name, header in standing.items() if not header.get("required")] == [
        "Link",
        "Memento-Datetime",
    ]
    assert {"ETag", "Legation-Position"} <= set(headers_of("getIncident", "304"))
    assert "Link" in headers_of("listIncidents", "200")
    assert "Location" in headers_of("createSubscription", "201")
    assert "Retry-After" in headers_of("getReadiness", "503")
    assert "Cache-Control" in headers_of("streamEvents", "200")


def test_every_answer_names_its_request_id_and_problems_their_own_headers() -> None:
    for _, _, op in operations():
        for status, response in op["responses"].items():
            assert "X-Request-ID" in response["headers"], (op["operationId"], status)
            if status in ("429", "503"):
                assert "Retry-After" in response["headers"], (op["operationId"], status)
            if status in ("401", "403"):
                assert "WWW-Authenticate" in response["headers"], (op["operationId"], status)


def schemas_in(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            yield from schemas_in(item)


def test_tuples_are_arrays_generators_parse_with_the_same_values_on_the_wire() -> None:
    assert [s for s in schemas_in(DOCUMENT) if s.get("items") is False] == []
    view = DOCUMENT["components"]["schemas"]["ExpulsionView"]["properties"]["count_range"]
    (tuple_schema,) = [branch for branch in view["anyOf"] if branch.get("type") == "array"]
    assert (tuple_schema["minItems"], tuple_schema["maxItems"]) == (2, 2)
    low, high = tuple_schema["prefixItems"]
    assert low["type"] == "integer"
    assert {"type": "null"} in high["anyOf"]
    balance = DOCUMENT["components"]["schemas"]["Expulsions"]["properties"]["balance_range"]
    assert balance["items"] == balance["prefixItems"][0]


def test_streams_are_described_as_server_sent_events() -> None:
    media = operation("streamEvents")["responses"]["200"]["content"]["text/event-stream"]
    assert media["schema"]["type"] == "string"
    assert "StreamEvent" in DOCUMENT["components"]["schemas"]
    assert "dataschema" in DOCUMENT["components"]["schemas"]["StreamEvent"]["properties"]


def test_every_delivery_is_a_webhook_whose_payload_is_a_cloudevent_with_its_data() -> None:
    derived: dict[str, type[msgspec.Struct]] = {
        "legation.standing.changed": StandingChanged,
        "legation.ping": Ping,
    }
    kinds = {**{entry.name: entry.data for entry in CATALOGUE}, **derived}
    assert set(DOCUMENT["webhooks"]) == set(kinds)
    schemas = DOCUMENT["components"]["schemas"]
    for kind, data in kinds.items():
        post = DOCUMENT["webhooks"][kind]["post"]
        body = post["requestBody"]["content"]["application/cloudevents+json"]["schema"]
        envelope = schemas[body["$ref"].rsplit("/", 1)[1]]
        # A log event has them all; a standing no dataschema; a ping no sequence either.
        left_out = {"dataschema"} if kind in derived else set()
        left_out |= {"sequence"} if kind == "legation.ping" else set()
        fields = set(CloudEvent.__struct_fields__) - left_out
        assert list(envelope["properties"]) == sorted(fields), kind
        assert sorted(envelope["required"]) == sorted(fields), kind
        assert envelope["properties"]["type"]["enum"] == [kind]
        assert envelope["properties"]["data"] == {"$ref": f"#/components/schemas/{data.__name__}"}
        assert {p["$ref"].rsplit("/", 1)[1] for p in post["parameters"]} == {
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
        }


def test_an_optional_choice_is_an_enum_of_strings_or_null_apart() -> None:
    for _, _, op in operations():
        for parameter in op.get("parameters", []):
            assert None not in parameter["schema"].get("enum", []), parameter["name"]
    kind = next(p for p in operation("listIncidents")["parameters"] if p["name"] == "kind")
    assert kind["schema"]["oneOf"] == [
        {"type": "string", "enum": ["expulsion", "sanctions_round", "territorial_control"]},
        {"type": "null"},
    ]
