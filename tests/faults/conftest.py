"""Faults on a live VoiceDesk: daphne, a Dramatiq worker and the scheduler as real processes.

Each test gets its own servers (it kills some of them) with short fault
timings, so a test takes seconds rather than the production half-minute:
a heartbeat every second, a call counts as lost after 4 s without one, and
both sweeps run every 2 s. The servers share the test database, so tests
commit their data (``django_db(transaction=True)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from django.conf import settings

from tests.live_stack import ServerStack, free_port, live_stack_env, wait_for
from voicedesk.simulator.carrier import CarrierStream, dial, new_sid

T = TypeVar("T")

FAST_FAULTS = {
    "CALL_HEARTBEAT_S": "1",
    "CALL_STALE_AFTER_S": "4",
    "CALL_SWEEP_INTERVAL_S": "2",
    "TICKET_SWEEP_INTERVAL_S": "2",
    "TICKET_SWEEP_GRACE_S": "2",
}
# tenant "alpha" of tests/conftest.py answers this number.
ALPHA_NUMBER = "+15550001001"
ACCOUNT_SID = "AC" + "0" * 32


class Phones:
    """Simulated carrier calls on an event loop of their own thread, so the test can poll the database meanwhile."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="phones", daemon=True)
        self.thread.start()
        self.streams: list[CarrierStream] = []

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def call(self, from_number: str) -> CarrierStream:
        """Dial the business (signed voice webhook) and connect the media stream; the line carries silence."""

        async def place() -> CarrierStream:
            call_sid = new_sid("CA")
            instructions = await dial(
                self.base_url,
                call_sid=call_sid,
                from_number=from_number,
                to_number=ALPHA_NUMBER,
                account_sid=ACCOUNT_SID,
                auth_token=settings.TWILIO_AUTH_TOKEN,
            )
            stream = CarrierStream(instructions, call_sid=call_sid, account_sid=ACCOUNT_SID)
            await stream.open()
            return stream

        stream = self.run(place())
        self.streams.append(stream)
        return stream

    def close(self) -> None:
        async def close_all() -> None:
            for stream in self.streams:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(stream.hang_up(), timeout=5)

        with contextlib.suppress(Exception):
            self.run(close_all(), timeout_s=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def fault_stack(log_dir: Path, **env: str) -> ServerStack:
    return ServerStack(env=live_stack_env() | FAST_FAULTS | env, log_dir=log_dir, scheduler=True)


@contextlib.contextmanager
def running_fault_stack(log_dir: Path, *, warm: bool = True, **env: str) -> Iterator[ServerStack]:
    """``fault_stack`` started (and, with ``warm``, its speech engines loaded), stopped on the way out."""
    servers = fault_stack(log_dir, **env)
    servers.start()
    try:
        if warm:
            servers.wait_warm()
        yield servers
    finally:
        servers.stop()


@pytest.fixture
def stack(tenant_a: Any, tmp_path: Path) -> Iterator[ServerStack]:
    """daphne, a worker and the scheduler with fast fault timings, on the machine's Redis (own namespaces).

    Tests that take no calls use it at once; ``phones`` waits for daphne's speech engines first.
    """
    with running_fault_stack(tmp_path / "stack", warm=False) as servers:
        yield servers


@pytest.fixture
def phones(stack: ServerStack) -> Iterator[Phones]:
    stack.wait_warm()
    line = Phones(stack.base_url)
    try:
        yield line
    finally:
        line.close()


class RedisServer:
    """A private redis-server on a free loopback port (never the machine's shared one), to stop and start."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.log_dir), "--logfile", str(self.log_dir / "redis.log")],
        )  # fmt: skip
        wait_for(self._answers, timeout_s=10, what="redis-server to answer")

    def _answers(self) -> bool:
        from redis import Redis
        from redis.exceptions import ConnectionError as RedisConnectionError

        client = Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except RedisConnectionError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        """Gone at once, as a crash: everything it held (queues included) is lost."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


class PostgresServer:
    """A private PostgreSQL cluster on a free loopback port, holding a copy of the test database, to restart.

    The machine's server is shared with other test runs, so restarting it would
    break them: this cluster is made with initdb in a temporary folder (as the
    ``postgres`` account when the tests run as root, which PostgreSQL refuses
    to run as) and removed afterwards.
    """

    def __init__(self, log_dir: Path) -> None:
        self.bindir = _postgres_bindir()
        self.port = free_port()
        self.log_dir = log_dir
        # Not under pytest's tmp_path: the postgres account must reach the folder.
        self.datadir = Path(tempfile.mkdtemp(prefix="voicedesk-pg-"))
        self.database = "voicedesk_faults"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=True, capture_output=True, timeout=120, **kwargs)

    def create(self, source: dict[str, Any]) -> None:
        """initdb, start, and copy the database ``source`` (Django's settings of the test database) into it."""
        if os.geteuid() == 0:
            shutil.chown(self.datadir, user="postgres", group="postgres")
        self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()
        host, port = source["HOST"] or "127.0.0.1", str(source["PORT"] or 5432)
        dump = subprocess.run(
            [str(self.bindir / "pg_dump"), "-Fc", "-h", host, "-p", port, "-U", source["USER"], source["NAME"]],
            check=True, capture_output=True, timeout=300,
            env=os.environ | ({"PGPASSWORD": source["PASSWORD"]} if source.get("PASSWORD") else {}),
        ).stdout  # fmt: skip
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", self.database)
        self._run("pg_restore", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", self.database,
                  "--no-owner", "--no-acl", input=dump)  # fmt: skip

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.datadir} -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(self.datadir), "-l", str(self.datadir / "server.log"), "-o", options, "-w", "start"
        )

    def stop(self) -> None:
        """A restart's first half: the server ends every session (``-m fast``) and stops."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
        log = self.datadir / "server.log"
        if log.exists():
            self.log_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy(log, self.log_dir / "postgres.log")
        shutil.rmtree(self.datadir, ignore_errors=True)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` on the private copy (in schema ``alpha``), on a connection of its own."""
        import psycopg

        with psycopg.connect(self.url.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
            conn.execute("SET search_path TO alpha, public")
            return conn.execute(sql, params).fetchall()


def _postgres_bindir() -> Path:
    """Where this machine's PostgreSQL programs are (initdb is not on PATH for every account)."""
    found = shutil.which("pg_config")
    if found:
        path = Path(subprocess.run([found, "--bindir"], capture_output=True, text=True, check=True).stdout.strip())
        if (path / "initdb").exists():
            return path
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not versions:
        pytest.skip("no PostgreSQL server programs (initdb) on this machine")
    return versions[-1].parent
