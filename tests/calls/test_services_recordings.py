"""Recordings made before they were kept per tenant move into the tenant's folder: idempotent, resumable."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import call_command
from django_tenants.utils import tenant_context

from calls.models import Call
from calls.services import RecordingsRelocation, call_recordings_relocate
from tests.factories import CallFactory

NOVEMBER = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def media(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def _file(media: Path, name: str, data: bytes) -> Path:
    path = media / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _call(name: str) -> Call:
    call = CallFactory(recording=name)
    Call.objects.filter(pk=call.pk).update(started_at=NOVEMBER)
    return call


@pytest.fixture
def old_layout(media: Path, in_tenant_a) -> dict[str, Call]:
    calls = {
        "plain": _call("recordings/2026/11/call-1.wav"),
        # The storage added a suffix when another tenant's call of the same id had the name already.
        "suffixed": _call("recordings/2026/12/call-2_Ab12Cd3.wav"),
        "in_place": _call("recordings/alpha/2026/11/call-3.wav"),
        "missing": _call("recordings/2026/11/call-4.wav"),
        "conflict": _call("recordings/2026/11/call-5.wav"),
        "no_recording": _call(""),
    }
    for key in ("plain", "suffixed", "in_place", "conflict"):
        _file(media, calls[key].recording.name, f"audio of {key}".encode())
    _file(media, f"recordings/alpha/2026/11/call-{calls['conflict'].pk}.wav", b"something else")
    return calls


def _names() -> dict[int, str]:
    return dict(Call.objects.values_list("pk", "recording"))


def test_old_recordings_move_into_the_tenants_folder_and_a_second_run_changes_nothing(old_layout, media) -> None:
    calls = old_layout
    # Another tenant's file in the shared old folder is not this tenant's to move.
    other = _file(media, "recordings/2026/11/call-1_Zz99Yy8.wav", b"beta's audio")
    before = _names()

    result = call_recordings_relocate()

    plain, suffixed = calls["plain"].pk, calls["suffixed"].pk
    assert result == RecordingsRelocation(
        moved=[plain, suffixed], relinked=[], missing=[calls["missing"].pk], conflicts=[calls["conflict"].pk]
    )
    assert _names() == before | {
        plain: f"recordings/alpha/2026/11/call-{plain}.wav",
        suffixed: f"recordings/alpha/2026/11/call-{suffixed}.wav",
    }
    assert (media / f"recordings/alpha/2026/11/call-{plain}.wav").read_bytes() == b"audio of plain"
    assert (media / f"recordings/alpha/2026/11/call-{suffixed}.wav").read_bytes() == b"audio of suffixed"
    assert not (media / "recordings/2026/11/call-1.wav").exists()
    assert not (media / "recordings/2026/12/call-2_Ab12Cd3.wav").exists()
    assert (media / calls["conflict"].recording.name).read_bytes() == b"audio of conflict"
    assert other.read_bytes() == b"beta's audio"

    after = _names()
    again = call_recordings_relocate()
    assert again == RecordingsRelocation(missing=[calls["missing"].pk], conflicts=[calls["conflict"].pk])
    assert _names() == after


def test_a_run_stopped_after_moving_a_file_is_finished_by_the_next(old_layout, media) -> None:
    plain = old_layout["plain"]
    target = media / f"recordings/alpha/2026/11/call-{plain.pk}.wav"
    target.parent.mkdir(parents=True, exist_ok=True)
    (media / plain.recording.name).rename(target)  # moved, but the call not saved yet

    result = call_recordings_relocate()

    assert plain.pk in result.relinked
    assert Call.objects.get(pk=plain.pk).recording.name == f"recordings/alpha/2026/11/call-{plain.pk}.wav"
    assert target.read_bytes() == b"audio of plain"


def test_a_dry_run_only_reports(old_layout, media) -> None:
    before = _names()
    files = sorted(str(p.relative_to(media)) for p in media.rglob("*") if p.is_file())

    result = call_recordings_relocate(dry_run=True)

    assert result.moved == [old_layout["plain"].pk, old_layout["suffixed"].pk]
    assert _names() == before
    assert sorted(str(p.relative_to(media)) for p in media.rglob("*") if p.is_file()) == files


def test_the_command_relocates_every_business(tenant_a, tenant_b, media) -> None:
    with tenant_context(tenant_b.tenant):
        beta_call = _call("recordings/2026/11/call-1.wav")
    _file(media, "recordings/2026/11/call-1.wav", b"beta")
    out = io.StringIO()

    call_command("recordings_relocate", stdout=out)

    assert "alpha: moved 0, relinked 0, missing 0, conflicts 0\n" in out.getvalue()
    assert "beta: moved 1, relinked 0, missing 0, conflicts 0\n" in out.getvalue()
    with tenant_context(tenant_b.tenant):
        assert Call.objects.get(pk=beta_call.pk).recording.name == f"recordings/beta/2026/11/call-{beta_call.pk}.wav"
    assert (media / f"recordings/beta/2026/11/call-{beta_call.pk}.wav").read_bytes() == b"beta"
