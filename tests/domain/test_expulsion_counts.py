"""Expulsions as the sources give them: no number, a range, an open range, joint parties."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from service.incidents.catalogue import Expulsion, Report
from service.incidents.content import actors, disputed
from service.incidents.domain import Correction, decide_correction, decide_report, reported
from service.incidents.errors import Invalid as InvalidInput
from tests.factories import expulsion

AT = datetime(2022, 4, 19, 9, 30, tzinfo=UTC)


def decided(**changes: Any) -> Expulsion:
    incident = decide_report(msgspec.convert(expulsion(**changes), Report))
    assert isinstance(incident, Expulsion)
    return incident


def corrected(incident: Expulsion, **changes: Any) -> Expulsion:
    state = reported(uuid.uuid4(), incident, 1, AT)
    result = decide_correction(state, Correction(changes=changes)).incident
    assert isinstance(result, Expulsion)
    return result


def refused(body: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidInput) as refusal:
        decide_report(msgspec.convert(body, Report))
    return [error.field for error in refusal.value.errors or ()]


def test_a_report_without_a_number_is_uncounted_not_zero() -> None:
    incident = decided(count=None)
    assert (incident.count, incident.count_range) == (None, None)
    assert not disputed(incident)


def test_a_range_open_at_the_top_is_at_least_its_low_and_disputed() -> None:
    incident = decided(count=None, count_range=[201, None])
    assert incident.count_range == (201, None)
    assert disputed(incident)
    assert not disputed(decided(count=12, count_range=[12, 12]))
    assert disputed(decided(count=250, count_range=[201, None]))


def test_joint_parties_are_canonical_and_among_the_actors() -> None:
    incident = decided(expelling="de", joint_expelling=["fra"], expelled="RU", count=75)
    assert (incident.expelling, incident.joint_expelling) == ("DE", ("FR",))
    assert actors(incident) == ("DE", "FR", "RU")
    both = decided(expelling="RU", expelled="BE", joint_expelled=["NL", "LU"], count=3)
    assert actors(both) == ("BE", "LU", "NL", "RU")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (expulsion(count=None, count_range=[21, 12]), ["count_range"]),
        (expulsion(count=30, count_range=[12, 21]), ["count_range"]),
        (expulsion(count=5, count_range=[12, None]), ["count_range"]),
        (expulsion(joint_expelling=["NL"]), ["joint_expelling[0]"]),
        (expulsion(joint_expelled=["FR", "FRA"]), ["joint_expelled[1]"]),
        (expulsion(joint_expelling=["FR"], joint_expelled=["FR"]), ["joint_expelled[0]"]),
        (expulsion(joint_expelling=["XX", "RU"]), ["joint_expelling[0]", "joint_expelling[1]"]),
    ],
)
def test_ranges_out_of_order_and_actors_named_twice_are_refused(
    body: dict[str, Any], fields: list[str]
) -> None:
    assert refused(body) == fields


def test_corrections_move_an_incident_between_counted_uncounted_disputed_and_joint() -> None:
    incident = decided(expelling="DE", expelled="RU", count=40)
    uncounted = corrected(incident, count=None)
    assert (uncounted.count, uncounted.count_range) == (None, None)
    ranged = corrected(uncounted, count_range=[40, None])
    assert disputed(ranged)
    joint = corrected(ranged, joint_expelling=["FR"], count=75, count_range=None)
    assert (joint.count, joint.joint_expelling, disputed(joint)) == (75, ("FR",), False)
    alone = corrected(joint, joint_expelling=None)
    assert alone.joint_expelling == ()


def test_a_correction_that_breaks_a_rule_names_the_changed_field() -> None:
    incident = decided(expelling="DE", expelled="RU", count=40, joint_expelling=["FR"])
    state = reported(uuid.uuid4(), incident, 1, AT)
    with pytest.raises(InvalidInput) as refusal:
        decide_correction(state, Correction(changes={"joint_expelled": ["FR"]}))
    assert [error.field for error in refusal.value.errors or ()] == ["changes.joint_expelled[0]"]
    with pytest.raises(InvalidInput) as refusal:
        decide_correction(state, Correction(changes={"count_range": [41, 50]}))
    assert [error.field for error in refusal.value.errors or ()] == ["changes.count_range"]
