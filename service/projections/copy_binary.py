"""Values in PostgreSQL's binary COPY format, for loading rows of the read models.

asyncpg's copy_records_to_table encodes each value through a generic codec (an
ABC check per array, a Python call per jsonb) and took longer than building the
row; a rebuild writes millions of rows, and the live projector inserts a row or two
per new incident, so the read models put theirs together from these. Binary, not
text: the server then has no row to scan for escapes.
The format: https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4
"""

from __future__ import annotations

import datetime
import struct
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Final
from uuid import UUID

if TYPE_CHECKING:
    from service.log.store import Connection

SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # no flags, no header extension
TRAILER: Final = b"\xff\xff"
NULL: Final = b"\xff\xff\xff\xff"
TEXT_OID: Final = 25
UUID_OID: Final = 2950

_length = struct.Struct(">i").pack
_int4 = struct.Struct(">ii").pack
_dimension = struct.Struct(">iiiii").pack
_EPOCH: Final = datetime.date(2000, 1, 1).toordinal()  # PostgreSQL counts days from here
UUID_LENGTH: Final = _length(16)


async def insert(conn: Connection, table: str, columns: Sequence[str], rows: list[bytes]) -> None:
    """INSERT the rows (from the `copy_row` of `table`'s read model) by one binary COPY."""

    async def source() -> AsyncIterator[bytes]:
        yield b"".join((SIGNATURE, *rows, TRAILER))

    await conn.copy_to_table(table, columns=list(columns), source=source(), format="binary")


def fields(count: int) -> bytes:
    """What starts a row of `count` columns."""
    return struct.pack(">h", count)


def text(value: str) -> bytes:
    """A text value."""
    data = value.encode()
    return _length(len(data)) + data


def int4(value: int) -> bytes:
    """An integer value."""
    return _int4(4, value)


def uuids(values: Sequence[UUID]) -> bytes:
    """A uuid[] value."""
    return _array(UUID_OID, [UUID_LENGTH + value.bytes for value in values])


def jsonb(value: bytes) -> bytes:
    """A jsonb value from encoded JSON: format version 1, then the text."""
    return _length(len(value) + 1) + b"\x01" + value


class Repeated(dict[str | tuple[str, ...] | datetime.date, bytes]):
    """Values that recur row after row, each encoded once: a hit is a plain dict lookup.

    Kinds, statuses and actor codes (text), sets of actor codes (text[]), and
    the days incidents occur on (date): as many as the log has distinct ones.
    """

    def __missing__(self, key: str | tuple[str, ...] | datetime.date) -> bytes:
        if isinstance(key, str):
            encoded = text(key)
        elif isinstance(key, datetime.date):
            encoded = _int4(4, key.toordinal() - _EPOCH)
        else:
            encoded = _array(TEXT_OID, [text(value) for value in key])
        self[key] = encoded
        return encoded


REPEATED: Final = Repeated()


def _array(oid: int, elements: Sequence[bytes]) -> bytes:
    if not elements:
        return _length(12) + bytes(8) + _length(oid)  # no dimensions, no nulls
    body = b"".join(elements)
    # One dimension, no nulls, the element type, its length, lower bound 1.
    return _length(20 + len(body)) + _dimension(1, 0, oid, len(elements), 1) + body
