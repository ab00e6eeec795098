"""Tenant isolation matrix over every route of a tenant host.

The routes are read from the URL configuration, so a new page, fragment, API
endpoint or export is covered the day it is added. For each one, with GET and
POST: a member of tenant B on tenant A's host, tenant A's member asking for
ids that only exist in tenant B, and tenant A's API key on tenant B's host
all get 404, and no row changes in either schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django_tenants.utils import tenant_context

from tests.factories import (
    CallbackFactory,
    CallFactory,
    FaqEntryFactory,
    TicketFactory,
    TicketNoteFactory,
    UnansweredQuestionFactory,
    UtteranceFactory,
)

# Sign-in pages are public by design; the admin has its own tests.
SKIPPED_PREFIXES = ("accounts/", "admin/")
CONVERTER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
TENANT_MODELS = [m for m in apps.get_models() if m._meta.app_label in {"calls", "tickets"}]


def _walk(patterns: list[URLPattern | URLResolver], prefix: str = "") -> Iterator[str]:
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, route)
        else:
            yield route


def tenant_routes() -> list[str]:
    routes = {route.lstrip("^").rstrip("$") for route in _walk(get_resolver("voicedesk.urls_tenant").url_patterns)}
    return sorted(r for r in routes if r and not r.startswith(SKIPPED_PREFIXES) and "(?P" not in r)


def _path(route: str, object_id: int) -> str:
    def fill(match: re.Match[str]) -> str:
        converter = match.group("converter") or "str"
        return str(object_id) if converter == "int" else "csv" if match.group("name") == "format" else "x"

    return "/" + CONVERTER.sub(fill, route)


def _payload(method: str) -> dict[str, str]:
    """A plausible change for writes; reads go without parameters."""
    return {} if method == "get" else {"status": "closed", "body": "x", "outcome": "reached"}


def _refused(response: Any, method: str) -> bool:
    """404; or 405 for a method the route does not take at all, which says nothing about the id."""
    if response.status_code == 405:
        return method.upper() not in response["Allow"]
    return response.status_code == 404


def _snapshot(*tenants: Any) -> list[Any]:
    rows: list[Any] = []
    for tenant in tenants:
        with tenant_context(tenant):
            for model in TENANT_MODELS:
                rows.append((tenant.schema_name, model._meta.label, sorted(map(repr, model.objects.values()))))
    return rows


B_ONLY_ID = 900_001


@pytest.fixture
def tenant_b_objects(tenant_b) -> int:
    """One row of every kind in tenant B, all with one id that tenant A does not have."""
    with tenant_context(tenant_b.tenant):
        call = CallFactory(id=B_ONLY_ID)
        UtteranceFactory(id=B_ONLY_ID, call=call)
        ticket = TicketFactory(id=B_ONLY_ID, call=call)
        TicketNoteFactory(id=B_ONLY_ID, ticket=ticket)
        CallbackFactory(id=B_ONLY_ID, ticket=ticket)
        UnansweredQuestionFactory(id=B_ONLY_ID, ticket=ticket)
        FaqEntryFactory(id=B_ONLY_ID)
    return B_ONLY_ID


ROUTES = tenant_routes()


def test_the_matrix_sees_the_help_desk() -> None:
    # Guards the route discovery itself: if it found nothing, every case below would pass vacuously.
    assert {"tickets/", "calls/", "api/tickets/"} <= set(ROUTES)


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("route", ROUTES)
def test_member_of_another_tenant_gets_404_and_changes_nothing(
    tenant_a, tenant_b, tenant_b_objects: int, route: str, method: str
) -> None:
    intruder = Client(HTTP_HOST=tenant_a.host)
    intruder.force_login(tenant_b.owner)
    before = _snapshot(tenant_a.tenant, tenant_b.tenant)

    response = getattr(intruder, method)(_path(route, tenant_b_objects), data=_payload(method))

    assert response.status_code == 404
    assert _snapshot(tenant_a.tenant, tenant_b.tenant) == before


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("route", [r for r in ROUTES if "<int:" in r])
def test_ids_of_another_tenant_are_404_and_change_nothing(
    client_a, tenant_a, tenant_b, tenant_b_objects: int, route: str, method: str
) -> None:
    before = _snapshot(tenant_a.tenant, tenant_b.tenant)

    response = getattr(client_a, method)(_path(route, tenant_b_objects), data=_payload(method))

    assert _refused(response, method), (response.status_code, response.get("Allow"))
    assert _snapshot(tenant_a.tenant, tenant_b.tenant) == before


@pytest.mark.parametrize("method", ["get", "post", "patch", "delete"])
# The Swagger page is for people signed in; a key is no credential there (it redirects to sign-in).
@pytest.mark.parametrize("route", [r for r in ROUTES if r.startswith("api/") and r != "api/docs/"])
def test_api_key_of_another_tenant_gets_404_and_changes_nothing(
    tenant_a, tenant_b, tenant_b_objects: int, route: str, method: str
) -> None:
    from tenants.services import api_key_create

    _, secret = api_key_create(tenant=tenant_a.tenant, actor=tenant_a.owner, name="integration")
    client = Client(HTTP_HOST=tenant_b.host, HTTP_AUTHORIZATION=f"Bearer {secret}")
    before = _snapshot(tenant_a.tenant, tenant_b.tenant)

    response = getattr(client, method)(
        _path(route, tenant_b_objects), data=_payload(method), content_type="application/json"
    )

    assert _refused(response, method), (response.status_code, response.get("Allow"))
    assert _snapshot(tenant_a.tenant, tenant_b.tenant) == before
