"""Subscription secrets sealed at rest: each opens only for its row and key secret."""

from __future__ import annotations

import uuid

import pytest

from service.subscribers.cloud_events import new_secret
from service.subscribers.sealing import SecretUnreadable, seal, unseal


def test_a_sealed_secret_opens_only_for_its_subscription_and_key_secret() -> None:
    one, other, secret = uuid.uuid4(), uuid.uuid4(), new_secret()
    sealed = seal("key secret", one, secret)
    assert unseal("key secret", one, sealed) == secret
    assert seal("key secret", one, secret) != sealed  # a fresh nonce each time
    with pytest.raises(SecretUnreadable):
        unseal("key secret", other, sealed)  # copied onto another row
    with pytest.raises(SecretUnreadable):
        unseal("another key secret", one, sealed)
