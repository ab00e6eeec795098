"""A private product for the acceptance tests, the browser tests and the benchmarks.

``ServerStack`` runs daphne and a Dramatiq worker as subprocesses on a free
port; ``live_stack_env`` is their environment (test settings, the test
database, this process's namespaces).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from django.conf import settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def _database_url(db: dict[str, Any]) -> str:
    user = urllib.parse.quote(str(db.get("USER") or ""), safe="")
    password = urllib.parse.quote(str(db.get("PASSWORD") or ""), safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@" if user else ""
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{db['NAME']}"


def live_stack_env() -> dict[str, str]:
    """The servers' environment: test settings, the test database, this process's namespaces."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "voicedesk.settings.test",
            # django_db_setup has renamed the database to the test database by now.
            "DATABASE_URL": _database_url(settings.DATABASES["default"]),
            "REDIS_URL": settings.REDIS_URL,
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,
            "TWILIO_AUTH_TOKEN": settings.TWILIO_AUTH_TOKEN,
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "console",
            # Calls need their engines loaded. Set here, not inherited: consumer
            # tests turn the warm-up off in this process's environment, and a
            # stack started later in the same worker would never load them.
            "VOICEDESK_WARM_UP": "1",
        }
    )
    # Set by voicedesk.settings.test when this process loaded it; the servers must match.
    for name in ("DRAMATIQ_NAMESPACE", "CACHE_KEY_PREFIX", "CHANNELS_PREFIX"):
        env[name] = os.environ[name]
    return env


def wait_for(predicate: Callable[[], T | None], *, timeout_s: float, what: str, interval_s: float = 0.1) -> T:
    """Poll ``predicate`` until it returns something truthy and return that; fail naming ``what`` after a timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class ProcessUsage:
    """Resource use of a process group, read from /proc."""

    cpu_s: float  # user + system time of the live processes (and children they reaped)
    rss_bytes: int  # current resident memory, summed
    peak_rss_bytes: int  # sum of each process's high-water mark (VmHWM)
    processes: int


def process_group_usage(pgid: int) -> ProcessUsage:
    """Sum CPU time and memory over every live process whose process group is ``pgid``.

    Linux only (reads /proc; psutil is not a dependency). Processes that vanish
    while being read are skipped.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = 0.0
    rss = peak = count = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # Fields after the parenthesised command name; see proc(5).
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) != pgid:
                continue
            utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
            status = (entry / "status").read_text()
        except (OSError, ValueError, IndexError):
            continue
        cpu += (utime + stime + cutime + cstime) / ticks
        memory = {k: v for k, _, v in (line.partition(":") for line in status.splitlines())}
        rss += _kib(memory.get("VmRSS", "")) * 1024
        peak += _kib(memory.get("VmHWM", "")) * 1024
        count += 1
    return ProcessUsage(cpu_s=cpu, rss_bytes=rss, peak_rss_bytes=peak, processes=count)


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if this process dies without calling ``stop``.

    A test run killed with SIGTERM skips fixture teardown; without this its
    servers would keep running (and holding the port and the database).
    """
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _kib(value: str) -> int:
    parts = value.split()
    return int(parts[0]) if parts and parts[0].isdigit() else 0


@dataclass
class ServerStack:
    """daphne on a free loopback port plus a Dramatiq worker, as subprocesses of this process.

    ``env`` is the complete environment for both (database, Redis, settings
    module, namespaces). Each runs in its own process group, so ``stop`` ends
    exactly what ``start`` started, children (the piper worker, Dramatiq's
    worker processes) included. Logs go to ``log_dir``.
    """

    env: dict[str, str]
    log_dir: Path
    port: int = field(default_factory=free_port)
    worker_threads: int = 2
    # Also run the periodic-job scheduler (``manage.py crontab``), as production does.
    scheduler: bool = False
    # The checkout the processes run from (another one: an earlier commit, to compare against).
    root: Path = PROJECT_ROOT
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _warm_offset: int = 0
    _logs: list[IO[bytes]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """The public site as the carrier reaches it (host ``localhost``)."""
        return f"http://localhost:{self.port}"

    def log_path(self, name: str) -> Path:
        """Where process ``name`` ("daphne", "worker" or "scheduler") writes its output."""
        return self.log_dir / f"{name}.log"

    def commands(self) -> dict[str, list[str]]:
        """The command line of each process, by name."""
        commands = {
            "daphne": [
                sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port),
                "--application-close-timeout", "30", "voicedesk.asgi:application",
            ],
            "worker": [
                sys.executable, "manage.py", "rundramatiq", "--processes", "1", "--threads", str(self.worker_threads),
            ],
        }  # fmt: skip
        if self.scheduler:
            commands["scheduler"] = [sys.executable, "manage.py", "crontab", "--no-heartbeat"]
        return commands

    def start(self, *, timeout_s: float = 120.0) -> None:
        """Start the processes and wait until ``/healthz`` answers; raise with the log tail if not."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            for name in self.commands():
                self._spawn(name)
            self._wait_healthy(timeout_s)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name: str) -> None:
        if name == "daphne":
            path = self.log_path(name)
            self._warm_offset = len(path.read_text(encoding="utf-8", errors="replace")) if path.exists() else 0
        log = self.log_path(name).open("ab")
        self._logs.append(log)
        self.processes[name] = subprocess.Popen(
            self.commands()[name],
            cwd=self.root,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def kill(self, name: str) -> None:
        """``kill -9`` process ``name`` and its children, as a crash or the OOM killer would."""
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def restart(self, name: str, *, timeout_s: float = 120.0) -> None:
        """Start process ``name`` again (after ``kill``); for daphne, wait until it answers."""
        if self.processes[name].poll() is None:
            raise RuntimeError(f"{name} is still running")
        self._spawn(name)
        if name == "daphne":
            self._wait_healthy(timeout_s)

    def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        url = f"http://127.0.0.1:{self.port}/healthz"
        while True:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"daphne did not answer {url} within {timeout_s:.0f} s:\n{self.log_tail('daphne')}")
            time.sleep(0.25)

    def wait_warm(self, *, timeout_s: float = 120.0) -> None:
        """Wait until daphne has loaded its speech engines (or given up and left it to the first call).

        ``/healthz`` answers before then; a call placed meanwhile competes with
        the loading for the cores and may miss daphne's handshake deadline.
        """
        offset = self._warm_offset

        def warm() -> bool:
            text = self.log_path("daphne").read_text(encoding="utf-8", errors="replace")[offset:]
            return "engines_warmed_up" in text or "engines_warm_up_failed" in text

        wait_for(warm, timeout_s=timeout_s, what="daphne to load its speech engines", interval_s=0.25)

    def log_tail(self, name: str, lines: int = 40) -> str:
        """The last ``lines`` lines of a process's log."""
        try:
            text = self.log_path(name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, *, grace_s: float = 10.0) -> None:
        """SIGTERM each process group, then SIGKILL what is left after ``grace_s``."""
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            # The group may outlive its leader (worker children): make sure it is gone.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        self.processes.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def usage(self) -> dict[str, ProcessUsage]:
        """CPU time and memory of each process group right now ("daphne", "worker")."""
        return {name: process_group_usage(process.pid) for name, process in self.processes.items()}

    def __enter__(self) -> ServerStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
