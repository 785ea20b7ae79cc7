"""The pure rules of an incident stream: decide and evolve, no database."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import msgspec
import pytest

from service.incidents.catalogue import (
    Expulsion,
    Report,
    SanctionsRound,
    Source,
    TerritorialControl,
)
from service.incidents.content import actors, disputed
from service.incidents.domain import (
    Correction,
    IncidentAlreadyRetracted,
    IncidentState,
    Retraction,
    decide_correction,
    decide_report,
    decide_retraction,
    decide_source,
    evolve,
    fold,
    keyed_event_id,
    report_event,
    reported,
    stream_name,
)
from service.incidents.errors import Invalid as InvalidInput
from service.log.envelope import Metadata, RecordedEvent, encode_data
from tests.factories import expulsion, sanctions_round, territorial_control

AT = datetime(2022, 4, 19, 9, 30, tzinfo=UTC)
META = Metadata(actor="newsroom", correlation_id="r-1")


def a_report(body: dict[str, Any]) -> Report:
    report: Report = msgspec.convert(body, Report)
    return report


def an_expulsion(**changes: Any) -> Expulsion:
    incident = decide_report(a_report(expulsion(**changes)))
    assert isinstance(incident, Expulsion)
    return incident


def a_state(body: dict[str, Any] | None = None) -> IncidentState:
    return reported(uuid.uuid4(), decide_report(a_report(body or expulsion())), 1, AT)


def refused_fields(body: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidInput) as refused:
        decide_report(a_report(body))
    return [error.field for error in refused.value.errors or []]


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
    incident = an_expulsion(expelling="rus", expelled="Nld")
    assert (incident.expelling, incident.expelled) == ("RU", "NL")
    assert an_expulsion(expelling="eu").expelling == "EU"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (expulsion(expelling="ZZ"), "expelling"),
        (expulsion(expelled="XYZ"), "expelled"),
        (expulsion(expelling="nl"), "expelled"),
        (expulsion(expelling="NLD"), "expelled"),
        (expulsion(count=30, count_range=[12, 21]), "count_range"),
        (expulsion(count=5, count_range=[12, 21]), "count_range"),
        (expulsion(deadline="2022-04-01"), "deadline"),
        (sanctions_round(target="EU"), "target"),
        (sanctions_round(imposing="QQ"), "imposing"),
        (territorial_control(previous_controller="RU"), "previous_controller"),
        (territorial_control(controller="Atlantis"), "controller"),
        (territorial_control(place={"name": "Kreminna", "country": "EU"}), "place.country"),
        (
            territorial_control(place={"name": "Kreminna", "country": "UA", "region": "RU-MOW"}),
            "place.region",
        ),
        (
            territorial_control(place={"name": "Kreminna", "country": "UA", "region": "UA-99"}),
            "place.region",
        ),
    ],
)
def test_reports_that_break_a_rule_are_refused(body: dict[str, Any], field: str) -> None:
    assert refused_fields(body) == [field]


def test_every_broken_rule_is_named_at_once() -> None:
    assert refused_fields(expulsion(expelling="ZZ", count_range=[1, 2], count=3)) == [
        "expelling",
        "count_range",
    ]


def test_a_count_below_one_never_decodes() -> None:
    with pytest.raises(msgspec.ValidationError, match="count"):
        a_report(expulsion(count=0))


def test_a_count_inside_its_range_is_disputed() -> None:
    assert disputed(an_expulsion(count=21, count_range=[12, 21]))
    assert not disputed(an_expulsion())
    assert not disputed(decide_report(a_report(sanctions_round())))


def test_territorial_control_accepts_contested_and_canonical_places() -> None:
    body = territorial_control(
        controller="Contested",
        place={"name": "Kreminna", "country": "ukr", "region": "ua-09"},
    )
    incident = decide_report(a_report(body))
    assert isinstance(incident, TerritorialControl)
    assert incident.controller == "contested"
    assert (incident.place.country, incident.place.region) == ("UA", "UA-09")
    assert actors(incident) == ("UA",)


def test_actors_name_every_country_an_incident_involves() -> None:
    assert actors(an_expulsion()) == ("NL", "RU")
    assert actors(decide_report(a_report(sanctions_round()))) == ("EU", "RU")
    assert actors(decide_report(a_report(territorial_control()))) == ("RU", "UA")


def test_a_correction_is_validated_as_a_whole_incident() -> None:
    state = a_state()
    with pytest.raises(InvalidInput) as refused:
        decide_correction(state, Correction(changes={"expelled": "ru"}))
    assert refused.value.errors
    assert refused.value.errors[0].field == "changes.expelled"
    for changes in ({"count": -1}, {}, {"colour": "red"}, {"responds_to": [str(state.id)]}):
        with pytest.raises(InvalidInput):
            decide_correction(state, Correction(changes=changes))


def test_a_correction_can_remove_an_optional_field_with_null() -> None:
    change = decide_correction(a_state(), Correction(changes={"deadline": None, "count": 12}))
    assert isinstance(change.incident, Expulsion)
    assert change.incident.deadline is None
    assert change.incident.count == 12
    assert change.changes == {"deadline": None, "count": 12}


def test_a_correction_can_change_the_kind_and_the_roles() -> None:
    state = a_state()
    to_sanctions = Correction(changes={"kind": "sanctions_round", "imposing": "RU", "target": "NL"})
    change = decide_correction(state, to_sanctions)
    assert isinstance(change.incident, SanctionsRound)
    assert (change.incident.imposing, change.incident.target) == ("RU", "NL")
    assert change.incident.sources == state.incident.sources
    swapped = decide_correction(state, Correction(changes={"expelling": "NL", "expelled": "RU"}))
    assert actors(swapped.incident) == ("NL", "RU")
    with pytest.raises(InvalidInput):  # the new kind's required fields must be given
        decide_correction(state, Correction(changes={"kind": "sanctions_round"}))


def test_a_retracted_incident_cannot_be_corrected_or_retracted_again() -> None:
    incident_id = uuid.uuid4()
    report = decide_report(a_report(expulsion()))
    retraction = decide_retraction(a_state(), Retraction(note="duplicate"))
    state = fold(
        [
            recorded(incident_id, 1, "expulsion.reported", report),
            recorded(incident_id, 2, "incident.retracted", retraction),
        ]
    )
    assert state is not None
    assert state.status == "retracted"
    assert state.retraction is not None
    assert state.retraction.note == "duplicate"
    with pytest.raises(IncidentAlreadyRetracted):
        decide_correction(state, Correction(changes={"count": 3}))
    with pytest.raises(IncidentAlreadyRetracted):
        decide_retraction(state, Retraction())


def test_an_incident_cannot_be_a_duplicate_of_itself() -> None:
    state = a_state()
    with pytest.raises(InvalidInput, match="duplicate_of"):
        decide_retraction(state, Retraction(duplicate_of=state.id))
    other = uuid.uuid4()
    assert decide_retraction(state, Retraction(duplicate_of=other)).duplicate_of == other


def test_a_source_is_added_once() -> None:
    state = a_state()
    source = Source(outlet="Reuters", url="https://www.reuters.com/")
    added = decide_source(state, source)
    assert added is not None
    assert decide_source(state, state.incident.sources[0]) is None


def test_evolve_folds_a_report_and_its_lifecycle() -> None:
    incident_id = uuid.uuid4()
    incident = an_expulsion(count=21)
    state = reported(incident_id, incident, 1, AT)
    change = decide_correction(state, Correction(changes={"count": 12}, note="ministry says 12"))
    source = decide_source(state, Source(outlet="Reuters"))
    folded = fold(
        [
            recorded(incident_id, 1, "expulsion.reported", incident),
            recorded(incident_id, 2, "incident.corrected", change),
            recorded(incident_id, 3, "incident.source_added", source),
        ]
    )
    assert folded is not None
    assert isinstance(folded.incident, Expulsion)
    assert (folded.id, folded.version, folded.incident.count) == (incident_id, 3, 12)
    assert folded.corrections[0].note == "ministry says 12"
    assert [s.outlet for s in folded.incident.sources] == ["AFP", "Reuters"]
    assert folded.incident.occurred_on == date(2022, 4, 18)
    assert folded.status == "active"
    assert fold([]) is None


def test_evolve_refuses_an_event_before_the_report() -> None:
    incident_id = uuid.uuid4()
    change = decide_correction(a_state(), Correction(changes={"count": 3}))
    with pytest.raises(ValueError, match="precedes its report"):
        evolve(None, recorded(incident_id, 1, "incident.corrected", change))


def test_report_ids_are_deterministic_where_a_retry_must_be_recognised() -> None:
    incident = an_expulsion()
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


def test_a_report_cannot_respond_to_itself() -> None:
    chosen = uuid.uuid4()
    incident = an_expulsion(responds_to=[str(chosen)])
    with pytest.raises(InvalidInput, match="responds_to"):
        report_event(chosen, incident, META)


def test_the_event_data_is_the_incident_without_the_client_id() -> None:
    incident = an_expulsion(id=str(uuid.uuid4()))
    assert type(incident) is Expulsion
    assert "id" not in msgspec.to_builtins(incident)
