"""htmx plumbing shared by the views: when to answer with a fragment, and caches that keep the two apart.

A page and its htmx fragment share one URL, so every response of such a view
says which request headers chose between them (``Vary``); otherwise a
browser or proxy cache could hand the fragment to a full page load or the
other way round.

Not every htmx request wants the fragment: a history restore (the back button
after htmx pushed a URL, when htmx's own history cache has no copy) and a
boosted link both swap the whole page in and need the full page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

# The request headers that decide between page and fragment.
HTMX_VARY: tuple[str, ...] = ("HX-Request", "HX-Boosted", "HX-History-Restore-Request")

View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def is_htmx(request: HttpRequest) -> bool:
    """Whether ``request`` wants only a fragment: an htmx request that is neither boosted nor a history restore."""
    details = getattr(request, "htmx", None)
    if not details:  # no django-htmx middleware, or not an htmx request
        return False
    return not (details.boosted or details.history_restore_request)


def htmx_vary(response: HttpResponseBase) -> HttpResponseBase:
    """Mark ``response`` as depending on the htmx request headers; returns it."""
    patch_vary_headers(response, HTMX_VARY)
    return response


def vary_on_htmx(view: View) -> View:
    """Decorate a view whose answer (fragment, page or redirect) depends on ``is_htmx``."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return htmx_vary(view(request, *args, **kwargs))

    return wrapped  # type: ignore[return-value]


def htmx_render(
    request: HttpRequest,
    full_template: str,
    fragment_template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
) -> HttpResponse:
    """Render ``fragment_template`` for an htmx request that wants a fragment, else ``full_template``; with ``Vary``.

    The templates get ``htmx_fragment`` (True when only the fragment is sent),
    for what only a swapped-in fragment needs, such as out-of-band updates
    of elements outside it. Use it rather than ``request.htmx``, which is
    also true for history restores and boosted requests.
    """
    fragment = is_htmx(request)
    data = {**(context or {}), "htmx_fragment": fragment}
    response = render(request, fragment_template if fragment else full_template, data, status=status)
    htmx_vary(response)
    return response
