"""Helpers for API tests: keys and clients for a tenant's host."""

from __future__ import annotations

from django.test import Client

from tenants.services import api_key_create
from tests.conftest import TenantFixture


def api_key_make(fixture: TenantFixture, name: str = "Integration") -> str:
    """A fresh key of ``fixture``'s tenant, made by its owner; returns the full key."""
    _, plaintext = api_key_create(tenant=fixture.tenant, actor=fixture.owner, name=name)
    return plaintext


def key_client(host: str, key: str, scheme: str = "Bearer") -> Client:
    """A client that sends ``key`` on every request to ``host``, with no session."""
    return Client(HTTP_HOST=host, HTTP_AUTHORIZATION=f"{scheme} {key}")
