"""What the cloud vendors' adapters share: loading an SDK at the right moment, key checks, voice listings."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from calls.pipeline.fallback import EngineError


def sdk_load(*modules: str) -> None:
    """Import ``modules`` now.

    A vendor SDK takes a few hundred ms to import. Engines are built off the
    event loop when a call is set up, so a cloud engine's constructor calls
    this: the cost stays out of the first sentence's deadline, and out of
    processes that never build the engine (importing the registry stays cheap).
    """
    for module in modules:
        importlib.import_module(module)


KeyCheckOutcome = Literal["ok", "refused", "unreachable", "failed"]


@dataclass(frozen=True, slots=True)
class KeyCheck:
    """What a provider said to one of its API keys: the outcome, and a sentence for the page.

    ``refused``: the provider turned the key down (401/403). ``unreachable``:
    nothing answered in time. ``failed``: the provider answered with another
    error. ``detail`` names the HTTP status or the kind of failure, never the key.
    """

    outcome: KeyCheckOutcome
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ProviderVoice:
    """One voice a provider offers: its id (what an engine's ``voice_id`` takes) and how to show it."""

    voice_id: str
    name: str
    description: str = ""
    language: str = ""


class ProviderCallError(RuntimeError):
    """A request to a provider's API failed; ``check`` says how, as a key test reports it."""

    def __init__(self, check: KeyCheck) -> None:
        super().__init__(f"{check.outcome}: {check.detail}")
        self.check = check


@contextlib.asynccontextmanager
async def websocket_opening(engine: str, *, timeout_s: float, refused: str) -> AsyncIterator[None]:
    """Open a vendor's websocket inside this block, within ``timeout_s``.

    A refused handshake, a timeout or a network error becomes the
    ``EngineError`` the fallback chain switches on: 401 and 403 say the key
    was rejected (never the key), another status says ``refused``.
    """
    from websockets.exceptions import InvalidStatus

    try:
        async with asyncio.timeout(timeout_s):
            yield
    except InvalidStatus as exc:
        status = exc.response.status_code
        what = "key rejected" if status in (401, 403) else refused
        raise EngineError(engine, "error", f"{what} (HTTP {status})") from None
    except TimeoutError:
        raise EngineError(engine, "deadline", f"no connection within {timeout_s} s") from None
    except OSError as exc:
        raise EngineError(engine, "error", f"{type(exc).__name__}: {exc}") from None
