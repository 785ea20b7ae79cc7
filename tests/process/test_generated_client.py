"""A client no one here wrote: openapi-python-client's, generated from the committed
openapi.json as the README says, driving a real `legation serve`.

Generation fails the test on any warning: a part of the document the generator
skips is a part of the API its users cannot call.
"""

from __future__ import annotations

import importlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from service.ops.contracts import OPENAPI_FILE, ROOT
from tests.conftest import make_key
from tests.servers import serving

BIN = Path(sys.executable).parent
CONFIG = ROOT / "clients" / "openapi-python-client.yml"


def generate(into: Path) -> None:
    """`openapi-python-client generate` over the committed document, warnings refused."""
    run = subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(OPENAPI_FILE),
            "--config",
            str(CONFIG),
            "--output-path",
            str(into),
            "--fail-on-warning",
        ],
        # The generator tidies its output with ruff, found on PATH.
        env=os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "warning" not in output.lower(), output


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    """The generated package, importable for this module's tests."""
    project = tmp_path_factory.mktemp("client") / "legation-client"
    generate(project)
    sys.path.insert(0, str(project))
    try:
        yield Generated(importlib.import_module("legation_client"))
    finally:
        sys.path.remove(str(project))
        for name in [name for name in sys.modules if name.startswith("legation_client")]:
            del sys.modules[name]


class Generated:
    """The generated package's modules by their dotted names under it."""

    def __init__(self, package: ModuleType) -> None:
        self.package = package
        self.models = self("models")

    def __call__(self, name: str) -> Any:
        return importlib.import_module(f"legation_client.{name}")

    def operation(self, tag: str, name: str) -> Any:
        return self(f"api.{tag}.{name}")


def a_report(client: Generated, expelled: str, count: int) -> Any:
    models = client.models
    return models.ExpulsionReport(
        kind="expulsion",
        occurred_on=date(2022, 4, 18),
        expelling="RU",
        expelled=expelled,
        count=count,
        sources=[models.Source(outlet="AFP")],
    )


async def test_a_generated_client_reports_corrects_reads_pages_subscribes_and_batches(
    generated: Generated, dsn: str
) -> None:
    key = await make_key(dsn, ("write", "subscribe"), name="cms")
    package = generated.package
    with (
        serving(dsn, webhook_allow_private="true") as base,
        package.AuthenticatedClient(base_url=base, token=key) as cms,
        package.Client(base_url=base) as reader,  # reads need no key here
    ):
        incident, position = report_twice_with_one_key(generated, cms)
        position = correct_with_if_match(generated, cms, incident)
        read_standing_at(generated, cms, position)
        page_incidents(generated, cms, incident)
        subscribe(generated, cms)
        send_a_batch(generated, cms)
        get_event_schema = generated.operation("log", "get_event_schema")
        schema = get_event_schema.sync("expulsion.reported", client=reader)
    assert schema["$id"] == "urn:legation:event:expulsion.reported:v2"


def report_twice_with_one_key(client: Generated, cms: Any) -> tuple[Any, int]:
    report_incident = client.operation("incidents", "report_incident")
    report = a_report(client, "NL", 15)
    first = report_incident.sync_detailed(client=cms, body=report, idempotency_key="cms-nl-1")
    again = report_incident.sync_detailed(client=cms, body=report, idempotency_key="cms-nl-1")
    assert (first.status_code, again.status_code) == (201, 201)
    view = first.parsed
    assert isinstance(view, client.models.ExpulsionView)
    assert (view.count, view.version) == (15, 1)
    assert again.parsed.id == view.id  # the retry appended nothing
    assert first.headers["location"] == f"/v1/incidents/{view.id}"
    assert first.headers["etag"] == '"1"'
    assert again.headers["legation-position"] == first.headers["legation-position"]
    return view.id, int(first.headers["legation-position"])


def correct_with_if_match(client: Generated, cms: Any, incident: Any) -> int:
    correct_incident = client.operation("incidents", "correct_incident")
    changes = client.models.CorrectionChanges.from_dict({"count": 12})
    body = client.models.Correction(changes=changes, note="Dutch ministry says 12")
    done = correct_incident.sync_detailed(incident, client=cms, body=body, if_match='"1"')
    assert done.status_code == 200
    assert (done.parsed.count, done.headers["etag"]) == (12, '"2"')
    stale = correct_incident.sync_detailed(incident, client=cms, body=body, if_match='"1"')
    assert stale.status_code == 412
    assert isinstance(stale.parsed, client.models.ProblemDetails)
    return int(done.headers["legation-position"])


def read_standing_at(client: Generated, cms: Any, position: int) -> None:
    read = client.operation("standings", "get_country_standing")
    answer = read.sync_detailed("RU", client=cms, min_position=position)
    assert int(answer.headers["legation-position"]) >= position
    standing = answer.parsed
    assert isinstance(standing, client.models.Standing)
    assert standing.expulsions.expelled_foreign_diplomats == 12
    assert standing.expulsions.expelled_foreign_diplomats_range == [12, 12]


def page_incidents(client: Generated, cms: Any, first: Any) -> None:
    report = client.operation("incidents", "report_incident")
    second = report.sync_detailed(client=cms, body=a_report(client, "BE", 21))
    position = int(second.headers["legation-position"])
    list_incidents = client.operation("incidents", "list_incidents")
    page = list_incidents.sync(client=cms, limit=1, min_position=position)
    assert len(page.items) == 1
    assert page.next_cursor
    rest = list_incidents.sync(client=cms, limit=1, cursor=page.next_cursor)
    assert rest.next_cursor is None
    assert {page.items[0].id, rest.items[0].id} == {first, second.parsed.id}


def subscribe(client: Generated, cms: Any) -> None:
    models = client.models
    body = models.NewSubscription(url="http://127.0.0.1:9/hooks", types=["expulsion.reported"])
    created = client.operation("subscriptions", "create_subscription").sync(client=cms, body=body)
    assert isinstance(created, models.CreatedSubscription)
    assert created.secret.startswith("whsec_")
    read = client.operation("subscriptions", "get_subscription").sync(created.id, client=cms)
    assert (read.url, read.types) == ("http://127.0.0.1:9/hooks", ["expulsion.reported"])


def send_a_batch(client: Generated, cms: Any) -> None:
    lines = b"".join(
        b'{"kind": "expulsion", "occurred_on": "2022-04-19", "expelling": "RU", '
        b'"expelled": "%s", "count": 4, "sources": [{"outlet": "AFP"}]}\n' % code
        for code in (b"AT", b"DE")
    )
    body = client("types").File(payload=io.BytesIO(lines), mime_type="application/x-ndjson")
    done = client.operation("incidents", "report_incident_batch").sync(client=cms, body=body)
    assert isinstance(done, client.models.BatchResult)
    assert [item.line for item in done.items] == [1, 2]
