"""The Django admin a business's admins and owners use on their own host (``<slug>.<base domain>/admin/``).

It is not the platform admin (``admin.site``, an ``OwnerAdminSite``, on the
public host, for the SaaS owner's staff). Access and model permissions come from the membership role in
``request.tenant``, never from ``is_staff`` or Django's auth permissions, which
are platform-wide: tenant members are not staff and must never be made staff.

Signed-in users without the role get 404, like every other tenant page, and
so does anything the role may not do there (missing and forbidden look alike);
anonymous visitors are sent to the normal sign-in page. The admin's own
``LogEntry`` table lives in the shared public schema, so tenant objects are
never logged there: the services' audit trails (``TicketChange``,
``AuditEvent``) record every change instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar

from allauth.account.authentication import get_authentication_records
from allauth.mfa.utils import is_mfa_enabled
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.forms import ModelForm
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import reverse
from django_tenants.utils import get_public_schema_name

from tenants.models import Membership, Tenant
from tenants.permissions import membership_has_role, request_membership
from voicedesk.core.errors import DomainError

Role = Membership.Role
View = TypeVar("View", bound=Callable[..., Any])


def request_tenant(request: HttpRequest) -> Tenant | None:
    """The tenant of the request's host, or ``None`` on the public host."""
    tenant: Tenant | None = getattr(request, "tenant", None)
    if tenant is None or tenant.schema_name == get_public_schema_name():
        return None
    return tenant


def request_has_role(request: HttpRequest, role: str | None) -> bool:
    """True when the signed-in user is at least ``role`` in the request's tenant; ``None`` means nobody."""
    if role is None or not request.user.is_active:
        return False
    tenant = request_tenant(request)
    membership = request_membership(request)
    if tenant is None or membership is None or membership.tenant_id != tenant.pk:
        return False
    return membership_has_role(membership, role)


