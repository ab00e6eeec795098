"""How the apps above ``calls`` learn that a call ended, without ``calls`` importing them.

``tickets`` (the ticket) and ``billing`` (the metered seconds) register a hook
in their ``AppConfig.ready``; ``call_finish`` runs every registered hook once
the transaction that ended the call commits, so a rolled-back finish reaches
nobody and a hook never reads a row that is not there yet. Hooks should be
quick and hand slow work to a Dramatiq actor: they run on the thread that
finished the call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class CallFinished:
    """A call that has just ended, in the tenant schema ``schema_name``."""

    schema_name: str
    call_id: int
    status: str
    completed: bool


CallFinishedHook = Callable[[CallFinished], None]

_call_finished_hooks: list[CallFinishedHook] = []


def call_finished_hook_register(hook: CallFinishedHook) -> None:
    """Run ``hook`` after every committed call finish; registering a hook twice keeps one."""
    if hook not in _call_finished_hooks:
        _call_finished_hooks.append(hook)


def call_finished_hooks() -> tuple[CallFinishedHook, ...]:
    return tuple(_call_finished_hooks)


def call_finished_notify(event: CallFinished) -> None:
    """Run every registered hook for ``event``; one failing hook does not keep the others from running."""
    for hook in _call_finished_hooks:
        try:
            hook(event)
        except Exception:
            # The call is stored already: a failing hook is logged, never raised
            # into the media handler that finished the call.
            logger.exception("call_finished_hook_failed", hook=getattr(hook, "__qualname__", repr(hook)), **vars(event))
