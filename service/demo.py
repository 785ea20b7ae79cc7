"""The bundled example incidents, loaded by `legation serve --demo`."""

import asyncio
from pathlib import Path

import msgspec

from service.database import connect
from service.events import Metadata, Report
from service.incidents import decide_report, report_event, stream_name
from service.store import append

DEMO_FILE = Path(__file__).resolve().parent.parent / "examples" / "april-2022.ndjson"
_decoder = msgspec.json.Decoder(Report)


async def load_demo(dsn: str, path: Path = DEMO_FILE) -> int:
    """Append the demo reports to an empty log; 0 if it already holds incidents."""
    lines = (await asyncio.to_thread(path.read_bytes)).splitlines()
    conn = await connect(dsn)
    try:
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM events)"):
            return 0
        meta = Metadata(actor="demo", correlation_id=f"demo:{path.name}")
        loaded = 0
        for line in lines:
            if not line.strip():
                continue
            report = _decoder.decode(line)
            incident_id, event = report_event(report.id, decide_report(report), meta)
            await append(conn, stream_name(incident_id), 0, [event])
            loaded += 1
        return loaded
    finally:
        await conn.close()
