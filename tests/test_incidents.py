"""The pure rules of an incident stream: decide and evolve, no database."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import msgspec
import pytest

from service.events import Expulsion, Metadata, RecordedEvent, Report, encode_data
from service.incidents import (
    Correction,
    decide_correction,
    decide_report,
    disputed,
    evolve,
    fold,
    keyed_event_id,
    report_event,
    reported,
    stream_name,
)
from service.problems import InvalidInput
from tests.factories import expulsion

AT = datetime(2022, 4, 19, 9, 30, tzinfo=UTC)
META = Metadata(actor="newsroom", correlation_id="r-1")


def a_report(**changes: Any) -> Report:
    return msgspec.convert(expulsion(**changes), Report)


def recorded(incident_id: uuid.UUID, version: int, event_type: str, data: Any) -> RecordedEvent:
    return RecordedEvent(
        position=version,
        id=uuid.uuid4(),
        stream=stream_name(incident_id),
        version=version,
        type=event_type,
        schema_version=1,
        occurred_on=None,
        recorded_at=AT,
        data=encode_data(data),
        metadata=msgspec.Raw(b"{}"),
    )


def test_actor_codes_are_canonical_alpha_2() -> None:
    incident = decide_report(a_report(expelling="rus", expelled="Nld"))
    assert (incident.expelling, incident.expelled) == ("RU", "NL")
    assert decide_report(a_report(expelling="eu")).expelling == "EU"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"expelling": "ZZ"}, "expelling"),
        ({"expelled": "XYZ"}, "expelled"),
        ({"expelling": "nl"}, "expelled"),
        ({"expelling": "NLD"}, "expelled"),
        ({"count": 30, "count_range": [12, 21]}, "count_range"),
        ({"count": 5, "count_range": [12, 21]}, "count_range"),
    ],
)
def test_reports_that_break_a_rule_are_refused(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        decide_report(a_report(**changes))
    assert [error.field for error in refused.value.errors or []] == [field]


def test_a_count_inside_its_range_is_disputed() -> None:
    incident = decide_report(a_report(count=21, count_range=[12, 21]))
    assert disputed(incident)
    assert not disputed(decide_report(a_report()))


def test_a_count_below_one_never_decodes() -> None:
    with pytest.raises(msgspec.ValidationError):
        a_report(count=0)


def test_a_correction_is_validated_as_a_whole_incident() -> None:
    state = reported(uuid.uuid4(), decide_report(a_report()), 1, AT)
    with pytest.raises(InvalidInput) as refused:
        decide_correction(state, Correction(changes={"expelled": "ru"}))
    assert refused.value.errors
    assert refused.value.errors[0].field == "changes.expelled"
    with pytest.raises(InvalidInput):
        decide_correction(state, Correction(changes={"count": -1}))
    with pytest.raises(InvalidInput):
        decide_correction(state, Correction(changes={}))


def test_a_correction_can_remove_an_optional_field_with_null() -> None:
    state = reported(uuid.uuid4(), decide_report(a_report()), 1, AT)
    change = decide_correction(state, Correction(changes={"deadline": None, "count": 12}))
    assert change.incident.deadline is None
    assert change.incident.count == 12
    assert change.changes == {"deadline": None, "count": 12}


def test_evolve_folds_a_report_and_its_corrections() -> None:
    incident_id = uuid.uuid4()
    incident = decide_report(a_report(count=21))
    state = reported(incident_id, incident, 1, AT)
    change = decide_correction(state, Correction(changes={"count": 12}, note="ministry says 12"))
    events = [
        recorded(incident_id, 1, "expulsion.reported", incident),
        recorded(incident_id, 2, "incident.corrected", change),
    ]
    folded = fold(events)
    assert folded is not None
    assert (folded.id, folded.version, folded.incident.count) == (incident_id, 2, 12)
    assert folded.corrections[0].note == "ministry says 12"
    assert folded.incident.occurred_on == date(2022, 4, 18)
    assert fold([]) is None


def test_evolve_refuses_a_correction_before_the_report() -> None:
    incident_id = uuid.uuid4()
    state = reported(incident_id, decide_report(a_report()), 1, AT)
    change = decide_correction(state, Correction(changes={"count": 3}))
    with pytest.raises(ValueError, match="precedes its report"):
        evolve(None, recorded(incident_id, 1, "incident.corrected", change))


def test_report_ids_are_deterministic_where_a_retry_must_be_recognised() -> None:
    incident = decide_report(a_report())
    keyed = msgspec.structs.replace(META, idempotency_key="k-1")
    first_id, first = report_event(None, incident, keyed)
    again_id, again = report_event(None, incident, keyed)
    assert (first_id, first.id) == (again_id, again.id)
    assert first.id == keyed_event_id("newsroom", "k-1")
    chosen = uuid.uuid4()
    one_id, one = report_event(chosen, incident, META)
    two_id, two = report_event(chosen, incident, META)
    assert one_id == two_id == chosen
    assert one.id == two.id
    assert report_event(None, incident, META)[0] != report_event(None, incident, META)[0]
    assert first.countries == ("NL", "RU")
    assert first.type == "expulsion.reported"


def test_the_event_data_is_the_incident_without_the_client_id() -> None:
    incident = decide_report(a_report(id=str(uuid.uuid4())))
    assert isinstance(incident, Expulsion)
    assert not hasattr(incident, "id")
