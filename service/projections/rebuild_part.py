"""A rebuild's fold in parts, each in a process (and on a core) of its own.

The fold is Python-bound, so on a large log `legation rebuild` splits the
streams into parts and starts `python -m service.projections.rebuild_part` for
each. A part sends each page's COPY rows on its stdout as a frame (FRAME, then
the rows); the rebuild hands them to its one COPY per table, which keeps FREEZE.
A part's arguments are its index, the number of parts and the head; the DSN
comes in the environment (PART_DSN), out of the process list.
"""

from __future__ import annotations

import asyncio
import gc
import os
import struct
import sys
from collections.abc import Callable
from typing import BinaryIO, Final

from service.log.database import connect
from service.projections.rebuild_fold import Deliver, Part, fold_into, start_fold

PART_DSN: Final = "LEGATION_REBUILD_DSN"
# Before each page's rows: their lengths (incidents, incident_versions) and the position reached.
FRAME: Final = struct.Struct(">IIq")
END: Final = -1  # the position of the frame that ends a part's rows
READ_LIMIT: Final = 1 << 20  # bytes of a part's frames read ahead


async def fold_in_processes(
    dsn: str, head: int, count: int, deliver_for: Callable[[Part], Deliver]
) -> None:
    """Fold the log up to `head` in `count` parts, delivering each part's rows as they come."""
    parts = [Part(index, count) for index in range(count)]
    processes: list[asyncio.subprocess.Process] = []
    try:
        for part in parts:
            processes.append(await _start(dsn, head, part))
        async with asyncio.TaskGroup() as tasks:
            for process, part in zip(processes, parts, strict=True):
                tasks.create_task(_relay(process, part, deliver_for(part)))
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def _start(dsn: str, head: int, part: Part) -> asyncio.subprocess.Process:
    arguments = (str(part.index), str(part.count), str(head))
    # -P: this package as installed, never a `service` in the current directory.
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-P", "-m", __name__, *arguments),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, PART_DSN: dsn},
        limit=READ_LIMIT,
    )


async def _relay(process: asyncio.subprocess.Process, part: Part, deliver: Deliver) -> None:
    """Deliver a part's rows as its process sends them, up to its last frame."""
    frames = process.stdout
    assert frames is not None  # started with stdout=PIPE
    position = 0
    try:
        while True:
            lengths = FRAME.unpack(await frames.readexactly(FRAME.size))
            incident_length, version_length, position = lengths
            if position == END:
                break
            incident_rows = await frames.readexactly(incident_length)
            await deliver(incident_rows, await frames.readexactly(version_length), position)
    except asyncio.IncompleteReadError:
        pass  # the part ended before its last frame: its exit status says why
    if (returned := await process.wait()) or position != END:
        raise RuntimeError(
            f"part {part.index + 1} of {part.count} of the rebuild failed (exit status"
            f" {returned}); its error is printed above"
        )


async def fold_part(dsn: str, head: int, part: Part, out: BinaryIO) -> None:
    """Fold the part's streams up to `head`, writing each page's rows to `out` as a frame."""

    async def deliver(incident_rows: bytes, version_rows: bytes, position: int) -> None:
        # A blocking write: while the rebuild is behind, this part waits for it.
        out.write(FRAME.pack(len(incident_rows), len(version_rows), position))
        out.write(incident_rows)
        out.write(version_rows)

    conn = await connect(dsn)
    try:
        await fold_into(conn, await start_fold(conn, head, part), deliver)
    finally:
        await conn.close()
    out.write(FRAME.pack(0, 0, END))
    out.flush()


def main(argv: list[str]) -> int:
    index, count, head = (int(argument) for argument in argv)
    # The frames own stdout; anything else printed goes to stderr, as the rebuild's.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    gc.disable()  # as in the rebuild: millions of objects, none in a cycle
    asyncio.run(fold_part(os.environ[PART_DSN], head, Part(index, count), out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
