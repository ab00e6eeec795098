"""Forwarded headers are believed only from the configured proxies."""

from __future__ import annotations

import ipaddress

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory, override_settings

from voicedesk.web.middleware import TrustedProxyMiddleware, client_address_resolve

PROXIES = [ipaddress.ip_network("10.0.0.0/8")]


def _seen_meta(remote: str, **headers: str) -> dict[str, str]:
    seen: dict[str, str] = {}

    def view(request: HttpRequest) -> HttpResponse:
        seen.update({k: v for k, v in request.META.items() if isinstance(v, str)})
        return HttpResponse()

    TrustedProxyMiddleware(view)(RequestFactory().get("/", REMOTE_ADDR=remote, **headers))
    return seen


@pytest.mark.parametrize(
    ("remote", "forwarded", "client"),
    [
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),  # not a proxy: its header is the client's own claim
        ("10.0.0.2", "198.51.100.7", "198.51.100.7"),
        ("10.0.0.2", "1.2.3.4, 198.51.100.7", "198.51.100.7"),  # the left hop was written by the client
        ("10.0.0.2", "1.2.3.4, 198.51.100.7, 10.0.0.9", "198.51.100.7"),  # through two of our proxies
        ("10.0.0.2", "10.0.0.3", "10.0.0.2"),  # only proxies: the nearest one
        ("10.0.0.2", "not-an-address", "10.0.0.2"),
        ("10.0.0.2", "", "10.0.0.2"),
    ],
)
def test_client_address_resolve(remote: str, forwarded: str, client: str) -> None:
    assert client_address_resolve(remote, forwarded, PROXIES) == client


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])
def test_a_trusted_proxy_sets_the_client_address_and_keeps_its_headers() -> None:
    meta = _seen_meta("10.1.2.3", HTTP_X_FORWARDED_FOR="198.51.100.7", HTTP_X_FORWARDED_PROTO="https")
    assert (meta["REMOTE_ADDR"], meta["HTTP_X_FORWARDED_PROTO"]) == ("198.51.100.7", "https")


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])
def test_forwarded_headers_from_anyone_else_are_dropped() -> None:
    meta = _seen_meta(
        "203.0.113.9", HTTP_X_FORWARDED_FOR="1.2.3.4", HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_HOST="evil"
    )
    assert meta["REMOTE_ADDR"] == "203.0.113.9"
    assert not {"HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST"} & meta.keys()


def test_a_spoofed_forwarded_for_does_not_earn_fresh_sign_in_attempts(db) -> None:
    # allauth allows 10 failed sign-ins a minute per address; each try claims another one.
    errors = []
    for attempt in range(11):
        client = Client(HTTP_HOST="localhost", REMOTE_ADDR="192.0.2.44", HTTP_X_FORWARDED_FOR=f"203.0.113.{attempt}")
        response = client.post("/accounts/login/", {"login": f"nobody{attempt}@example.test", "password": "x"})
        errors.append(response.context["form"].non_field_errors())
    limited = ["Too many failed login attempts. Try again later."]
    assert [e == limited for e in errors] == [False] * 10 + [True]
