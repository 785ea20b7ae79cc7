"""JSON logs: one object per line, with the fields a record carries in `extra={"fields": ...}`."""

import json
import logging
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    """Formats a log record as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON: time, level, logger, message, fields, exception."""
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: int = logging.INFO, access_log: bool = False) -> None:
    """Send every log record to stderr as JSON; the per-request access log only if asked.

    httpx notes each request it makes (every webhook attempt) at INFO: that is an access
    log too, of outgoing requests, and each attempt is in the deliveries table anyway."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.captureWarnings(True)  # a library's warning is a log line too, not bare text
    for name in ("legation.access", "httpx"):
        logging.getLogger(name).setLevel(logging.INFO if access_log else logging.WARNING)
