"""Lists as RFC 4180 CSV: a header row, then one row per item, nested fields flattened.

The columns follow from the item's type, so a field added to a view is a column
without more code (a type this module cannot flatten fails the first CSV answer
and the tests, not silently). Cells hold what the JSON answer holds:
- a nested object's fields are `<field>_<name>` columns (`place_name`), except the
  groups of a standing, whose figures are known by their own names (`?sort=`);
- a `<name>_range` pair is two columns, `<name>_low` and `<name>_high`;
- a list of codes, ids or labels is one cell joined by "; " (`FR; DE`);
- sources are their outlets joined the same way, corrections their number;
- null is an empty cell, booleans `true`/`false`, dates and instants as in JSON;
- text that a spreadsheet would run as a formula (it starts with `=`, `+`, `-`, `@`, a
  tab or a carriage return: a summary or an outlet as a newsroom typed it) starts with
  `'`, which shows it as the text it is (OWASP's advice on CSV injection); numbers,
  a negative balance included, are never changed.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Callable, Iterator
from typing import Any, Final, NamedTuple

import msgspec
import msgspec.inspect as types

from service.incidents.catalogue import Source
from service.incidents.domain import CorrectionNote

JOIN: Final = "; "
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
# The figures of a standing's groups are known by their own names (`?sort=balance`).
UNPREFIXED: Final = frozenset({"expulsions", "sanctions", "territory"})
LEADING: Final = ("id", "kind")  # first, wherever the type declares them
# Lists of objects, each said in one cell.
SUMMARIES: Final[dict[type[Any], Callable[[list[Any]], str]]] = {
    Source: lambda sources: JOIN.join(_text(source["outlet"]) for source in sources),
    CorrectionNote: lambda notes: str(len(notes)),
}
Step = str | int  # a key into an object, or an index into a range


class Column(NamedTuple):
    """A column: its name, where its cell is in an item, and how a list there is said."""

    name: str
    path: tuple[Step, ...]
    summary: Callable[[list[Any]], str] | None = None


@functools.cache
def columns(page: type[msgspec.Struct]) -> tuple[Column, ...]:
    """The columns of a page type's `items`, in order, each name once."""
    info = types.type_info(page)
    assert isinstance(info, types.StructType), page
    items = next(field for field in info.fields if field.name == "items")
    assert isinstance(items.type, types.ListType), page
    found: dict[str, Column] = {}
    for column in _flatten(items.type.item_type, (), ""):
        if found.setdefault(column.name, column) != column:
            raise TypeError(f"{page.__name__}: two columns named {column.name!r}")
    first = {name: rank for rank, name in enumerate(LEADING)}
    return tuple(sorted(found.values(), key=lambda c: first.get(c.name, len(LEADING))))


def header(page: type[msgspec.Struct]) -> str:
    """The header row of a page type's CSV, for the OpenAPI document."""
    return ",".join(column.name for column in columns(page))


def encode(page: msgspec.Struct) -> bytes:
    """The page's items as CSV (CRLF line ends), with a header row."""
    table = columns(type(page))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(column.name for column in table)
    for item in msgspec.to_builtins(page.items):  # type: ignore[attr-defined]
        writer.writerow(_cell(item, column) for column in table)
    return out.getvalue().encode()


def _flatten(kind: types.Type, path: tuple[Step, ...], name: str) -> Iterator[Column]:
    """The columns of a value at `path`: `name` is its column's, or its fields' prefix."""
    kind = _unwrapped(kind)
    if isinstance(kind, types.UnionType):  # optional, or one of several kinds of item
        merged: list[Column] = []
        for member in kind.types:
            merged = _merged(merged, list(_flatten(member, path, name)))
        yield from merged
    elif isinstance(kind, types.StructType):
        yield from _fields(kind, path, name)
    elif not isinstance(kind, types.NoneType):
        yield _leaf(kind, path, name)


def _fields(kind: types.StructType, path: tuple[Step, ...], prefix: str) -> Iterator[Column]:
    if kind.tag_field is not None:
        yield Column(prefix + kind.tag_field, (*path, kind.tag_field))
    for field in kind.fields:
        at, name, value = (*path, field.encode_name), field.encode_name, _unwrapped(field.type)
        if _is_range(name, value):
            stem = prefix + name.removesuffix("_range")
            yield Column(f"{stem}_low", (*at, 0))
            yield Column(f"{stem}_high", (*at, 1))
        elif isinstance(_present(value), types.StructType):
            yield from _flatten(value, at, prefix if name in UNPREFIXED else f"{prefix}{name}_")
        else:
            yield from _flatten(value, at, prefix + name)


def _merged(columns: list[Column], more: list[Column]) -> list[Column]:
    """`columns` and those of `more` it lacks, each placed before the next one both have:
    the fields of each kind of incident stay together, ahead of the fields all share."""
    merged, waiting = list(columns), list[Column]()
    for column in more:
        names = [known.name for known in merged]
        if column.name in names:
            at = names.index(column.name)
            if merged[at] != column:
                raise TypeError(f"two columns named {column.name!r}")
            merged[at:at], waiting = waiting, []
        else:
            waiting.append(column)
    return merged + waiting


def _leaf(kind: types.Type, path: tuple[Step, ...], name: str) -> Column:
    if isinstance(kind, (types.ListType, types.VarTupleType)):
        listed = _unwrapped(kind.item_type)
        if isinstance(listed, types.StructType):
            if listed.cls not in SUMMARIES:
                raise TypeError(f"{name}: no way to say a list of {listed.cls.__name__} in a cell")
            return Column(name, path, SUMMARIES[listed.cls])
        return Column(name, path, _joined)
    if isinstance(kind, (types.DictType, types.TupleType, types.AnyType)):
        raise TypeError(f"{name}: no column for {kind}")
    return Column(name, path)


def _is_range(name: str, kind: types.Type) -> bool:
    kind = _present(kind)
    return name.endswith("_range") and isinstance(kind, types.TupleType)


def _present(kind: types.Type) -> types.Type:
    """The type of a value that may be null, when it is not."""
    if isinstance(kind, types.UnionType):
        members = [_unwrapped(m) for m in kind.types if not isinstance(m, types.NoneType)]
        if len(members) == 1:
            return members[0]
    return kind


def _unwrapped(kind: types.Type) -> types.Type:
    return kind.type if isinstance(kind, types.Metadata) else kind


def _joined(values: list[Any]) -> str:
    return JOIN.join(_text(value) for value in values)


def _cell(item: dict[str, Any], column: Column) -> str:
    value: Any = item
    for step in column.path:
        if value is None:
            return ""
        value = value[step] if isinstance(step, int) else value.get(step)
    if value is None:
        return ""
    return column.summary(value) if column.summary is not None else _text(value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return str(value)
