"""Each process role serves its own routes; only the roles that take calls load the speech models."""

import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from django.core.exceptions import ImproperlyConfigured

ROOT = Path(__file__).resolve().parents[2]


def _asgi() -> ModuleType:
    # The test process takes no calls: loading the application must not load the speech models here.
    os.environ.setdefault("VOICEDESK_WARM_UP", "0")
    return importlib.import_module("voicedesk.asgi")


def _patterns(role: str) -> list[str]:
    return [str(route.pattern) for route in _asgi().websocket_routes(role)]


def test_web_serves_the_dashboards_sockets_only() -> None:
    assert _patterns("web") == ["^ws/"]


def test_voice_serves_the_media_streams_only_the_phone_line_and_the_test_call() -> None:
    assert _patterns("voice") == ["ws/twilio/stream", "ws/test-call/"]


def test_all_serves_both_media_routes_first() -> None:
    assert _patterns("all") == ["ws/twilio/stream", "ws/test-call/", "^ws/"]


@pytest.mark.parametrize(
    ("role", "environ", "wanted"),
    [
        ("web", {}, False),
        ("voice", {}, True),
        ("all", {}, True),
        ("voice", {"VOICEDESK_WARM_UP": "0"}, False),
        ("all", {"VOICEDESK_WARM_UP": "1"}, True),
    ],
)
def test_only_processes_that_take_calls_warm_the_engines_up(role: str, environ: dict[str, str], wanted: bool) -> None:
    assert _asgi().warm_up_wanted(role, environ) is wanted


def test_an_unknown_role_is_a_configuration_error() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"^VOICEDESK_ROLE must be one of web, voice, all, not 'dashboard'$"):
        _asgi().role_check("dashboard")


def _threads_after_loading_the_application(role: str) -> str:
    """Load the ASGI application in a fresh process of ``role``; name the threads it started."""
    script = (
        "import threading, voicedesk.asgi; "
        "print(voicedesk.asgi.ROLE, sorted(t.name for t in threading.enumerate() if t.name == 'engines-warm-up'))"
    )
    env = dict(os.environ) | {"VOICEDESK_ROLE": role, "DJANGO_SETTINGS_MODULE": "voicedesk.settings.test"}
    env.pop("VOICEDESK_WARM_UP", None)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return result.stdout.strip().splitlines()[-1]


def test_a_web_process_starts_no_engine_warm_up() -> None:
    assert _threads_after_loading_the_application("web") == "web []"
