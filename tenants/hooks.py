"""How the apps above ``tenants`` fill a new tenant's schema, without ``tenants`` importing them.

``calls`` registers the hook that creates the agent configuration in
``CallsConfig.ready``. ``tenant_create`` runs every hook inside its
transaction with the new schema active, so a failing hook undoes the whole
provisioning, schema included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tenants.models import Tenant


@dataclass(frozen=True)
class TenantCreated:
    """A tenant being provisioned; ``agent_defaults`` are the agent settings asked for at sign-up."""

    tenant: Tenant
    agent_defaults: Mapping[str, Any] = field(default_factory=dict)


TenantCreatedHook = Callable[[TenantCreated], None]

_tenant_created_hooks: list[TenantCreatedHook] = []


def tenant_created_hook_register(hook: TenantCreatedHook) -> None:
    """Run ``hook`` for every tenant provisioned from now on; registering a hook twice keeps one."""
    if hook not in _tenant_created_hooks:
        _tenant_created_hooks.append(hook)


def tenant_created_hooks() -> tuple[TenantCreatedHook, ...]:
    return tuple(_tenant_created_hooks)


def tenant_created_notify(event: TenantCreated) -> None:
    """Run every registered hook; an exception propagates, so provisioning fails as a whole."""
    for hook in _tenant_created_hooks:
        hook(event)


@dataclass(frozen=True)
class TenantLimits:
    """How many staff seats and phone numbers a tenant may have; ``None`` means no limit."""

    max_seats: int | None = None
    max_numbers: int | None = None


TenantLimitsProvider = Callable[[Tenant], TenantLimits]

_tenant_limits_provider: list[TenantLimitsProvider] = []


def tenant_limits_provider_register(provider: TenantLimitsProvider) -> None:
    """Let ``provider`` (``billing``: the plan's limits) answer ``tenant_limits_for``; a later one replaces it."""
    _tenant_limits_provider[:] = [provider]


def tenant_limits_for(tenant: Tenant) -> TenantLimits:
    """The limits the registered provider gives ``tenant``; no provider, no limits."""
    if not _tenant_limits_provider:
        return TenantLimits()
    return _tenant_limits_provider[0](tenant)


@dataclass(frozen=True)
class PhoneNumberChanged:
    """A number was registered to or removed from ``tenant``; ``routing_ref`` is what the platform knew it by."""

    action: Literal["registered", "removed"]
    tenant: Tenant
    number_id: int
    e164: str
    routing_ref: str = ""


PhoneNumberHook = Callable[[PhoneNumberChanged], None]

_phone_number_hooks: list[PhoneNumberHook] = []


def phone_number_hook_register(hook: PhoneNumberHook) -> None:
    """Run ``hook`` inside every number registration and removal (``calls``: the LiveKit dispatch rule)."""
    if hook not in _phone_number_hooks:
        _phone_number_hooks.append(hook)


def phone_number_notify(event: PhoneNumberChanged) -> None:
    """Run every registered hook in the caller's transaction; a failing hook undoes the change."""
    for hook in _phone_number_hooks:
        hook(event)


# -- Erasure: what the apps above keep of a tenant, outside its schema ----------------------


@dataclass(frozen=True)
class TenantErasure:
    """A tenant being erased (``dry_run``: only count what would go, and say what stands in the way)."""

    tenant: Tenant
    dry_run: bool


@dataclass
class ErasurePart:
    """What one app erases of a tenant (or would): counts by kind, what it keeps and why it cannot yet.

    ``kept`` holds what the platform's own records keep after the erasure
    (identifiers an accountant needs, never personal data); ``blockers`` stop
    the erasure before anything is deleted.
    """

    app: str
    counts: dict[str, int] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)
    blockers: list[str] = field(default_factory=list)


TenantErasureHook = Callable[[TenantErasure], ErasurePart]

_tenant_erasure_hooks: list[TenantErasureHook] = []


def tenant_erasure_hook_register(hook: TenantErasureHook) -> None:
    """Run ``hook`` when a tenant is erased (``calls``: recordings; ``billing``: usage and subscription)."""
    if hook not in _tenant_erasure_hooks:
        _tenant_erasure_hooks.append(hook)


def tenant_erasure_hooks() -> tuple[TenantErasureHook, ...]:
    return tuple(_tenant_erasure_hooks)


def tenant_erasure_notify(event: TenantErasure) -> list[ErasurePart]:
    """Run every registered hook; an exception propagates and stops the erasure."""
    return [hook(event) for hook in _tenant_erasure_hooks]
