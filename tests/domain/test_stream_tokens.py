"""Stream tokens: signed, bound to a key and a deadline, worthless when altered."""

from __future__ import annotations

import base64
import time

import pytest

from service.http.stream_tokens import LIFETIME_SECONDS, issue, key_of


def test_a_token_names_its_key_until_it_expires() -> None:
    now = time.time()
    token, expires = issue("secret", "browser-app", now)
    assert token.startswith("lst_")
    assert expires == int(now) + LIFETIME_SECONDS == int(now) + 300
    assert key_of("secret", token, now) == "browser-app"
    assert key_of("secret", token, expires - 1) == "browser-app"
    assert key_of("secret", token, expires) is None


def _forged_name(token: str) -> str:
    payload, mac = token.removeprefix("lst_").split(".")
    claims = base64.urlsafe_b64decode(payload + "==").replace(b"browser-app", b"admin-keyxx")
    return "lst_" + base64.urlsafe_b64encode(claims).decode().rstrip("=") + "." + mac


@pytest.mark.parametrize(
    "alter",
    [
        _forged_name,
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        lambda token: token.removeprefix("lst_"),
        lambda token: token.split(".")[0],
        lambda token: "lst_!!!.???",
        lambda token: "",
    ],
)
def test_an_altered_token_names_no_key(alter: object) -> None:
    token, _ = issue("secret", "browser-app")
    assert callable(alter)
    assert key_of("secret", alter(token)) is None


def test_a_token_made_under_another_key_secret_names_no_key() -> None:
    token, _ = issue("one secret", "browser-app")
    assert key_of("another secret", token) is None
