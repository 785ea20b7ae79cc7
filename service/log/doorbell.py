"""The doorbell: one LISTEN connection per process, waking whoever follows the log.

A notification only says "the log grew"; followers always re-read the table by
position, and poll when no bell rings, so a lost notification only delays them.
The same connection hears the projector announce each new checkpoint. Payloads are
never believed: any database login may NOTIFY these channels with any text.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Final

import asyncpg

from service.log.store import NOTIFY_CHANNEL

log = logging.getLogger("legation.feed")
RECONNECT_DELAY = 1.0
PROJECTED_CHANNEL: Final = "legation_projected"
REBUILT_CHANNEL: Final = "legation_rebuilt"  # `legation rebuild` swapped the read models in


class Signal:
    """Wakes everyone waiting at the moment it fires."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        """Wake every current waiter; later waiters wait for the next fire."""
        fired, self._event = self._event, asyncio.Event()
        fired.set()

    async def wait(self, within: float) -> bool:
        """Wait for the next fire, at most `within` seconds; whether it fired."""
        event = self._event
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await event.wait()
        return event.is_set()


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel a background task and wait until it has stopped."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Bell:
    """Wakes whoever follows the log; what makes it ring is the subclass's `_run`."""

    def __init__(self) -> None:
        self._rung = Signal()
        # How often it rang: a follower that reads between waits compares it to know
        # whether a ring came while it was not waiting (and would otherwise be missed).
        self.rings = 0
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self._projected: list[Callable[[], None]] = []
        self._rebuilt: list[Callable[[], None]] = []

    def on_projected(self, callback: Callable[[], None]) -> None:
        """Call `callback` when the projector announces a checkpoint (to read from the table)."""
        self._projected.append(callback)

    def on_rebuilt(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever a rebuild announces it swapped the read models in."""
        self._rebuilt.append(callback)

    def start(self) -> None:
        """Start ringing (in the background)."""
        self._task = asyncio.create_task(self._run(), name="legation-doorbell")

    async def stop(self) -> None:
        """Stop ringing."""
        await cancel(self._task)
        self._task = None

    def ring(self) -> None:
        """Wake every current waiter."""
        self.rings += 1
        self._rung.fire()

    async def wait(self, within: float) -> bool:
        """Wait for the next ring, at most `within` seconds; whether it rang."""
        return await self._rung.wait(within)

    def announce_projected(self) -> None:
        """Tell every follower of the checkpoint to read it from the table."""
        for callback in self._projected:
            callback()

    def announce_rebuilt(self) -> None:
        """Tell every keeper of answers that the read models were swapped."""
        for callback in self._rebuilt:
            callback()

    async def _run(self) -> None:
        raise NotImplementedError


class Doorbell(Bell):
    """Wakes waiters when an append commits; reconnects its LISTEN when it drops."""

    def __init__(self, dsn: str) -> None:
        super().__init__()
        self._dsn = dsn

    def _appended(self, _conn: object, _pid: int, _channel: str, _payload: object) -> None:
        self.ring()

    def _announced(self, _conn: object, _pid: int, _channel: str, _payload: object) -> None:
        self.announce_projected()

    def _announced_rebuild(self, *_: object) -> None:
        # Whoever sent it, the cost of a false one is only recomputing answers.
        self.announce_rebuilt()

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("doorbell connection lost (%s); reconnecting", exc)
            self.connected.clear()
            await asyncio.sleep(RECONNECT_DELAY)

    async def _listen(self) -> None:
        conn: asyncpg.Connection[Any] = await asyncpg.connect(self._dsn)
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _: lost.set())
            await conn.add_listener(NOTIFY_CHANNEL, self._appended)
            await conn.add_listener(PROJECTED_CHANNEL, self._announced)
            await conn.add_listener(REBUILT_CHANNEL, self._announced_rebuild)
            self.connected.set()
            # Appends may have committed while no one listened.
            self.ring()
            await lost.wait()
        finally:
            with contextlib.suppress(Exception):
                await conn.close()
