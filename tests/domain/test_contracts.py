"""The committed contracts are what the code generates, and what the app serves."""

from __future__ import annotations

import json

from service.incidents.catalogue import CATALOGUE, INCIDENT_KINDS
from service.ops.contracts import (
    OPENAPI_FILE,
    SCHEMAS_DIR,
    event_schema_files,
    openapi_json,
    published_schema_files,
)

REGENERATE = "run `make contracts` and commit the result"


def test_openapi_json_is_generated_from_the_code() -> None:
    assert OPENAPI_FILE.read_bytes() == openapi_json(), REGENERATE


def test_schemas_are_generated_from_the_catalogue() -> None:
    generated = event_schema_files()
    committed = {path.name: path.read_bytes() for path in SCHEMAS_DIR.glob("*.json")}
    published = published_schema_files()
    assert {name: committed[name] for name in committed if name not in published} == generated
    assert {f"{entry.name}.json" for entry in CATALOGUE} < set(committed), REGENERATE


def test_every_published_schema_version_is_kept() -> None:
    published = published_schema_files()
    assert "expulsion.reported.v1.json" in published
    for name, version in published.items():
        schema = json.loads((SCHEMAS_DIR / name).read_text())
        assert schema["x-schema-version"] == version
        assert schema["$id"].endswith(f":v{version}")


def test_a_version_1_expulsion_needed_a_count_and_version_2_does_not() -> None:
    old = json.loads((SCHEMAS_DIR / "expulsion.reported.v1.json").read_text())
    new = json.loads((SCHEMAS_DIR / "expulsion.reported.json").read_text())
    assert "count" in old["required"]
    assert "count" not in new["required"]
    assert new["x-schema-version"] == 2
    assert {"joint_expelling", "joint_expelled"} <= set(new["properties"])


def test_event_schemas_describe_the_data_at_the_top_level() -> None:
    schema = json.loads((SCHEMAS_DIR / "expulsion.reported.json").read_text())
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) >= {"kind", "occurred_on", "expelling", "expelled"}
    assert schema["properties"]["count"]["anyOf"][0]["minimum"] == 1
    corrected = json.loads((SCHEMAS_DIR / "incident.corrected.json").read_text())
    assert set(corrected["$defs"]) >= {"Expulsion", "SanctionsRound", "TerritorialControl"}


def test_report_bodies_are_documented_with_examples_and_problems() -> None:
    document = json.loads(OPENAPI_FILE.read_bytes())
    post = document["paths"]["/v1/incidents"]["post"]
    body = post["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/IncidentReport"}
    union = document["components"]["schemas"]["IncidentReport"]
    assert union["discriminator"]["propertyName"] == "kind"
    assert set(union["discriminator"]["mapping"]) == set(INCIDENT_KINDS)
    assert len(union["oneOf"]) == len(INCIDENT_KINDS)
    assert {e["value"]["kind"] for e in body["examples"].values()} == set(INCIDENT_KINDS)
    problem = post["responses"]["422"]["content"]["application/problem+json"]
    assert problem["schema"] == {"$ref": "#/components/schemas/ProblemDetails"}
    assert document["openapi"].startswith("3.1")
