"""Which sentences belong to one spoken reply, for engines that speak a reply as a whole.

The session synthesizes a reply sentence by sentence, through wrappers
(cache, deadline, fallback) that know nothing of replies. Some engines sound
better when they know the sentences go together: Cartesia continues one
context across them (prosody carries over), ElevenLabs keeps one input
stream open. The session opens a ``ReplyScope`` around each reply it speaks
(a context variable of its speaking task, so it reaches the engine through
any wrapper); an engine keeps its per-reply state in the scope and is told
when the reply is over. Outside a scope (warm-up, cache fill, tests) every
sentence stands alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import structlog

logger = structlog.get_logger(__name__)

_CURRENT: contextvars.ContextVar[ReplyScope | None] = contextvars.ContextVar("reply_scope", default=None)
# Ending a reply tells an engine's server; a stuck socket must not hold up the call.
CLOSE_TIMEOUT_S = 1.0


class ReplyScope:
    """One reply being spoken: engines' state for it, and what each must do when it ends."""

    def __init__(self) -> None:
        self._state: dict[object, Any] = {}
        self._closers: list[Callable[[bool], Awaitable[None]]] = []
        self.closed = False

    def state(self, owner: object) -> Any:
        """What ``owner`` (an engine) keeps for this reply; None before it set any."""
        return self._state.get(owner)

    def state_set(self, owner: object, value: Any, closer: Callable[[bool], Awaitable[None]] | None = None) -> None:
        """Keep ``value`` for ``owner``; ``closer(completed)`` runs once when the reply ends."""
        self._state[owner] = value
        if closer is not None:
            self._closers.append(closer)

    async def close(self, *, completed: bool) -> None:
        """The reply is over: ``completed`` when every sentence was spoken, False when it was cut."""
        if self.closed:
            return
        self.closed = True
        closers, self._closers = self._closers, []
        for closer in closers:
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await closer(completed)
            except Exception:  # a failing engine must not break the call's speech
                logger.warning("reply_scope_close_failed", exc_info=True)


def current_reply() -> ReplyScope | None:
    """The reply being spoken by the current task, if any."""
    return _CURRENT.get()


@contextlib.contextmanager
def reply_open(scope: ReplyScope) -> Iterator[ReplyScope]:
    """Make ``scope`` the current reply for the code run inside (the session's speaking task)."""
    token = _CURRENT.set(scope)
    try:
        yield scope
    finally:
        _CURRENT.reset(token)
