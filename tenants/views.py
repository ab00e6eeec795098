"""Public home page, the API key page and the phone number page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_http_methods, require_POST

from tenants.forms import BusinessSubdomainForm
from tenants.hooks import tenant_limits_for
from tenants.models import ApiKey, Membership, PhoneNumber
from tenants.permissions import role_required
from tenants.selectors import (
    api_key_list,
    business_signup_for_user,
    phone_number_list,
    signup_progress,
    tenant_list_for_user,
)
from tenants.services import (
    API_KEY_NAME_MAX_LENGTH,
    api_key_create,
    api_key_revoke,
    business_signup_provision,
    phone_number_register,
    phone_number_remove,
)


def home(request: HttpRequest) -> HttpResponse:
    """Landing page on the public host; signed-in users see their businesses and the one being made."""
    tenants = tenant_list_for_user(user=request.user) if request.user.is_authenticated else []
    signup = business_signup_for_user(user=request.user)  # type: ignore[arg-type]
    form = BusinessSubdomainForm(initial={"subdomain": signup.slug}) if signup and signup.error else None
    progress = signup_progress(user=request.user, signup=signup) if signup else []  # type: ignore[arg-type]
    context = {"tenants": tenants, "signup": signup, "subdomain_form": form, "progress": progress}
    return render(request, "tenants/home.html", context)


@login_required
@require_POST
def business_signup_subdomain(request: HttpRequest) -> HttpResponse:
    """Make the business signed up for under another subdomain, the first having been taken."""
    signup = business_signup_for_user(user=request.user)  # type: ignore[arg-type]
    if signup is None:
        raise Http404("Nothing to make.")
    form = BusinessSubdomainForm(request.POST)
    if not form.is_valid():
        tenants = tenant_list_for_user(user=request.user)  # type: ignore[arg-type]
        progress = signup_progress(user=request.user, signup=signup)  # type: ignore[arg-type]
        context = {"tenants": tenants, "signup": signup, "subdomain_form": form, "progress": progress}
        return render(request, "tenants/home.html", context, status=400)
    try:
        tenant = business_signup_provision(user=request.user, slug=form.cleaned_data["subdomain"])  # type: ignore[arg-type]
    except PermissionDenied as exc:
        raise Http404("Nothing to make yet.") from exc
    if tenant is not None:
        messages.success(request, f"{tenant.name} is ready.")
    return redirect("home")


@role_required(Membership.Role.ADMIN)
@require_http_methods(["GET", "POST"])
def api_key_page(request: HttpRequest) -> HttpResponse:
    """List the business's API keys; POST makes one and shows its full key, this once only."""
    tenant = request.tenant  # type: ignore[attr-defined]
    created: tuple[ApiKey, str] | None = None
    error = ""
    name = ""
    if request.method == "POST":
        name = request.POST.get("name", "")
        try:
            created = api_key_create(tenant=tenant, actor=request.user, name=name)  # type: ignore[arg-type]
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            name = ""
    context = {
        "keys": api_key_list(tenant=tenant),
        "created_key": created[0] if created else None,
        "plaintext": created[1] if created else "",
        "error": error,
        "name": name,
        "name_max_length": API_KEY_NAME_MAX_LENGTH,
    }
    template = "tenants/api_keys_panel.html" if request.htmx else "tenants/api_keys.html"  # type: ignore[attr-defined]
    response = render(request, template, context)
    # The page may carry a full key: no cache may keep it.
    patch_cache_control(response, no_store=True, private=True)
    return response


@role_required(Membership.Role.ADMIN)
@require_POST
def api_key_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke a key at once; htmx gets the key's updated table row."""
    try:
        key = api_key_revoke(tenant=request.tenant, key_id=pk, actor=request.user)  # type: ignore[attr-defined,arg-type]
    except ApiKey.DoesNotExist as exc:
        raise Http404("No such key.") from exc
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "tenants/api_keys_row.html", {"key": key, "just_revoked": True})
    messages.success(request, f"The key “{key.name}” is revoked.")
    return redirect("api_keys:list")


@role_required(Membership.Role.ADMIN)
@require_http_methods(["GET", "POST"])
def phone_number_page(request: HttpRequest) -> HttpResponse:
    """The numbers that ring this business; POST adds one (E.164 after normalising) within the plan's limit."""
    tenant = request.tenant  # type: ignore[attr-defined]
    error = ""
    number = label = ""
    if request.method == "POST":
        number, label = request.POST.get("number", "").strip(), request.POST.get("label", "").strip()[:100]
        try:
            phone = phone_number_register(tenant=tenant, number=number, label=label, actor=request.user)  # type: ignore[arg-type]
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            messages.success(request, f"Calls to {phone.e164} now reach your receptionist.")
            return redirect("phone_numbers:list")
    numbers = list(phone_number_list(tenant=tenant))
    context = {
        "numbers": numbers,
        "show_routing": any(phone.routing_state for phone in numbers),
        "limit": tenant_limits_for(tenant).max_numbers,
        "error": error,
        "number": number,
        "label": label,
    }
    return render(request, "tenants/phone_numbers.html", context, status=400 if error else 200)


@role_required(Membership.Role.ADMIN)
@require_POST
def phone_number_remove_view(request: HttpRequest, number_id: int) -> HttpResponse:
    """Remove one of this business's numbers; another business's or a missing one is a 404."""
    try:
        phone = phone_number_remove(tenant=request.tenant, number_id=number_id, actor=request.user)  # type: ignore[attr-defined,arg-type]
    except PhoneNumber.DoesNotExist as exc:
        raise Http404 from exc
    messages.success(request, f"Calls to {phone.e164} no longer reach your receptionist.")
    return redirect("phone_numbers:list")
