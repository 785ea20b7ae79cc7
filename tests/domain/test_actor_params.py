"""One check turns a user-given actor code into the canonical one, or names what is wrong."""

from __future__ import annotations

import pytest

from service.http.actor_params import actor_param, actor_params
from service.http.problems import FieldError, InvalidInput
from service.incidents.actors import NotAnActor, canonical_actor


def test_canonical_actor_codes() -> None:
    assert canonical_actor(" rus ") == "RU"
    assert canonical_actor("nato") == "NATO"


def test_a_code_that_names_no_actor_is_refused_with_it() -> None:
    with pytest.raises(NotAnActor) as refused:
        canonical_actor("XX")
    assert refused.value.value == "XX"
    assert str(refused.value) == "'XX' is not an actor code"


def test_a_parameter_names_the_codes_it_takes() -> None:
    assert actor_param("nld", "code") == "NL"
    with pytest.raises(InvalidInput) as refused:
        actor_param("XX", "counterpart")
    message = "is not an ISO 3166-1 code, EU, NATO or UN"
    assert refused.value.detail == f"counterpart: {message}"
    assert refused.value.errors == [FieldError("counterpart", message)]


def test_a_list_of_codes_quotes_each_wrong_one() -> None:
    codes, errors = actor_params(["xx", "bel", "yy"], "country")
    assert codes == ["BE"]
    assert errors == [
        FieldError("country", "'xx' is not an actor code"),
        FieldError("country", "'yy' is not an actor code"),
    ]
