"""Standings answered from memory: encoded bodies keyed by what they were computed at.

A standing at a given log position (and as_of date) never changes, so its body
and ETag can be kept as long as anyone asks; the key includes the position, so
a new append simply leads to new keys and old ones age out.
"""

import hashlib
from collections import OrderedDict
from collections.abc import Hashable

import msgspec


class Cached(msgspec.Struct, frozen=True):
    """An encoded JSON body and its ETag."""

    body: bytes
    etag: str


def cached(body: bytes) -> Cached:
    """A body with its content-derived (strong) ETag."""
    return Cached(body, f'"{hashlib.blake2b(body, digest_size=8).hexdigest()}"')


class ResponseCache:
    """A small LRU of encoded responses."""

    def __init__(self, capacity: int = 2048) -> None:
        self._entries: OrderedDict[Hashable, Cached] = OrderedDict()
        self._capacity = capacity

    def get(self, key: Hashable) -> Cached | None:
        """The cached response for `key`, if any (and mark it recently used)."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: Hashable, entry: Cached) -> None:
        """Keep `entry`, evicting the least recently used beyond capacity."""
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
