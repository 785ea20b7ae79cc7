"""Fixed-length arrays (`count_range: [low, high]`) in a form generators parse.

msgspec writes a tuple as prefixItems with `items: false`; openapi-python-client
refuses the whole document over that boolean schema. With maxItems equal to the
number of prefixItems, `items` applies to no element, so it may as well name what
every element is: any of the prefix schemas (generators read it as the item type).
"""

from typing import Any


def with_items(schema: Any) -> None:
    """Replace every redundant `items: false` in `schema` by the prefix schemas, in place."""
    if isinstance(schema, list):
        for item in schema:
            with_items(item)
        return
    if not isinstance(schema, dict):
        return
    prefix = schema.get("prefixItems")
    if schema.get("items") is False and prefix and schema.get("maxItems") == len(prefix):
        distinct = [item for n, item in enumerate(prefix) if item not in prefix[:n]]
        schema["items"] = distinct[0] if len(distinct) == 1 else {"anyOf": distinct}
    for value in schema.values():
        with_items(value)
