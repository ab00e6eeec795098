"""How the apps above ``calls`` learn that a call ended, and answer whether a call may be taken,
without ``calls`` importing them.

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
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from tenants.models import Tenant

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


# -- Transfers: the caller is being put through to a person, or was, or could not be ------------


@dataclass(frozen=True)
class CallTransferChanged:
    """A call's transfer began (``dialing``) or ended (``answered``, ``busy``, ``no_answer``, ``failed``)."""

    schema_name: str
    call_id: int
    status: str


CallTransferHook = Callable[[CallTransferChanged], None]

_call_transfer_hooks: list[CallTransferHook] = []


def call_transfer_hook_register(hook: CallTransferHook) -> None:
    """Run ``hook`` after every committed transfer change; registering a hook twice keeps one.

    Unlike the call-finished hooks these run their work at once: the ticket
    must exist before the phone rings at the business (``tickets``).
    """
    if hook not in _call_transfer_hooks:
        _call_transfer_hooks.append(hook)


def call_transfer_notify(event: CallTransferChanged) -> None:
    """Run every registered transfer hook; one failing hook does not keep the others from running."""
    for hook in _call_transfer_hooks:
        try:
            hook(event)
        except Exception:
            # The transfer goes ahead: the call-finished hooks and the ticket sweep still make the ticket.
            logger.exception("call_transfer_hook_failed", hook=getattr(hook, "__qualname__", repr(hook)), **vars(event))


# -- Call access: may this tenant's call get the receptionist? ------------------------------


@dataclass(frozen=True)
class CallAccess:
    """What a tenant's incoming call gets, decided when the call starts.

    ``full_service`` false: the caller hears a short message that the business
    is not taking calls on this line and will call back, and the call still
    leaves a ticket. ``reason`` is a short code for the call record
    (``unpaid``, ``canceled``...). ``max_concurrent_calls`` is the plan's limit
    of calls in progress at once (``None``: no limit from the plan).
    """

    full_service: bool = True
    reason: str = ""
    max_concurrent_calls: int | None = None


CallAccessProvider = Callable[["Tenant"], CallAccess]

_call_access_provider: list[CallAccessProvider] = []


def call_access_provider_register(provider: CallAccessProvider) -> None:
    """Let ``provider`` (``billing``: the subscription's state and plan) answer ``call_access_for``.

    There is one answer per call, so a later registration replaces the earlier one.
    """
    _call_access_provider[:] = [provider]


def call_access_provider() -> CallAccessProvider | None:
    return _call_access_provider[0] if _call_access_provider else None


def call_access_for(tenant: Tenant) -> CallAccess:
    """The registered provider's answer for ``tenant``; full service when there is none or it fails.

    A failing provider is logged, never raised: a caller is never lost to a billing error.
    """
    provider = call_access_provider()
    if provider is None:
        return CallAccess()
    try:
        return provider(tenant)
    except Exception:
        logger.exception("call_access_provider_failed", tenant=tenant.schema_name)
        return CallAccess()
