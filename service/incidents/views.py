"""Incident views: an incident's content flattened with its life in the log."""

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from service.incidents.catalogue import Expulsion, SanctionsRound, TerritorialControl
from service.incidents.content import disputed
from service.incidents.domain import CorrectionNote, IncidentState, RetractionNote, Status

# msgspec Structs take fields from one base only, so each view repeats the
# lifecycle fields after its kind's content.


class ExpulsionView(Expulsion, frozen=True, kw_only=True):
    """An expulsion as readers see it."""

    id: UUID
    status: Status
    disputed: bool
    version: int
    reported_at: datetime
    updated_at: datetime
    corrections: tuple[CorrectionNote, ...]
    retraction: RetractionNote | None = None


class SanctionsRoundView(SanctionsRound, frozen=True, kw_only=True):
    """A sanctions round as readers see it."""

    id: UUID
    status: Status
    disputed: bool
    version: int
    reported_at: datetime
    updated_at: datetime
    corrections: tuple[CorrectionNote, ...]
    retraction: RetractionNote | None = None


class TerritorialControlView(TerritorialControl, frozen=True, kw_only=True):
    """A report of territorial control as readers see it."""

    id: UUID
    status: Status
    disputed: bool
    version: int
    reported_at: datetime
    updated_at: datetime
    corrections: tuple[CorrectionNote, ...]
    retraction: RetractionNote | None = None


IncidentView = ExpulsionView | SanctionsRoundView | TerritorialControlView
_VIEW_OF: dict[type[Any], type[Any]] = {
    Expulsion: ExpulsionView,
    SanctionsRound: SanctionsRoundView,
    TerritorialControl: TerritorialControlView,
}


def incident_view(state: IncidentState) -> IncidentView:
    """The view of an incident served over HTTP."""
    view: IncidentView = _VIEW_OF[type(state.incident)](
        **msgspec.structs.asdict(state.incident),
        id=state.id,
        status=state.status,
        disputed=disputed(state.incident),
        version=state.version,
        reported_at=state.reported_at,
        updated_at=state.updated_at,
        corrections=state.corrections,
        retraction=state.retraction,
    )
    return view
