"""The bundled example incidents, loaded by `legation serve --demo`."""

from pathlib import Path

from service.log.database import connect
from service.ops.imports import import_file

DEMO_FILE = Path(__file__).resolve().parents[2] / "examples" / "april-2022.ndjson"


async def load_demo(dsn: str, path: Path = DEMO_FILE) -> int:
    """Import the demo reports into an empty log; 0 if it already holds incidents."""
    conn = await connect(dsn)
    try:
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM events)"):
            return 0
    finally:
        await conn.close()
    summary = await import_file(dsn, path)
    if summary.failed:
        raise ValueError(f"{path} holds invalid reports: {summary.failed}")
    return summary.imported
