"""Chart rendering: a fresh (uncached) render of the seed chart and of a 1,000-incident pair.

Each render reads the incidents as known at the log's position, builds the
Vega-Lite specification and renders it to SVG with vl-convert, as the chart route
does when the answer cache has nothing for the position. The median and the
slowest of the timed renders are printed, after one warm-up render.
Run: python -m bench.charts [--renders N] [--incidents N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

from bench.common import scratch_database
from service.charts import drawing
from service.charts.drawing import Subject
from service.log.database import connect
from service.ops.demo import load_demo
from service.ops.imports import import_file
from service.projections.projector import project_batch
from service.projections.standings import At

SVG = "image/svg+xml"


async def _projected(dsn: str) -> int:
    """Fold the whole log into the read models; the position they reach."""
    conn = await connect(dsn)
    try:
        position, previous = 0, -1
        while position != previous:
            previous, position = position, await project_batch(conn)
        return position
    finally:
        await conn.close()


def _pair_reports(incidents: int) -> str:
    """NDJSON: `incidents` expulsions between RU and US, alternating, a day apart, some
    disputed, some with no number, each responding to the one before."""
    lines = []
    start = date(2020, 1, 1)
    for n in range(incidents):
        by, of = ("RU", "US") if n % 2 else ("US", "RU")
        report: dict[str, object] = {
            "kind": "expulsion",
            "occurred_on": (start + timedelta(days=n)).isoformat(),
            "expelling": by,
            "expelled": of,
            "sources": [{"outlet": f"Wire {n}", "url": f"https://example.org/{n}"}],
        }
        if n % 10 == 3:
            report["count_range"] = [2, 6]
        elif n % 10 != 7:
            report["count"] = 1 + n % 5
        lines.append(json.dumps(report))
    return "\n".join(lines) + "\n"


async def _timed(dsn: str, subject: Subject, side: str | None, renders: int) -> list[float]:
    """Seconds per fresh render of `subject`'s SVG (the first, a warm-up, not counted)."""
    conn = await connect(dsn)
    try:
        at = At(await _projected(dsn), None, side)
        times = []
        for _ in range(renders + 1):
            started = time.perf_counter()
            chart = await drawing.drawn(conn, at, subject)
            svg = await drawing.body(chart, SVG)
            times.append(time.perf_counter() - started)
            assert svg.startswith(b"<svg")
        return times[1:]
    finally:
        await conn.close()


def _line(name: str, times: Sequence[float]) -> str:
    median, slowest = statistics.median(times) * 1000, max(times) * 1000
    return (
        f"{name:<44} median {median:7.1f} ms   slowest {slowest:7.1f} ms   ({len(times)} renders)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.charts", description=__doc__)
    parser.add_argument("--renders", type=int, default=20, help="timed renders each (20)")
    parser.add_argument("--incidents", type=int, default=1000, help="in the big pair (1000)")
    args = parser.parse_args(argv)
    with scratch_database("_charts") as dsn:
        asyncio.run(load_demo(dsn))
        seed = asyncio.run(_timed(dsn, Subject("EU", "RU"), "EU", args.renders))
    with scratch_database("_pair") as dsn, TemporaryDirectory() as tmp:
        path = Path(tmp) / "pair.ndjson"
        path.write_text(_pair_reports(args.incidents))
        asyncio.run(import_file(dsn, path))
        big = asyncio.run(_timed(dsn, Subject("RU", "US"), None, args.renders))
    print(_line("seed chart (EU side and RU), SVG", seed))
    print(_line(f"{args.incidents:,}-incident pair (RU and US), SVG", big))
    return 0


if __name__ == "__main__":
    sys.exit(main())
