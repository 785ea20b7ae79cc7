"""The projector's kind filter knows every incident kind."""

from __future__ import annotations

from typing import get_args

from service.http.routes.incidents import Kind
from service.incidents.catalogue import INCIDENT_KINDS


def test_the_kind_filter_knows_every_kind() -> None:
    assert set(get_args(Kind)) == set(INCIDENT_KINDS)
