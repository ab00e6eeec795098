from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django_htmx.middleware import HtmxMiddleware

from voicedesk.core.htmx import htmx_render, htmx_vary, is_htmx, vary_on_htmx

VARY = "HX-Request, HX-Boosted, HX-History-Restore-Request"


def _request(**headers: str) -> HttpRequest:
    request = RequestFactory().get("/calls/", headers=headers)
    HtmxMiddleware(lambda request: HttpResponse())(request)
    return request


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({}, False),
        ({"HX-Request": "true"}, True),
        ({"HX-Request": "false"}, False),
        # Both swap a whole page in, so they want the page.
        ({"HX-Request": "true", "HX-Boosted": "true"}, False),
        ({"HX-Request": "true", "HX-History-Restore-Request": "true"}, False),
    ],
)
def test_is_htmx_is_true_only_when_a_fragment_is_wanted(headers: dict[str, str], fragment: bool) -> None:
    assert is_htmx(_request(**headers)) is fragment


def test_is_htmx_without_the_middleware_is_false() -> None:
    assert is_htmx(RequestFactory().get("/", headers={"HX-Request": "true"})) is False


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({}, "page"), ({"HX-Request": "true"}, "fragment"), ({"HX-Request": "true", "HX-Boosted": "true"}, "page")],
)
def test_htmx_render_picks_the_template_tells_it_and_varies(
    monkeypatch: pytest.MonkeyPatch, headers: dict[str, str], expected: str
) -> None:
    rendered: list[tuple[str, dict[str, Any], int]] = []

    def render(request: HttpRequest, template: str, context: dict[str, Any], status: int) -> HttpResponse:
        rendered.append((template, context, status))
        return HttpResponse(template, status=status)

    monkeypatch.setattr("voicedesk.core.htmx.render", render)

    response = htmx_render(_request(**headers), "page.html", "fragment.html", {"rows": [1]}, status=400)

    assert rendered == [(f"{expected}.html", {"rows": [1], "htmx_fragment": expected == "fragment"}, 400)]
    assert (response.status_code, response["Vary"]) == (400, VARY)


def test_htmx_vary_adds_to_an_existing_vary() -> None:
    response = HttpResponse()
    response["Vary"] = "Cookie"

    assert htmx_vary(response) is response
    assert response["Vary"] == f"Cookie, {VARY}"


def test_vary_on_htmx_marks_every_answer_of_a_view() -> None:
    @vary_on_htmx
    def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("fragment" if is_htmx(request) else "page", status=302 if not is_htmx(request) else 200)

    fragment, page = view(_request(**{"HX-Request": "true"})), view(_request())

    assert (fragment.content, fragment["Vary"]) == (b"fragment", VARY)
    assert (page.status_code, page["Vary"]) == (302, VARY)
    assert view.__name__ == "view"
