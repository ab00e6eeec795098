"""Typed access to the tenant state django-tenants keeps on the connection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import connection

if TYPE_CHECKING:
    from tenants.models import Tenant

# django-tenants' DatabaseWrapper adds these attributes; the stubs only know
# Django's base class, so they are reached through one untyped handle.
_tenant_connection: Any = connection


def current_schema() -> str:
    """The schema the default connection is set to."""
    return str(_tenant_connection.schema_name)


def current_tenant() -> Tenant:
    tenant: Tenant = _tenant_connection.tenant
    return tenant


def schema_activate(tenant: Tenant | None) -> None:
    """Point the connection at ``tenant``'s schema, or at public for ``None``."""
    if tenant is None:
        _tenant_connection.set_schema_to_public()
    else:
        _tenant_connection.set_tenant(tenant)
