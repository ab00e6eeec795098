"""What every vendor emulator shares: a server thread with its own event loop, and the faults."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, Literal, TypeVar

# ``reject_key``: every key is refused as the vendor refuses a wrong one.
# ``http_500``: the request (or websocket handshake) gets a 500.
# ``stall``: the server accepts and then says nothing more.
# ``drop``: the TCP connection is cut without a close frame once audio flows.
# ``slow_first_byte``: the first audio (or the session start) comes ``slow_first_byte_s`` late.
Fault = Literal["reject_key", "http_500", "stall", "drop", "slow_first_byte"]
FAULTS: tuple[Fault, ...] = ("reject_key", "http_500", "stall", "drop", "slow_first_byte")
LOOPBACK = "127.0.0.1"

T = TypeVar("T")


class LoopThread:
    """An event loop on a daemon thread: the emulator serves while the caller's own loop (or none) runs."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the emulator's loop and wait for its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()