class TenantAdminSite(admin.AdminSite):
    site_title = "VoiceDesk admin"
    site_header = "VoiceDesk admin"
    index_title = "Help desk data"
    index_template = "admin/tenant/index.html"

    def has_permission(self, request: HttpRequest) -> bool:
        return request_has_role(request, Role.ADMIN)

    def admin_view(self, view: View, cacheable: bool = False) -> View:
        inner = super().admin_view(view, cacheable)

        @wraps(inner)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not self.has_permission(request):
                if request.user.is_authenticated:
                    # An agent, or anyone else signed in: for them the admin does not exist.
                    raise Http404("No such page.")
                return redirect_to_login(request.get_full_path(), reverse("account_login"))
            try:
                response: HttpResponseBase = inner(request, *args, **kwargs)
            except PermissionDenied as exc:
                # Forbidden looks like missing here too (an agent, a read-only model, an owner-only delete).
                raise Http404("No such page.") from exc
            return response

        return guarded  # type: ignore[return-value]

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # The admin's own login form wants staff users; members sign in like everywhere else.
        if self.has_permission(request):
            return HttpResponseRedirect(reverse("admin:index", current_app=self.name))
        if request.user.is_authenticated:
            raise Http404("No such page.")
        after = request.GET.get("next") or reverse("admin:index", current_app=self.name)
        return redirect_to_login(after, reverse("account_login"))

    def password_change(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        return HttpResponseRedirect(reverse("account_change_password"))  # type: ignore[return-value]

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        tenant = request_tenant(request)
        if tenant is not None:
            context["site_header"] = f"{tenant.name} admin"
            context["site_title"] = f"{tenant.name} admin"
        return context


tenant_admin_site = TenantAdminSite(name="tenant_admin")


def session_used_mfa(request: HttpRequest) -> bool:
    """True when this session's sign-in included a second factor (allauth's record of it)."""
    records = get_authentication_records(request, request.user)
    return any(record.get("method") == "mfa" for record in records)


class OwnerAdminSite(admin.AdminSite):
    """The SaaS owner's admin on the public host: platform staff, signed in through allauth with a second factor.

    Django's own admin login would skip allauth's rate limits and MFA, so it
    is never shown: sign-in goes through allauth, staff without a second
    factor are sent to set one up, and a session that signed in without it
    (the factor was added later) confirms a code first. Anyone else signed
    in gets 404, as on every other page they may not see.
    """

    site_title = "VoiceDesk platform admin"
    site_header = "VoiceDesk platform admin"

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff and session_used_mfa(request))

    def admin_view(self, view: View, cacheable: bool = False) -> View:
        inner = super().admin_view(view, cacheable)

        @wraps(inner)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not self.has_permission(request):
                return self._sign_in_step(request, request.get_full_path())
            response: HttpResponseBase = inner(request, *args, **kwargs)
            return response

        return guarded  # type: ignore[return-value]

    def _sign_in_step(self, request: HttpRequest, after: str) -> HttpResponse:
        """Where a visitor without access goes next: sign-in, second factor set-up or confirmation, or 404."""
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(after, reverse("account_login"))
        if not (user.is_active and user.is_staff):
            raise Http404("No such page.")
        if not is_mfa_enabled(user):
            return redirect_to_login(after, reverse("mfa_activate_totp"))
        return redirect_to_login(after, reverse("mfa_reauthenticate"))

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        after = request.GET.get("next") or reverse("admin:index", current_app=self.name)
        if self.has_permission(request):
            return HttpResponseRedirect(reverse("admin:index", current_app=self.name))
        return self._sign_in_step(request, after)

    def password_change(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        return HttpResponseRedirect(reverse("account_change_password"))  # type: ignore[return-value]


class TenantRolePermissions:
    """Model permissions on the tenant admin site, from the membership role.

    Each action names the least role that may do it; ``None`` means nobody
    (the data changes through the help desk pages and their services only).
    """

    view_role: str | None = Role.ADMIN
    add_role: str | None = None
    change_role: str | None = None
    delete_role: str | None = None

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request_has_role(request, self.view_role)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request_has_role(request, self.view_role) or self.has_change_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request_has_role(request, self.add_role)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request_has_role(request, self.change_role)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request_has_role(request, self.delete_role)


class TenantModelAdmin(TenantRolePermissions, admin.ModelAdmin):
    """Base for every model on the tenant admin site."""

    change_form_template = "admin/tenant/change_form.html"

    # The shared LogEntry table would mix every tenant's objects (same ids,
    # same content types): services keep the audit trail instead.
    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> None:  # type: ignore[override]
        return None

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> None:  # type: ignore[override]
        return None

    def log_deletions(self, request: HttpRequest, queryset: Any) -> None:  # type: ignore[override]
        return None

    def history_view(self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None) -> Any:
        raise Http404("No history here; the help desk's activity log has it.")

    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts: Any, object_id: str) -> HttpResponse:
        # Like every tenant page: an id this business does not have is a 404, not a hint.
        raise Http404("No such page.")


class TenantInline(TenantRolePermissions, admin.TabularInline):
    """A read-only inline on the tenant admin site."""

    extra = 0
    can_delete = False
    show_change_link = False


class _DryRunDoneError(Exception):
    """Raised to roll back a service call that was only made to validate its input."""


def service_dry_run(form: ModelForm[Any], call: Callable[[], object]) -> None:
    """Run a service call in a savepoint that is always rolled back; put its refusal on ``form``.

    The admin validates the form before it saves, but the services own the
    rules (status flow, duplicates, settings formats): running the real
    write and undoing it gives the form exactly the service's message. Events
    registered inside the rolled-back savepoint are never sent.

    Never for creating rows whose ids people see (ticket numbers): a
    rolled-back insert still uses up a sequence value and logs a creation that
    never happened. Only the services' refusals (``DomainError``,
    ``ValidationError``) become form errors; any other exception is a bug and
    propagates.
    """
    try:
        with transaction.atomic():
            call()
            raise _DryRunDoneError
    except _DryRunDoneError:
        return
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            for field, errors in exc.error_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form.add_error(None, exc)
    except DomainError as exc:
        form.add_error(None, str(exc))


def changed_values(form: ModelForm[Any], fields: Iterable[str]) -> dict[str, Any]:
    """The cleaned values of the editable ``fields`` the user changed."""
    return {name: form.cleaned_data[name] for name in form.changed_data if name in set(fields)}
