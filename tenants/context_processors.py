from typing import Any

from django.http import HttpRequest
from django_tenants.utils import get_public_schema_name


def tenant(request: HttpRequest) -> dict[str, Any]:
    current = getattr(request, "tenant", None)
    is_tenant_host = current is not None and current.schema_name != get_public_schema_name()
    return {"current_tenant": current if is_tenant_host else None}
