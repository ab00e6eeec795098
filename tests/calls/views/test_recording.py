import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django_tenants.utils import tenant_context

from calls.models import Call
from tests.factories import CallFactory

AUDIO = bytes(range(256)) * 4  # 1024 bytes


@pytest.fixture
def recorded_call(tenant_a) -> Call:
    with tenant_context(tenant_a.tenant):
        call = CallFactory()
        call.recording.save(f"call-{call.pk}.wav", ContentFile(AUDIO), save=True)
    return call


def _get(client: Client, call: Call, **headers: str):
    return client.get(f"/calls/{call.pk}/recording", headers=headers)


def test_member_gets_the_whole_recording(client_a, recorded_call) -> None:
    response = _get(client_a, recorded_call)

    assert response.status_code == 200
    assert (response["Content-Type"], response["Accept-Ranges"]) == ("audio/wav", "bytes")
    assert b"".join(response.streaming_content) == AUDIO


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=100-199", 100, 199),
        ("bytes=1000-", 1000, 1023),
        ("bytes=-24", 1000, 1023),
        ("bytes=1000-5000", 1000, 1023),
    ],
)
def test_a_byte_range_is_answered_with_206(client_a, recorded_call, header: str, first: int, last: int) -> None:
    response = _get(client_a, recorded_call, Range=header)

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {first}-{last}/1024"
    assert response["Content-Length"] == str(last - first + 1)
    assert b"".join(response.streaming_content) == AUDIO[first : last + 1]


def test_a_range_past_the_end_is_416(client_a, recorded_call) -> None:
    response = _get(client_a, recorded_call, Range="bytes=2000-")

    assert (response.status_code, response["Content-Range"]) == (416, "bytes */1024")


def test_a_call_without_recording_is_404(client_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        call = CallFactory()

    assert _get(client_a, call).status_code == 404


def test_other_tenants_and_strangers_get_404(tenant_a, tenant_b, recorded_call) -> None:
    other = Client(HTTP_HOST=tenant_a.host)
    other.force_login(tenant_b.owner)
    # Tenant B's owner on tenant B's host asks for tenant A's call id.
    own_host = Client(HTTP_HOST=tenant_b.host)
    own_host.force_login(tenant_b.owner)

    assert _get(other, recorded_call).status_code == 404
    assert _get(own_host, recorded_call).status_code == 404
    anonymous = Client(HTTP_HOST=tenant_a.host).get(f"/calls/{recorded_call.pk}/recording")
    assert (anonymous.status_code, anonymous["Location"].split("?")[0]) == (302, "/accounts/login/")
