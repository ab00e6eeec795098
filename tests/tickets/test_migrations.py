"""The help desk migration keeps the audit trail: ``TicketChange.actor_id`` becomes a reference in place."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def _sql() -> str:
    out = io.StringIO()
    call_command("sqlmigrate", "tickets", "0002", stdout=out)
    return out.getvalue()


def test_0002_does_not_drop_the_audit_actor_column(in_tenant_a) -> None:
    # Tenant apps only migrate in a tenant schema: in public, sqlmigrate prints no-ops.
    sql = _sql()

    assert "DROP COLUMN" not in sql
    statements = [line for line in sql.splitlines() if '"tickets_ticketchange"' in line]
    # The one change to the audit table: the index a foreign key has, under Django's name for it.
    assert len(statements) == 1
    assert re.fullmatch(
        r'CREATE INDEX "tickets_ticketchange_actor_id_[0-9a-f]{8}" ON "tickets_ticketchange" \("actor_id"\);',
        statements[0],
    )


def test_the_migration_state_matches_the_models() -> None:
    # Raises SystemExit(1) when a model change has no migration.
    call_command("makemigrations", "tickets", "--check", "--dry-run", stdout=io.StringIO())
