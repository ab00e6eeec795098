"""Shared set-up for benchmark scripts: Django on a database of the bench's own."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def django_setup(database: str) -> None:
    """Point Django at ``database`` (created fresh) on the configured server, then set up."""
    import psycopg
    from psycopg import sql

    sys.path.insert(0, str(ROOT))
    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/voicedesk")
    head, _, _ = base_url.rpartition("/")
    with psycopg.connect(f"{head}/postgres".replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(database)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    os.environ["DATABASE_URL"] = f"{head}/{database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicedesk.settings.dev")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
