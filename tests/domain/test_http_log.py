"""Log lines are JSON with their fields."""

from __future__ import annotations


def test_logs_are_json_with_their_fields() -> None:
    import json
    import logging

    from service.ops.logs import JsonFormatter

    record = logging.LogRecord("legation.access", logging.INFO, __file__, 1, "request", None, None)
    record.fields = {"request_id": "r1", "status": 201}
    line = json.loads(JsonFormatter().format(record))
    assert (line["logger"], line["message"], line["request_id"], line["status"]) == (
        "legation.access",
        "request",
        "r1",
        201,
    )
